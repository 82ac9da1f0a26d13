"""Stage results cached by the content hash of their inputs and config.

A stage writes its files into a fresh temp folder, then ``stage.json`` (the result and the
sha256 of every file), and the folder is renamed into place: a stage interrupted by Ctrl-C
leaves no entry, a completed one is never half-written, and a re-run after a change redoes
only the stages whose key changed. An entry is checked against its hashes before use; a
damaged or incomplete one is recomputed, with a note for people.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeq.artifacts import clean_stale, sha256_file, write_json_atomic

STAGE_FILE = "stage.json"


def key_of(parts: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:20]


@dataclass
class StageRecord:
    name: str
    key: str
    cached: bool
    seconds: float


def files_of(folder: Path, marker: str = STAGE_FILE) -> dict[str, str]:
    """sha256 of every file below ``folder`` but its ``marker``, by relative path."""
    return {
        str(f.relative_to(folder)): sha256_file(f)
        for f in sorted(folder.rglob("*"))
        if f.is_file() and f.relative_to(folder).as_posix() != marker
    }


def damage(
    entry: Path, marker: str = STAGE_FILE, required: tuple[str, ...] = ("result",)
) -> tuple[dict[str, Any] | None, str]:
    """The entry's marker document (written last, with the sha256 of every file in ``files``) if the entry
    is whole, else None and what is wrong: a symbolic link, no or an unreadable marker, a marker without
    the ``required`` keys, a file missing, changed or added since the marker was written."""
    if entry.is_symlink():
        return None, "a symbolic link, not a folder the cache wrote"
    if not entry.is_dir():
        return None, "not a folder"
    try:
        doc = json.loads((entry / marker).read_text())
    except FileNotFoundError:
        return None, f"no {marker}"
    except (OSError, ValueError) as exc:
        return None, f"unreadable {marker} ({exc})"
    if not isinstance(doc, dict) or any(k not in doc for k in required) or not isinstance(doc.get("files"), dict):
        return None, f"{marker} without file hashes"
    try:
        actual = files_of(entry, marker)
    except OSError as exc:
        return None, f"unreadable file ({exc.strerror})"
    for name, digest in doc["files"].items():
        if name not in actual:
            return None, f"{name} is missing"
        if actual[name] != digest:
            return None, f"{name} does not match its hash"
    extra = sorted(set(actual) - set(doc["files"]))
    if extra and marker != STAGE_FILE:  # a stage entry's extra files are unused; a model folder loads them all
        return None, f"{extra[0]} is not one of the files the cache wrote"
    return doc, ""


def remove_entry(entry: Path) -> None:
    """Remove a cache entry that failed :func:`damage`: a symbolic link itself (never what it points at)."""
    if entry.is_symlink() or entry.is_file():
        entry.unlink(missing_ok=True)
    else:
        shutil.rmtree(entry, ignore_errors=True)


@dataclass
class Cache:
    root: Path
    enabled: bool = True
    records: list[StageRecord] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        clean_stale(self.root)  # stage folders of a build that was killed

    def run(
        self, stage: str, parts: dict[str, Any], fn: Callable[[Path], dict[str, Any]], label: str = ""
    ) -> tuple[dict[str, Any], Path]:
        """The result of ``fn(folder)`` for these inputs, from the cache when it is there and whole.

        ``fn`` writes its files into ``folder`` and returns a JSON-able dict; file names in it
        should be relative to the folder. ``label`` names the record for people ("quantize [cpu]").
        """
        key = key_of({"stage": stage, **parts})
        final = self.root / f"{stage}-{key}"
        t0 = time.perf_counter()
        if self.enabled and final.exists():
            doc, why = damage(final)
            if doc is not None:
                self.records.append(StageRecord(label or stage, key, True, round(time.perf_counter() - t0, 3)))
                return doc["result"], final
            self.notes.append(f"cache entry {final.name} was damaged ({why}); recomputed")
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / f".{stage}-{key}.tmp{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        try:
            result = fn(tmp)
            doc = {"stage": stage, "inputs": parts, "result": result, "files": files_of(tmp)}
            write_json_atomic(tmp / STAGE_FILE, doc)
            remove_entry(final)
            os.replace(tmp, final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        self.records.append(StageRecord(label or stage, key, False, round(time.perf_counter() - t0, 3)))
        return result, final

    def to_list(self) -> list[dict[str, Any]]:
        return [r.__dict__ for r in self.records]
