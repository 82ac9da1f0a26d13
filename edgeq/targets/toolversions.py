"""The versions of the tools a target's stages run, as strings for a build's cache keys.

A tool that is not there is recorded as :data:`ABSENT`, so installing it changes the key; a program's
``--version`` is asked once per process per executable file (a file replaced or upgraded in place is
another file: its inode, size or mtime differ), within a timeout, through :func:`edgeq.procs.run`.
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import subprocess
from collections.abc import Callable

from edgeq import procs

ABSENT = "absent"
VERSION_TIMEOUT_S = 30.0

# (path, inode, size, mtime_ns, args) -> the program's output to those args
_ANSWERS: dict[tuple[str, int, int, int, tuple[str, ...]], str] = {}


def package(dist: str) -> str:
    """The installed version of the Python distribution ``dist``, or :data:`ABSENT`."""
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return ABSENT


def answer(path: str, args: tuple[str, ...] = ("--version",), timeout_s: float = VERSION_TIMEOUT_S) -> str:
    """stdout then stderr of ``path args``, run once per process for this executable file.

    Raises:
        subprocess.TimeoutExpired: it did not answer within ``timeout_s`` (its process group is killed).
        OSError: it could not be started.
    """
    st = os.stat(path)
    ident = (os.path.abspath(path), st.st_ino, st.st_size, st.st_mtime_ns, tuple(args))
    if ident not in _ANSWERS:
        proc = procs.run([path, *args], timeout_s, stdin=subprocess.DEVNULL, text=True, errors="replace")
        _ANSWERS[ident] = str(proc.stdout or "") + str(proc.stderr or "")
    return _ANSWERS[ident]


def program(
    name: str | None,
    args: tuple[str, ...] = ("--version",),
    parse: Callable[[str], str | None] | None = None,
    timeout_s: float = VERSION_TIMEOUT_S,
) -> str:
    """The version of program ``name`` (a name searched on PATH, or a path): ``parse`` of its answer
    (default: the answer's first non-empty line), :data:`ABSENT` when there is no such program, and a
    stable phrase when it cannot be run or does not answer (the key still differs from ABSENT)."""
    path = shutil.which(name) if name else None
    if path is None:
        return ABSENT
    try:
        text = answer(path, args, timeout_s)
    except subprocess.TimeoutExpired:
        return "no answer"
    except OSError:
        return "cannot run"
    parsed = parse(text) if parse is not None else first_line(text)
    return parsed or "unknown"


def first_line(text: str) -> str | None:
    """The first non-empty line of ``text``, stripped and bounded."""
    return next((ln.strip()[:200] for ln in text.splitlines() if ln.strip()), None)
