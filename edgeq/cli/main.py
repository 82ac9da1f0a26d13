"""``edgeq [-v|-q] [--json] COMMAND``: the group and its commands."""

from __future__ import annotations

import sys

import click

from edgeq import __version__
from edgeq.cli import (
    cmd_bench,
    cmd_build,
    cmd_check,
    cmd_compile,
    cmd_debug,
    cmd_eval,
    cmd_inspect,
    cmd_quantize,
    cmd_report,
    cmd_targets,
    cmd_train,
    cmd_worker,
)
from edgeq.cli.app import App, run
from edgeq.errors import EXIT_CODES

EPILOG = "Exit codes: " + ", ".join(f"{code} {name}" for code, name in EXIT_CODES.items())


@click.group(epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="edgeq")
@click.option("--json", "json_mode", is_flag=True, help="Print exactly one JSON document on stdout.")
@click.option("-v", "--verbose", count=True, help="More detail on stderr; tracebacks on errors.")
@click.option("-q", "--quiet", is_flag=True, help="Only errors on stderr.")
@click.pass_context
def cli(ctx: click.Context, json_mode: bool, verbose: int, quiet: bool) -> None:
    """edgeq: Keras models to verified, quantized TFLite models for edge hardware."""
    app = ctx.ensure_object(App)
    app.json_mode = json_mode
    app.verbosity = -1 if quiet else verbose
    app.command = ctx.invoked_subcommand or ""


for module in (
    cmd_quantize,
    cmd_train,
    cmd_debug,
    cmd_inspect,
    cmd_eval,
    cmd_bench,
    cmd_build,
    cmd_report,
    cmd_targets,
    cmd_check,
    cmd_compile,
    cmd_worker,
):
    cli.add_command(module.command)


def main() -> None:
    sys.exit(run(cli))
