"""edgeq check: what of a model runs on a target's accelerator, predicted from the file alone."""

from __future__ import annotations

import click

from edgeq.cli.app import App, pass_app
from edgeq.cli.options import given_target_options, target_options
from edgeq.targets.base import Stage
from edgeq.targets.registry import names


@click.command("check")
@click.argument("model", type=click.Path(dir_okay=False, path_type=str))
@click.option("--target", required=True, help=f"One of: {', '.join(names())}.")
@target_options(Stage.CHECK)
@pass_app
def command(app: App, model: str, target: str, **kw) -> None:
    """Predict which ops of MODEL.tflite run on TARGET's accelerator and which fall back to the CPU.

    For coral: the edgetpu_compiler's per-op table (its own status words), the counts on TPU and
    CPU, the first unmapped op and why, and the parameter memory cached on chip vs streamed. Needs no
    compiler. Models the compiler rejects whole (dynamic shapes, batch > 1, float or dynamic-range
    ops) are errors with the fix (exit 3). Options marked (T) apply to target T only.
    """
    from edgeq import api
    from edgeq.cli import render

    report = api.check(model, target, given_target_options(Stage.CHECK, target, kw))
    app.done(report.to_dict(), render.check(report, model))
