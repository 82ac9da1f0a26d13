"""File names that are not UTF-8.

On POSIX a file name is bytes. Python keeps the bytes that are not UTF-8 as lone surrogates
(``b"\\xff"`` becomes ``"\\udcff"``, PEP 383), so such a path opens fine from Python but
cannot be printed, written as UTF-8 JSON, or handed to a C++ library that wants UTF-8
(TensorFlow's file system). :func:`shown` is how such a path goes into a message;
:func:`native_path` is how it goes to TensorFlow.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path


def printable(text: str) -> str:
    """``text`` with lone surrogates written as escapes: undecodable file-name bytes as ``\\xff``.

    Text that is valid Unicode comes back unchanged.
    """
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        pass
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # surrogates that did not come from file-name bytes
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def shown(path: str | bytes | os.PathLike) -> str:
    """A path as it goes into a message: printable, undecodable bytes escaped (``bad\\xffname.npz``)."""
    return printable(os.fsdecode(path))


def is_utf8(path: str | os.PathLike) -> bool:
    """Whether the path's name is valid UTF-8 (so C++ libraries can take it)."""
    try:
        os.fspath(path).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@contextlib.contextmanager
def native_path(path: str | os.PathLike) -> Iterator[Path]:
    """A path to ``path`` that TensorFlow can open, valid while the context lasts.

    TensorFlow's file functions take UTF-8 strings and refuse a name with other bytes. Such a
    file or folder is reached through a symlink with a UTF-8 name in a temporary folder (the
    suffix is kept: Keras picks the loader from it); other paths are returned as they are.
    """
    p = Path(path)
    if is_utf8(p):
        yield p
        return
    suffix = p.suffix if is_utf8(p.suffix) else ""
    with tempfile.TemporaryDirectory(prefix="edgeq-path-") as tmp:
        alias = Path(tmp) / f"model{suffix}"
        os.symlink(os.path.abspath(p), alias, target_is_directory=p.is_dir())
        yield alias


def mount_point(path: str | os.PathLike) -> Path:
    """The mount point of the file system that holds ``path`` (or would hold it: the nearest existing folder)."""
    p = Path(os.path.abspath(path))
    while not p.exists() and p != p.parent:
        p = p.parent
    while not os.path.ismount(p) and p != p.parent:
        p = p.parent
    return p


_ABS_PATH = re.compile(r"(/[^\s:'\"`]+)")


def no_space_where(tool_output: str, fallback: str | os.PathLike) -> str:
    """ "the disk mounted at M (writing P)" for a tool's "No space left on device" message: P is the
    last absolute path on the line that says so ("t.c:1:1: fatal error: error closing /tmp/ccX.s: No space
    left on device": gcc names its temp file last), else ``fallback``."""
    where: str | os.PathLike = fallback
    for line in tool_output.splitlines():
        if "No space left" in line or "quota exceeded" in line.lower():
            found = _ABS_PATH.findall(line)
            if found:
                where = found[-1]
                break
    return f"the disk mounted at {shown(mount_point(where))}, writing {shown(where)}"
