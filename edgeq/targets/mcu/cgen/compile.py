"""``edgeq compile --target mcu --runtime c``: generate the project, prove it, judge the fit, write it atomically.

The project is staged in a temp folder beside the output and renamed to ``<stem>_c`` only once the proof
passed and the measured RAM and flash fit the board, so an interrupted or failed compile leaves nothing.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from edgeq import __version__
from edgeq.artifacts import (
    check_output_folder,
    remove_tree,
    replace_folder,
    sha256_bytes,
    stage_folder,
    tool_versions,
    write_json_atomic,
)
from edgeq.errors import BadInput, ConversionFailed, EdgeqError, QualityGateFailed
from edgeq.targets.mcu.cgen import INSTRUCTION_PROVENANCE, bit_exact_line, generate, prove, toolchain
from edgeq.targets.mcu.cgen.fit import before_build

MANIFEST = "edgeq_cgen.json"
DEFAULT_PROOF_SAMPLES = 20
OLD_FLASH_ESTIMATE = "TFLM runtime estimate: 36 KiB + 4 KiB per distinct op, plus the model bytes"


def folder_name(model_path: str | Path) -> str:
    return f"{Path(model_path).stem}_c"


def _tflm_figures(check: Callable[[], object]) -> dict:
    """TFLM's arena and flash estimate for the same model and board, or why there are none."""
    try:
        d = check().details  # type: ignore[attr-defined]
    except EdgeqError as exc:  # a TFLM misfit or abort must not stop the C runtime; keep its numbers if any
        d = dict(exc.details or {})
        d.setdefault("error", exc.one_line())
    return {
        "arena_bytes": d.get("arena_bytes"),
        "flash_bytes_estimate": d.get("flash_bytes"),
        "flash_estimate_basis": OLD_FLASH_ESTIMATE,
        **({"error": d["error"]} if "error" in d else {}),
    }


def footprint(data: bytes, origin: str, board, timeout_s: float = toolchain.DEFAULT_TIMEOUT_S) -> dict:
    """What the generated C engine would take on ``board``, cheaply (no proof, no QEMU): the memory plan's
    arena, and flash and static RAM of the model and kernels compiled for the board's core. A model the
    engine cannot generate, or a missing toolchain, gives ``{"available": False, "reason"}`` instead of
    figures it cannot have.

    The stack is not measured here (it is, under QEMU, by ``compile --runtime c``)."""
    try:
        project = generate(data, origin, core=board.core)
    except EdgeqError as exc:
        lacking = [m["op"] for m in (exc.details or {}).get("unsupported_ops") or []]
        why = f"no C kernel for {', '.join(lacking)}" if lacking else exc.message
        return {"available": False, "reason": f"the generated C cannot run it ({why})"}
    doc: dict = {
        "available": True,
        "arena_bytes": project.arena_bytes,
        "io_bytes": project.io_bytes,
        "flash_bytes": None,
        "static_ram_bytes": None,
        "stack_bytes": None,
        "basis": "arena from edgeq's memory plan; flash (text + data) and static RAM (data + bss) of model.o and the "
        "runtime's eq_*.o compiled with arm-none-eabi-gcc -O2; stack not measured (compile --runtime c measures it "
        "under QEMU)",
    }
    if project.constant_bytes > board.flash_bytes:
        doc["reason"] = (
            f"its constants alone ({project.constant_bytes:,} bytes) exceed the {board.flash_bytes:,} bytes of flash: "
            "not compiled"
        )
        return doc
    if not board.core.startswith("cortex-m"):
        doc["reason"] = f"arm-none-eabi-gcc does not build for {board.core}: flash not measured"
        return doc
    gone = toolchain.missing(("arm-none-eabi-gcc", "arm-none-eabi-size"))
    if gone:
        doc["reason"] = f"{', '.join(gone)} not installed ({toolchain.INSTALL}): flash not measured"
        return doc
    with tempfile.TemporaryDirectory(prefix="edgeq_cfoot_") as tmp:
        folder = Path(tmp)
        project.write(folder)
        sizes = toolchain.arm_objects_sizes(folder, folder / "build", board.core, timeout_s)
    doc.update(flash_bytes=sizes["model_flash_bytes"], static_ram_bytes=sizes["model_static_ram_bytes"])
    doc["mcpu"] = sizes["mcpu"]
    return doc


