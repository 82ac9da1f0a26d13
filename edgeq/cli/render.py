"""Human text for the deployment stages' results (``edgeq check``, ``compile``, ``bench``).

Each result says itself (its ``describe()``: a target whose result has more to say overrides it), so
the CLI imports no target package: it prints what the result describes, and for a benchmark the
latency distribution every runner measures the same way.
"""

from __future__ import annotations

from edgeq.targets.base import BenchResult, CompatReport, CompileResult


def check(report: CompatReport, model: str) -> str:
    """A check's verdict: placement, the per-op table, the target's messages (as the target describes it)."""
    return "\n".join(report.describe(model))


def compiled(r: CompileResult) -> str:
    """A compile's outputs, as the target describes them."""
    return "\n".join(r.describe())


def bench(r: BenchResult, model: str) -> str:
    """A benchmark, as the runner describes it (where and how it ran, the latency distribution when it
    timed the model, what it has to say besides)."""
    return "\n".join(r.describe(model))
