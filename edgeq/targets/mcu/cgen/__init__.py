"""A generated C inference engine for int8 .tflite models: no interpreter, a static memory plan, edgeq's own
kernels with TFLite's reference arithmetic, and a proof that it answers bit for bit as LiteRT does.

- :func:`generate` reads the model, lowers each op (``lower``), plans one arena (``plan``) and returns the
  project's files (``emit``) as text.
- :func:`prove` builds the project for the host (gcc) and, when the Arm toolchain and QEMU are present, for
  a Cortex-M core, runs N samples on each and compares them with LiteRT's reference kernels
  (``BUILTIN_REF``); it reports instruction counts (QEMU icount) and flash/RAM from the linked ELF.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgeq.errors import BadInput
from edgeq.targets.mcu.cgen import emit, graph, lower, plan, toolchain

__all__ = ["Project", "generate", "prove", "SUPPORTED_OPS", "CORES", "DEFAULT_CORES"]

SUPPORTED_OPS = lower.SUPPORTED_OPS
CORES = tuple(emit.BOARDS)
DEFAULT_CORES = ("cortex-m4",)
INSTRUCTION_PROVENANCE = "QEMU instruction count, not board cycles"


@dataclass(frozen=True)
class Project:
    files: dict  # name -> text
    plan: dict
    plan_text: str
    arena_bytes: int
    input_size: int
    output_size: int
    ops: tuple[str, ...]
    macs: int = 0
    input_dtype: str = "int8"  # int8, or float32 for a model with float I/O (QUANTIZE/DEQUANTIZE at its edges)
    output_dtype: str = "int8"
    constant_bytes: int = 0  # weights, biases, multipliers and scales as emitted
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def io_bytes(self) -> int:
        """Bytes of the caller's input and output arrays (outside the arena)."""
        return (
            self.input_size * np.dtype(self.input_dtype).itemsize
            + self.output_size * np.dtype(self.output_dtype).itemsize
        )

    def write(self, folder: Path) -> list[Path]:
        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        for name, text in self.files.items():
            (folder / name).write_text(text)
            paths.append(folder / name)
        return paths


def generate(data: bytes, origin: str = "model", provenance: dict | None = None) -> Project:
    """The C99 project for the int8 model ``data``.

    Raises:
        UnsupportedOp: ops without a kernel here (all named; the hint points to ``--runtime tflm``).
        BadInput: not one int8 input and one int8 output, or an op variant the runtime lacks.
    """
    g = graph.read(data, origin)
    lowered = lower.lower(g, origin)  # names every op without a kernel before any other complaint
    if len(g.inputs) != 1 or len(g.outputs) != 1:
        raise BadInput(
            f"{origin} has {len(g.inputs)} input(s) and {len(g.outputs)} output(s); the generated C runtime "
            "takes one of each",
            "compile with --runtime tflm",
        )
    for idx in (g.inputs[0], g.outputs[0]):
        t = g.tensors[idx]
        if t.dtype not in emit.C_TYPES:
            raise BadInput(
                f"{origin}: model {'input' if idx == g.inputs[0] else 'output'} {t.name!r} is {t.dtype}; the "
                "generated C runtime takes int8 or float32 I/O",
                "quantize with --io int8, or compile with --runtime tflm",
            )
    p = plan.make(g, lowered)
    prov = provenance or {}
    files = {name: emit.runtime_text(name) for name in emit.RUNTIME_FILES}
    files["model.h"] = emit.model_h(g, p, prov)
    files["model.c"] = emit.model_c(g, lowered, p, prov)
    files["memory_plan.txt"] = p.describe(g) + "\n"
    files["Makefile"] = emit.makefile()
    files.update({f"link_{core}.ld": emit.linker_script(core) for core in emit.BOARDS})
    return Project(
        files=files,
        plan=p.to_dict(g),
        plan_text=p.describe(g),
        arena_bytes=p.arena_bytes,
        input_size=g.tensors[g.inputs[0]].size,
        output_size=g.tensors[g.outputs[0]].size,
        ops=tuple(op.name for op in g.ops),
        macs=sum(int(low.notes.get("macs", 0)) for low in lowered),
        input_dtype=g.tensors[g.inputs[0]].dtype,
        output_dtype=g.tensors[g.outputs[0]].dtype,
        constant_bytes=sum(c.values.nbytes for c in {c.name: c for low in lowered for c in low.consts}.values()),
    )


