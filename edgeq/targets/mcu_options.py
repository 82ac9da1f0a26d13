"""The mcu target's options as data (light: the CLI reads them without importing the target)."""

from __future__ import annotations

from edgeq.config import CHECK_SAMPLES, TIMEOUT_S
from edgeq.targets.base import OVERWRITE, option

# Written out (not read from mcu.boards) so that --help imports no target; a test keeps it in step.
BOARD_NAMES = ("stm32h7a3", "stm32l4r5", "nrf52840", "esp32s3", "rp2040", "corstone-300")

OPTIONS = (
    option(
        "board",
        "--board",
        "check compile bench",
        f"Board profile: {BOARD_NAMES[0]} (default), {', '.join(BOARD_NAMES[1:])}.",
    ),
    option(
        "parity_samples",
        "--parity-samples",
        "check",
        "Seeded inputs compared between TFLM and LiteRT (8).",
        type=int,
        bound=CHECK_SAMPLES,
    ),
    option(
        "timeout_s",
        "--timeout-s",
        "check compile",
        "Kill each TFLM child process after this many seconds (300).",
        type=float,
        bound=TIMEOUT_S,
    ),
    OVERWRITE,
    option(
        "runtime",
        "--runtime",
        "compile bench",
        "tflm: TFLM (default); c: edgeq's generated C engine, proven bit-exact under QEMU (bench: QEMU "
        "instruction counts, not board cycles).",
        choices=("tflm", "c"),
    ),
    option(
        "proof_samples",
        "--proof-samples",
        "compile",
        "(--runtime c) Samples compared bit for bit (20).",
        type=int,
        bound=CHECK_SAMPLES,
    ),
)
DEVICE_HELP = None  # on-device runs are not implemented: a device would be silently ignored
