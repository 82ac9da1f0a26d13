"""edgeq eval: a .tflite against its float reference."""

from __future__ import annotations

import click

from edgeq.cli.app import App, pass_app, table
from edgeq.cli.options import data_config, load_config, load_options, preprocess_options


def _pct(v: float | None) -> str:
    return "n/a (no labels)" if v is None else f"{100 * v:.2f}%"


@click.command("eval")
@click.argument("model", type=click.Path(path_type=str))
@click.option(
    "--reference",
    required=True,
    type=click.Path(path_type=str),
    help="The float model (Keras, SavedModel or float .tflite).",
)
@click.option(
    "--data", "data_path", required=True, type=click.Path(path_type=str), help="Evaluation data; labels (y) optional."
)
@preprocess_options
@load_options
@pass_app
def command(app: App, model: str, reference: str, data_path: str, **kw) -> None:
    """Top-1 accuracy of MODEL.tflite and its reference, agreement, and output fidelity.

    Fidelity (SQNR, cosine similarity, errors) needs no labels.
    """
    from edgeq import api

    data_cfg = data_config(data_path, kw)
    assert data_cfg is not None
    r = api.evaluate(model, reference, data_cfg, load_config(kw))
    lines = [
        f"samples: {r['num_samples']}",
        f"reference accuracy: {_pct(r['reference']['accuracy'])}",
        f"quantized accuracy: {_pct(r['quantized']['accuracy'])}",
        f"top-1 agreement: {_pct(r['agreement'])}",
        f"SQNR: {r['sqnr_db']} dB  cosine: {r['cosine_similarity']}  mean abs err: {r['mean_abs_error']:.4g}  max abs err: {r['max_abs_error']:.4g}",
    ]
    if r.get("per_class"):
        worst = r["per_class"][:5]
        lines.append(f"classes that lost most (worst-class drop {r['worst_class_drop_points']} points):")
        rows = [
            [w["class"], _pct(w["reference_accuracy"]), _pct(w["quantized_accuracy"]), w["drop_points"]] for w in worst
        ]
        lines.append(table(rows, ["class", "reference", "quantized", "drop_points"]))
    app.done(r, "\n".join(lines), warnings=r["warnings"])
