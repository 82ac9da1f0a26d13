"""edgeq report: re-render a build's report from its manifests."""

from __future__ import annotations

import click

from edgeq.cli.app import App, pass_app


@click.command("report")
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=str))
@pass_app
def command(app: App, run_dir: str) -> None:
    """Re-render RUN_DIR/report.html (self-contained) and report.md from its build.json files."""
    from edgeq import api

    files = api.report(run_dir)
    app.done({"report": files}, "wrote " + ", ".join(files), files)
