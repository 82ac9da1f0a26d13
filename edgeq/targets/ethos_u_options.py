"""The ethos-u target's options as data (Vela's configuration).

Light: the CLI reads them without importing the target.
"""

from __future__ import annotations

from edgeq.config import TIMEOUT_S
from edgeq.targets.base import OVERWRITE, option

OPTIONS = (
    option(
        "accelerator",
        "--accelerator",
        "check compile",
        "Vela accelerator config, e.g. ethos-u55-128, ethos-u65-256.",
    ),
    option("system_config", "--system-config", "check compile", "System config from Vela's vela.ini."),
    option("memory_mode", "--memory-mode", "check compile", "Sram_Only, Shared_Sram, Dedicated_Sram."),
    option("optimise", "--optimise", "check compile", "Vela's optimisation strategy.", choices=("Performance", "Size")),
    option(
        "timeout_s",
        "--timeout-s",
        "check compile",
        "Kill Vela after this many seconds (600).",
        type=float,
        bound=TIMEOUT_S,
    ),
    OVERWRITE,
)
DEVICE_HELP = None  # no Ethos-U NPU or FVP runs here
