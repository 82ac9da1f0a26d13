"""The mcu target's results as typed findings (:mod:`edgeq.findings`): the board, the fit with each figure's
basis, the latency estimate, the QEMU instruction count and bit-exactness proof, messages with their level.

The check's fit rests on TFLM run on this host (the arena, measured) and an estimate of the runtime's flash;
``compile --runtime c`` measures both from the linked firmware (arm-none-eabi-size, the stack painted under
QEMU); the latency on the board is an estimate with its basis and error (:mod:`.estimate`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from edgeq.findings import Basis, Board, Figure, Findings, Fit, Message, Proof, info, warning
from edgeq.targets.mcu import boards, estimate, ops
from edgeq.targets.mcu.cgen import bit_exact_line

HOST_TFLM = "TFLM on the host"
ELF_WHERE = "arm-none-eabi-size / QEMU stack"
REFERENCE = "LiteRT's reference kernels (BUILTIN_REF)"
HOST_BUILD = "host (gcc)"
ELF_RAM_HOW = (
    "static RAM (data + bss) of the model and kernels in the linked ELF + the stack painted and read back under QEMU"
)
ELF_FLASH_HOW = "text + data of the model and kernels in the linked ELF"
C_RAM = "RAM (static + stack)"


def board(brd: boards.Board) -> Board:
    """The board as findings name it: its ``--board`` name, its core as the maker writes it, its title."""
    return Board(brd.name, boards.core_name(brd.core), brd.title)


def runs_on(brd: boards.Board) -> str:
    """What runs the ops on ``brd`` (a microcontroller has no accelerator here)."""
    return f"all ops on the {boards.core_name(brd.core)}"


def qemu_where(machine: str, core: str) -> str:
    return f"QEMU {machine} ({boards.core_name(core)})"


def latency(est: dict) -> Figure | None:
    """The latency estimate (:func:`.estimate.estimate`) as an ESTIMATED figure; None without one."""
    if est.get("latency_ms") is None:
        return None
    return Figure(
        est["latency_ms"],
        "ms",
        Basis.ESTIMATED,
        where=str(est.get("board") or ""),
        how=estimate.basis(est),
        error=estimate.error(est),
    )


def _base(brd: boards.Board, messages: Iterable[Message] = ()) -> Findings:
    return Findings(no_accelerator=runs_on(brd), board=board(brd), messages=tuple(messages))


def check(d: dict, brd: boards.Board, messages: Iterable[Message]) -> Findings:
    """The check's findings from its details: TFLM's arena (measured on the host), flash (model + a runtime
    estimate), the board's limits, the latency estimate."""
    arena = d["arena"]
    ram_how = (
        "TFLM's RecordingMicroAllocator report, checked by allocating exactly that arena"
        if arena.get("allocates_at_report_total", True)
        else "the smallest arena TFLM accepts (bisection): its allocation report falls short"
    )
    flash = d["flash"]
    fit = Fit(
        ram=Figure(d["arena_bytes"], "bytes", Basis.MEASURED, where=HOST_TFLM, how=ram_how + " (64-bit host)"),
        flash=Figure(
            d["flash_bytes"],
            "bytes",
            Basis.ESTIMATED,
            where=brd.name,
            how=f"model {flash['model_bytes']:,} bytes + {ops.RUNTIME_FLASH_BASIS}",
            error="the runtime part may be off by tens of KB (toolchain, logging, kernel choice)",
        ),
        ram_limit_bytes=brd.arena_ram_bytes,
        flash_limit_bytes=brd.flash_bytes,
        ram_what="arena",
    )
    margin = Figure(d["arena_bytes_with_margin"], "bytes", Basis.PREDICTED, where=brd.name, how=ops.ARENA_MARGIN_BASIS)
    return replace(
        _base(brd, messages), fit=fit, latency=latency(d["latency_estimate"]), memory={"kTensorArenaSize": margin}
    )


def tflm_compile(d: dict, brd: boards.Board, footprint_line: str) -> Findings:
    """The TFLM export's findings: the arena constant written to the firmware, and what the generated C
    would take instead (compiled from its objects, when the toolchain is there)."""
    memory = {
        "kTensorArenaSize": Figure(
            d["tensor_arena_size_constant"], "bytes", Basis.PREDICTED, where=brd.name, how=ops.ARENA_MARGIN_BASIS
        )
    }
    c = d.get("c_runtime") or {}
    if c.get("flash_bytes") is not None:
        how = f"model.o and the runtime's eq_*.o compiled with arm-none-eabi-gcc -O2 for {c.get('mcpu')}"
        memory["generated C flash"] = Figure(c["flash_bytes"], "bytes", Basis.COMPILED, where=brd.name, how=how)
        memory["generated C static RAM"] = Figure(
            c["static_ram_bytes"], "bytes", Basis.COMPILED, where=brd.name, how=how + "; stack not measured"
        )
    return replace(_base(brd, [info(footprint_line)]), memory=memory)


def proof_reference(cmp: dict) -> str:
    """The reference a comparison's counts are against, and how the other reference fared: "TFLM reference
    kernels (LiteRT BUILTIN_REF: 8/8 bit-exact too)"; REFERENCE for a comparison made before TFLM was run."""
    if "references" not in cmp:
        return REFERENCE
    main = cmp["against"]
    others = [f"{k}: {r['bit_exact']}/{r['num_samples']} bit-exact" for k, r in cmp["references"].items() if k != main]
    return f"{main} ({'; '.join(others)})" if others else main


