"""The mcu target's options as data."""

from __future__ import annotations

from edgeq.targets.base import option
from edgeq.targets.mcu.boards import BOARDS, DEFAULT_BOARD

OPTIONS = (
    option(
        "board",
        "--board",
        "check compile bench",
        f"Board profile: {DEFAULT_BOARD} (default), {', '.join(b for b in BOARDS if b != DEFAULT_BOARD)}.",
    ),
    option(
        "parity_samples", "--parity-samples", "check", "Seeded inputs compared between TFLM and LiteRT (8).", type=int
    ),
    option(
        "timeout_s",
        "--timeout-s",
        "check compile",
        "Kill each TFLM child process after this many seconds (300).",
        type=float,
    ),
    option(
        "overwrite", "--force", "compile", "Overwrite existing outputs.", type=bool, is_flag=True, cli_default=False
    ),
)
DEVICE_HELP = None  # on-device runs are not implemented: a device would be silently ignored
