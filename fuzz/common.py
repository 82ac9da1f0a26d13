"""Shared by the fuzz harnesses: run a target under atheris (coverage-guided libFuzzer) and keep findings.

A finding is any exception other than edgeq's own :class:`~edgeq.errors.EdgeqError` (the documented way
to refuse bad input). Each distinct one (exception type + innermost edgeq frame) is written once to
``FINDINGS/<harness>/`` with the input that caused it, and the run goes on; a native crash ends the
run and libFuzzer writes the input as ``crash-*`` in the same folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

OUT = Path(os.environ.get("EDGEQ_FUZZ_OUT", "edgeq-out/fuzz"))


class Harness:
    def __init__(self, name: str, target: Callable[[bytes], None]) -> None:
        self.name = name
        self.target = target
        self.folder = OUT / name
        self.folder.mkdir(parents=True, exist_ok=True)
        self.executions = 0
        self.findings: dict[str, str] = {}
        self._last_write = 0.0

    def one_input(self, data: bytes) -> None:
        from edgeq.errors import EdgeqError

        self.executions += 1
        try:
            self.target(data)
        except EdgeqError:
            pass
        except Exception as exc:  # a finding: anything but a typed edgeq error
            frames = [f for f in traceback.extract_tb(exc.__traceback__) if "/edgeq/" in f.filename]
            where = f"{frames[-1].filename.split('/edgeq/')[-1]}:{frames[-1].lineno}" if frames else "?"
            key = f"{type(exc).__name__} at {where}"
            if key not in self.findings:
                digest = hashlib.sha256(data).hexdigest()[:16]
                self.findings[key] = digest
                (self.folder / f"finding-{digest}.bin").write_bytes(data)
                (self.folder / f"finding-{digest}.txt").write_text(key + "\n\n" + traceback.format_exc())
        if time.monotonic() - self._last_write > 5:
            self.write_summary()

    def write_summary(self) -> None:
        self._last_write = time.monotonic()
        doc = {"harness": self.name, "executions": self.executions, "findings": self.findings}
        (self.folder / "summary.json").write_text(json.dumps(doc, indent=2))


def main(name: str, target: Callable[[bytes], None], seeds: list[bytes], instrument: list[str]) -> None:
    """Fuzz ``target`` for ``EDGEQ_FUZZ_SECONDS`` (default 600) from the ``seeds`` corpus."""
    import atheris

    harness = Harness(name, target)
    corpus = harness.folder / "corpus"
    corpus.mkdir(exist_ok=True)
    for data in seeds:
        (corpus / hashlib.sha256(data).hexdigest()[:16]).write_bytes(data)
    seconds = int(os.environ.get("EDGEQ_FUZZ_SECONDS", "600"))
    args = [
        sys.argv[0],
        f"-max_total_time={seconds}",
        "-max_len=65536",
        "-timeout=30",
        "-rss_limit_mb=4096",
        f"-artifact_prefix={harness.folder}/",
        str(corpus),
    ]
    import atexit

    atexit.register(harness.write_summary)
    atheris.Setup(args, harness.one_input)
    atheris.Fuzz()
