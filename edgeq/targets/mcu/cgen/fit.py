"""Does the generated project fit: judged from what generation knows, before any compiler runs, and from
the linker's own words when a link still overflows a memory region.

Right after generation the constant bytes (weights, biases, multipliers, tables) and the arena are known
exactly. Constants live in flash, so constants above the board's flash cannot fit whatever the compiler
does; the arena must fit the board's largest RAM block, and the arena with the caller's input and output
arrays its RAM. Both are "does not fit" verdicts (exit 6) reached in milliseconds instead of after minutes
of gcc and QEMU on a project that cannot fit.
"""

from __future__ import annotations

import re

from edgeq.errors import EdgeqError, QualityGateFailed

# GNU ld: "region `FLASH' overflowed by 75720 bytes" (and "section `.text' will not fit in region `FLASH'")
_OVERFLOW = re.compile(r"region [`'\"]?([\w.]+)['\"]? overflowed by (\d+) bytes")
_WILL_NOT_FIT = re.compile(r"will not fit in region [`'\"]?([\w.]+)['\"]?")
SHRINK = "choose a bigger board (--board) or shrink the model (fewer channels or units, a smaller input)"


def _kib(n: int) -> str:
    return f"{n / 1024:,.1f} KiB"


def before_build(project, board, origin: str) -> dict:
    """The fit of ``project`` (a :class:`edgeq.targets.mcu.cgen.Project`) on ``board`` from its generated
    figures alone.

    Returns:
        {"fits": True, "checked_before_build": {...}} when nothing rules it out.

    Raises:
        QualityGateFailed: the constants exceed the board's flash, the arena its largest RAM block, or the
            arena with the input and output arrays its RAM (every figure in ``details``).
    """
    ram_needed = project.arena_bytes + project.io_bytes
    fit = {
        "flash": {
            "needed_bytes_at_least": project.constant_bytes,
            "available_bytes": board.flash_bytes,
            "fits": project.constant_bytes <= board.flash_bytes,
            "basis": "constant bytes as generated (weights, biases, multipliers, tables); code adds to them",
        },
        "arena": {
            "needed_bytes": project.arena_bytes,
            "available_bytes": board.arena_ram_bytes,
            "fits": project.arena_bytes <= board.arena_ram_bytes,
            "basis": "edgeq's memory plan",
        },
        "ram": {
            "needed_bytes_at_least": ram_needed,
            "available_bytes": board.ram_bytes,
            "fits": ram_needed <= board.ram_bytes,
            "basis": "arena + the caller's input and output arrays; stack and static data add to them",
        },
    }
    if all(f["fits"] for f in fit.values()):
        return {"fits": True, "checked_before_build": fit}
    parts = []
    if not fit["flash"]["fits"]:
        parts.append(
            f"constants {project.constant_bytes:,} bytes ({_kib(project.constant_bytes)}) > flash "
            f"{board.flash_bytes:,} bytes"
        )
    if not fit["arena"]["fits"]:
        parts.append(f"arena {project.arena_bytes:,} bytes > {board.arena_ram_bytes:,} bytes of RAM for the arena")
    if not fit["ram"]["fits"]:
        parts.append(f"arena + input/output arrays {ram_needed:,} bytes > RAM {board.ram_bytes:,} bytes")
    raise QualityGateFailed(
        f"{origin} with the generated C runtime does not fit {board.name}: " + "; ".join(parts) + " (known from "
        "the generated project, before any compiler ran)",
        SHRINK,
        details={
            "target": "mcu",
            "runtime": "c",
            "board": board.name,
            "fits": False,
            "fit": fit,
            "constant_bytes": project.constant_bytes,
            "arena_bytes": project.arena_bytes,
            "io_bytes": project.io_bytes,
        },
    )


def ld_overflow(text: str) -> dict | None:
    """The region and the overflow in bytes from GNU ld's messages, or None when it reports no overflow."""
    over = _OVERFLOW.search(text)
    if over:
        return {"region": over.group(1), "overflow_bytes": int(over.group(2))}
    wont = _WILL_NOT_FIT.search(text)
    return {"region": wont.group(1), "overflow_bytes": None} if wont else None


def link_misfit(exc: EdgeqError, machine: str, core: str) -> QualityGateFailed | None:
    """A failed link that is a memory region overflow, as the does-not-fit verdict; None for other failures.

    The region is that of QEMU's ``machine`` (the proof links for it, with ``link_<core>.ld``)."""
    details = exc.details or {}
    found = ld_overflow(str(details.get("stderr") or "") + "\n" + exc.message)
    if found is None:
        return None
    by = f"by {found['overflow_bytes']:,} bytes" if found["overflow_bytes"] is not None else "(ld gives no figure)"
    return QualityGateFailed(
        f"the generated C does not fit the {found['region']} region of QEMU's {machine} ({core}, "
        f"link_{core}.ld): it overflows {by}",
        f"the proof links for QEMU's {machine}, whose {found['region']} may be smaller than the board's: shrink the "
        "model, or choose a --board with another core",
        details={"fits": False, "core": core, "machine": machine, "ld_overflow": found},
    )