def reference_outputs(data: bytes, inputs: np.ndarray) -> np.ndarray:
    """LiteRT's reference kernels (``BUILTIN_REF``) on each row of ``inputs``."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    from edgeq.tfimport import captured_stderr

    with captured_stderr():
        interp = Interpreter(model_content=data, experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
        interp.allocate_tensors()
    try:
        (din,), (dout,) = interp.get_input_details(), interp.get_output_details()
    except UnicodeDecodeError as exc:  # LiteRT's Python API decodes every tensor name as UTF-8
        raise BadInput(
            f"LiteRT, the proof's reference, cannot read the model: a tensor name is not UTF-8 ({exc.reason})",
            "give the model's tensors UTF-8 names (re-export it)",
        ) from exc
    outs = []
    for x in inputs:
        interp.set_tensor(din["index"], x.reshape(din["shape"]).astype(din["dtype"]))
        interp.invoke()
        outs.append(interp.get_tensor(dout["index"]).reshape(-1).copy())
    return np.stack(outs)


def _compare(name: str, got: np.ndarray, want: np.ndarray) -> dict:
    # bit for bit: float outputs are compared as their bytes (0.0 and -0.0 differ, as they do in memory)
    same = np.all(got.view(np.uint8).reshape(len(got), -1) == want.view(np.uint8).reshape(len(want), -1), axis=1)
    # the difference in output steps for int8, in real units for float32
    diff = np.abs(got.astype(np.float64) - want.astype(np.float64))
    return {
        "against": name,
        "bit_exact": int(same.sum()),
        "num_samples": len(want),
        "max_abs_diff_steps": (int(diff.max()) if got.dtype == np.int8 else float(diff.max())) if diff.size else 0,
        "first_mismatch": int(np.argmin(same)) if not same.all() else None,
    }


def prove(
    project: Project,
    data: bytes,
    inputs: np.ndarray,
    folder: Path,
    cores: tuple[str, ...] = DEFAULT_CORES,
    timeout_s: float = toolchain.DEFAULT_TIMEOUT_S,
) -> dict:
    """Build ``project`` (already written to ``folder``) and compare it with LiteRT's reference kernels.

    Args:
        inputs: N x input-size int8 samples.
        folder: the project folder; builds go to ``folder/build``.
        cores: Cortex-M cores to run under QEMU (keys of :data:`CORES`).

    Returns:
        {"host": comparison | {"proven": False, "reason"}, "qemu": {core: comparison + instructions + sizes},
        "not_proven": [reasons], "wall_time_s"}.
    """
    t0 = time.perf_counter()
    inputs = inputs.reshape(len(inputs), -1).astype(project.input_dtype)
    want = reference_outputs(data, inputs).astype(project.output_dtype)
    result: dict = {"num_samples": len(inputs), "reference": "LiteRT BUILTIN_REF", "not_proven": [], "qemu": {}}
    gone = toolchain.missing(("gcc",))
    if gone:
        result["host"] = {"proven": False, "reason": "no gcc on PATH"}
        result["not_proven"].append("host build: no gcc on PATH")
    else:
        exe = toolchain.host_build(folder, folder / "build" / "host", timeout_s)
        got = toolchain.host_run(exe, inputs, project.output_size, timeout_s, project.output_dtype)
        result["host"] = _compare("LiteRT BUILTIN_REF", got, want)
    arm_missing = toolchain.missing(("arm-none-eabi-gcc", "arm-none-eabi-size", "qemu-system-arm"))
    for core in cores:
        if arm_missing:
            reason = f"{', '.join(arm_missing)} not installed ({toolchain.INSTALL})"
            result["qemu"][core] = {"proven": False, "reason": reason}
            result["not_proven"].append(f"{core} under QEMU: {reason}")
            continue
        built = toolchain.arm_build(folder, folder / "build" / core, core, timeout_s)
        ran = toolchain.qemu_run(Path(built["elf"]), core, inputs, project.output_size, timeout_s, project.output_dtype)
        cmp = _compare("LiteRT BUILTIN_REF", ran["outputs"], want)
        if "host" in result and "bit_exact" in result["host"]:
            cmp["equals_host_build"] = bool(np.array_equal(ran["outputs"], got))
        ins = ran["instructions"]
        cmp.update(
            {
                "machine": ran["machine"],
                "instructions_per_inference": int(np.median(ins)),
                "instructions_min_max": [int(min(ins)), int(max(ins))],
                "instructions_provenance": INSTRUCTION_PROVENANCE,
                "instructions_per_tick": ran["instructions_per_tick"],
                "flash_bytes": built["model_flash_bytes"],
                "static_ram_bytes": built["model_static_ram_bytes"],
                "stack_bytes": ran["stack_bytes"],
                "ram_bytes": built["model_static_ram_bytes"] + (ran["stack_bytes"] or 0),
                "elf": built["elf"],
                "map": built["map"],
                "elf_sections": built["elf_sections"],
            }
        )
        result["qemu"][core] = cmp
    result["wall_time_s"] = round(time.perf_counter() - t0, 2)
    return result
