"""Human text for the deployment stages' results: one rendering per result type.

Imported when a command renders, not when the CLI starts (it imports the target packages).
"""

from __future__ import annotations

from functools import singledispatch

from edgeq.cli.app import ms, table
from edgeq.targets.android import AndroidBenchResult, AndroidCompatReport, AndroidCompileResult
from edgeq.targets.base import BenchResult, CompatReport, CompileResult
from edgeq.targets.coral import CoralCompatReport, CoralCompileResult
from edgeq.targets.ethos_u import EthosUCompileResult
from edgeq.targets.mcu import McuCCompileResult, McuCompileResult
from edgeq.targets.mcu.cgen.bench import McuCBenchResult

# --- check ---------------------------------------------------------------------------------------


def _check_lines(model: str, report: CompatReport, where: str = "", split: bool = True) -> list[str]:
    head = f"{model} on {report.target}{where}"
    if report.counts and split:
        head += ": " + ", ".join(f"{n} op(s) on the {k.upper()}" for k, n in report.counts.items())
    lines = [head]
    rows = list(report.ops)
    if rows:
        cols = [c for c in ("op", "count", "status", "on_tpu", "basis") if any(c in r for r in rows)]
        lines.append(table([[r.get(c) for c in cols] for r in rows], cols))
    return lines


@singledispatch
def check(report: CompatReport, model: str) -> str:
    """A check's verdict: counts, the per-op table, the target's messages and notes."""
    lines = _check_lines(model, report)
    lines += list(report.messages)
    lines += [f"note: {n}" for n in report.details.get("notes") or []]
    return "\n".join(lines)


@check.register
def _(report: CoralCompatReport, model: str) -> str:
    d = report.details
    lines = _check_lines(model, report, f" (Edge TPU runtime {d['runtime_version']})")
    mem = d["memory"]
    lines.append(
        f"parameters on the accelerator: {mem['parameter_bytes_on_tpu']:,} bytes; estimated on-chip "
        f"{mem['cached_bytes_estimate']:,} bytes, streamed {mem['streamed_bytes_estimate']:,} bytes "
        f"(on-chip memory ~{mem['on_chip_bytes'] / 2**20:.0f} MiB)"
    )
    lines += list(report.messages)
    lines += [f"note: {n}" for n in d.get("notes") or []]
    return "\n".join(lines)


@check.register
def _(report: AndroidCompatReport, model: str) -> str:
    c = report.counts
    lines = _check_lines(model, report, f": {c['ops']} op(s), {c['float_ops']} computing in float", split=False)
    lines += [*report.messages, f"delegates it suits, best first: {', '.join(report.details['delegates'])}"]
    return "\n".join(lines)


# --- compile -------------------------------------------------------------------------------------


def _mib(n: int | None) -> str:
    return "-" if n is None else f"{n / 2**20:.2f} MiB"


def _head(r: CompileResult) -> list[str]:
    if r.skipped:
        return [f"compile for {r.target}: skipped ({r.reason})"]
    return [f"compiled for {r.target}: {r.output}", *(f"  {f}" for f in r.artifacts())]


@singledispatch
def compiled(r: CompileResult) -> str:
    """A compile's outputs (a target without its own rendering: the output and the files)."""
    return "\n".join(_head(r))


@compiled.register
def _(r: McuCompileResult) -> str:
    d = r.details
    lines = _head(r)
    lines.append(f"board: {d['board']}")
    lines += [f"{key}: {d[key]:,}" for key in ("arena_bytes", "tensor_arena_size_constant", "flash_bytes")]
    lines += list(d.get("info") or [])
    return "\n".join(lines)


@compiled.register
def _(r: McuCCompileResult) -> str:
    from edgeq.targets.mcu.cgen.compile import render

    return render(r.to_dict())


@compiled.register
def _(r: EthosUCompileResult) -> str:
    lines = _head(r)
    summary = r.details.get("summary") or {}
    numbers = {k: v for k, v in summary.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    if numbers:
        lines.append(table([[k, v] for k, v in numbers.items()], ["", "value"]))
    return "\n".join(lines)


@compiled.register
def _(r: AndroidCompileResult) -> str:
    rows = []
    for f in r.details.get("flavours") or []:
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
            f"report: {r.details.get('report') or r.output}",
        ]
    )


@compiled.register
def _(r: CoralCompileResult) -> str:
    doc = r.details
    lines = []
    comp = doc.get("compiler") or {}
    if r.skipped:
        lines.append(f"compile: skipped ({r.reason})")
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
            lines.append(table([[x["op"], x["count"], x["status"]] for x in rows], ["op", "count", "status"]))
        if m.get("matches_prediction") is True:
            lines.append("  the compiler's table matches the pre-flight")
        for d in m.get("differences") or []:
            lines.append(f"  differs: {d['op']} '{d['status']}': predicted {d['predicted']}, compiler {d['compiler']}")
    return "\n".join(lines)


# --- bench ---------------------------------------------------------------------------------------


def _count(n: int | None) -> str:
    return "?" if n is None else str(n)  # a count the measuring tool did not print


@singledispatch
def bench(r: object, model: str) -> str:
    """A benchmark: first invoke apart, the latency distribution, and the runner's notes."""
    if not isinstance(r, BenchResult):
        raise TypeError(f"no rendering for {type(r).__name__}")
    s = r.stats
    return "\n".join(
        [
            f"{model} on {r.target} ({r.device}, {r.num_threads} thread(s), {_count(s.num_runs)} runs after "
            f"{_count(s.warmup_runs)} warm-up)",
            f"first invoke {ms(s.first_invoke_ms)} ms; latency ms p50 {ms(s.p50)}  p90 {ms(s.p90)}  p99 {ms(s.p99)}  "
            f"mean {ms(s.mean)}  std {ms(s.std)}",
            *r.notes,
        ]
    )


@bench.register
def _(r: McuCBenchResult, model: str) -> str:
    from edgeq.targets.mcu.cgen.compile import render_bench

    return render_bench(r.to_dict(), model)


@bench.register
def _(r: AndroidBenchResult, model: str) -> str:
    rows = [
        [
            x["delegate"],
            x["status"],
            x["ran_on"],
            ms(x["mean_ms"]),
            ms(x["std_ms"]),
            ms(x["init_ms"]),
            ms(x["first_ms"]),
            x["speedup_vs_cpu"] or "-",
            x["note"],
        ]
        for x in r.table()
    ]
    header = ["delegate", "status", "ran on", "mean ms", "std ms", "init ms", "first ms", "vs cpu", "note"]
    return "\n".join([f"{model} on {r.target} ({r.device})", table(rows, header), *r.notes])
