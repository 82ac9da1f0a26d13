"""edgeq check, compile and bench print what each result describes (its describe(), which a target's result
overrides), so the CLI needs no target package and reads no target's details."""

from __future__ import annotations

from dataclasses import dataclass

from edgeq.bench.timing import LatencyStats
from edgeq.cli import render
from edgeq.findings import Basis, Findings, Placement, info, warning
from edgeq.targets.base import BenchResult, CompatReport, CompileResult

STATS = LatencyStats(0.9, 100, 10, 0.031, 0.033, 0.04, 0.032, 0.002, 0.03, 0.05)


def test_check_prints_the_placement_the_ops_and_the_messages():
    found = Findings(
        placement=Placement("Edge TPU", 8, 1, Basis.PREDICTED, "MEAN: reduces over the batch"),
        messages=(info("parameters on the Edge TPU: 1,024 bytes"), warning("MEAN runs on the CPU")),
    )
    report = CompatReport("coral", True, ops=({"op": "CONV_2D", "count": 8, "status": "Mapped"},), findings=found)
    lines = render.check(report, "m.tflite").splitlines()
    assert lines[0] == "m.tflite on coral: 8 op(s) on the Edge TPU, 1 on the CPU"
    assert lines[1].split() == ["op", "count", "status"] and "CONV_2D" in lines[3]
    assert lines[-2:] == ["parameters on the Edge TPU: 1,024 bytes", "MEAN runs on the CPU"]


@dataclass(frozen=True)
class _OwnCompile(CompileResult):
    def describe(self) -> list[str]:
        return ["the target's own words", f"output {self.output}"]


def test_compile_prints_what_the_result_describes():
    assert render.compiled(CompileResult("cpu", "", skipped=True, reason="nothing to compile")) == (
        "compile for cpu: skipped (nothing to compile)"
    )
    assert render.compiled(_OwnCompile("x", "o.bin")) == "the target's own words\noutput o.bin"


@dataclass(frozen=True)
class _Counted(BenchResult):
    def describe(self, model: str) -> list[str]:
        return [f"{model}: the runner's own words", "  instructions per inference: p50 1,234,567"]


def test_bench_prints_the_distribution_then_the_notes_or_the_runners_own_text():
    r = BenchResult("cpu", "host", STATS, 1, {}, notes=("pinned to core 0",))
    lines = render.bench(r, "m.tflite").splitlines()
    assert lines[0] == "m.tflite on cpu (host, 1 thread(s), 100 runs after 10 warm-up)"
    assert lines[1].startswith("first invoke 0.900 ms; latency ms p50 0.031  p90 0.033  p99 0.040")
    assert lines[2] == "pinned to core 0"
    # a runner that times nothing prints no latency line of dashes
    untimed = LatencyStats(None, 20, 0, None, None, None, None, None, None, None)  # type: ignore[arg-type]
    lines = render.bench(BenchResult("mcu", "QEMU mps2-an386", untimed, 1, {}), "m.tflite").splitlines()
    assert lines == ["m.tflite on mcu (QEMU mps2-an386, 1 thread(s), 20 runs after 0 warm-up)"]
    # a runner with more to say describes the whole benchmark itself
    lines = render.bench(_Counted("mcu", "QEMU mps2-an386", untimed, 1, {}), "m.tflite").splitlines()
    assert lines == ["m.tflite: the runner's own words", "  instructions per inference: p50 1,234,567"]
