"""edgeq compile: a target's compiler on one or more quantized models (pre-flight first)."""

from __future__ import annotations

from typing import Any

import click

from edgeq.cli.app import App, pass_app, table
from edgeq.errors import UsageError
from edgeq.targets.registry import names

# CLI flag for each option key a target may accept (targets declare ``compile_options``).
FLAGS = {
    "compiler": "--compiler",
    "min_runtime_version": "--min-runtime-version",
    "enable_multiple_subgraphs": "--enable-multiple-subgraphs",
    "search_delegate": "--search-delegate",
    "delegate_search_step": "--delegate-search-step",
    "intermediate_tensors": "--intermediate-tensors",
    "num_segments": "--num-segments",
    "compiler_timeout_sec": "--compiler-timeout-sec",
    "timeout_s": "--timeout-s",
    "require_compiler": "--require-compiler",
    "runtime": "--runtime",
    "proof_samples": "--proof-samples",
}


def call_compile(target: str, models: list[str], out_dir: str, options: dict, force: bool = False):
    """``registry.get(target).compile``, passing options and several models only to targets that take them.

    The CLI refuses to overwrite without ``--force`` for targets that write outputs (``overwrite``).
    """
    from edgeq.targets import registry

    tgt: Any = registry.get(target)  # several models and options go only to targets that declare them
    if len(models) > 1 and not getattr(tgt, "co_compiles", False):
        raise UsageError(f"target {target} compiles one model at a time", "pass a single model")
    accepted = getattr(tgt, "compile_options", ())
    if "overwrite" in accepted:
        options = {**options, "overwrite": force}
    unknown = [k for k in options if k not in accepted]
    if unknown:
        flag = FLAGS.get(unknown[0], unknown[0])
        raise UsageError(f"{flag} does not apply to target {target}", f"drop {flag}")
    if len(models) == 1 and not options:
        return tgt.compile(models[0], out_dir)
    return tgt.compile(models if len(models) > 1 else models[0], out_dir, options)


def _mib(n: int | None) -> str:
    return "-" if n is None else f"{n / 2**20:.2f} MiB"


