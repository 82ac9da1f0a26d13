"""A generated C inference engine for int8 .tflite models: no interpreter, a static memory plan, edgeq's own
kernels with TFLite's reference arithmetic, and a proof that it answers bit for bit as TFLM's reference kernels
(what runs on the device) and LiteRT's do, saying which of the two each build matched.

- :func:`generate` reads the model, lowers each op (``lower``), plans one arena (``plan``) and returns the
  project's files (``emit``) as text.
- :func:`prove` builds the project for the host (gcc) and, when the Arm toolchain and QEMU are present, for
  a Cortex-M core, runs N samples on each and compares them with TFLM's reference kernels (the
  tflite-micro interpreter; where the two differ, FULLY_CONNECTED's requantization, the engine follows TFLM)
  and LiteRT's (``BUILTIN_REF``); it reports instruction counts (QEMU icount) and flash/RAM from the linked ELF.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgeq.errors import BadInput, ConversionFailed
from edgeq.targets.mcu.cgen import dsp, emit, fit, graph, lower, mve, plan, profile, shapes, toolchain

__all__ = ["Project", "generate", "prove", "bit_exact_line", "matched", "SUPPORTED_OPS", "CORES", "DEFAULT_CORES"]

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
    op_records: tuple = ()  # per statement of model_invoke: profile.OpRecord (op, kernel, MACs), for profile.py

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


def generate(data: bytes, origin: str = "model", provenance: dict | None = None, core: str | None = None) -> Project:
    """The C99 project for the int8 model ``data``, with the kernels for ``core`` (a key of :data:`CORES`:
    the DSP kernels of :mod:`dsp` on M4, M7 and M33, the Helium kernels of :mod:`mve` on M55; None or any
    other core: the plain C kernels).

    Raises:
        UnsupportedOp: ops without a kernel here (all named; the hint points to ``--runtime tflm``).
        BadInput: not one int8 input and one int8 output, or an op variant the runtime lacks.
    """
    g = graph.read(data, origin)
    lowered = lower.lower(g, origin)  # names every op without a kernel before any other complaint
    lowered = mve.retarget(dsp.retarget(lowered, core), core)
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
    if p.arena_bytes > shapes.MAX_TENSOR_BYTES:
        raise shapes.corrupt(
            origin,
            None,
            f"its memory plan needs an arena of {p.arena_bytes:,} bytes, over the {shapes.MAX_TENSOR_BYTES:,}-byte "
            "cap for a microcontroller model",
        )
    prov = provenance or {}
    # a core-specific source no op calls is neither built nor sized
    files = emit.leave_out_unused({name: emit.runtime_text(name) for name in emit.RUNTIME_FILES}, lowered)
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
        op_records=profile.records(g, lowered),
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


TFLM_REF = "TFLM reference kernels"
LITERT_REF = "LiteRT BUILTIN_REF"


def tflm_outputs(data: bytes, inputs: np.ndarray, timeout_s: float = toolchain.DEFAULT_TIMEOUT_S) -> np.ndarray | str:
    """TFLM's reference kernels (the tflite-micro Python interpreter, in a worker process: TFLM may abort)
    on each row of ``inputs``; a one-line reason instead when TFLM is not installed or cannot run the model."""
    got = _tflm_run(data, inputs, (), timeout_s)
    return got if isinstance(got, str) else got["output_0"].reshape(len(inputs), -1)


def _tflm_run(data: bytes, inputs: np.ndarray, keep: tuple[int, ...], timeout_s: float) -> dict | str:
    """{"output_0": outputs, "tensor_<i>": tensor i after each invoke for i in ``keep``}, or why not."""
    import tempfile

    from edgeq.targets.mcu import tflm

    if not tflm.available():
        return "tflite-micro is not installed (pip install tflite-micro)"
    g = graph.read(data, "model")
    shape = tuple(max(int(d), 1) for d in g.tensors[g.inputs[0]].shape)
    with tempfile.TemporaryDirectory(prefix="edgeq-proof-tflm-") as tmp:
        work = Path(tmp)
        (work / "model.tflite").write_bytes(data)
        np.savez(work / "inputs.npz", allow_pickle=False, input_0=inputs.reshape(len(inputs), *shape))
        req = {
            "model": str(work / "model.tflite"),
            "arena_size": tflm.initial_arena(len(data)),
            "num_inputs": 1,
            "num_outputs": 1,
            "inputs_npz": str(work / "inputs.npz"),
            "outputs_npz": str(work / "outputs.npz"),
            "preserve_tensors": list(keep),
        }
        run = tflm.run_worker(req, work, timeout_s)
        if not run.ok:
            return f"TFLM's interpreter failed in its {run.last_phase} phase"
        with np.load(work / "outputs.npz") as f:
            return {k: f[k] for k in f.files}


def references_per_op(data: bytes, inputs: np.ndarray, timeout_s: float = toolchain.DEFAULT_TIMEOUT_S) -> dict:
    """Where TFLM's and LiteRT's reference kernels agree, op kind by op kind: both interpreters keep every
    tensor (LiteRT's experimental_preserve_all_tensors, TFLM's kPreserveAllTensors) and each op's outputs
    are compared on every sample. {op kind: {"agree": samples equal at every op of that kind, "num_samples"}};
    {} when TFLM cannot run the model."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    from edgeq.tfimport import captured_stderr

    g = graph.read(data, "model")
    outs = sorted({i for op in g.ops for i in op.outputs if i >= 0})
    tf = _tflm_run(data, inputs, tuple(outs), timeout_s)
    if isinstance(tf, str):
        return {}
    with captured_stderr():
        interp = Interpreter(
            model_content=data,
            experimental_op_resolver_type=OpResolverType.BUILTIN_REF,
            experimental_preserve_all_tensors=True,
        )
        interp.allocate_tensors()
    (din,) = interp.get_input_details()
    same = {i: np.zeros(len(inputs), dtype=bool) for i in outs}
    for s, x in enumerate(inputs):
        interp.set_tensor(din["index"], x.reshape(din["shape"]).astype(din["dtype"]))
        interp.invoke()
        for i in outs:
            lite = interp.get_tensor(i).reshape(-1)
            same[i][s] = bool(np.array_equal(lite.view(np.uint8), tf[f"tensor_{i}"][s].reshape(-1).view(np.uint8)))
    per_kind: dict[str, np.ndarray] = {}
    for op in g.ops:
        ok = np.logical_and.reduce([same[i] for i in op.outputs if i >= 0])
        per_kind[op.name] = per_kind[op.name] & ok if op.name in per_kind else ok
    return {k: {"agree": int(v.sum()), "num_samples": len(inputs)} for k, v in sorted(per_kind.items())}


