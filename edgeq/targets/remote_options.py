"""Options of a run over SSH on a board (``--host``): the cpu target's options, and coral's for bench.

Light on purpose: the CLI reads these declarations to build its flags without importing the targets.
"""

from __future__ import annotations

from edgeq.config import PORT, TIMEOUT_S
from edgeq.targets.base import option

OPTIONS = (
    option("host", "--host", "bench", "Run on a board over SSH (key authentication).", metavar="USER@BOARD"),
    option("port", "--port", "bench", "SSH port for --host.", type=int, bound=PORT),
    option("identity", "--identity", "bench", "SSH private key for --host.", path="file"),
    option("python", "--remote-python", "bench", "Python on the board for --host (default python3).", metavar="PATH"),
    option(
        "timeout_s",
        "--timeout-s",
        "bench",
        "Timeout of each remote call over SSH (--host).",
        type=float,
        bound=TIMEOUT_S,
    ),
)
DEVICE_HELP = None  # the host CPU has no device string
