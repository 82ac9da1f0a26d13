"""Where the generated C engine's instructions go: a per-op instruction profile under QEMU.

An opt-in build: ``model.h`` of a copy of the project gets ``#define EQ_PROFILE``, so ``model.c`` marks the
start of each op's statement (``EQ_PROFILE_OP``, :data:`emit.PROFILE_MACROS`) and the QEMU driver
(``main_qemu.c``) adds the SysTick ticks between two marks to the op the first one named, reports them per
sample, and measures what one mark costs so it can be taken off each op. Ticks become instructions as the
whole-invoke count does (``-icount shift=0``, the driver's calibration loop). A default build has no mark:
its ``EQ_PROFILE_OP`` expands to nothing, so its code and its counts are unchanged.

What is measured: QEMU instruction counts per op, not board cycles. The per-op sum falls short of the
whole invoke by the few instructions of ``model_invoke``'s own entry and exit.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from edgeq.errors import ConversionFailed

if TYPE_CHECKING:
    from edgeq.targets.mcu.cgen import Project

POOL_OPS = ("MAX_POOL_2D", "AVERAGE_POOL_2D")
# the op kinds instructions per MAC are reported for, in order (see :func:`group_of`)
GROUPS = ("CONV_2D 1x1", "CONV_2D other", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "pools", "ADD", "rest")
PROFILE_DEFINE = "#define EQ_PROFILE 1 /* edgeq profile build: per-op SysTick marks (cgen/profile.py) */\n"
_CALL = re.compile(r"^\s*([A-Za-z_]\w*)\s*\(")
_OP_LINE = re.compile(r"^EQ op (\d+) (\d+) (\d+)$")
_OVERHEAD = re.compile(r"^EQ op_overhead (\d+) (\d+)$")


@dataclass(frozen=True)
class OpRecord:
    """One statement of ``model_invoke``: its position, the op it computes and the kernel it calls."""

    position: int
    op_index: int
    op: str  # the op kind, e.g. CONV_2D
    kernel: str  # low.notes["kernel"] when a core's kernel was chosen, else the called function
    macs: int
    filter_hw: tuple[int, int] | None = None  # a convolution's kernel height and width

    @property
    def group(self) -> str:
        return group_of(self.op, self.filter_hw)


@dataclass(frozen=True)
class OpProfile:
    """An :class:`OpRecord` with its measured instructions (median over the samples)."""

    record: OpRecord
    instructions: int

    @property
    def instructions_per_mac(self) -> float | None:
        return self.instructions / self.record.macs if self.record.macs else None

    def to_dict(self) -> dict:
        return {**asdict(self.record), "group": self.record.group, "instructions": self.instructions}


@dataclass(frozen=True)
class Profile:
    """Per-op instructions of one project on one core under QEMU, and the outputs' bit-exactness."""

    core: str
    machine: str
    ops: tuple[OpProfile, ...]
    invoke_instructions: int  # the whole invoke in the profile build (marks included), median
    mark_instructions: float  # what one mark costs, taken off each op
    num_samples: int
    bit_exact: int
    against: str
    provenance: str = "measured: QEMU -icount shift=0 SysTick ticks between per-op marks, not board cycles"

    @property
    def total(self) -> int:
        return sum(o.instructions for o in self.ops)

    @property
    def macs(self) -> int:
        return sum(o.record.macs for o in self.ops)

    def by_group(self) -> dict[str, dict]:
        """Per op kind (:data:`GROUPS`): ops, MACs, instructions and instructions per MAC (None without MACs)."""
        out: dict[str, dict] = {}
        for o in self.ops:
            g = out.setdefault(o.record.group, {"ops": 0, "macs": 0, "instructions": 0})
            g["ops"] += 1
            g["macs"] += o.record.macs
            g["instructions"] += o.instructions
        for g in out.values():
            g["instructions_per_mac"] = round(g["instructions"] / g["macs"], 3) if g["macs"] else None
        return {k: out[k] for k in GROUPS if k in out}

    def to_dict(self) -> dict:
        return {
            "core": self.core,
            "machine": self.machine,
            "num_samples": self.num_samples,
            "bit_exact": self.bit_exact,
            "against": self.against,
            "macs": self.macs,
            "per_op_total": self.total,
            "invoke_instructions_profile_build": self.invoke_instructions,
            "mark_instructions": round(self.mark_instructions, 1),
            "provenance": self.provenance,
            "by_group": self.by_group(),
            "ops": [o.to_dict() for o in self.ops],
        }


