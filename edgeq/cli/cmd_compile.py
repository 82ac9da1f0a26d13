"""edgeq compile: a target's compiler on one or more quantized models (pre-flight first)."""

from __future__ import annotations

import click

from edgeq.cli.app import App, pass_app
from edgeq.cli.options import given_target_options, target_options
from edgeq.targets.base import Stage
from edgeq.targets.registry import names


@click.command("compile")
@click.argument("models", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=str))
@click.option("--target", required=True, help=f"One of: {', '.join(names())}.")
@click.option(
    "-o",
    "--out-dir",
    default=".",
    show_default=True,
    type=click.Path(file_okay=False, path_type=str),
    help="Folder for the compiled models, logs and pre-flight reports.",
)
@target_options(Stage.COMPILE)
@pass_app
def command(app: App, models: tuple[str, ...], target: str, out_dir: str, **kw) -> None:
    """Compile MODELS (.tflite, several are co-compiled) for TARGET after a pre-flight check.

    For coral: runs edgetpu_compiler (always with -s), parses its console and .log into a per-op
    table and the memory lines, and compares them with the pre-flight. Without the compiler the step
    is skipped (exit 0; the pre-flight report is kept) unless --require-compiler (exit 5). A failed
    compile, a timeout, or a model with no Edge TPU subgraph exits 4. Options marked (T) apply to
    target T only.
    """
    from edgeq import api
    from edgeq.cli import render

    r = api.compile(list(models), target, out_dir, given_target_options(Stage.COMPILE, target, kw))
    app.done(r.to_dict(), render.compiled(r), r.artifacts(), r.warnings())
