"""Task functions for the executor tests: module level, so a spawned process or a Ray worker imports them."""

from __future__ import annotations

import os
import time
from pathlib import Path


def square_after(x: int, delay_s: float) -> int:
    """x*x after ``delay_s`` seconds (a later task can finish first)."""
    time.sleep(delay_s)
    return x * x


def fail(message: str) -> int:
    raise ValueError(message)


def pid() -> int:
    return os.getpid()


def die_once(marker: str, x: int) -> int:
    """The first attempt kills its own worker (as the OOM killer would); the next returns ``x``."""
    path = Path(marker)
    if not path.exists():
        path.write_text("died once")
        os.kill(os.getpid(), 9)
    return x


def slow_with_pid(pid_file: str, seconds: float, x: int) -> int:
    """Writes its worker's pid (for a test to kill it from outside), then works ``seconds``."""
    Path(pid_file).with_name(Path(pid_file).name + f".{os.getpid()}").write_text(str(os.getpid()))
    Path(pid_file).write_text(str(os.getpid()))
    time.sleep(seconds)
    return x


def stand_in_bench(device: str, seconds: float) -> dict[str, object]:
    """A stand-in benchmark holding ``device`` for ``seconds``: when it started and ended (wall clock,
    comparable across this machine's nodes), so a test can see that no two overlapped on one device."""
    start = time.time()
    time.sleep(seconds)
    return {"device": device, "start": start, "end": time.time(), "pid": os.getpid()}


def vanished_bench(device: str) -> dict[str, object]:
    """A benchmark whose device went away, as a target's runner says it: Unavailable."""
    from edgeq.errors import Unavailable

    raise Unavailable(f"no Edge TPU at {device} (unplugged)", "plug it back in")
