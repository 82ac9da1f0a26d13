"""The protocols every target implements, and the result types they share.

Pipeline code talks to targets only through these; no ``if target == ...`` outside
``edgeq/targets``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from edgeq.bench.timing import LatencyStats
from edgeq.config import BenchConfig, IOType, Mode


@dataclass(frozen=True)
class Availability:
    available: bool
    reason: str = ""  # the concrete cause when not available ("no Edge TPU on usb")


@dataclass(frozen=True)
class CompatReport:
    target: str
    ok: bool
    ops: tuple[dict, ...] = ()
    messages: tuple[str, ...] = ()
    # Targets that split a model between an accelerator and the CPU fill these:
    counts: dict = field(default_factory=dict)  # {"tpu": n, "cpu": n}
    first_unmapped: dict | None = None  # the op that leaves the accelerator first, and why
    details: dict = field(default_factory=dict)  # target-specific (memory estimate, per-op verdicts, ...)

    def to_dict(self) -> dict:
        return {
            "target": self.target,
            "ok": self.ok,
            "ops": list(self.ops),
            "messages": list(self.messages),
            "counts": dict(self.counts),
            "first_unmapped": self.first_unmapped,
            "details": dict(self.details),
        }


@dataclass(frozen=True)
class CompileResult:
    target: str
    output: str
    skipped: bool = False
    reason: str = ""
    details: dict = field(default_factory=dict)


@dataclass(frozen=True)
class BenchResult:
    target: str
    device: str
    stats: LatencyStats
    num_threads: int
    environment: dict
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        doc = {"target": self.target, "device": self.device, "num_threads": self.num_threads}
        doc.update(self.stats.to_dict())
        doc["environment"] = self.environment
        doc["notes"] = list(self.notes)
        return doc


class Runner(Protocol):
    def availability(self) -> Availability: ...

    def load(self, model_path: str, cfg: BenchConfig) -> None: ...

    def invoke(self) -> None: ...

    def benchmark(self, model_path: str, cfg: BenchConfig) -> BenchResult: ...


class Target(Protocol):
    name: str
    description: str
    # What `build` makes for this target: the quantization it runs best and its I/O type.
    build_mode: Mode
    build_io: IOType
    # The hardware as data for the quantization planner: integer_only, int16_activations,
    # cpu_fallback_splits_graph (an op off the accelerator drags what follows it onto the CPU).
    profile: dict

    def check(self, model_path: str) -> CompatReport: ...

    def compile(self, model_path: str, out_dir: str) -> CompileResult: ...

    def runner(self, device: str | None = None) -> Runner: ...
