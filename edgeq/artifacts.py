"""Atomic writes, refusal to overwrite, and provenance sidecars.

Every artifact is written to a temporary file in its destination folder and renamed into
place, so an interrupted run never leaves half a file. Each artifact gets a sidecar
``<name>.edgeq.json`` that says how it was made.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import json
import os
import platform
import re
import shutil
import signal
import stat
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from edgeq import SCHEMA_VERSION, __version__
from edgeq.errors import BadInput, OutputExists
from edgeq.paths import shown

SIDECAR_SUFFIX = ".edgeq.json"
_TOOL_PACKAGES = (
    "tensorflow",
    "tensorflow-cpu",
    "tf-keras",
    "keras",
    "tensorflow-model-optimization",
    "ai-edge-litert",
    "numpy",
)


def sidecar_path(path: str | os.PathLike) -> Path:
    return Path(str(path) + SIDECAR_SUFFIX)


def sha256_file(path: str | os.PathLike) -> str:
    """sha256 of a file, or of every file below a directory (sorted by relative path)."""
    p = Path(path)
    digest = hashlib.sha256()
    files = sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p]
    for f in files:
        if p.is_dir():
            digest.update(str(f.relative_to(p)).encode())
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _name_max(folder: Path) -> int:
    try:
        return os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError):
        return 255


def check_name_length(path: Path, extra_suffix: str = "") -> None:
    """Refuse a file name the file system cannot hold, before any work (not as ENAMETOOLONG at the end)."""
    folder = _existing_ancestor(path.parent if str(path.parent) else Path("."))
    limit = _name_max(folder)
    for part in path.parts:
        if len(os.fsencode(part)) > limit:
            raise BadInput(
                f"file name too long ({len(os.fsencode(part))} bytes, the limit is {limit}): {part[:40]}...",
                "choose a shorter -o name",
            )
    if len(os.fsencode(path.name + extra_suffix)) > limit:
        raise BadInput(
            f"file name too long for its sidecar {path.name[:40]}...{extra_suffix} (limit {limit} bytes)",
            "choose a shorter -o name",
        )


def _existing_ancestor(folder: Path) -> Path:
    folder = Path(os.path.abspath(folder))
    while folder != folder.parent:
        try:
            if folder.exists():
                break
        except OSError:  # a name too long for the file system: check_name_length says so
            pass
        folder = folder.parent
    return folder


def check_writable(folder: str | os.PathLike, what: str = "output folder") -> None:
    """Fail early if files cannot be created in ``folder`` (or, when it does not exist yet, in
    the nearest folder above it that does). Permission bits do not tell (root, read-only
    mounts), so a probe file is created and removed.

    Raises:
        BadInput: not writable (read-only file system, permissions, disk full).
    """
    probe_dir = _existing_ancestor(Path(folder))
    try:
        fd, probe = tempfile.mkstemp(prefix=f".edgeq-probe.tmp{os.getpid()}-", dir=probe_dir)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise BadInput(f"{what} is not writable: {probe_dir} ({exc.strerror})", "choose another -o location") from exc


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether ``a`` and ``b`` are one file (also through symlinks and hard links), or ``a`` lies inside folder ``b``."""
    try:
        if os.path.samefile(a, b):
            return True
    except OSError:
        pass
    if Path(b).is_dir():
        ra, rb = Path(os.path.realpath(a)), Path(os.path.realpath(b))
        return rb in ra.parents
    return False


def refuse_overwriting_inputs(out: str | os.PathLike, inputs: Iterable[str | os.PathLike | None]) -> None:
    """An output must never replace one of the command's inputs, whatever --force says.

    Raises:
        BadInput: ``out`` (or its sidecar) is an input.
    """
    for src in inputs:
        if not src:
            continue
        for target in (Path(out), sidecar_path(out)):
            if target.exists() and same_file(target, src):
                raise BadInput(
                    f"output {out} is the input {src}; edgeq never overwrites its input, not even with --force",
                    "choose another -o",
                )


_KINDS = {
    stat.S_IFCHR: "character device",
    stat.S_IFBLK: "block device",
    stat.S_IFIFO: "FIFO",
    stat.S_IFSOCK: "socket",
    stat.S_IFDIR: "folder",
}


def refuse_special(path: str | os.PathLike) -> None:
    """Refuse, whatever --force says, to write a file at ``path`` when something other than a regular
    file is there: a device (``/dev/null`` replaced by a file breaks every process on the machine), a
    FIFO, a socket, a folder. A symlink is judged by what it points to. A missing path is fine.

    Raises:
        BadInput: ``path`` exists and is not a regular file.
    """
    try:
        mode = os.stat(path).st_mode
    except OSError:  # missing, a dangling link, a loop: the write itself says what is wrong
        return
    if stat.S_ISREG(mode):
        return
    kind = _KINDS.get(stat.S_IFMT(mode), "special file")
    raise BadInput(
        f"output {shown(path)} is a {kind}, not a regular file; edgeq never replaces it, not even with --force",
        "pick a regular file path with -o",
    )


