"""The public API: one function per pipeline stage.

Each takes explicit inputs and frozen configs and returns a frozen result; nothing here
prints or exits. The stages live in :mod:`edgeq.stages`, one module each; this module is the
facade people import. Heavy imports (TensorFlow, LiteRT) happen inside the functions.
"""

from __future__ import annotations

from pathlib import Path

from edgeq.stages.common import expected_input_range, load_model
from edgeq.stages.debug import DEBUG_FILES, debug
from edgeq.stages.deploy import bench, check, compile  # the deployment stages (docstrings there)
from edgeq.stages.evaluate import evaluate
from edgeq.stages.inspect import inspect
from edgeq.stages.plan import plan
from edgeq.stages.quantize import quantize
from edgeq.stages.quantize_aware import quantize_aware
from edgeq.stages.quantize_result import QuantizeResult
from edgeq.stages.train import TrainSummary, train

__all__ = [
    "DEBUG_FILES",
    "QuantizeResult",
    "TrainSummary",
    "bench",
    "build",
    "check",
    "compile",
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


def build_many(cfg, force: bool = False, say=None, progress=None):
    """Several models, each built for every target into a folder of its own, with a summary across them.

    Each model's build is :func:`build`'s, into ``cfg.build.out_dir/FOLDER`` (FOLDER derived from the
    model's file name, unique in the sweep); summary.json, summary.md and summary.html in
    ``cfg.build.out_dir`` hold the model x target table of verdicts. A model that fails is reported in
    place and the others finish (see :mod:`edgeq.build.sweep`).

    Args:
        cfg: an :class:`edgeq.config.SweepConfig`.
        force: write into an -o folder (or a model's folder) that is not edgeq's.
        say: called with a line per model and per stage (progress for people).

    Returns:
        A :class:`edgeq.build.sweep.SweepResult`; its ``exit_code`` is the worst of the models'
        (:func:`edgeq.errors.worst_exit_code`), and a partly failed sweep is returned, not raised.

    Raises:
        UsageError: unknown target or conflicting options (before any model is built).
        BadInput: the -o folder cannot be used.
    """
    from edgeq.build import sweep

    return sweep.run(cfg, force=force, say=say, progress=progress)


def report(run_dir: str) -> list[str]:
    """Re-render report.html and report.md of a build folder from its manifests."""
    from edgeq.report import render

    return [str(p) for p in render.write(Path(run_dir))]
