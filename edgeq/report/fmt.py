"""Numbers for people, the one way edgeq writes them in tables, reports and messages.

A figure a tool did not report is shown as "-", never as a made-up number or "None".
"""

from __future__ import annotations

from collections.abc import Sequence


def pct(v: float | None, none: str = "-") -> str:
    """An accuracy (0..1) as a percentage."""
    return none if v is None else f"{100 * v:.2f}%"


def ms(v: float | None, none: str = "-") -> str:
    """A latency in milliseconds."""
    return none if v is None else f"{v:.3f}"


def table(rows: Sequence[Sequence[object]], header: Sequence[str]) -> str:
    """A plain aligned text table."""
    cells = [[str(c) for c in header]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
