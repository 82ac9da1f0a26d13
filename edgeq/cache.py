"""Stage results cached by the content hash of their inputs and config.

A stage writes its files into a fresh temp folder, then ``stage.json``, and the folder is
renamed into place: a stage interrupted by Ctrl-C leaves no entry, a completed one is never
half-written, and a re-run after a change redoes only the stages whose key changed.
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

from edgeq.artifacts import write_json_atomic

STAGE_FILE = "stage.json"


def key_of(parts: dict) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:20]


@dataclass
class StageRecord:
    name: str
    key: str
    cached: bool
    seconds: float


@dataclass
class Cache:
    root: Path
    enabled: bool = True
    records: list[StageRecord] = field(default_factory=list)

    def run(self, stage: str, parts: dict, fn: Callable[[Path], dict], label: str = "") -> tuple[dict, Path]:
        """The result of ``fn(folder)`` for these inputs, from the cache when it is there.

        ``fn`` writes its files into ``folder`` and returns a JSON-able dict; file names in it
        should be relative to the folder. ``label`` names the record for people ("quantize [cpu]").
        """
        key = key_of({"stage": stage, **parts})
        final = self.root / f"{stage}-{key}"
        t0 = time.perf_counter()
        if self.enabled and (final / STAGE_FILE).is_file():
            doc = json.loads((final / STAGE_FILE).read_text())
            self.records.append(StageRecord(label or stage, key, True, round(time.perf_counter() - t0, 3)))
            return doc["result"], final
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / f".{stage}-{key}.tmp{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        try:
            result = fn(tmp)
            write_json_atomic(tmp / STAGE_FILE, {"stage": stage, "inputs": parts, "result": result})
            shutil.rmtree(final, ignore_errors=True)
            os.replace(tmp, final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        self.records.append(StageRecord(label or stage, key, False, round(time.perf_counter() - t0, 3)))
        return result, final

    def to_list(self) -> list[dict]:
        return [r.__dict__ for r in self.records]
