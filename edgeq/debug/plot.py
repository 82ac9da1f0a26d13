"""The per-layer error chart: rmse/scale in graph order against the healthy rounding level."""

from __future__ import annotations

from pathlib import Path

from edgeq.debug.metrics import HEALTHY_RMSE_OVER_SCALE, SUSPECT_RMSE_OVER_SCALE, LayerStat
from edgeq.paths import printable


def rmse_over_scale_png(stats: list[LayerStat], title: str) -> bytes:
    """A PNG bar chart of rmse/scale per layer, with 1/sqrt(12) and the 0.7 suspect line."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    values = [s.rmse_over_scale for s in stats]
    labels = [f"{s.index} {s.op}" for s in stats]
    width = max(6.0, 0.35 * len(stats) + 2)
    fig, ax = plt.subplots(figsize=(width, 4.2), dpi=110)
    colors = ["#c0392b" if v > SUSPECT_RMSE_OVER_SCALE else "#2c7fb8" for v in values]
    ax.bar(range(len(values)), values, color=colors)
    ax.axhline(HEALTHY_RMSE_OVER_SCALE, color="#27ae60", linestyle="--", label="healthy: 1/sqrt(12) = 0.289")
    ax.axhline(SUSPECT_RMSE_OVER_SCALE, color="#c0392b", linestyle=":", label="suspect: 0.7")
    ax.set_xticks(range(len(values)))
    ax.set_xticklabels(labels, rotation=70, ha="right", fontsize=7)
    ax.set_ylabel("rmse / scale")
    ax.set_xlabel("quantized tensor, in graph order")
    ax.set_title(printable(title), fontsize=10)  # a model name need not be UTF-8
    ax.legend(fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def write(path: Path, stats: list[LayerStat], title: str) -> None:
    from edgeq.artifacts import write_bytes_atomic

    write_bytes_atomic(path, rmse_over_scale_png(stats, title))
