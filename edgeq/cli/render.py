"""Human text for the deployment stages' results (``edgeq check``, ``compile``, ``bench``).

Each result says itself (its ``describe()``: a target whose result has more to say overrides it), so
the CLI imports no target package: it prints what the result describes, and for a benchmark the
latency distribution every runner measures the same way.
"""

from __future__ import annotations

from edgeq.report.fmt import ms
from edgeq.targets.base import BenchResult, CompatReport, CompileResult


def check(report: CompatReport, model: str) -> str:
    """A check's verdict: placement, the per-op table, the target's messages (as the target describes it)."""
    return "\n".join(report.describe(model))


def compiled(r: CompileResult) -> str:
    """A compile's outputs, as the target describes them."""
    return "\n".join(r.describe())


def _count(n: int | None) -> str:
    return "?" if n is None else str(n)  # a count the measuring tool did not print


def bench(r: BenchResult, model: str) -> str:
    """A benchmark: where and how it ran, the first invoke apart and the latency distribution (when the
    runner timed the model), then what the runner has to say besides (its ``describe()``)."""
    s = r.stats
    threads = f", {r.num_threads} thread(s)" if r.num_threads is not None else ""
    lines = [
        f"{model} on {r.target} ({r.device}{threads}, {_count(s.num_runs)} runs after {_count(s.warmup_runs)} warm-up)"
    ]
    if any(x is not None for x in (s.p50, s.mean)):  # a runner that counts instructions times nothing
        lines.append(
            f"first invoke {ms(s.first_invoke_ms)} ms; latency ms p50 {ms(s.p50)}  p90 {ms(s.p90)}  "
            f"p99 {ms(s.p99)}  mean {ms(s.mean)}  std {ms(s.std)}"
        )
    return "\n".join([*lines, *r.describe()])