def _against_all(got: np.ndarray, wants: dict[str, np.ndarray]) -> dict:
    """``got`` compared with each reference (TFLM's first when it ran), each in ``references``; :func:`_settle`
    later takes the top-level figures from the one matched on most samples."""
    cmps = {name: _compare(name, got, want) for name, want in wants.items()}
    first = dict(next(iter(cmps.values())))
    first["references"] = {name: {k: v for k, v in c.items() if k != "against"} for name, c in cmps.items()}
    return first


def _references(data: bytes, x: np.ndarray, dtype: str, timeout_s: float, skipped: list[str]) -> dict:
    """{reference: outputs}: TFLM's reference kernels first (what runs on the device) when they run, then
    LiteRT's; why TFLM did not run goes to ``skipped`` (once)."""
    wants: dict[str, np.ndarray] = {}
    tflm_out = tflm_outputs(data, x, timeout_s)
    if isinstance(tflm_out, str):
        reason = f"{TFLM_REF}: {tflm_out}"
        if reason not in skipped:
            skipped.append(reason)
    else:
        wants[TFLM_REF] = tflm_out.astype(dtype)
    wants[LITERT_REF] = reference_outputs(data, x).astype(dtype)
    return wants


def _settle(cmp: dict) -> dict:
    """The top-level figures from the reference matched on most samples, TFLM's on a tie (listed first): a
    model whose ops all follow TFLM is judged against TFLM, one with an op that follows LiteRT (a table
    LiteRT computed) against LiteRT; ``references`` keeps both."""
    refs = cmp.get("references")
    if not refs:
        return cmp
    best = max(refs, key=lambda k: (refs[k]["bit_exact"], -list(refs).index(k)))
    return {**cmp, **refs[best], "against": best}


def matched(cmp: dict) -> list[str]:
    """The references every sample of one comparison matched bit for bit (TFLM's, LiteRT's, both or none)."""
    refs = cmp.get("references") or {cmp.get("against") or LITERT_REF: cmp}
    return [name for name, r in refs.items() if r["num_samples"] > 0 and r["bit_exact"] == r["num_samples"]]