def check_output(
    path: str | os.PathLike, force: bool, inputs: Iterable[str | os.PathLike | None] = (), sidecar: bool = True
) -> Path:
    """Fail early, before any work, if ``path`` (and its sidecar) cannot or must not be written.

    Args:
        inputs: the command's inputs; an output that is one of them is refused even with ``force``.
        sidecar: the artifact gets a ``.edgeq.json`` sidecar, so a stray one is refused too.

    Raises:
        OutputExists: the file or its sidecar exists and ``force`` is false.
        BadInput: the output is an input, the folder does not exist or is not writable, the name is too long.
    """
    out = Path(path)
    check_name_length(out, SIDECAR_SUFFIX if sidecar else "")
    if out.is_dir():
        raise BadInput(f"output {out} is a directory", "give a file name, e.g. -o model_int8.tflite")
    refuse_special(out)
    if sidecar:
        refuse_special(sidecar_path(out))
    clean_stale(out.parent if str(out.parent) else ".")  # a killed run's half commit is undone, not refused
    refuse_overwriting_inputs(out, inputs)
    if not force:
        if out.exists():
            raise OutputExists(f"output already exists: {out}", "pass --force to overwrite it")
        side = sidecar_path(out)
        if sidecar and side.exists():
            raise OutputExists(f"{side} already exists (a sidecar without its model)", "pass --force to overwrite it")
    folder = out.parent if str(out.parent) else Path(".")
    if not folder.is_dir():
        raise BadInput(f"output folder does not exist: {folder}", f"create it first: mkdir -p {folder}")
    check_writable(folder)
    return out


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temp file in the same folder and a rename.

    Raises:
        BadInput: something other than a regular file is at ``path`` (see :func:`refuse_special`).
    """
    out = Path(path)
    refuse_special(out)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name[:80]}.tmp{os.getpid()}-", dir=out.parent or ".")
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; artifacts get the usual mode
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, out)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return out


# temp names carry the writer's pid (".NAME.tmpPID", ".edgeq-stage-PID-..."), so the leftovers of a
# killed process can be told from the files of one that is still running
_STALE = re.compile(r"^\.(?:edgeq-stage-(\d+)-.*|.*\.tmp(\d+)(?:-.*)?)$")


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale(folder: str | os.PathLike) -> list[str]:
    """Remove temp files and staging folders that dead edgeq processes left in ``folder``."""
    removed: list[str] = []
    try:
        entries = list(os.scandir(os.fspath(folder)))
    except OSError:
        return removed
    for entry in entries:
        m = _STALE.match(entry.name)
        if not m or _alive(int(m.group(1) or m.group(2))):
            continue
        try:
            if m.group(1):
                _roll_back(Path(entry.path), Path(folder))
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)
            removed.append(entry.name)
        except OSError:
            continue
    return removed


def _roll_back(stage: Path, folder: Path) -> None:
    """Undo the moves of a commit that a killed process left half done (see :class:`Outputs`)."""
    try:
        names = json.loads((stage / _JOURNAL).read_text())
    except (OSError, ValueError):
        return  # the process died before its commit began: nothing in ``folder`` changed
    for name in names:
        old, dest = stage / _REPLACED / name, folder / name
        if old.exists() or old.is_symlink():
            os.replace(old, dest)
        elif not (stage / name).exists():  # moved into place, with nothing replaced: take it out again
            with contextlib.suppress(FileNotFoundError):
                os.unlink(dest)


_FICLONE = 0x40049409  # linux/fs.h: share the blocks copy-on-write (btrfs, xfs); a new file all the same


def copy_file(src: str | os.PathLike, dst: str | os.PathLike) -> Path:
    """Copy ``src`` to a new file ``dst``: a reflink where the file system has them, else a copy.

    Never a hard link: editing the copy must not change the source (a cache entry, an input).
    """
    dst = Path(dst)
    try:
        import fcntl

        with open(src, "rb") as fin, open(dst, "wb") as fout:
            fcntl.ioctl(fout.fileno(), _FICLONE, fin.fileno())
    except (OSError, ImportError):
        shutil.copyfile(src, dst)
    return dst


_DEFERRED = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM until the renames are done: they are quick, and half of them is the one
    state to avoid. The first signal caught is raised again on the way out."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = {s: signal.signal(s, lambda signum, _frame: caught.append(signum)) for s in _DEFERRED}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        if caught:
            signal.raise_signal(caught[0])


_JOURNAL, _REPLACED = ".commit.json", ".replaced"


class Outputs:
    """A command's output files, which appear together or not at all.

    Files are written into a staging folder beside their destination (``folder/.edgeq-stage-PID-*``)
    and moved into ``folder`` on a clean exit from the ``with`` block; on any error, nothing in
    ``folder`` changes and the staging folder is removed. The moves happen in the order the names
    were first asked for, so put a sidecar before its artifact: an artifact is never visible
    without its sidecar. Files replaced by the moves are kept until every move succeeded, and put
    back if one fails. Files in the staging folder nobody asked for by name (images a renderer
    adds) move first. A journal of the moves is written before the first one, so when a process is
    killed in the middle (Ctrl-C is held off, SIGKILL cannot be), the next edgeq run in that folder
    undoes the moves that happened (:func:`clean_stale`) and sees the folder as it was before.
    """

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder) if str(folder) else Path(".")
        self.stage = Path()
        self._names: list[str] = []
        self._created = False

    def __enter__(self) -> Outputs:
        if not self.folder.exists():
            self.folder.mkdir(parents=True)
            self._created = True
        elif not self.folder.is_dir():
            raise BadInput(f"{self.folder} is a file, not a folder", "choose another -o")
        clean_stale(self.folder)
        self.stage = Path(tempfile.mkdtemp(prefix=f".edgeq-stage-{os.getpid()}-", dir=self.folder))
        return self

    def path(self, name: str) -> Path:
        """Where to write the output ``name`` (a plain file name) until the block ends."""
        if Path(name).name != name:
            raise ValueError(f"output name {name!r} is not a plain file name")
        if name not in self._names:
            self._names.append(name)
        return self.stage / name

    def write_bytes(self, name: str, data: bytes) -> Path:
        return write_bytes_atomic(self.path(name), data)

    def write_json(self, name: str, doc: Any) -> Path:
        return write_json_atomic(self.path(name), doc)

    def copy(self, name: str, src: str | os.PathLike) -> Path:
        return copy_file(src, self.path(name))

    def final(self, name: str) -> Path:
        return self.folder / name

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                self._commit()
        except BaseException:
            self._discard()
            raise
        self._discard()

    def _discard(self) -> None:
        shutil.rmtree(self.stage, ignore_errors=True)
        if self._created:
            with contextlib.suppress(OSError):
                self.folder.rmdir()  # only if nothing was committed into it

    def _commit(self) -> None:
        written = sorted(p.name for p in self.stage.iterdir() if p.name not in self._names)
        names = written + [n for n in self._names if (self.stage / n).exists()]
        for name in names:
            dest = self.folder / name
            if dest.is_dir() and not dest.is_symlink():
                raise BadInput(f"{dest} is a folder where edgeq writes a file", "move it away or choose another -o")
            refuse_special(dest)
        replaced = self.stage / _REPLACED
        replaced.mkdir()
        write_json_atomic(self.stage / _JOURNAL, names)
        done: list[tuple[Path, Path | None]] = []
        with signals_deferred():
            try:
                for name in names:
                    dest, old = self.folder / name, None
                    if dest.exists() or dest.is_symlink():
                        old = replaced / name
                        os.replace(dest, old)
                    done.append((dest, old))
                    os.replace(self.stage / name, dest)
            except BaseException:
                for dest, old in reversed(done):  # put back what was there
                    with contextlib.suppress(OSError):
                        if old is not None:
                            os.replace(old, dest)
                        else:
                            os.unlink(dest)
                raise
        self._created = False


def output_folder(out_dir: str | os.PathLike) -> Path:
    """``out_dir``, created if missing: the folder a command's ``-o`` names.

    Raises:
        BadInput: ``out_dir`` is a file or cannot be created.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise BadInput(f"output folder {shown(out)} is a file", "choose a folder with -o")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BadInput(f"cannot create output folder {shown(out)} ({exc.strerror})", "choose another -o") from exc
    return out


