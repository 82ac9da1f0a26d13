"""The public API: one function per pipeline stage.

Each takes explicit inputs and frozen configs and returns a frozen result; nothing here
prints or exits. The stages live in :mod:`edgeq.stages`, one module each; this module is the
facade people import. Heavy imports (TensorFlow, LiteRT) happen inside the functions.
"""

from __future__ import annotations

from pathlib import Path

from edgeq.config import BenchConfig
from edgeq.errors import BadInput, Unavailable, UsageError
from edgeq.modelio import Format, detect_format
from edgeq.stages.common import expected_input_range, load_model
from edgeq.stages.debug import DEBUG_FILES, debug
from edgeq.stages.evaluate import evaluate
from edgeq.stages.inspect import inspect
from edgeq.stages.plan import plan
from edgeq.stages.quantize import QuantizeResult, quantize
from edgeq.stages.quantize_aware import quantize_aware
from edgeq.stages.train import TrainSummary, train

__all__ = [
    "DEBUG_FILES",
    "QuantizeResult",
    "TrainSummary",
    "bench",
    "build",
    "debug",
    "evaluate",
    "expected_input_range",
    "inspect",
    "load_model",
    "plan",
    "quantize",
    "quantize_aware",
    "report",
    "train",
]


def bench(model_path: str, target: str, cfg: BenchConfig, device: str | None = None, options: dict | None = None):
    """Benchmark a .tflite on ``target`` (warm-up excluded, p50/p90/p99).

    ``device`` is the target's device string (``usb:0`` for a Coral USB Accelerator);
    ``options`` are runner options the target declares in ``runner_options`` (``host`` to run
    on a board over SSH, ...). An option the target does not take is a usage error.

    Raises:
        UsageError: unknown target.
        Unavailable: the target's runner is not available here.
        BadInput: the model cannot run (custom op, dynamic batch without ``cfg.batch``).
    """
    from edgeq.targets import registry

    if detect_format(model_path) != Format.TFLITE:
        raise BadInput(
            f"{model_path} is not a .tflite model", "quantize it first: edgeq quantize MODEL -o model.tflite"
        )
    tgt = registry.get(target)
    options = {k: v for k, v in (options or {}).items() if v is not None}
    unknown = [k for k in options if k not in getattr(tgt, "runner_options", ())]
    if unknown:
        flag = "--" + unknown[0].replace("_", "-")
        raise UsageError(f"{flag} does not apply to target {target}", f"drop {flag}")
    runner = tgt.runner(device, options) if options else tgt.runner(device)
    available = runner.availability()
    if not available.available:
        raise Unavailable(
            f"target {target} is not available: {available.reason}", "attach the device or choose another --target"
        )
    return runner.benchmark(model_path, cfg)


def build(cfg, force: bool = False, say=None, progress=None):
    """Keras model to deployable models for every target in ``cfg.targets``, with a report.

    Quantize (per ``cfg.method``: PTQ, QAT or the accuracy-budget planner), debug, check,
    compile, benchmark and report, each stage cached by the content hash of its inputs (see
    :mod:`edgeq.pipeline`). With no model and data, builds the bundled MNIST CNN.

    Args:
        cfg: an :class:`edgeq.config.BuildConfig`.
        force: write into an -o folder that is not an earlier edgeq build.
        say: called with a line per stage (progress for people).

    Returns:
        A :class:`edgeq.pipeline.BuildResult`.

    Raises:
        UsageError: unknown target or conflicting options.
        BadInput, ConversionFailed: as the stages raise.
        QualityGateFailed: the budget is missed (the report is written first).
    """
    from edgeq import pipeline

    return pipeline.run(cfg, force=force, say=say, progress=progress)


def report(run_dir: str) -> list[str]:
    """Re-render report.html and report.md of a build folder from its manifests."""
    from edgeq.report import render

    return [str(p) for p in render.write(Path(run_dir))]
