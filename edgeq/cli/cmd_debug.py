"""edgeq debug: where int8 loses accuracy, layer by layer."""

from __future__ import annotations

import click

from edgeq.cli.app import App, pass_app, table
from edgeq.cli.options import data_config, force_option, load_config, load_options, model_argument, preprocess_options


@click.command("debug")
@model_argument
@click.option("--data", "data_path", required=True, type=click.Path(path_type=str), help="Calibration data.")
@click.option(
    "--eval-data",
    "eval_path",
    default=None,
    type=click.Path(path_type=str),
    help="Data for model-level metrics (labels give per-class accuracy).",
)
@click.option(
    "-o",
    "--out-dir",
    required=True,
    type=click.Path(file_okay=False, path_type=str),
    help="Folder for layers.csv, layers.json, rmse_over_scale.png.",
)
@preprocess_options
@load_options
@force_option
@pass_app
def command(app: App, model: str, data_path: str, eval_path: str | None, out_dir: str, force: bool, **kw) -> None:
    """Run TFLite's Quantization Debugger on MODEL: per-layer int8 error, worst layers, chart.

    rmse/scale near 1/sqrt(12) = 0.289 is plain rounding noise; well above 0.7 marks a layer
    worth keeping in float (--denylist) or fixing with QAT.
    """
    from edgeq import api

    preprocess = dict(kw)
    data_cfg = data_config(data_path, kw)
    assert data_cfg is not None
    eval_cfg = data_config(eval_path, preprocess) if eval_path else None
    from edgeq.cli.fidelity_view import outputs_lines

    r = api.debug(model, data_cfg, out_dir, eval_cfg, load_config(kw), force)
    m = r["model_metrics"]
    rows = [
        [
            w["index"],
            w["op"],
            w["tensor_name"][:60],
            f"{w['rmse_over_scale']:.3f}",
            f"{w['scale']:.4g}",
            f"[{w['range_min']:.3g}, {w['range_max']:.3g}]",
        ]
        for w in r["worst_layers"]
    ]
    lines = [
        f"{r['num_layers']} quantized tensors; worst by rmse/scale (healthy ~0.289):",
        table(rows, ["#", "op", "tensor", "rmse/scale", "scale", "range"]),
        *outputs_lines(m),
    ]
    if m["quantized"]["accuracy"] is not None:
        lines.append(
            f"accuracy float {100 * m['reference']['accuracy']:.2f}% -> int8 {100 * m['quantized']['accuracy']:.2f}%"
        )
        lost = [c for c in r["classes_that_lost_most"] if c["drop_points"] > 0]
        lines.append(
            "classes that lost most: "
            + (", ".join(f"{c['class']} (-{c['drop_points']:.1f} pts)" for c in lost) or "none")
        )
    lines.append(f"wrote {', '.join(r['artifacts'])}")
    app.done(r, "\n".join(lines), r["artifacts"], r["warnings"])
