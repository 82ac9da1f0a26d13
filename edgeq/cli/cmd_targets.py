"""edgeq targets: what can be built for."""

from __future__ import annotations

import click

from edgeq.cli.app import App, pass_app, table
from edgeq.targets.registry import TARGETS


@click.command("targets")
@pass_app
def command(app: App) -> None:
    """List the targets edgeq can build, check and benchmark for."""
    rows = [[name, desc] for name, (_, desc) in sorted(TARGETS.items())]
    app.done({"targets": [{"name": n, "description": d} for n, d in rows]}, table(rows, ["target", "description"]))
