"""edgeq targets: what can be built for, and (--supported-ops) what a target's accelerator runs."""

from __future__ import annotations

import click

from edgeq.cli.app import App, pass_app, table
from edgeq.cli.options import number_option
from edgeq.config import RUNTIME_VERSION
from edgeq.errors import UsageError
from edgeq.targets.registry import TARGETS


def _supported_ops(name: str, runtime_version: int | None) -> tuple[dict, str]:
    from edgeq.targets import registry
    from edgeq.targets.base import ListsOps

    tgt = registry.get(name)
    if not isinstance(tgt, ListsOps):
        raise UsageError(f"target {name} has no supported-ops table", "it runs every op its runtime resolves")
    rows = tgt.supported_ops(runtime_version)
    requirements = tgt.requirements()
    lines = [f"{name}: model requirements (a model that breaks one is refused with the fix)"]
    lines += [f"  - {r['text']}" for r in requirements]
    scope = f"runtime {runtime_version}" if runtime_version is not None else "all runtime versions"
    lines.append(f"{name}: supported operations ({scope}); {tgt.other_ops}")
    for r in rows:
        since = "all runtimes" if r["since_runtime"] == "all" else f"runtime {r['since_runtime']}+"
        flag = "" if r["confirmed"] else "  [unconfirmed]"
        lines.append(f"{r['op']} ({r['name']}, {since}){flag}")
        lines += [f"    {text}" for text in r["limitations"]]
    unconfirmed = sum(not r["confirmed"] for r in rows)
    lines.append(f"{len(rows)} ops, {unconfirmed} with an unconfirmed entry (sources: {tgt.ops_source})")
    doc = {"target": name, "runtime_version": runtime_version, "requirements": requirements, "ops": rows}
    return doc, "\n".join(lines)


@click.command("targets")
@click.option(
    "--supported-ops",
    "supported_ops",
    default=None,
    metavar="TARGET",
    help="List TARGET's supported ops with their documented limits (each is the message a check shows).",
)
@number_option(
    "--runtime-version", bound=RUNTIME_VERSION, default=None, help="With --supported-ops: only this runtime's ops."
)
@pass_app
def command(app: App, supported_ops: str | None, runtime_version: int | None) -> None:
    """List the targets edgeq can build, check and benchmark for."""
    if supported_ops is not None:
        doc, human = _supported_ops(supported_ops, runtime_version)
        app.done(doc, human)
        return
    if runtime_version is not None:
        raise UsageError(
            "--runtime-version goes with --supported-ops", "e.g. --supported-ops coral --runtime-version 13"
        )
    rows = [[name, entry.description] for name, entry in sorted(TARGETS.items())]
    app.done({"targets": [{"name": n, "description": d} for n, d in rows]}, table(rows, ["target", "description"]))
