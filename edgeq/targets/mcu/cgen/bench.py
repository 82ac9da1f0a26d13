"""``edgeq bench --target mcu --runtime c``: the generated C engine under QEMU on the board's core.

What is measured is an instruction count per inference (QEMU ``-icount``), not time and not board cycles:
the result measures no latency, only instructions, labelled with their provenance, beside flash and RAM
measured from the linked ELF. The one latency it carries is estimated from those instructions
(:mod:`latency`), labelled with its basis and error. Every inference is also compared bit for bit with LiteRT's reference
kernels, so the count is of code that computes the right answer.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgeq.bench.timing import LatencyStats, host_environment
from edgeq.config import BenchConfig
from edgeq.errors import ConversionFailed, Unavailable
from edgeq.findings import Message, info, warning
from edgeq.targets.base import Availability, BenchResult
from edgeq.targets.mcu.cgen import (
    INSTRUCTION_PROVENANCE,
    arm_build,
    bit_exact_line,
    emit,
    fit,
    generate,
    latency,
    prove,
    toolchain,
)

TIMING_KIND = "instructions (QEMU)"
ARM_TOOLS = ("gcc", "arm-none-eabi-gcc", "arm-none-eabi-size", "qemu-system-arm")


@dataclass(frozen=True)
class McuCBenchResult(BenchResult):
    """Instructions per inference under QEMU (``instructions``), flash and RAM from the ELF (``memory``),
    the bit-exactness of every inference (``proof``), the board's MAC-based latency ``estimate`` (TFLM with
    CMSIS-NN) and ``latency_estimate``, this engine's estimated latency from its own instruction count
    (:mod:`latency`), kept apart. ``stats`` holds no latency: only ``num_runs`` (inferences) is set."""

    instructions: dict = field(default_factory=dict)
    memory: dict = field(default_factory=dict)
    proof: dict = field(default_factory=dict)
    estimate: dict = field(default_factory=dict)
    latency_estimate: dict = field(default_factory=dict)

    def describe(self, model: str) -> list[str]:
        """The whole benchmark for people, ``model`` first: instructions, not a latency table (nothing here
        was timed), flash and RAM from the ELF, the notes."""
        from edgeq.targets.mcu.cgen.compile import render_bench

        return render_bench(self.to_dict(), model).splitlines()

    def to_dict(self) -> dict:
        doc = super().to_dict()
        doc["timing_kind"] = TIMING_KIND
        doc["runtime"] = "c"
        doc["latency_ms"] = None  # nothing here was timed
        doc["instructions"] = self.instructions
        doc["memory"] = self.memory
        doc["proof"] = self.proof
        doc["estimate"] = self.estimate
        doc["latency_estimate"] = self.latency_estimate  # estimated, with its basis and error; never measured
        return doc


def _no_latency(num_runs: int) -> LatencyStats:
    return LatencyStats(
        first_invoke_ms=None,
        num_runs=num_runs,
        warmup_runs=0,
        p50=None,
        p90=None,
        p99=None,
        mean=None,  # type: ignore[arg-type]  # an instruction count is no latency: none is made up
        std=None,
        min=None,
        max=None,
    )


class McuCRunner:
    """Builds the generated C project for the board's core and runs it under that core's QEMU machine."""

    def __init__(self, board, timeout_s: float = toolchain.DEFAULT_TIMEOUT_S) -> None:
        self.board = board
        self.timeout_s = timeout_s
        self._loaded: tuple[Path, Path, int, np.ndarray] | None = None

    def availability(self) -> Availability:
        if self.board.core not in emit.BOARDS:
            return Availability(
                False,
                f"QEMU emulates no {self.board.core} board (it has Cortex-M4, M7, M33 and M55): choose a Cortex-M "
                "--board",
            )
        gone = toolchain.missing(ARM_TOOLS)
        if gone:
            return Availability(False, f"{', '.join(gone)} not installed ({toolchain.INSTALL})")
        return Availability(True)

    def _require(self) -> None:
        available = self.availability()
        if not available.available:
            raise Unavailable(f"cannot run the generated C on {self.board.name}: {available.reason}", toolchain.INSTALL)

    def load(self, model_path: str, cfg: BenchConfig) -> None:
        """Generate and build the project (kept until the runner is dropped) and one seeded input."""
        from edgeq.targets.mcu import parity
        from edgeq.tflite import read_file, read_model_bytes

        self._require()
        data = read_model_bytes(model_path)
        project = generate(data, model_path, core=self.board.core)
        fit.before_build(project, self.board, model_path)
        folder = Path(tempfile.mkdtemp(prefix="edgeq_cbench_"))
        try:
            project.write(folder)
            built = arm_build(folder, self.board.core, self.timeout_s)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        sample = parity.make_inputs(read_file(model_path), 1, parity.DEFAULT_SEED)[0].reshape(1, -1)
        self._loaded = (folder, Path(built["elf"]), project.output_size, sample)

    def invoke(self) -> None:
        """One inference under QEMU (boots the machine each time: a whole-program run, not a timed call)."""
        if self._loaded is None:
            raise Unavailable("the model is not loaded", "call load() first")
        _, elf, out_size, sample = self._loaded
        toolchain.qemu_run(elf, self.board.core, sample, out_size, self.timeout_s)

    def __del__(self) -> None:
        if self._loaded is not None:
            shutil.rmtree(self._loaded[0], ignore_errors=True)

    def benchmark(self, model_path: str, cfg: BenchConfig) -> McuCBenchResult:
        """``cfg.num_runs`` seeded inputs through the generated C under QEMU: instructions per inference,
        flash and RAM from the ELF, each output compared with LiteRT's reference kernels.

        Raises:
            Unavailable: no QEMU machine for the board's core, or the toolchain is missing.
            UnsupportedOp, BadInput: the C engine cannot generate the model (ops named).
            ConversionFailed: a build failed, or an output differs from LiteRT's reference kernels.
            QualityGateFailed: the project cannot fit the board (known before any compiler runs) or the
                QEMU machine (the link overflows).
        """
        from edgeq.targets.mcu import estimate, figures, parity
        from edgeq.tflite import read_file, read_model_bytes

        self._require()
        data = read_model_bytes(model_path)
        model_info = read_file(model_path)
        project = generate(data, model_path, core=self.board.core)
        fit.before_build(project, self.board, model_path)
        core = self.board.core
        n = max(1, int(cfg.num_runs))
        inputs = parity.sample_chunks(model_info.inputs[0], n, parity.DEFAULT_SEED)  # one chunk in memory at a time
        with tempfile.TemporaryDirectory(prefix="edgeq_cbench_") as tmp:
            folder = Path(tmp)
            project.write(folder)
            proof = prove(project, data, inputs, folder, cores=(core,), timeout_s=self.timeout_s)
        run = proof["qemu"][core]
        runs = {"host (gcc)": proof["host"], f"{core} on QEMU": run}
        wrong = [f"{k}: {r['bit_exact']}/{r['num_samples']}" for k, r in runs.items() if r["bit_exact"] != n]
        if wrong:
            raise ConversionFailed(
                f"the generated C for {model_path} differs from {run.get('against') or 'the reference'} ({'; '.join(wrong)} "
                "bit-exact): its instruction count would count the wrong program",
                "report this with the model attached; bench --runtime tflm meanwhile",
                details={"proof": proof},
            )
        est = estimate.estimate(model_info, self.board)
        engine_est = latency.estimate(run["instructions_per_inference"], self.board)
        env = host_environment()
        env["runtime"] = f"edgeq generated C, arm-none-eabi-gcc -O2 -mcpu={emit.BOARDS[core][1]}, QEMU {run['machine']}"
        notes = self._notes(run, proof, n, est, cfg)
        notes.insert(2, info(latency.describe(engine_est, self.board.name)))
        return McuCBenchResult(
            target="mcu",
            device=f"{self.board.name} ({core}) on QEMU {run['machine']}, generated C",
            stats=_no_latency(n),
            num_threads=1,
            environment=env,
            notes=tuple(m.text for m in notes),
            findings=figures.c_bench(self.board, run, n, notes, engine_est),
            instructions=_instructions(run, n, project.macs, core),
            memory=_memory(run, project),
            proof={k: proof[k] for k in ("host", "num_samples", "reference", "wall_time_s") if k in proof}
            | {
                k: proof[k]
                for k in ("ops_matched", "ops_matched_basis", "ops_references_agree", "not_proven")
                if k in proof
            }
            | {"qemu": {core: {k: v for k, v in run.items() if k not in ("elf", "map")}}},
            estimate=est,
            latency_estimate=engine_est,
        )

    def _notes(self, run: dict, proof: dict, n: int, est: dict, cfg: BenchConfig) -> list[Message]:
        """What the figures are and are not, each with its level."""
        from edgeq.targets.mcu import estimate

        notes = [
            info(
                f"{TIMING_KIND}: {INSTRUCTION_PROVENANCE}; a board adds wait states, stalls and multi-cycle "
                "instructions on top"
            ),
            info(f"{bit_exact_line(run)} on QEMU (and {bit_exact_line(proof['host'])} built for the host)"),
        ]
        per_op = proof.get("ops_matched") or {}
        if per_op:
            agree = proof.get("ops_references_agree") or {}
            kinds = ", ".join(
                f"{k}: {' and '.join(v) or 'neither'}"
                + (f" (references agree {agree[k]['agree']}/{agree[k]['num_samples']})" if k in agree else "")
                for k, v in per_op.items()
            )
            notes.append(info(f"references matched per op kind: {kinds} ({proof['ops_matched_basis']})"))
        if est.get("latency_ms") is not None:
            notes.append(
                info(
                    f"latency estimate for {self.board.name} (TFLM with CMSIS-NN, not this C engine): "
                    f"{est['latency_ms']:.2f} ms ({estimate.basis(est)})"
                )
            )
        if cfg.num_threads != 1:
            notes.append(warning(f"the generated C is single-threaded: --threads {cfg.num_threads} does not apply"))
        notes.append(info("warm-up does not apply: QEMU's instruction count does not depend on caches or earlier runs"))
        return notes


def _instructions(run: dict, n: int, macs: int, core: str) -> dict:
    lo, hi = run["instructions_min_max"]
    return {
        "per_inference_p50": run["instructions_per_inference"],
        "min": lo,
        "max": hi,
        "num_inferences": n,
        "macs": macs,
        "kind": TIMING_KIND,
        "provenance": INSTRUCTION_PROVENANCE,
        "machine": run["machine"],
        "core": core,
    }


def _memory(run: dict, project) -> dict:
    return {
        "flash_bytes": run["flash_bytes"],
        "ram_bytes": run["ram_bytes"],
        "static_ram_bytes": run["static_ram_bytes"],
        "stack_bytes": run["stack_bytes"],
        "arena_bytes": project.arena_bytes,
        "io_bytes": project.io_bytes,
        "basis": "measured: arm-none-eabi-size of the model and kernel objects in the linked ELF; stack "
        "painted and read back under QEMU",
    }