def check_output_folder(
    out_dir: str | os.PathLike, name: str, marker: str, overwrite: bool | None
) -> tuple[Path, Path]:
    """``out_dir`` (created) and the folder ``out_dir/name`` an export may write, checked before any work.

    ``overwrite``: True replaces an existing folder; False refuses; None (a pipeline's call) replaces an
    earlier edgeq export (it holds ``marker``) and refuses anything else. Staging folders that dead
    edgeq processes left in ``out_dir`` are removed.

    Raises:
        OutputExists: the folder exists and may not be replaced.
        BadInput: ``out_dir`` is a file, cannot be created or is not writable; ``out_dir/name`` is not a folder.
    """
    out = output_folder(out_dir)
    check_writable(out)
    clean_stale(out)
    final = out / name
    _may_replace(final, marker, overwrite)
    return out, final


def _may_replace(final: Path, marker: str, overwrite: bool | None) -> None:
    if not os.path.lexists(final):
        return
    ours = (final / marker).exists()
    if overwrite is False or (overwrite is None and not ours):
        raise OutputExists(f"output already exists: {shown(final)}", "pass --force to overwrite it")
    if not final.is_symlink() and not final.is_dir():
        raise BadInput(f"{shown(final)} is not a folder", "remove it or choose another -o")


def stage_folder(out: Path, name: str) -> Path:
    """A new staging folder for the export ``out/name``: beside it (so the final rename stays on one file
    system) and named with this process's pid, so that :func:`clean_stale` removes it once the process
    is dead (SIGKILL, a power cut)."""
    staged = Path(tempfile.mkdtemp(prefix=f".edgeq-stage-{os.getpid()}-{name[:80]}.", dir=out))
    os.chmod(staged, 0o777 & ~_umask())
    return staged