def footprint_line(c: dict, tflm_arena: int | None, tflm_flash: int | None) -> str:
    """One line comparing the generated C's RAM and flash with TFLM's arena and flash estimate."""
    if not c.get("available"):
        return f"generated C (--runtime c): not sized: {c.get('reason')}"
    tflm = f"TFLM: arena {_kib(tflm_arena)}, flash ~{_kib(tflm_flash)} (estimate)"
    if c.get("flash_bytes") is None:
        return f"generated C (--runtime c): arena {_kib(c['arena_bytes'])} (memory plan); {c.get('reason')}; {tflm}"
    return (
        f"generated C (--runtime c): static RAM {_kib(c['static_ram_bytes'])} (arena {_kib(c['arena_bytes'])}) + "
        f"stack, flash {_kib(c['flash_bytes'])} (model + kernels, measured from {c['mcpu']} objects); {tflm}"
    )


def _relocate(doc, staged: str, final: str):
    if isinstance(doc, dict):
        return {k: _relocate(v, staged, final) for k, v in doc.items()}
    if isinstance(doc, list):
        return [_relocate(v, staged, final) for v in doc]
    return doc.replace(staged, final) if isinstance(doc, str) else doc


def compile_c(
    model_path: str,
    out_dir: str,
    board,
    *,
    overwrite: bool | None,
    timeout_s: float,
    proof_samples: int,
    tflm_check: Callable[[], object],
    inputs_fn: Callable[[int], Iterable[np.ndarray]],
) -> dict:
    """Generate, prove and write the C project for ``model_path`` on ``board`` (a boards.Board).

    Args:
        tflm_check: returns TFLM's check report for the same model and board (for the comparison).
        inputs_fn: ``n -> chunks of samples`` (N in all, in the model's input type) for the proof.

    Returns:
        The compile details: files, memory plan, proof (host and QEMU), RAM/flash next to TFLM's.

    Raises:
        UnsupportedOp, BadInput: the model cannot be generated (all unsupported ops named).
        ConversionFailed: a build failed, or the generated C differs from LiteRT's reference kernels.
        QualityGateFailed: the constants or arena exceed the board (before any compiler runs), the Arm link
            overflows a memory region, or the measured RAM or flash does not fit the board.
        OutputExists: the folder exists and may not be replaced.
    """
    from edgeq.tflite import read_model_bytes

    if proof_samples < 1:
        raise BadInput(f"the proof needs at least one sample, got {proof_samples}", "e.g. --proof-samples 20")
    data = read_model_bytes(model_path)
    provenance = {"edgeq": __version__, "model_name": Path(model_path).name, "model_sha256": sha256_bytes(data)}
    project = generate(data, str(model_path), provenance, core=board.core)
    # constants and arena are known now: a project that cannot fit the board is not compiled for minutes
    before_build(project, board, str(model_path))
    out, final = check_output_folder(out_dir, folder_name(model_path), MANIFEST, overwrite)
    core = board.core if board.core in toolchain.emit.BOARDS else None
    staged = stage_folder(out, final.name)
    try:
        project.write(staged)
        proof = _proven(project, data, inputs_fn(proof_samples), staged, board, core, timeout_s, model_path)
        details = _details(project, board, core, str(final), proof, tflm_check)
        details["proof_inputs"] = f"{proof_samples} seeded random {project.input_dtype} samples" + (
            " (standard normal)" if project.input_dtype == "float32" else ""
        )
        _judge_fit(details, board, model_path)
        files = sorted(p.name for p in staged.iterdir() if p.is_file())
        manifest = {
            "target": "mcu",
            "runtime": "c",
            "model": {"path": str(model_path), "sha256": provenance["model_sha256"], "size_bytes": len(data)},
            "board": board.name,
            "files": files,
            "arena_bytes": project.arena_bytes,
            "proof": {k: v for k, v in proof.items() if k in ("host", "qemu", "not_proven", "num_samples")},
            "tool_versions": tool_versions(),
        }
        write_json_atomic(staged / MANIFEST, _relocate(manifest, str(staged), str(final)))
        replace_folder(staged, final, MANIFEST, overwrite)
    except BaseException:
        remove_tree(staged)
        raise
    details = _relocate(details, str(staged), str(final))
    details["files"] = [str(final / f) for f in [*files, MANIFEST]]
    return details