def group_of(op: str, filter_hw: tuple[int, int] | None) -> str:
    """The op kind a profile reports: CONV_2D split into 1x1 and other, pools together, the rest as rest."""
    if op == "CONV_2D":
        return "CONV_2D 1x1" if filter_hw == (1, 1) else "CONV_2D other"
    if op in ("DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "ADD"):
        return op
    return "pools" if op in POOL_OPS else "rest"


def records(g, lowered: Sequence) -> tuple[OpRecord, ...]:
    """One :class:`OpRecord` per lowered statement, in ``model_invoke``'s order (``g`` a cgen Graph)."""
    out = []
    for position, low in enumerate(lowered):
        called = _CALL.match(low.statement)
        kernel = str(low.notes.get("kernel") or (called.group(1) if called else ""))
        out.append(
            OpRecord(
                position=position,
                op_index=low.op.index,
                op=low.op.name,
                kernel=kernel,
                macs=int(low.notes.get("macs", 0)),
                filter_hw=_filter_hw(g, low.op),
            )
        )
    return tuple(out)


def _filter_hw(g, op) -> tuple[int, int] | None:
    if op.name not in ("CONV_2D", "DEPTHWISE_CONV_2D") or len(op.inputs) < 2 or op.inputs[1] < 0:
        return None
    shape = tuple(g.tensors[op.inputs[1]].shape)
    return (int(shape[1]), int(shape[2])) if len(shape) == 4 else None


def profiled(project: Project) -> Project:
    """A copy of ``project`` whose Arm build carries the per-op marks (the host build ignores them)."""
    files = dict(project.files)
    files["model.h"] = PROFILE_DEFINE + files["model.h"]
    return replace(project, files=files)


def parse(lines: Sequence[str], num_ops: int, num_samples: int, insns_per_tick: float) -> tuple[np.ndarray, float]:
    """The driver's ``EQ op`` lines as an (samples x ops) array of instructions, the mark's cost taken off,
    and that cost in instructions.

    Raises:
        ConversionFailed: a sample or an op is missing from the report.
    """
    ticks = np.full((num_samples, num_ops), -1, dtype=np.int64)
    mark = 0.0
    for line in lines:
        m = _OP_LINE.match(line)
        if m and int(m.group(1)) < num_samples and int(m.group(2)) < num_ops:
            ticks[int(m.group(1)), int(m.group(2))] = int(m.group(3))
        o = _OVERHEAD.match(line)
        if o:
            mark = int(o.group(2)) / int(o.group(1))
    if (ticks < 0).any():
        raise ConversionFailed(
            f"the profile build reported {(ticks >= 0).sum()} of {ticks.size} per-op counts",
            "report this with the generated project attached",
        )
    return np.maximum(np.rint((ticks - mark) * insns_per_tick), 0).astype(np.int64), mark * insns_per_tick


def run(
    project: Project, data: bytes, inputs: np.ndarray, folder: Path, core: str, timeout_s: float | None = None
) -> Profile:
    """Build ``project`` with the per-op marks for ``core`` in ``folder`` and run ``inputs`` (N x input size)
    under QEMU; every output is compared with TFLM's reference kernels (LiteRT's when TFLM is missing).

    Raises:
        ConversionFailed: a build or run failed, the report is incomplete, or an output differs.
        QualityGateFailed: the link overflows the QEMU machine.
    """
    from edgeq.targets.mcu import cgen
    from edgeq.targets.mcu.cgen import toolchain

    timeout = toolchain.DEFAULT_TIMEOUT_S if timeout_s is None else timeout_s
    x = np.asarray(inputs).reshape(len(inputs), -1).astype(project.input_dtype, copy=False)
    profiled(project).write(folder)
    built = cgen.arm_build(folder, core, timeout)
    ran = toolchain.qemu_run(Path(built["elf"]), core, x, project.output_size, timeout, project.output_dtype)
    per_op, mark = parse(ran["per_op_log"], len(project.op_records), len(x), ran["instructions_per_tick"])
    want = cgen.tflm_outputs(data, x, timeout)
    against = cgen.TFLM_REF
    if isinstance(want, str):  # TFLM unavailable: the reason; LiteRT's reference kernels instead
        want, against = cgen.reference_outputs(data, x), cgen.LITERT_REF
    exact = int(sum(np.array_equal(a, b) for a, b in zip(ran["outputs"], want.reshape(len(x), -1), strict=True)))
    if exact != len(x):
        raise ConversionFailed(
            f"the profile build on {core} is bit-exact {exact}/{len(x)} with {against}: its counts would count "
            "the wrong program",
            "report this with the model attached",
        )
    median = np.median(per_op, axis=0)
    return Profile(
        core=core,
        machine=ran["machine"],
        ops=tuple(OpProfile(r, int(round(v))) for r, v in zip(project.op_records, median, strict=True)),
        invoke_instructions=int(np.median(ran["instructions"])),
        mark_instructions=mark,
        num_samples=len(x),
        bit_exact=exact,
        against=against,
    )
