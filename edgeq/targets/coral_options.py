"""The coral target's options as data, the compiler's one-letter flags kept as aliases.

Light: the CLI reads them without importing the target.
"""

from __future__ import annotations

from edgeq.config import RUNTIME_VERSION, TIMEOUT_S, Bound
from edgeq.targets import remote_options
from edgeq.targets.base import OVERWRITE, option

SEARCH_STEP = Bound(1, 10_000, example="1")
SEGMENTS = Bound(1, 256, example="2")
COMPILER_TIMEOUT_S = Bound(1, 86_400, example="180")

OPTIONS = (
    option(
        "runtime_version",
        "--runtime-version",
        "check",
        "Edge TPU runtime version the model must run on, as the compiler's -m; default 14 (what "
        "edgetpu_compiler 16 targets).",
        type=int,
        bound=RUNTIME_VERSION,
    ),
    option("compiler", "--compiler", "compile", "edgetpu_compiler to run (default: on PATH).", metavar="PATH"),
    option(
        "min_runtime_version",
        "--min-runtime-version",
        "compile",
        "Lowest Edge TPU runtime to support [-m].",
        type=int,
        bound=RUNTIME_VERSION,
        short="-m",
    ),
    option(
        "enable_multiple_subgraphs",
        "--enable-multiple-subgraphs",
        "compile",
        "Several Edge TPU subgraphs, experimental [-a].",
        type=bool,
        is_flag=True,
        short="-a",
    ),
    option(
        "search_delegate",
        "--search-delegate",
        "compile",
        "On failure, retry cutting the graph earlier [-d].",
        type=bool,
        is_flag=True,
        short="-d",
    ),
    option(
        "delegate_search_step",
        "--delegate-search-step",
        "compile",
        "Step of that search [-k].",
        type=int,
        short="-k",
        bound=SEARCH_STEP,
    ),
    option(
        "intermediate_tensors",
        "--intermediate-tensors",
        "compile",
        "Comma-separated tensors where the Edge TPU part ends [-i].",
        metavar="NAMES",
        short="-i",
    ),
    option(
        "num_segments",
        "--num-segments",
        "compile",
        "Segments for pipelining [-n].",
        type=int,
        short="-n",
        bound=SEGMENTS,
    ),
    option(
        "compiler_timeout_sec",
        "--compiler-timeout-sec",
        "compile",
        "The compiler's own timeout (180 s) [-t].",
        type=int,
        bound=COMPILER_TIMEOUT_S,
        short="-t",
    ),
    option(
        "timeout_s",
        "--timeout-s",
        "compile",
        "Kill the compiler after this many seconds (600).",
        type=float,
        bound=TIMEOUT_S,
    ),
    option(
        "require_compiler",
        "--require-compiler",
        "compile",
        "A missing compiler is an error (exit 5), not a skipped step.",
        type=bool,
        is_flag=True,
    ),
    OVERWRITE,
    *remote_options.OPTIONS,
)
DEVICE_HELP = "Edge TPU device: usb, usb:0, pci or pci:0"
