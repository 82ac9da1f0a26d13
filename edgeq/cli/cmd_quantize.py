"""edgeq quantize: Keras/SavedModel to a verified .tflite."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from edgeq.cli.app import App, pass_app, pct, table
from edgeq.cli.cmd_train import qat_table
from edgeq.cli.options import (
    data_config,
    executor_config,
    executor_options,
    force_option,
    load_config,
    load_options,
    model_argument,
    number_option,
    preprocess_options,
    technique_config,
    technique_options,
)
from edgeq.cli.progress import PLAN_HEADERS, plan_row, reporter
from edgeq.cli.train_options import train_config, train_options
from edgeq.config import BATCH, DROP_POINTS, SQNR_DB, IOType, Mode, QuantizeConfig, TechniqueConfig
from edgeq.errors import QualityGateFailed, UsageError
from edgeq.executor import ExecutorConfig

if TYPE_CHECKING:
    from edgeq.api import QuantizeResult


def _qat_human(doc: dict) -> str:
    lines = [
        f"wrote {doc['output']} ({doc['size_bytes']:,} bytes, {doc['size_ratio']:.2f}x the float .tflite)",
        f"float ops: {', '.join(sorted(set(doc['float_ops']))) if doc['float_ops'] else 'none (every op is integer)'}",
        qat_table(doc["qat"]["layers"]),
        *doc["qat"]["target_impact"],
        *doc["qat"]["notes"],
    ]
    acc = doc.get("accuracy")
    if acc:
        lines.append(f"top-1 on {acc['num_samples']} samples:")
        lines.append(table([[pct(acc["float"]), pct(acc["ptq"]), pct(acc["qat"])]], ["float", "int8 PTQ", "int8 QAT"]))
    return "\n".join(lines)


def _vs_float(size: int, reference: int | None) -> str:
    if reference is None:
        return "; --size-ratio compares it with the float .tflite"
    return f", {size / reference:.2f}x the float .tflite"


def _techniques_lines(t: dict | None) -> list[str]:
    if not t:
        return []
    return [f"techniques: {t['applied']}", *[f"  {n}" for n in t["notes"]]]


def _split(value: str | None) -> tuple[str, ...]:
    return tuple(v.strip() for v in value.split(",") if v.strip()) if value else ()


def plan_table(plan: dict) -> str:
    """Every step the planner tried, as a table (the rows the progress lines showed as they finished)."""
    rows = [plan_row(st, plan["profile"]["integer_only"]) for st in plan["steps"]]
    return table(rows, PLAN_HEADERS)


def _plan_human(doc: dict) -> str:
    plan = doc["plan"]
    return "\n".join(
        [
            f"wrote {doc['output']} ({doc['size_bytes']:,} bytes)",
            *[f"note: {n}" for n in plan.get("noise") or []],
            f"plan for {plan['target']}: {plan['chosen']} ({plan['stopped_because']})",
            plan_table(plan),
        ]
    )


@click.command("quantize")
@model_argument
@click.option(
    "--mode",
    type=click.Choice([m.value for m in Mode]),
    default=Mode.INT8.value,
    show_default=True,
    help="Conversion mode.",
)
@click.option(
    "--io",
    "io",
    type=click.Choice([t.value for t in IOType]),
    default=None,
    help="Input/output type (int8 mode defaults to int8, others to float).",
)
@click.option(
    "--data",
    "data_path",
    type=click.Path(path_type=str),
    default=None,
    help="Representative data (.npz/.npy or image folder); needed for int8 and int16x8.",
)
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, path_type=str), required=True, help="The .tflite to write."
)
@number_option(
    "--batch",
    bound=BATCH,
    default=None,
    help="Static batch size of the converted model (default: --input-shape's first dimension, else 1).",
)
@click.option("--allow-float-ops", is_flag=True, help="Keep ops without integer kernels in float instead of failing.")
@click.option(
    "--qat", is_flag=True, help="Quantization-aware training with TF-MOT before converting (needs --train-data)."
)
@click.option(
    "--train-data",
    "train_path",
    type=click.Path(path_type=str),
    default=None,
    help="Labeled data for QAT fine-tuning (with --qat, or to let the planner try QAT).",
)
@click.option(
    "--eval-data",
    "eval_path",
    type=click.Path(path_type=str),
    default=None,
    help="Labeled data: with --qat, float/PTQ/QAT accuracy side by side; the planner's evaluation set.",
)
@click.option(
    "--denylist",
    default=None,
    metavar="NODE,...",
    help="Selective quantization: keep these tensors (debugger names or Keras layer names) in float.",
)
@click.option(
    "--denylist-ops",
    default=None,
    metavar="OP,...",
    help="Selective quantization: keep these op types (e.g. MEAN) in float.",
)
@number_option(
    "--max-drop",
    bound=DROP_POINTS,
    kind=float,
    default=None,
    metavar="POINTS",
    help="Planner: accuracy budget in points on labeled --eval-data.",
)
@number_option(
    "--min-sqnr",
    bound=SQNR_DB,
    kind=float,
    default=None,
    metavar="DB",
    help="Planner: output SQNR bound when --eval-data has no labels.",
)
@number_option(
    "--max-class-drop",
    bound=DROP_POINTS,
    kind=float,
    default=None,
    metavar="POINTS",
    help="Planner: budget for the worst class's accuracy drop.",
)
@click.option(
    "--target", default="cpu", show_default=True, help="Planner: the target whose profile prices float layers."
)
@click.option(
    "--size-ratio",
    is_flag=True,
    default=False,
    help="Also convert to float, to report the size against the float .tflite (one more conversion).",
)
@click.option(
    "--allow-cpu-fallback",
    is_flag=True,
    help="Planner: on integer-only targets, let a plan keep layers in float (they leave the accelerator).",
)
@technique_options
@executor_options
@train_options(default_epochs=2, default_lr=1e-4)
@preprocess_options
@load_options
@force_option
@pass_app
def command(
    app: App,
    model: str,
    mode: str,
    io: str | None,
    data_path: str | None,
    output: str,
    batch: int | None,
    allow_float_ops: bool,
    qat: bool,
    train_path: str | None,
    eval_path: str | None,
    denylist: str | None,
    denylist_ops: str | None,
    max_drop: float | None,
    min_sqnr: float | None,
    max_class_drop: float | None,
    target: str,
    size_ratio: bool,
    allow_cpu_fallback: bool,
    force: bool,
    **kw: Any,
) -> None:
    """Quantize MODEL (.keras, .h5 or SavedModel) to OUTPUT and verify the result.

    A float .tflite is quantized to int8 as it is (litert-quantizer); a .onnx model is converted
    first (onnx2tf: pip install edgeq[onnx]).

    The converted model is read back: every op still computing in float is listed and the
    I/O types are checked. Integer modes with float ops exit 4 unless --allow-float-ops.

    int8 is the plain converter's model unless techniques are named (--ranges, --cle,
    --bias-correction, --adaround): every op stays int8 with them.

    With --max-drop (or --min-sqnr), a planner finds the cheapest quantization that meets the
    budget on --target: int8 PTQ, the all-integer techniques, then (by the target) float layers,
    int16 activations, QAT. On integer-only targets float layers need --allow-cpu-fallback.
    """
    from edgeq import api

    train_cfg = train_config(kw)
    executor = executor_config(kw)
    steps_given = kw.get("adaround_steps") is not None
    techniques = technique_config(kw)
    planning = max_drop is not None or min_sqnr is not None or max_class_drop is not None
    denylisted = bool(denylist or denylist_ops)
    _refuse_conflicts(planning, qat, train_path, eval_path, denylisted, techniques, steps_given, allow_cpu_fallback)
    if executor is not None and not planning:
        raise UsageError(
            "--executor, --jobs and --ray-address run the planner's candidates", "add --max-drop or --min-sqnr"
        )
    batch = _batch(batch, kw.get("input_shape"))
    cfg = _quantize_config(mode, io, batch, allow_float_ops, denylist, denylist_ops, techniques)
    preprocess = dict(kw)
    data_cfg = data_config(data_path, kw)
    load_cfg = load_config(kw)
    train_data = data_config(train_path, dict(preprocess)) if train_path else None
    eval_data = data_config(eval_path, dict(preprocess)) if eval_path else None
    if planning:
        from edgeq.quantize.planner import Budget

        budget = Budget(max_drop=max_drop, min_sqnr=min_sqnr, max_class_drop=max_class_drop)
        if data_cfg is None:
            raise UsageError("the planner needs calibration data", "pass --data PATH")
        app.say(f"planning the quantization of {model} for {target} ...")
        args = (model, output, target, budget, data_cfg, eval_data, io, train_data, train_cfg, load_cfg, force)
        doc = _run_plan(app, args, allow_cpu_fallback, techniques.adaround_steps, executor or ExecutorConfig())
        app.done(doc, _plan_human(doc), [doc["output"], doc["sidecar"]], doc["warnings"])
        return
    if qat:
        assert train_data is not None
        app.say(f"quantization-aware training of {model} ({train_cfg.epochs} epochs) ...")
        doc = api.quantize_aware(
            model, output, cfg, train_data, train_cfg, data_cfg, eval_data, load_cfg, force, reporter(app)
        )
        app.done(doc, _qat_human(doc), [doc["output"], doc["sidecar"]], doc["warnings"])
        return
    app.say(f"quantizing {model} ({cfg.mode.value}, {cfg.io_type.value} I/O) ...")
    r = api.quantize(model, output, cfg, data_cfg, load_cfg, force=force, size_ratio=size_ratio)
    app.done(r.to_dict(), _quantize_human(r), [r.output, r.sidecar], r.warnings)


def _run_plan(app: App, args: tuple, allow_cpu_fallback: bool, adaround_steps: int, executor: ExecutorConfig) -> dict:
    """The planner, each step's line on stderr as it finishes; on exit 6 the table of every step tried
    still ends the human output (on stderr, before the error line)."""
    from edgeq import api

    try:
        return api.plan(
            *args,
            progress=reporter(app),
            allow_cpu_fallback=allow_cpu_fallback,
            adaround_steps=adaround_steps,
            executor=executor,
        )  # type: ignore[misc]
    except QualityGateFailed as exc:
        if not app.json_mode and isinstance(exc.details, dict) and "steps" in exc.details:
            click.echo(f"every step tried:\n{plan_table(exc.details)}", err=True)
        raise


def _batch(batch: int | None, shapes: tuple[str, ...] | None) -> int:
    """--batch, or the batch (first dimension) of a single --input-shape; the two must agree."""
    from edgeq.config import input_shapes

    pinned = input_shapes(shapes)
    first = pinned[0].dims[0] if len(pinned) == 1 and len(pinned[0].dims) > 1 else None
    if batch is not None and first is not None and batch != first:
        raise UsageError(
            f"--batch {batch} contradicts --input-shape {pinned[0].text()} (batch {first})", "give one batch"
        )
    return batch if batch is not None else first or 1


def _quantize_config(
    mode: str,
    io: str | None,
    batch: int,
    allow_float_ops: bool,
    denylist: str | None,
    denylist_ops: str | None,
    techniques: TechniqueConfig,
) -> QuantizeConfig:
    return QuantizeConfig(
        mode=Mode(mode),
        io=IOType(io) if io else None,
        batch=batch,
        allow_float_ops=allow_float_ops,
        denylist=_split(denylist),
        denylist_ops=_split(denylist_ops),
        techniques=techniques,
    )


def _quantize_human(r: QuantizeResult) -> str:
    rows = [[t["name"], t["dtype"], t["shape"], t["scale"], t["zero_point"]] for t in r.inputs + r.outputs]
    return "\n".join(
        [
            f"wrote {r.output} ({r.size_bytes:,} bytes{_vs_float(r.size_bytes, r.reference_size_bytes)})",
            f"float ops: {', '.join(sorted(set(r.float_ops))) if r.float_ops else 'none (every op is integer)'}",
            table(rows, ["tensor", "dtype", "shape", "scale", "zero_point"]),
            *_techniques_lines(r.techniques),
        ]
    )


def _refuse_conflicts(
    planning: bool,
    qat: bool,
    train_path: str | None,
    eval_path: str | None,
    denylisted: bool,
    techniques: TechniqueConfig,
    steps_given: bool,
    allow_cpu_fallback: bool,
) -> None:
    """Usage errors of option combinations that do not go together, each naming the fix."""
    if (train_path or eval_path) and not (qat or planning):
        raise UsageError(
            "--train-data and --eval-data go with --qat or a planner budget", "add --qat or --max-drop, or drop them"
        )
    if qat and planning:
        raise UsageError(
            "--qat and --max-drop conflict: the planner decides when to use QAT", "drop --qat and pass --train-data"
        )
    if qat and train_path is None:
        raise UsageError("--qat needs labeled training data", "pass --train-data PATH")
    if planning and denylisted:
        raise UsageError(
            "--denylist and --max-drop conflict: the planner picks the float layers", "use one or the other"
        )
    if planning and not techniques.plain:
        raise UsageError(
            f"--max-drop and the techniques given ({techniques.label}) conflict: the planner tries them in turn",
            "drop --ranges/--cle/--bias-correction/--adaround (--adaround-steps tunes the planner's AdaRound)",
        )
    if steps_given and not (techniques.adaround or planning):
        raise UsageError("--adaround-steps tunes --adaround (or the planner's AdaRound step)", "add --adaround")
    if allow_cpu_fallback and not planning:
        raise UsageError("--allow-cpu-fallback goes with a planner budget", "add --max-drop or --min-sqnr, or drop it")
    if planning and eval_path is None:
        raise UsageError("--max-drop needs evaluation data", "pass --eval-data PATH (labeled)")
