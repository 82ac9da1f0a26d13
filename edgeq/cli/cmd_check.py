"""edgeq check: what of a model runs on a target's accelerator, predicted from the file alone."""

from __future__ import annotations

from typing import Any

import click

from edgeq.cli.app import App, pass_app, table
from edgeq.errors import UsageError
from edgeq.targets.registry import names


def render_check(model: str, report: dict) -> str:
    """Human text for a CompatReport dict (any target)."""
    details = report.get("details") or {}
    counts = report.get("counts") or {}
    where = f" (Edge TPU runtime {details['runtime_version']})" if "runtime_version" in details else ""
    head = f"{model} on {report['target']}{where}"
    if counts:
        head += ": " + ", ".join(f"{n} op(s) on the {k.upper()}" for k, n in counts.items())
    lines = [head]
    rows = report.get("ops") or []
    if rows:
        cols = [c for c in ("op", "count", "status", "on_tpu", "basis") if any(c in r for r in rows)]
        lines.append(table([[r.get(c) for c in cols] for r in rows], cols))
    mem = details.get("memory")
    if mem:
        lines.append(
            f"parameters on the accelerator: {mem['parameter_bytes_on_tpu']:,} bytes; estimated on-chip "
            f"{mem['cached_bytes_estimate']:,} bytes, streamed {mem['streamed_bytes_estimate']:,} bytes "
            f"(on-chip memory ~{mem['on_chip_bytes'] / 2**20:.0f} MiB)"
        )
    lines += list(report.get("messages") or [])
    lines += [f"note: {n}" for n in details.get("notes") or []]
    return "\n".join(lines)


def call_check(target: str, model: str, options: dict):
    """``registry.get(target).check`` with options only for targets that declare them."""
    from edgeq.targets import registry

    tgt: Any = registry.get(target)  # options go only to targets that declare them
    if not options:
        return tgt.check(model)
    accepted = getattr(tgt, "check_options", ())
    unknown = [k for k in options if k not in accepted]
    if unknown:
        flag = "--" + unknown[0].replace("_", "-")
        raise UsageError(f"{flag} does not apply to target {target}", f"drop {flag}")
    return tgt.check(model, options)


@click.command("check")
@click.argument("model", type=click.Path(dir_okay=False, path_type=str))
@click.option("--target", required=True, help=f"One of: {', '.join(names())}.")
@click.option(
    "--runtime-version",
    type=int,
    default=None,
    help="(coral) Edge TPU runtime version the model must run on, as the compiler's -m; default 14 "
    "(what edgetpu_compiler 16 targets).",
)
@click.option(
    "--board",
    default=None,
    help="(mcu) Board profile: stm32h7a3 (default), stm32l4r5, nrf52840, esp32s3, rp2040, corstone-300.",
)
@click.option(
    "--parity-samples", type=int, default=None, help="(mcu) Seeded inputs compared between TFLM and LiteRT (8)."
)
@click.option(
    "--accelerator", default=None, help="(ethos-u) Vela accelerator config, e.g. ethos-u55-128, ethos-u65-256."
)
@click.option("--system-config", default=None, help="(ethos-u) System config from Vela's vela.ini.")
@click.option("--memory-mode", default=None, help="(ethos-u) Sram_Only, Shared_Sram, Dedicated_Sram.")
@click.option(
    "--optimise",
    type=click.Choice(["Performance", "Size"]),
    default=None,
    help="(ethos-u) Vela's optimisation strategy.",
)
@click.option("--timeout-s", type=float, default=None, help="(mcu, ethos-u) Kill TFLM / Vela after this many seconds.")
@pass_app
def command(app: App, model: str, target: str, runtime_version: int | None, **more) -> None:
    """Predict which ops of MODEL.tflite run on TARGET's accelerator and which fall back to the CPU.

    For coral: the edgetpu_compiler's per-op table (its own status words), the counts on TPU and
    CPU, the first unmapped op and why, and the parameter memory cached on chip vs streamed. Needs no
    compiler. Models the compiler rejects whole (dynamic shapes, batch > 1, float or dynamic-range
    ops) are errors with the fix (exit 3).
    """
    options = {k: v for k, v in ({"runtime_version": runtime_version} | more).items() if v is not None}
    report = call_check(target, model, options).to_dict()
    app.done(report, render_check(model, report))
