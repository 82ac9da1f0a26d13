"""Atomic writes, refusal to overwrite, and provenance sidecars.

Every artifact is written to a temporary file in its destination folder and renamed into
place, so an interrupted run never leaves half a file. Each artifact gets a sidecar
``<name>.edgeq.json`` that says how it was made.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

from edgeq import SCHEMA_VERSION, __version__
from edgeq.errors import BadInput, OutputExists

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


def check_output(path: str | os.PathLike, force: bool) -> Path:
    """Fail early, before any work, if ``path`` cannot be written.

    Raises:
        OutputExists: the file exists and ``force`` is false.
        BadInput: the folder does not exist or is not writable.
    """
    out = Path(path)
    if out.is_dir():
        raise BadInput(f"output {out} is a directory", "give a file name, e.g. -o model_int8.tflite")
    if out.exists() and not force:
        raise OutputExists(f"output already exists: {out}", "pass --force to overwrite it")
    folder = out.parent if str(out.parent) else Path(".")
    if not folder.is_dir():
        raise BadInput(f"output folder does not exist: {folder}", f"create it first: mkdir -p {folder}")
    try:  # permission bits do not tell (root, read-only mounts): try it
        fd, probe = tempfile.mkstemp(prefix=".edgeq-probe.", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise BadInput(
            f"output folder is not writable: {folder} ({exc.strerror})", "choose another -o location"
        ) from exc
    return out


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temp file in the same folder and a rename."""
    out = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent or ".")
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
    write_bytes_atomic(out, data)
    write_json_atomic(side, sidecar)
    return out, side


def read_sidecar(path: str | os.PathLike) -> dict | None:
    """The sidecar of ``path`` if there is a readable one, else None."""
    side = sidecar_path(path)
    try:
        return json.loads(side.read_text())
    except (OSError, ValueError):
        return None
