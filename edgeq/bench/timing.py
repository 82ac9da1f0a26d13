"""Latency statistics measured the honest way.

The first invoke (allocation, weight packing, delegate preparation) is reported apart;
warm-up runs are excluded; the distribution (p50/p90/p99), not just a mean, is reported;
the environment is recorded with the numbers.
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LatencyStats:
    """Latency of one model on one runner, in milliseconds.

    edgeq's own harness fills every field. A figure the measuring tool does not report is None,
    never made up: TFLite's benchmark_model prints no p90/p99 and sometimes no warm-up count.
    """

    first_invoke_ms: float | None
    num_runs: int | None
    warmup_runs: int | None
    p50: float | None
    p90: float | None
    p99: float | None
    mean: float
    std: float | None
    min: float | None
    max: float | None

    def to_dict(self) -> dict:
        return {
            "first_invoke_ms": self.first_invoke_ms,
            "num_runs": self.num_runs,
            "warmup_runs": self.warmup_runs,
            "latency_ms": {
                "p50": self.p50,
                "p90": self.p90,
                "p99": self.p99,
                "mean": self.mean,
                "std": self.std,
                "min": self.min,
                "max": self.max,
            },
        }


def summarize(first_ms: float, samples_ms: list[float], warmup_runs: int) -> LatencyStats:
    a = np.asarray(samples_ms, dtype=np.float64)
    p50, p90, p99 = np.percentile(a, [50, 90, 99])
    return LatencyStats(
        first_invoke_ms=round(first_ms, 4),
        num_runs=len(a),
        warmup_runs=warmup_runs,
        p50=round(float(p50), 4),
        p90=round(float(p90), 4),
        p99=round(float(p99), 4),
        mean=round(float(a.mean()), 4),
        std=round(float(a.std()), 4),
        min=round(float(a.min()), 4),
        max=round(float(a.max()), 4),
    )


def measure(invoke: Callable[[], object], num_runs: int, warmup_runs: int) -> LatencyStats:
    """Time ``invoke``: one first call, ``warmup_runs`` untimed calls, ``num_runs`` timed ones."""
    clock = time.perf_counter_ns
    t0 = clock()
    invoke()
    first_ms = (clock() - t0) / 1e6
    for _ in range(warmup_runs):
        invoke()
    samples = []
    for _ in range(num_runs):
        t0 = clock()
        invoke()
        samples.append((clock() - t0) / 1e6)
    return summarize(first_ms, samples, warmup_runs)


def host_environment() -> dict:
    """What the numbers were measured on."""
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    governor = None
    try:
        with open("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor") as fh:
            governor = fh.read().strip()
    except OSError:
        pass
    return {
        "machine": platform.machine(),
        "cpu": cpu,
        "logical_cpus": os.cpu_count(),
        "cpu_governor": governor,
        "system": platform.system(),
        "python": platform.python_version(),
    }
