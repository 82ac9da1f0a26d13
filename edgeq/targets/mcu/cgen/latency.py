"""A board latency estimated from the generated C engine's own QEMU instruction count.

``latency = instructions x k_core / clock``, where ``k_core`` is board cycles per QEMU instruction. It is not
a datasheet CPI (no such figure covers flash wait states, stalls and multi-cycle loads together): it is
derived from published figures, the MLPerf Tiny closed-division single-stream results of a stack that runs
Arm's CMSIS-NN kernels on a board with that core, divided by the QEMU instruction counts of TFLM with
CMSIS-NN on the same models (measured for issue #22 with the same compiler, flags, QEMU machines and SysTick
method as the engine's). One factor per core, the geometric mean over the matching models; its error is
the leave-one-out error on those published points (each predicted by the factor of the other models).

What the error does not cover: the engine's instruction mix is not CMSIS-NN's, so its cycles per
instruction may differ; the calibrating stack is not TFLM itself on M4 (microTVM calling CMSIS-NN), and the
M55 factor comes from a Cortex-M85 board (no Cortex-M55 board has a closed result in the rounds read). Cores
without a calibration (Cortex-M7, M33, M0+, Xtensa) get no estimate. The published numbers, with their
files, are in tests/data/mcu/mlperf_tiny_published.json (SOURCE beside it); a test keeps them equal.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

SOURCE_FILE = "tests/data/mcu/mlperf_tiny_published.json"
KIND = "estimated"


@dataclass(frozen=True)
class Calibration:
    """The published board results and the QEMU counts of the same software that a core's factor comes from."""

    core: str  # the QEMU core whose instruction counts are scaled
    board: str  # the MLPerf Tiny board the factor is fitted to
    board_core: str
    clock_hz: int
    stack: str
    source: str
    inferences_per_s: dict  # model -> published median throughput
    qemu_instructions: dict  # model -> TFLM + CMSIS-NN instructions per inference on ``core`` under QEMU

    def cycles_per_instruction(self, exclude: str | None = None) -> float:
        ratios = [
            self.clock_hz / ips / self.qemu_instructions[m] for m, ips in self.inferences_per_s.items() if m != exclude
        ]
        return math.exp(sum(math.log(r) for r in ratios) / len(ratios))

    def published_ms(self, model: str) -> float:
        return 1000.0 / self.inferences_per_s[model]

    def leave_one_out(self) -> dict[str, float]:
        """Per model: the relative error of its published latency predicted by the factor of the others."""
        out = {}
        for m in self.inferences_per_s:
            predicted = self.qemu_instructions[m] * self.cycles_per_instruction(exclude=m) / self.clock_hz * 1000
            out[m] = predicted / self.published_ms(m) - 1
        return out

    def error(self) -> float:
        """The largest leave-one-out error, as a fraction."""
        return max(abs(e) for e in self.leave_one_out().values())


# TFLM + CMSIS-NN under QEMU, instructions per inference (issue #22's table: arm-none-eabi-gcc -O2, QEMU
# mps2-an386 / mps3-an547 with -icount shift=0, SysTick around one invoke; measured there, quoted here).
TFLM_CMSIS_NN_QEMU = {
    "cortex-m4": {"mnist_cnn": 4_620_000, "ds_cnn": 7_580_000, "resnet8": 29_780_000, "mobilenet_v1_025": 23_780_000},
    "cortex-m55": {"mnist_cnn": 970_000, "ds_cnn": 1_820_000, "resnet8": 4_910_000, "mobilenet_v1_025": 6_560_000},
}

