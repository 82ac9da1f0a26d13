"""Microcontroller boards as named profiles: memory, core, clock, and where each number comes from.

A board answers three questions for ``edgeq check --target mcu --board NAME``: does the tensor arena fit
in its largest block of RAM, does the model plus the TFLM runtime fit in its flash, and may it run float
ops at all (``integer_only``). ``core`` selects the latency cost factors (``edgeq.targets.mcu.estimate``).

Numbers marked in ``assumptions`` are edgeq's choices where a datasheet gives no single answer (a module
whose flash depends on the part ordered, RAM that the vendor SDK partly reserves); everything else comes
from the ``sources``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from edgeq.errors import UsageError

KiB = 1024
MiB = 1024 * 1024


@dataclass(frozen=True)
class Board:
    name: str  # what --board takes
    title: str
    core: str  # cortex-m4 | cortex-m7 | cortex-m55 | cortex-m0plus | xtensa-lx7
    clock_hz: int
    fpu: str | None  # "sp" single precision, "dp" double, None: no FPU
    ram_bytes: int  # on-chip SRAM in total
    arena_ram_bytes: int  # the largest contiguous block the tensor arena can live in
    flash_bytes: int  # where the model and the code live
    integer_only: bool  # float ops are refused (no FPU, or a board profiled for its integer NPU)
    integer_only_reason: str = ""
    ethos_u: dict | None = None  # the NPU as Vela options, for boards that carry one
    sources: tuple[str, ...] = ()
    assumptions: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "title": self.title,
            "core": self.core,
            "clock_hz": self.clock_hz,
            "fpu": self.fpu,
            "ram_bytes": self.ram_bytes,
            "arena_ram_bytes": self.arena_ram_bytes,
            "flash_bytes": self.flash_bytes,
            "integer_only": self.integer_only,
            "integer_only_reason": self.integer_only_reason,
            "ethos_u": self.ethos_u,
            "sources": list(self.sources),
            "assumptions": list(self.assumptions),
            "notes": list(self.notes),
        }


BOARDS: dict[str, Board] = {
    b.name: b
    for b in (
        Board(
            name="stm32h7a3",
            title="ST NUCLEO-H7A3ZI-Q (STM32H7A3ZI, Cortex-M7 @ 280 MHz)",
            core="cortex-m7",
            clock_hz=280_000_000,
            fpu="dp",
            ram_bytes=1380 * KiB,
            arena_ram_bytes=1024 * KiB,
            flash_bytes=2 * MiB,
            integer_only=False,
            sources=(
                "ST STM32H7A3 datasheet: 2 Mbytes flash, 1.4 Mbytes RAM (1 MB AXI SRAM, 128 KB AHB SRAM, "
                "32 KB SRD SRAM, 192 KB TCM, 4 KB backup)",
                "MLPerf Tiny v1.1 closed division, Krai (NUCLEO-H7A3ZI, X-CUBE-AI 8.0)",
            ),
            notes=("the arena must fit the 1 MB AXI SRAM, the largest contiguous block",),
        ),
        Board(
            name="stm32l4r5",
            title="ST NUCLEO-L4R5ZI (STM32L4R5ZI, Cortex-M4F @ 120 MHz)",
            core="cortex-m4",
            clock_hz=120_000_000,
            fpu="sp",
            ram_bytes=640 * KiB,
            arena_ram_bytes=640 * KiB,
            flash_bytes=2 * MiB,
            integer_only=False,
            sources=(
                "ST STM32L4R5 datasheet DS12023 / RM0432: 2 Mbytes flash, 640 Kbytes SRAM "
                "(SRAM1 192 K + SRAM2 64 K + SRAM3 384 K, contiguous from 0x20000000)",
                "MLPerf Tiny reference submission board (TFLM + Mbed); v1.1 closed division, Krai",
            ),
        ),
        Board(
            name="nrf52840",
            title="Nordic nRF52840 (Arduino Nano 33 BLE Sense; Cortex-M4F @ 64 MHz)",
            core="cortex-m4",
            clock_hz=64_000_000,
            fpu="sp",
            ram_bytes=256 * KiB,
            arena_ram_bytes=256 * KiB,
            flash_bytes=1 * MiB,
            integer_only=False,
            sources=("Nordic nRF52840 product specification: 1 MB flash, 256 KB RAM, Cortex-M4F 64 MHz",),
            notes=("the SoftDevice (BLE stack) and the Arduino core take part of the RAM and flash",),
        ),
        Board(
            name="esp32s3",
            title="Espressif ESP32-S3 (Xtensa LX7 dual core @ 240 MHz)",
            core="xtensa-lx7",
            clock_hz=240_000_000,
            fpu="sp",
            ram_bytes=512 * KiB,
            arena_ram_bytes=320 * KiB,
            flash_bytes=8 * MiB,
            integer_only=False,
            sources=("Espressif ESP32-S3 datasheet: 512 KB internal SRAM, external flash and PSRAM",),
            assumptions=(
                "flash: 8 MB, as on the ESP32-S3-DevKitC-1-N8 (the flash is outside the chip and "
                "depends on the module)",
                "arena: 320 KB of internal RAM; ESP-IDF keeps the rest of the 512 KB for itself "
                "(a larger arena goes to PSRAM on modules that have it)",
            ),
        ),
        Board(
            name="rp2040",
            title="Raspberry Pi Pico (RP2040, Cortex-M0+ @ 133 MHz, no FPU)",
            core="cortex-m0plus",
            clock_hz=133_000_000,
            fpu=None,
            ram_bytes=264 * KiB,
            arena_ram_bytes=256 * KiB,
            flash_bytes=2 * MiB,
            integer_only=True,
            integer_only_reason="the Cortex-M0+ has no FPU: float kernels would run in software emulation",
            sources=("Raspberry Pi RP2040 datasheet: 264 KB SRAM (256 KB striped + 2 x 4 KB); Pico: 2 MB QSPI flash",),
        ),
        Board(
            name="corstone-300",
            title="Arm Corstone-300 (Cortex-M55 + Ethos-U55 NPU; FVP or MPS3 AN552)",
            core="cortex-m55",
            clock_hz=500_000_000,
            fpu="sp",
            ram_bytes=2 * MiB,
            arena_ram_bytes=2 * MiB,
            flash_bytes=256 * MiB,
            integer_only=True,
            integer_only_reason="the Ethos-U55 computes int8/int16 only: float ops would all fall back to "
            "the Cortex-M55",
            ethos_u={
                "accelerator": "ethos-u55-128",
                "system_config": "Ethos_U55_High_End_Embedded",
                "memory_mode": "Shared_Sram",
            },
            sources=(
                "Arm ml-embedded-evaluation-kit, docs/sections/memory_considerations.md: the tensor arena "
                "lives in ISRAM0 + ISRAM1 (1 MiB each), limited to 2 MiB on Corstone-300",
                "Vela Arm/vela.ini System_Config.Ethos_U55_High_End_Embedded: core_clock=500e6",
            ),
            assumptions=(
                "flash: the evaluation kit keeps the model in DDR; edgeq counts one 256 MiB DDR4 block",
                "clock: the NPU clock of Vela's Ethos_U55_High_End_Embedded config; the M55 clock is design-dependent",
            ),
        ),
    )
}

DEFAULT_BOARD = "stm32h7a3"


# A core as its maker writes it ("Cortex-M4"), for people and for the typed findings' Board.
CORE_NAMES = {
    "cortex-m0plus": "Cortex-M0+",
    "cortex-m4": "Cortex-M4",
    "cortex-m7": "Cortex-M7",
    "cortex-m33": "Cortex-M33",
    "cortex-m55": "Cortex-M55",
    "xtensa-lx7": "Xtensa LX7",
}


def core_name(core: str) -> str:
    """``core`` as its maker writes it: cortex-m4 -> Cortex-M4 (an unknown core as given)."""
    return CORE_NAMES.get(core, core)


def get(name: str | None) -> Board:
    """The board called ``name`` (None: :data:`DEFAULT_BOARD`).

    Raises:
        UsageError: unknown board (the message lists the known ones).
    """
    key = DEFAULT_BOARD if name is None else name.strip().lower()
    if key not in BOARDS:
        raise UsageError(f"unknown board {name!r}", f"choose one of: {', '.join(BOARDS)}")
    return BOARDS[key]


def table() -> list[dict]:
    """Every board as a row (what the docs and ``edgeq targets`` show)."""
    return [b.to_dict() for b in BOARDS.values()]
