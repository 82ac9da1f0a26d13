"""Numbers for people, the one way edgeq writes them in tables, reports and messages.

A figure a tool did not report is shown as "-", never as a made-up number or "None".
"""

from __future__ import annotations


def pct(v: float | None, none: str = "-") -> str:
    """An accuracy (0..1) as a percentage."""
    return none if v is None else f"{100 * v:.2f}%"


def ms(v: float | None, none: str = "-") -> str:
    """A latency in milliseconds."""
    return none if v is None else f"{v:.3f}"