CALIBRATIONS: dict[str, Calibration] = {
    "cortex-m4": Calibration(
        core="cortex-m4",
        board="NUCLEO-L4R5ZI",
        board_core="cortex-m4",
        clock_hz=120_000_000,
        stack="microTVM + CMSIS-NN (OctoML)",
        source="mlcommons/tiny_results_v1.0 closed/OctoML/results/microtvm_cmsis_nn/NUCLEO_L4R5ZI/*/performance/results.txt",
        inferences_per_s={"ds_cnn": 10.019, "resnet8": 2.567, "mobilenet_v1_025": 3.320},
        qemu_instructions=TFLM_CMSIS_NN_QEMU["cortex-m4"],
    ),
    "cortex-m55": Calibration(
        core="cortex-m55",
        board="EK-RA8D1",
        board_core="cortex-m85",
        clock_hz=480_000_000,
        stack="TFLM + CMSIS (Renesas)",
        source="mlcommons/tiny_results_v1.2 closed/Renesas/results/EK-RA8D1/*/performance/results.txt",
        inferences_per_s={"ds_cnn": 288.611, "resnet8": 117.948, "mobilenet_v1_025": 74.665},
        qemu_instructions=TFLM_CMSIS_NN_QEMU["cortex-m55"],
    ),
}

# Published results kept as context: other software on a calibrated board (not used to fit anything).
CONTEXT = (
    {
        "board": "NUCLEO-L4R5ZI",
        "core": "cortex-m4",
        "clock_hz": 120_000_000,
        "stack": "TFLM v2.3.1 (MLPerf Tiny v0.5 reference submission)",
        "source": "mlcommons/tiny_results_v0.5 closed/reference/results/Nucleo-L4R5ZI/*/performance/results.txt",
        "inferences_per_s": {"ds_cnn": 5.497, "resnet8": 1.420, "mobilenet_v1_025": 1.665},
    },
)


def calibration(core: str) -> Calibration | None:
    return CALIBRATIONS.get(core)


def basis(cal: Calibration) -> str:
    proxy = "" if cal.board_core == cal.core else f" (a {cal.board_core} board standing in for {cal.core})"
    return (
        f"QEMU instructions x {cal.cycles_per_instruction():.3f} board cycles per QEMU instruction / clock; the "
        f"factor is {cal.board}'s published MLPerf Tiny latencies with {cal.stack}{proxy} over TFLM + CMSIS-NN's "
        f"QEMU instruction counts on the same models ({', '.join(cal.inferences_per_s)})"
    )


def estimate(instructions: int, board) -> dict:
    """The estimated latency on ``board`` (an :class:`edgeq.targets.mcu.boards.Board`) of a program that runs
    ``instructions`` QEMU instructions: {"latency_ms": None, "reason"} when its core has no calibration."""
    cal = calibration(board.core)
    if cal is None:
        return {
            "kind": KIND,
            "latency_ms": None,
            "reason": f"no MLPerf Tiny closed result of a CMSIS-NN stack on a {board.core} board to derive cycles "
            "per instruction from",
        }
    k = cal.cycles_per_instruction()
    return {
        "kind": KIND,
        "latency_ms": round(instructions * k / board.clock_hz * 1000, 3),
        "cycles_per_instruction": round(k, 4),
        "clock_hz": board.clock_hz,
        "basis": basis(cal),
        "error": round(cal.error(), 4),
        "error_basis": "largest leave-one-out error of the factor on the published points; the engine's own "
        "instruction mix is not CMSIS-NN's, which this error does not cover",
        "source": cal.source,
    }


def describe(est: dict, board_name: str) -> str:
    """One line for people: the estimate with its basis and error, or why there is none."""
    if est.get("latency_ms") is None:
        return f"no latency estimate for {board_name}: {est.get('reason', 'not calibrated')}"
    return (
        f"estimated latency of this engine on {board_name}: {est['latency_ms']:.2f} ms (+/-{est['error'] * 100:.0f}% "
        f"on the published points; {est['basis']})"
    )


def validation_rows() -> list[dict]:
    """Per calibrated core and model: the published latency, the leave-one-out estimate and its error."""
    rows = []
    for cal in CALIBRATIONS.values():
        loo = cal.leave_one_out()
        for m in cal.inferences_per_s:
            rows.append(
                {
                    "core": cal.core,
                    "board": cal.board,
                    "stack": cal.stack,
                    "model": m,
                    "published_ms": round(cal.published_ms(m), 2),
                    "estimated_ms": round(cal.published_ms(m) * (1 + loo[m]), 2),
                    "error": round(loo[m], 4),
                }
            )
    return rows
