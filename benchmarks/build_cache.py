"""edgeq build, cold and cached: what a second run of the same build costs.

A section of run.py (``run.py --only build``). Three runs of ``edgeq build --target cpu`` on the
bundled model into one fresh folder, each a fresh process (Python and, when a stage needs it,
TensorFlow imports included): cold (every stage runs), again unchanged (every stage from the
cache), and with only the benchmark settings changed (only the benchmark stages run again).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path


def _build(root: Path, out: Path, runs: int) -> tuple[float, dict]:
    cmd = [
        sys.executable,
        "-m",
        "edgeq",
        "--json",
        "build",
        "--target",
        "cpu",
        "-o",
        str(out),
        "--runs",
        str(runs),
        "--warmup",
        "10",
    ]
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=root, check=False)
    seconds = time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError(f"edgeq build failed ({p.returncode}): {p.stdout[-500:]} {p.stderr[-500:]}")
    return seconds, json.loads(p.stdout)["result"]


def build_time(root: Path, tmp: Path, log, repeats: int = 2) -> dict:
    rows = []
    for i in range(repeats):
        out = tmp / f"build-{i}"
        cold_s, cold = _build(root, out, 100)
        warm_s, warm = _build(root, out, 100)
        changed_s, changed = _build(root, out, 101)
        rows.append(
            {
                "cold_s": round(cold_s, 2),
                "cached_s": round(warm_s, 2),
                "bench_changed_s": round(changed_s, 2),
                "stages": len(cold["stages"]),
                "cached_stages": sum(s["cached"] for s in warm["stages"]),
                "rerun_after_change": sorted({s["name"] for s in changed["stages"] if not s["cached"]}),
            }
        )
        log(
            f"  {i + 1}/{repeats}: cold {cold_s:.1f} s, cached {warm_s:.1f} s, bench settings changed {changed_s:.1f} s"
        )
    return {"runs": rows}


def render(section: dict) -> list[str]:
    rows = section["runs"]
    med = sorted(rows, key=lambda r: r["cold_s"])[len(rows) // 2]
    lines = [
        "### edgeq build --target cpu: cold, cached, and after a change",
        "",
        "| run | cold s | unchanged re-run s | re-run, bench settings changed s | stages from cache | re-run after the change | cold / cached |",
        "|---|---:|---:|---:|---:|---|---:|",
    ]
    for i, r in enumerate(rows, 1):
        lines.append(
            f"| {i} | {r['cold_s']:.2f} | {r['cached_s']:.2f} | {r['bench_changed_s']:.2f} | {r['cached_stages']}/{r['stages']} | "
            f"{', '.join(r['rerun_after_change'])} | {r['cold_s'] / r['cached_s']:.1f}x |"
        )
    lines += [
        "",
        f"Each run is a fresh process; the cached re-run imports no TensorFlow (median cold run {med['cold_s']:.1f} s).",
        "",
    ]
    return lines