def _bit_exact(cmp: dict) -> str:
    if "references" not in cmp:
        return f"bit-exact {cmp['bit_exact']}/{cmp['num_samples']} with {REFERENCE}"
    return bit_exact_line(cmp)


def _proof_messages(proof: dict) -> list[Message]:
    out = []
    host = proof.get("host") or {}
    if "bit_exact" in host:
        out.append(info(f"host (gcc): {_bit_exact(host)}"))
    for core, r in (proof.get("qemu") or {}).items():
        if "bit_exact" in r:
            where = qemu_where(r["machine"], core)
            out.append(info(f"{where}: {_bit_exact(r)}"))
    out += [warning(f"not proven: {reason}") for reason in proof.get("not_proven") or []]
    return out


def c_compile(d: dict, brd: boards.Board) -> Findings:
    """``compile --runtime c``'s findings: RAM and flash measured from the linked firmware (or, without a
    QEMU run, the memory plan's arena and the generated constants), the proof, the instruction count."""
    proof = d.get("proof") or {}
    run = (proof.get("qemu") or {}).get(d.get("core") or "") or {}
    memory = {"arena (memory plan)": Figure(d["arena_bytes"], "bytes", Basis.COMPILED, how="edgeq's memory plan")}
    tflm_arena = (d.get("tflm") or {}).get("arena_bytes")
    if tflm_arena is not None:
        memory["TFLM arena"] = Figure(tflm_arena, "bytes", Basis.MEASURED, where=HOST_TFLM)
    if "bit_exact" in run:
        where = qemu_where(run["machine"], d["core"])
        fit = Fit(
            Figure(run["ram_bytes"], "bytes", Basis.MEASURED, where=ELF_WHERE, how=ELF_RAM_HOW),
            Figure(run["flash_bytes"], "bytes", Basis.MEASURED, where=ELF_WHERE, how=ELF_FLASH_HOW),
            brd.arena_ram_bytes,
            brd.flash_bytes,
            ram_what=C_RAM,
        )
        instructions: Figure | None = qemu_instructions(run, where)
        proven: Proof | None = Proof(run["bit_exact"], run["num_samples"], proof_reference(run), where)
    else:  # no QEMU run: what generation knows, labelled as such
        fit = Fit(
            Figure(
                d["arena_bytes"],
                "bytes",
                Basis.COMPILED,
                where=brd.name,
                how="edgeq's memory plan: the arena alone (static data and stack not measured without a QEMU run)",
            ),
            Figure(
                d["constant_bytes"],
                "bytes",
                Basis.COMPILED,
                where=brd.name,
                how="the generated constants alone (weights, biases, tables); code not measured without a QEMU run",
            ),
            brd.arena_ram_bytes,
            brd.flash_bytes,
        )
        instructions = None
        host = proof.get("host") or {}
        proven = (
            Proof(host["bit_exact"], host["num_samples"], proof_reference(host), HOST_BUILD)
            if "bit_exact" in host
            else None
        )
    return replace(_base(brd, _proof_messages(proof)), fit=fit, instructions=instructions, proof=proven, memory=memory)


def host_bench(brd: boards.Board, est: dict, messages: Iterable[Message]) -> Findings:
    """The host TFLM benchmark's findings: the board's latency estimate (the host timing is not the board's)."""
    return replace(_base(brd, messages), latency=latency(est))


def c_bench(brd: boards.Board, run: dict, n: int, messages: Iterable[Message], engine_est: dict) -> Findings:
    """``bench --runtime c``'s findings: instructions per inference under QEMU (not time, not cycles), RAM
    and flash measured from the linked ELF, the bit-exactness of every inference, and the latency estimated
    from those instructions (``engine_est``, :func:`cgen.latency.estimate`; none when the core is not calibrated)."""
    where = qemu_where(run["machine"], brd.core)
    est_ms = engine_est.get("latency_ms")
    return replace(
        _base(brd, messages),
        latency=None
        if est_ms is None
        else Figure(
            est_ms,
            "ms",
            Basis.ESTIMATED,
            where=brd.name,
            how=engine_est["basis"],
            error=f"+/-{engine_est['error']:.0%} on the published points",
        ),
        fit=Fit(
            Figure(run["ram_bytes"], "bytes", Basis.MEASURED, where=ELF_WHERE, how=ELF_RAM_HOW),
            Figure(run["flash_bytes"], "bytes", Basis.MEASURED, where=ELF_WHERE, how=ELF_FLASH_HOW),
            brd.arena_ram_bytes,
            brd.flash_bytes,
            ram_what=C_RAM,
        ),
        instructions=qemu_instructions(run, where),
        proof=Proof(run["bit_exact"], n, proof_reference(run), where),
    )


def qemu_instructions(run: dict, where: str) -> Figure:
    """Instructions per inference counted under QEMU (measured; instructions, not time nor board cycles)."""
    lo, hi = run["instructions_min_max"]
    return Figure(
        run["instructions_per_inference"],
        "instructions",
        Basis.MEASURED,
        where=where,
        how=run["instructions_provenance"],
        low=lo,
        high=hi,
    )
