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

from edgeq.artifacts import clean_stale, sha256_file, write_json_atomic

STAGE_FILE = "stage.json"


def key_of(parts: dict) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:20]


@dataclass
class StageRecord:
    name: str
    key: str
    cached: bool
    seconds: float


def _files(folder: Path) -> dict[str, str]:
    """sha256 of every file below ``folder`` but ``stage.json``, by relative path."""
    return {
        str(f.relative_to(folder)): sha256_file(f)
        for f in sorted(folder.rglob("*"))
        if f.is_file() and f.name != STAGE_FILE
    }


def damage(entry: Path) -> tuple[dict | None, str]:
    """The entry's stage.json document if the entry is whole, else None and what is wrong."""
    try:
        doc = json.loads((entry / STAGE_FILE).read_text())
    except FileNotFoundError:
        return None, f"no {STAGE_FILE}"
    except (OSError, ValueError) as exc:
        return None, f"unreadable {STAGE_FILE} ({exc})"
    if not isinstance(doc, dict) or "result" not in doc or not isinstance(doc.get("files"), dict):
        return None, f"{STAGE_FILE} without file hashes"
    try:
        actual = _files(entry)
    except OSError as exc:
        return None, f"unreadable file ({exc.strerror})"
    for name, digest in doc["files"].items():
        if name not in actual:
            return None, f"{name} is missing"
        if actual[name] != digest:
            return None, f"{name} does not match its hash"
    return doc, ""


@dataclass
class Cache:
    root: Path
    enabled: bool = True
    records: list[StageRecord] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        clean_stale(self.root)  # stage folders of a build that was killed

    def run(self, stage: str, parts: dict, fn: Callable[[Path], dict], label: str = "") -> tuple[dict, Path]:
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
            doc = {"stage": stage, "inputs": parts, "result": result, "files": _files(tmp)}
            write_json_atomic(tmp / STAGE_FILE, doc)
            shutil.rmtree(final, ignore_errors=True)
            os.replace(tmp, final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        self.records.append(StageRecord(label or stage, key, False, round(time.perf_counter() - t0, 3)))
        return result, final

    def to_list(self) -> list[dict]:
        return [r.__dict__ for r in self.records]