def bit_exact_line(cmp: dict) -> str:
    """'bit-exact 8/8 with TFLM reference kernels, 7/8 with LiteRT BUILTIN_REF (at most 1 step apart)'."""
    refs = cmp.get("references") or {cmp.get("against") or LITERT_REF: cmp}
    parts = []
    for name, r in refs.items():
        off = "" if r["bit_exact"] == r["num_samples"] else f" (at most {r['max_abs_diff_steps']} step(s) apart)"
        parts.append(f"{r['bit_exact']}/{r['num_samples']} with {name}{off}")
    return "bit-exact " + ", ".join(parts)


OPS_MATCHED_BASIS = (
    "per model: each op kind is credited with the references the model's output matched on every sample "
    "(the engine's intermediate tensors share one arena and are not compared one by one); "
    "ops_references_agree counts, per op kind, the samples on which TFLM's and LiteRT's own intermediate "
    "tensors were equal at every op of that kind"
)
PER_OP_SAMPLES = 16  # samples of the first chunk whose intermediate tensors the two references compare


def ops_matched(ops: Iterable[str], cmp: dict) -> dict[str, list[str]]:
    """{op kind: references matched} for one comparison, on the basis :data:`OPS_MATCHED_BASIS`."""
    refs = matched(cmp)
    return {kind: refs for kind in sorted(set(ops))}


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


def arm_build(folder: Path, core: str, timeout_s: float) -> dict:
    """:func:`toolchain.arm_build` into ``folder/build/<core>``; a link that overflows a memory region is the
    does-not-fit verdict (:class:`QualityGateFailed`, exit 6) with ld's figure, not a failed build.

    Raises:
        QualityGateFailed: ld reports a region overflow.
        ConversionFailed: any other build failure.
    """
    try:
        return toolchain.arm_build(folder, folder / "build" / core, core, timeout_s)
    except ConversionFailed as exc:
        misfit = fit.link_misfit(exc, emit.BOARDS[core][0], core)
        if misfit is not None:
            raise misfit from exc
        raise


def _merge(a: dict | None, b: dict, offset: int) -> dict:
    """Two chunks' comparisons as one (``b``'s samples follow ``offset`` earlier ones)."""
    if a is None:
        return b
    first = a["first_mismatch"]
    if first is None and b["first_mismatch"] is not None:
        first = offset + b["first_mismatch"]
    return {
        "against": a.get("against"),
        "bit_exact": a["bit_exact"] + b["bit_exact"],
        "num_samples": a["num_samples"] + b["num_samples"],
        "max_abs_diff_steps": max(a["max_abs_diff_steps"], b["max_abs_diff_steps"]),
        "first_mismatch": first,
        **(
            {"references": {k: _merge(v, b["references"][k], offset) for k, v in a["references"].items()}}
            if "references" in a
            else {}
        ),
    }


def prove(
    project: Project,
    data: bytes,
    inputs: np.ndarray | Iterable[np.ndarray],
    folder: Path,
    cores: tuple[str, ...] = DEFAULT_CORES,
    timeout_s: float = toolchain.DEFAULT_TIMEOUT_S,
) -> dict:
    """Build ``project`` (already written to ``folder``) and compare it with LiteRT's reference kernels.

    Args:
        inputs: N x input-size samples in the model's input type, as one array or as chunks of samples
            (e.g. :func:`edgeq.targets.mcu.parity.sample_chunks`), run one chunk at a time so memory holds
            one chunk, not N samples.
        folder: the project folder; builds go to ``folder/build``.
        cores: Cortex-M cores to run under QEMU (keys of :data:`CORES`).

    Returns:
        {"host": comparison | {"proven": False, "reason"}, "qemu": {core: comparison + instructions + sizes},
        "not_proven": [reasons], "wall_time_s"}.

    Raises:
        QualityGateFailed: the Arm link overflows a memory region of the QEMU machine.
        ConversionFailed: a build or run failed.
    """
    t0 = time.perf_counter()
    result: dict = {"reference": f"{TFLM_REF} and {LITERT_REF}", "not_proven": [], "qemu": {}}
    exe, builds = _build_all(folder, cores, timeout_s, result)
    skipped: list[str] = []
    per_op: dict = {}
    host, runs, n = _run_all(project, data, inputs, exe, builds, timeout_s, skipped, per_op)
    if skipped:
        result["reference"] = LITERT_REF
        result["not_proven"] += skipped
    result["num_samples"] = n
    if exe is not None:
        result["host"] = _settle(host) if host is not None else {"proven": False, "reason": "no samples"}
    for core, run in runs.items():
        if run["cmp"] is not None:
            run["cmp"] = _settle(run["cmp"])
            result["qemu"][core] = _qemu_result(builds[core], run, host is not None)
    where = next((r for r in result["qemu"].values() if "bit_exact" in r), result.get("host") or {})
    if "bit_exact" in where:
        result["ops_matched"] = ops_matched(project.ops, where)
        result["ops_matched_basis"] = OPS_MATCHED_BASIS
        result["ops_references_agree"] = per_op
    result["wall_time_s"] = round(time.perf_counter() - t0, 2)
    return result