def render_generic(doc: dict) -> str:
    """Any target's compile result: the output, the files, and the numbers it reports."""
    if doc.get("skipped"):
        return f"compile for {doc['target']}: skipped ({doc.get('reason')})"
    lines = [f"compiled for {doc['target']}: {doc.get('output')}"]
    files = doc.get("files") or []
    for f in files.values() if isinstance(files, dict) else files:
        lines.append(f"  {f}")
    summary = doc.get("summary") or {}
    numbers = {k: v for k, v in summary.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    if numbers:
        lines.append(table([[k, v] for k, v in numbers.items()], ["", "value"]))
    for key in ("arena_bytes", "tensor_arena_size_constant"):
        if key in doc:
            lines.append(f"{key}: {doc[key]:,}")
    return "\n".join(lines)


def render_flavours(doc: dict) -> str:
    """Phone flavours (android): one row per model, verified."""
    rows = []
    for f in doc.get("flavours") or []:
        io = f.get("inputs") or [{}]
        rows.append(
            [
                f.get("flavour"),
                f.get("path"),
                f"{f.get('size_bytes', 0):,}",
                io[0].get("dtype"),
                ", ".join(f.get("delegates") or []),
                "ok" if f.get("verified") else "; ".join(f.get("problems") or []),
            ]
        )
    return "\n".join(
        [
            table(rows, ["flavour", "file", "size_bytes", "input dtype", "for delegates", "verified"]),
            f"report: {doc.get('report') or doc.get('output')}",
        ]
    )


def render_compile(doc: dict) -> str:
    lines = []
    comp = doc.get("compiler") or {}
    if doc.get("skipped"):
        lines.append(f"compile: skipped ({doc.get('reason')})")
    else:
        lines.append(f"compiled with {comp.get('path')} (version {comp.get('version')})")
    for m in doc.get("models") or []:
        pre = m.get("preflight") or {}
        counts = pre.get("counts") or {}
        lines.append(
            f"{m['input']}: pre-flight {counts.get('tpu')} op(s) on the Edge TPU, {counts.get('cpu')} on the CPU "
            f"(report: {m.get('preflight_report')})"
        )
        first = pre.get("first_unmapped")
        if first:
            lines.append(f"  first unmapped: #{first['index']} {first['op']}: {first['reason']}")
        c = m.get("compiler")
        if not c:
            continue
        cc = c.get("counts") or {}
        lines.append(
            f"  compiler: {', '.join(m.get('outputs') or [])}; {cc.get('tpu')} op(s) on the Edge TPU, "
            f"{cc.get('cpu')} on the CPU; {c.get('num_subgraphs')} Edge TPU subgraph(s)"
        )
        lines.append(
            f"  parameters: cached on chip {_mib(c.get('on_chip_cached_bytes'))}, on-chip remaining "
            f"{_mib(c.get('on_chip_remaining_bytes'))}, streamed {_mib(c.get('off_chip_streamed_bytes'))}"
        )
        rows = c.get("ops") or []
        if rows:
            lines.append(table([[r["op"], r["count"], r["status"]] for r in rows], ["op", "count", "status"]))
        if m.get("matches_prediction") is True:
            lines.append("  the compiler's table matches the pre-flight")
        for d in m.get("differences") or []:
            lines.append(f"  differs: {d['op']} '{d['status']}': predicted {d['predicted']}, compiler {d['compiler']}")
    return "\n".join(lines)


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
@click.option("--compiler", default=None, metavar="PATH", help="(coral) edgetpu_compiler to run (default: on PATH).")
@click.option(
    "-m", "--min-runtime-version", type=int, default=None, help="(coral) Lowest Edge TPU runtime to support [-m]."
)
@click.option(
    "-a", "--enable-multiple-subgraphs", is_flag=True, help="(coral) Several Edge TPU subgraphs, experimental [-a]."
)
@click.option("-d", "--search-delegate", is_flag=True, help="(coral) On failure, retry cutting the graph earlier [-d].")
@click.option("-k", "--delegate-search-step", type=int, default=None, help="(coral) Step of that search [-k].")
@click.option(
    "-i",
    "--intermediate-tensors",
    default=None,
    metavar="NAMES",
    help="(coral) Comma-separated tensors where the Edge TPU part ends [-i].",
)
@click.option("-n", "--num-segments", type=int, default=None, help="(coral) Segments for pipelining [-n].")
@click.option(
    "-t", "--compiler-timeout-sec", type=int, default=None, help="(coral) The compiler's own timeout (180 s) [-t]."
)
@click.option("--timeout-s", type=float, default=None, help="Kill the compiler after this many seconds (600).")
@click.option("--require-compiler", is_flag=True, help="A missing compiler is an error (exit 5), not a skipped step.")
@click.option("--board", default=None, help="(mcu) Board profile whose RAM and flash the export must fit (stm32h7a3).")
@click.option(
    "--runtime",
    type=click.Choice(["tflm", "c"]),
    default=None,
    help="(mcu) tflm: TFLM firmware files (default); c: edgeq's generated C engine, proven under QEMU.",
)
@click.option(
    "--proof-samples",
    type=click.IntRange(min=1),
    default=None,
    help="(mcu, --runtime c) Samples compared bit for bit (20).",
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
@click.option(
    "--data",
    "data_path",
    default=None,
    type=click.Path(path_type=str),
    help="(android) Calibration data for the int8 flavour of a Keras MODEL.",
)
@click.option(
    "--samples", "data_samples", type=int, default=None, help="(android) Calibration samples to use (default all)."
)
@click.option(
    "--flavours", default=None, metavar="LIST", help="(android) Flavours to make: float32,fp16,int8 (default all)."
)
@click.option(
    "--int8-io",
    type=click.Choice(["int8", "uint8", "float"]),
    default=None,
    help="(android) I/O type of the int8 flavour.",
)
@click.option("--allow-float-ops", is_flag=True, help="(android) Accept float ops left in the int8 flavour.")
@click.option("--force", is_flag=True, help="Overwrite existing outputs.")
@pass_app
def command(app: App, models: tuple[str, ...], target: str, out_dir: str, force: bool, **kw) -> None:
    """Compile MODELS (.tflite, several are co-compiled) for TARGET after a pre-flight check.

    For coral: runs edgetpu_compiler (always with -s), parses its console and .log into a per-op
    table and the memory lines, and compares them with the pre-flight. Without the compiler the step
    is skipped (exit 0; the pre-flight report is kept) unless --require-compiler (exit 5). A failed
    compile, a timeout, or a model with no Edge TPU subgraph exits 4.
    """
    options = {k: v for k, v in kw.items() if v not in (None, False)}
    r = call_compile(target, list(models), out_dir, options, force)
    doc = {"target": r.target, "output": r.output, "skipped": r.skipped, "reason": r.reason, **r.details}
    artifacts = []
    for m in doc.get("models") or []:
        artifacts += [m["preflight_report"], *m.get("outputs", []), *m.get("logs", []), *m.get("sidecars", [])]
    warnings = list(doc.get("warnings") or [])
    if r.skipped:
        warnings.insert(0, f"compile step skipped: {r.reason}")
    for f in doc.get("flavours") or []:
        artifacts += [x for x in (f.get("path"), f.get("sidecar")) if x]
    files = doc.get("files") or []
    artifacts += [str(f) for f in (files.values() if isinstance(files, dict) else files) if isinstance(f, str)]
    if "flavours" in doc:
        human = render_flavours(doc)
    elif "proof" in doc:
        from edgeq.targets.mcu.cgen.compile import render

        human = render(doc)
    elif "models" in doc:
        human = render_compile(doc)
    else:
        human = render_generic(doc)
    app.done(doc, human, artifacts, warnings)