def _proven(project, data: bytes, samples, staged: Path, board, core: str | None, timeout_s: float, model_path) -> dict:
    """:func:`prove` on the host and, where QEMU emulates the board's core, under QEMU; a sample that is not
    bit-exact anywhere fails the compile."""
    proof = prove(project, data, samples, staged, cores=(core,) if core else (), timeout_s=timeout_s)
    if core is None:
        reason = f"QEMU emulates no {board.core} board (it has Cortex-M4, M7, M33 and M55)"
        proof["not_proven"].append(f"{board.core} under QEMU: {reason}")
    runs = {"host": proof["host"], **{f"qemu {c}": r for c, r in proof["qemu"].items()}}
    wrong = [
        f"{where}: {r['bit_exact']}/{r['num_samples']}"
        for where, r in runs.items()
        if "bit_exact" in r and r["bit_exact"] != r["num_samples"]
    ]
    if wrong:
        raise ConversionFailed(
            f"the generated C for {model_path} differs from {_against(runs)} ({'; '.join(wrong)} bit-exact)",
            "report this with the model attached; compile with --runtime tflm meanwhile",
            details={"proof": proof},
        )
    return proof


def _against(runs: dict) -> str:
    """The reference the comparisons' counts are against: TFLM's reference kernels when they ran."""
    return next((r["against"] for r in runs.values() if r.get("against")), "LiteRT's reference kernels")


def _details(project, board, core: str | None, final: str, proof: dict, tflm_check: Callable[[], object]) -> dict:
    """The compile's details: the project's figures, RAM and flash measured under QEMU (the arena alone when
    nothing ran there) against the board, TFLM's figures beside them, the proof."""
    measured = proof["qemu"].get(core, {}) if core else {}
    ram = measured.get("ram_bytes")
    flash = measured.get("flash_bytes")
    fit = {
        "ram": {
            "needed_bytes": ram if ram is not None else project.arena_bytes,
            "measured": ram is not None,
            "available_bytes": board.arena_ram_bytes,
        },
        "flash": {"needed_bytes": flash, "measured": flash is not None, "available_bytes": board.flash_bytes},
    }
    fit["ram"]["fits"] = fit["ram"]["needed_bytes"] <= board.arena_ram_bytes
    fit["flash"]["fits"] = flash is None or flash <= board.flash_bytes
    return {
        "target": "mcu",
        "runtime": "c",
        "export_dir": final,
        "board": board.name,
        "core": board.core,
        "ops": sorted(set(project.ops)),
        "num_ops": len(project.ops),
        "macs": project.macs,
        "arena_bytes": project.arena_bytes,
        "constant_bytes": project.constant_bytes,
        "memory_plan": project.plan,
        "ram_bytes": ram,
        # TFLM's arena holds the input and output tensors; here they are the caller's arrays
        "io_bytes": project.io_bytes,
        "flash_bytes": flash,
        "fit": fit,
        "fits": fit["ram"]["fits"] and fit["flash"]["fits"],
        "tflm": _tflm_figures(tflm_check),
        "proof": proof,
        "instructions_provenance": INSTRUCTION_PROVENANCE,
    }