def _build_all(folder: Path, cores: tuple[str, ...], timeout_s: float, result: dict) -> tuple[Path | None, dict]:
    """The host executable (None without gcc) and each core's Arm build; what cannot be built is recorded in
    ``result`` as not proven, with the reason."""
    exe = None
    if toolchain.missing(("gcc",)):
        result["host"] = {"proven": False, "reason": "no gcc on PATH"}
        result["not_proven"].append("host build: no gcc on PATH")
    else:
        exe = toolchain.host_build(folder, folder / "build" / "host", timeout_s)
    arm_missing = toolchain.missing(("arm-none-eabi-gcc", "arm-none-eabi-size", "qemu-system-arm"))
    builds: dict[str, dict] = {}
    for core in cores:
        if arm_missing:
            reason = f"{', '.join(arm_missing)} not installed ({toolchain.INSTALL})"
            result["qemu"][core] = {"proven": False, "reason": reason}
            result["not_proven"].append(f"{core} under QEMU: {reason}")
            continue
        builds[core] = arm_build(folder, core, timeout_s)
    return exe, builds


def _run_all(
    project: Project,
    data: bytes,
    inputs: np.ndarray | Iterable[np.ndarray],
    exe: Path | None,
    builds: dict[str, dict],
    timeout_s: float,
    skipped: list[str],
    per_op: dict | None = None,
) -> tuple[dict | None, dict[str, dict], int]:
    """Every chunk of samples through TFLM's and LiteRT's reference kernels, the host build and each QEMU build:
    (the host's comparison, per core its comparison, instruction counts and stack, the number of samples)."""
    host: dict | None = None
    runs: dict[str, dict] = {
        core: {"cmp": None, "instructions": [], "stack": [], "same_as_host": True} for core in builds
    }
    n = 0
    for chunk in [inputs] if isinstance(inputs, np.ndarray) else inputs:
        x = chunk.reshape(len(chunk), -1).astype(project.input_dtype, copy=False)
        wants = _references(data, x, project.output_dtype, timeout_s, skipped)
        if per_op is not None and n == 0 and TFLM_REF in wants:
            per_op.update(references_per_op(data, x[:PER_OP_SAMPLES], timeout_s))
        got = None
        if exe is not None:
            got = toolchain.host_run(exe, x, project.output_size, timeout_s, project.output_dtype)
            host = _merge(host, _against_all(got, wants), n)
        for core, built in builds.items():
            ran = toolchain.qemu_run(Path(built["elf"]), core, x, project.output_size, timeout_s, project.output_dtype)
            run = runs[core]
            run["cmp"] = _merge(run["cmp"], _against_all(ran["outputs"], wants), n)
            run["same_as_host"] = run["same_as_host"] and (got is None or bool(np.array_equal(ran["outputs"], got)))
            run["instructions"] += ran["instructions"]
            run["stack"].append(ran["stack_bytes"])
            run["machine"], run["instructions_per_tick"] = ran["machine"], ran["instructions_per_tick"]
        n += len(x)
    return host, runs, n


def _qemu_result(built: dict, run: dict, host_ran: bool) -> dict:
    """One core's comparison with its instruction counts, the deepest stack and the ELF's sizes."""
    cmp, ins = run["cmp"], run["instructions"]
    if host_ran:
        cmp["equals_host_build"] = run["same_as_host"]
    stacks = [s for s in run["stack"] if s is not None]
    stack = max(stacks) if stacks else None
    cmp.update(
        {
            "machine": run["machine"],
            "instructions_per_inference": int(np.median(ins)),
            "instructions_min_max": [int(min(ins)), int(max(ins))],
            "instructions_provenance": INSTRUCTION_PROVENANCE,
            "instructions_per_tick": run["instructions_per_tick"],
            "flash_bytes": built["model_flash_bytes"],
            "static_ram_bytes": built["model_static_ram_bytes"],
            "stack_bytes": stack,
            "ram_bytes": built["model_static_ram_bytes"] + (stack or 0),
            "elf": built["elf"],
            "map": built["map"],
            "elf_sections": built["elf_sections"],
        }
    )
    return cmp
