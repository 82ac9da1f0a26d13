"""The build folder: edgeq's marker on it, the lock that keeps a second build out, the manifest's name."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

from edgeq import SCHEMA_VERSION
from edgeq.artifacts import check_name_length, check_writable, clean_stale, write_json_atomic
from edgeq.errors import BadInput, OutputExists

MANIFEST = "build.json"
MARKER = ".edgeq-build.json"  # edgeq's own mark on its build folders: "build.json" is too common a name to tell
MARKER_KIND = "edgeq-build"
LOCK = ".edgeq-build.lock"


def is_build_dir(out_dir: Path) -> bool:
    """Whether ``out_dir`` carries edgeq's own marker (a common name like build.json proves nothing)."""
    try:
        doc = json.loads((out_dir / MARKER).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(doc, dict) and doc.get("kind") == MARKER_KIND and isinstance(doc.get("schema_version"), int)


def _refuse_foreign(out_dir: Path, force: bool) -> None:
    if force or not out_dir.is_dir() or is_build_dir(out_dir):
        return
    if [e for e in os.listdir(out_dir) if e != LOCK]:
        raise OutputExists(
            f"{out_dir} exists and is not an edgeq build folder (it has no {MARKER})",
            "choose another -o, or pass --force to add edgeq's files to it (the other files are left alone)",
        )


@contextlib.contextmanager
def claim_dir(out_dir: Path, force: bool) -> Iterator[None]:
    """Hold the build folder for the duration of a build.

    A folder with edgeq's marker is reused (a re-run resumes from its cache); a new or empty one
    gets the marker; anything else is refused unless ``force``, and then only edgeq's own files
    are written into it. A lock (``flock`` on ``.edgeq-build.lock``) makes a second build into the
    same folder refuse at once instead of interleaving its writes.

    Raises:
        OutputExists: a folder that is not an edgeq build, without ``force``.
        BadInput: a file, not a folder; not writable; another build holds the lock.
    """
    import fcntl

    check_name_length(out_dir / MARKER)
    if out_dir.exists() and not out_dir.is_dir():
        raise BadInput(f"build output {out_dir} is a file", "choose a folder with -o")
    _refuse_foreign(out_dir, force)
    check_writable(out_dir, "build folder")
    created_dir = not out_dir.exists()
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        created_lock = not (out_dir / LOCK).exists()
        lock = open(out_dir / LOCK, "a+")  # noqa: SIM115 -- held open for the whole build
    except OSError as exc:
        raise BadInput(f"cannot create build folder {out_dir} ({exc.strerror})", "choose another -o location") from exc
    claimed = False
    try:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            pid = lock.read().strip() or "unknown"
            raise BadInput(
                f"another edgeq build is running in {out_dir} (pid {pid})", "wait for it or choose another -o"
            ) from None
        _refuse_foreign(out_dir, force)  # again, now that no other build can be starting
        lock.seek(0)
        lock.truncate()
        lock.write(f"{os.getpid()}\n")
        lock.flush()
        clean_stale(out_dir)
        if not is_build_dir(out_dir):  # marked now, so an interrupted run can resume
            write_json_atomic(out_dir / MARKER, {"schema_version": SCHEMA_VERSION, "kind": MARKER_KIND})
        if not (out_dir / MANIFEST).exists():  # `edgeq report` then says the build has not finished
            write_json_atomic(
                out_dir / MANIFEST, {"schema_version": SCHEMA_VERSION, "status": "running", "targets": []}
            )
        claimed = True
        yield
    finally:
        lock.close()
        if not claimed and created_lock:
            with contextlib.suppress(OSError):
                (out_dir / LOCK).unlink()
                if created_dir:
                    out_dir.rmdir()