def _judge_fit(details: dict, board, model_path: str) -> None:
    """Refuse a project whose measured RAM or flash does not fit the board (exit 6, every figure given)."""
    if details["fits"]:
        return
    fit, flash = details["fit"], details["flash_bytes"]
    raise QualityGateFailed(
        f"{model_path} with the generated C runtime does not fit {board.name}: RAM "
        f"{fit['ram']['needed_bytes']:,} of {board.arena_ram_bytes:,} bytes, flash "
        f"{flash if flash is not None else '?'} of {board.flash_bytes:,} bytes",
        "choose a bigger board (--board) or shrink the model",
        details=details,
    )


def _kib(n) -> str:
    return "-" if n is None else f"{n / 1024:,.1f} KiB"


def render(doc: dict) -> str:
    """The human summary of a ``--runtime c`` compile result (the CLI prints it)."""
    proof = doc.get("proof") or {}
    host = proof.get("host") or {}
    tflm = doc.get("tflm") or {}
    lines = [
        f"generated C for {doc.get('board')} ({doc.get('core')}): {doc.get('export_dir')}",
        f"  {doc.get('num_ops')} ops ({', '.join(doc.get('ops') or [])}), {doc.get('macs', 0):,} MACs",
        f"  memory plan: one arena of {doc.get('arena_bytes', 0):,} bytes (memory_plan.txt)",
    ]
    if "bit_exact" in host:
        lines.append(f"  host (gcc): {bit_exact_line(host)}")
    for core, r in (proof.get("qemu") or {}).items():
        if "bit_exact" not in r:
            continue
        lines.append(
            f"  {core} on QEMU {r['machine']}: {bit_exact_line(r)}; "
            f"{r['instructions_per_inference']:,} instructions per inference ({r['instructions_provenance']})"
        )
        lines.append(
            f"  {core} ELF: flash {_kib(r['flash_bytes'])} (model + kernels), RAM {_kib(r['ram_bytes'])} "
            f"(static {r['static_ram_bytes']:,} + stack {r['stack_bytes']:,} bytes; the caller's input and output "
            f"arrays add {doc.get('io_bytes', 0):,})"
        )
    lines.append(
        f"  TFLM for comparison: arena {_kib(tflm.get('arena_bytes'))}, flash estimate "
        f"{_kib(tflm.get('flash_bytes_estimate'))} ({tflm.get('flash_estimate_basis')})"
        + (f"; TFLM: {tflm['error']}" if tflm.get("error") else "")
    )
    for reason in proof.get("not_proven") or []:
        lines.append(f"  not proven: {reason}")
    if proof.get("wall_time_s") is not None:
        lines.append(f"  proof took {proof['wall_time_s']:.1f} s")
    return "\n".join(lines)


def render_bench(doc: dict, model: str) -> str:
    """The human summary of ``bench --target mcu --runtime c`` (the CLI prints it)."""
    ins = doc.get("instructions") or {}
    mem = doc.get("memory") or {}
    lines = [
        f"{model} on {doc.get('device')}: {doc.get('num_runs')} inference(s)",
        f"  instructions per inference: p50 {ins.get('per_inference_p50', 0):,} (min {ins.get('min', 0):,}, max "
        f"{ins.get('max', 0):,}) for {ins.get('macs', 0):,} MACs  [{ins.get('kind')}: {ins.get('provenance')}]",
        f"  flash {_kib(mem.get('flash_bytes'))}, RAM {_kib(mem.get('ram_bytes'))} (static "
        f"{mem.get('static_ram_bytes') or 0:,} + stack {mem.get('stack_bytes') or 0:,} bytes; arena "
        f"{mem.get('arena_bytes') or 0:,}) [measured from the linked ELF]",
    ]
    lines += [f"  {n}" for n in doc.get("notes") or []]
    return "\n".join(lines)