@contextlib.contextmanager
def _folder_locked(folder: Path) -> Iterator[None]:
    """An exclusive ``flock`` on ``folder`` itself: edgeq processes replacing a folder in it take turns, and
    nothing is left behind (no lock file)."""
    import fcntl

    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with contextlib.suppress(OSError):  # a file system without locks (ENOLCK): the re-check still runs
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def replace_folder(staged: Path, final: Path, marker: str, overwrite: bool | None) -> None:
    """Rename the finished folder ``staged`` to ``final``.

    The check that ``final`` may be replaced (see :func:`check_output_folder`) is made again under a lock
    on the parent folder, so of two runs into one folder without ``overwrite`` the second is refused. An
    earlier ``final`` is moved aside and removed only once the new one is in place (put back if the second
    rename fails); a symlink at ``final`` is replaced itself, its target never followed nor touched.
    Ctrl-C and SIGTERM wait for the renames.

    Raises:
        OutputExists: ``final`` appeared meanwhile and may not be replaced.
    """
    with _folder_locked(final.parent), signals_deferred():
        _may_replace(final, marker, overwrite)
        old: Path | None = None
        if os.path.lexists(final):
            old = Path(tempfile.mkdtemp(prefix=f".{final.name[:80]}.old.", dir=final.parent))
            os.rmdir(old)
            os.replace(final, old)
        try:
            os.replace(staged, final)
        except BaseException:
            if old is not None and not os.path.lexists(final):
                os.replace(old, final)
            raise
    if old is not None:
        remove_tree(old)


def remove_tree(path: str | os.PathLike) -> None:
    """Remove a file, a symlink (never what it points to) or a folder; errors ignored."""
    if os.path.islink(path) or not os.path.isdir(path):
        with contextlib.suppress(OSError):
            os.unlink(path)
        return
    shutil.rmtree(path, ignore_errors=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_json_atomic(path: str | os.PathLike, doc: Any) -> Path:
    return write_bytes_atomic(path, (json.dumps(doc, indent=2, sort_keys=False) + "\n").encode())


def tool_versions() -> dict[str, str]:
    versions = {"edgeq": __version__, "python": platform.python_version()}
    for name in _TOOL_PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def provenance(command: str, config: dict, inputs: dict[str, str], **extra: Any) -> dict:
    """The sidecar document: config, input hashes, tool versions and anything stage-specific."""
    doc: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "command": command,
        "created_unix_s": round(time.time(), 3),
        "config": config,
        "inputs": {name: {"path": p, "sha256": sha256_file(p)} for name, p in inputs.items()},
        "tool_versions": tool_versions(),
    }
    doc.update(extra)
    return doc


def write_artifact(path: str | os.PathLike, data: bytes, sidecar: dict) -> tuple[Path, Path]:
    """Write an artifact and its sidecar atomically. The sidecar records the artifact's hash."""
    out = Path(path)
    side = sidecar_path(out)
    sidecar = dict(sidecar, output={"path": str(out), "sha256": sha256_bytes(data), "size_bytes": len(data)})
    with Outputs(out.parent) as staged:
        staged.write_json(side.name, sidecar)  # sidecar first: the artifact never appears without it
        staged.write_bytes(out.name, data)
    return out, side


def read_sidecar(path: str | os.PathLike) -> dict | None:
    """The sidecar of ``path`` if there is a readable one, else None."""
    side = sidecar_path(path)
    try:
        return json.loads(side.read_text())
    except (OSError, ValueError):
        return None
