"""edgeq eval: a .tflite against its float reference."""

from __future__ import annotations

import click

from edgeq.cli.app import App, pass_app, pct, table
from edgeq.cli.options import data_config, load_config, load_options, preprocess_options

NO_LABELS = "n/a (no labels)"


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
@click.option(
    "--task",
    type=click.Choice(["classification", "regression", "detection", "embedding"]),
    default=None,
    help="What the model's outputs are; by default inferred per output from its name, shape and values. "
    "detection takes separate boxes and scores, TFLite_Detection_PostProcess, or a YOLOv5/v8 head [1, 4+C, N] "
    "or [1, N, 4+C] (anchors above 0.25).",
)
@preprocess_options
@load_options
@pass_app
def command(app: App, model: str, reference: str, data_path: str, task: str | None, **kw) -> None:
    """Fidelity of MODEL.tflite against its reference, output by output (paired by name).

    Every output gets SQNR, cosine similarity and errors (no labels needed); class-score outputs
    also top-1 agreement (and accuracy with labels), a detection head box IoU and score agreement
    (a YOLO head also class agreement and anchors above 0.25, float vs int8). The model's figures are
    its worst output's; an int8 output whose channel groups one scale cannot hold (a YOLO head's 0..320
    boxes and 0..1 scores) is named in a warning, whatever its SQNR.
    """
    from edgeq import api
    from edgeq.cli.fidelity_view import outputs_lines

    data_cfg = data_config(data_path, kw)
    assert data_cfg is not None
    r = api.evaluate(model, reference, data_cfg, load_config(kw), task)
    lines = [f"samples: {r['num_samples']}", *outputs_lines(r)]
    if r.get("interface"):  # a split head: its parts were concatenated again before the comparison
        lines.insert(1, f"interface (from its sidecar): {r['interface']['text']}; compared merged")
    if r["class_output"] is not None:
        lines += [
            f"reference accuracy: {pct(r['reference']['accuracy'], NO_LABELS)}",
            f"quantized accuracy: {pct(r['quantized']['accuracy'], NO_LABELS)}",
            *interval_lines(r),
        ]
    if r.get("per_class"):
        worst = r["per_class"][:5]
        lines.append(f"classes that lost most (worst-class drop {r['worst_class_drop_points']} points):")
        rows = [
            [w["class"], pct(w["reference_accuracy"]), pct(w["quantized_accuracy"]), w["drop_points"]] for w in worst
        ]
        lines.append(table(rows, ["class", "reference", "quantized", "drop_points"]))
    app.done(r, "\n".join(lines), warnings=r["warnings"])


def interval_lines(r: dict) -> list[str]:
    """Agreement and accuracy drop with their 95% intervals, and a plain note when the drop's interval
    spans 0 (the evaluation set cannot tell int8 from float)."""
    from edgeq.bench.stats import Interval, noise_note

    iv = r.get("intervals") or {}
    agree = Interval.from_dict(iv["agreement"]) if iv.get("agreement") else None
    of = f" ({r['class_output']})" if r.get("class_output") and r.get("num_outputs", 1) > 1 else ""
    lines = [
        f"top-1 agreement{of}: {100 * agree.estimate:.2f}% (95% CI {agree.text(unit=False)}, n={agree.n})"
        if agree
        else f"top-1 agreement: {pct(r['agreement'], NO_LABELS)}"
    ]
    if iv.get("accuracy_drop_points"):
        drop = Interval.from_dict(iv["accuracy_drop_points"])
        lines.append(f"accuracy drop: {drop.estimate:.2f} points (95% CI {drop.text(unit=False)})")
        note = noise_note(drop, 0.0)
        if note:
            lines.append(f"note: {note}")
    return lines
