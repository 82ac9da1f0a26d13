"""``debug``: TFLite's Quantization Debugger, per-layer table and chart, model-level metrics."""

from __future__ import annotations

from pathlib import Path

from edgeq.artifacts import (
    Outputs,
    check_name_length,
    check_writable,
    clean_stale,
    provenance,
    refuse_overwriting_inputs,
)
from edgeq.config import DataConfig, LoadConfig, QuantizeConfig
from edgeq.errors import BadInput, OutputExists
from edgeq.stages.common import calibration, expected_input_range, input_paths, load_data, load_model

DEBUG_FILES = ("layers.csv", "layers.json", "rmse_over_scale.png")


def debug(
    model_path: str,
    data_cfg: DataConfig,
    out_dir: str,
    eval_cfg: DataConfig | None = None,
    load_cfg: LoadConfig = LoadConfig(),
    force: bool = False,
) -> dict:
    """Run TFLite's Quantization Debugger and write the per-layer table (CSV, JSON) and chart.

    Args:
        model_path: the float Keras or SavedModel model.
        data_cfg: calibration data (also the debug samples when no ``eval_cfg``).
        out_dir: gets layers.csv, layers.json and rmse_over_scale.png.
        eval_cfg: data for the model-level metrics (and per-class accuracy when labeled).

    Returns:
        Layers, the worst ones, model-level metrics (SQNR, agreement, accuracies, per class).

    Raises:
        OutputExists: earlier debug files in ``out_dir`` without ``force``.
    """
    import csv
    import io

    from edgeq.bench import fidelity
    from edgeq.debug import debugger, metrics, plot
    from edgeq.runtime import open_session

    out = Path(out_dir)
    check_name_length(out / DEBUG_FILES[0])
    if out.exists() and not out.is_dir():
        raise BadInput(f"{out} is a file", "give a folder with -o")
    clean_stale(out)  # a killed run's half commit is undone, not refused
    existing = [f for f in DEBUG_FILES if (out / f).exists()]
    if existing and not force:
        raise OutputExists(f"{out} already holds {', '.join(existing)}", "pass --force or choose another -o")
    check_writable(out)  # now, not after the work
    for src in input_paths(model_path, data_cfg, eval_cfg):
        for name in DEBUG_FILES:
            refuse_overwriting_inputs(out / name, [src])
    model = load_model(model_path, load_cfg)
    calib, warnings = calibration(model, QuantizeConfig(), data_cfg)
    session = debugger.calibrate(model, calib)
    ev = calib
    if eval_cfg is not None:
        ev, more = load_data(eval_cfg, tuple(calib.x.shape[1:]), expected_input_range(model), "evaluation data")
        warnings += more
    int8 = open_session(session.quantized_model(), batch=1, origin="the debugger's int8 model")
    model_metrics = fidelity.compare_session(
        model.predict_outputs(ev.x), int8, ev.x, ev.y, (model_path, "the debugger's int8 model"), source=ev.source
    )
    warnings += model_metrics["warnings"]
    layers = [s.to_dict() for s in session.layers]
    worst = [s.to_dict() for s in metrics.worst(session.layers)]
    doc = {
        "model": model_path,
        "num_layers": len(layers),
        "layers": layers,
        "worst_layers": worst,
        "healthy_rmse_over_scale": metrics.HEALTHY_RMSE_OVER_SCALE,
        "suspect_layers": [s["tensor_name"] for s in layers if s["rmse_over_scale"] > metrics.SUSPECT_RMSE_OVER_SCALE],
        "model_metrics": model_metrics,
        "classes_that_lost_most": (model_metrics.get("per_class") or [])[:5],
        "calibration": calib.provenance(data_cfg.seed),
        "eval_data": ev.source,
        "warnings": warnings,
    }
    buf = io.StringIO()
    fields = list(layers[0]) if layers else ["index"]
    writer = csv.DictWriter(buf, fieldnames=fields)
    writer.writeheader()
    writer.writerows(layers)
    with Outputs(out) as staged:  # the table and the chart appear together or not at all
        staged.write_bytes("layers.csv", buf.getvalue().encode())
        staged.write_json("layers.json", provenance("debug", {}, {"model": model_path}, **doc))
        plot.write(staged.path("rmse_over_scale.png"), session.layers, f"{Path(model_path).name}: int8 error per layer")
    doc["artifacts"] = [str(out / f) for f in DEBUG_FILES]
    return doc
