#!/usr/bin/env python3
"""STAND-IN for edgetpu_compiler, for tests only. This is NOT the Edge TPU compiler and compiles nothing.

The real compiler is a closed x86-64 binary that cannot be installed here. This script takes its
command line (``[options] model...``) and replays REAL recorded outputs from tests/data/edgetpu (see
SOURCE.md there), so that edgeq's wrapper is exercised through a real subprocess: its arguments, its
timeout (a sleep mode), exit codes and the output files. Only the ``Input model`` / ``Output model`` /
``Operation log`` / ``Input`` / ``Output`` lines of a recording are rewritten to name the files of this
call; every other line is replayed as recorded. The "compiled" model it writes is a byte copy of the
input: it holds no edgetpu-custom-op, and edgeq's read-back says so.

Controlled by environment variables:
  FAKE_EDGETPU_MODE     replay (default) | sleep | no-output
  FAKE_EDGETPU_CONSOLE  recorded console output to print (default: version banner only)
  FAKE_EDGETPU_LOG      recorded .log to write as <name>_edgetpu.log (default: none)
  FAKE_EDGETPU_EXIT     exit code (default 0)
  FAKE_EDGETPU_SLEEP_S  seconds to sleep in sleep mode (default 60)
  FAKE_EDGETPU_ARGS     write the received argv here as JSON
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import time
from pathlib import Path

VERSION_LINE = "Edge TPU Compiler version 16.0.384591198"  # as printed by -v (tests/data/edgetpu/version_16)
VALUE_FLAGS = {"-m", "-k", "-i", "-n", "-o", "-t"}


def _parse(argv: list[str]) -> tuple[dict, list[str]]:
    opts: dict = {}
    models: list[str] = []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in VALUE_FLAGS:
            opts[a] = argv[i + 1]
            i += 2
            continue
        if a.startswith("-"):
            opts[a] = True
        else:
            models.append(a)
        i += 1
    return opts, models


def _rename(text: str, models: list[str], out_dir: Path) -> str:
    """Point the recording's per-model lines at this call's files, model by model in order."""
    counters = {"Input model": 0, "Output model": 0, "Operation log": 0, "Input": 0, "Output": 0}

    def sub(m: re.Match) -> str:
        key = m.group(1)
        n = counters[key]
        counters[key] += 1
        if n >= len(models):
            return m.group(0)
        stem = Path(models[n]).stem
        value = {
            "Input model": models[n],
            "Input": models[n],
            "Output model": str(out_dir / f"{stem}_edgetpu.tflite"),
            "Output": str(out_dir / f"{stem}_edgetpu.tflite"),
            "Operation log": str(out_dir / f"{stem}_edgetpu.log"),
        }[key]
        return f"{key}: {value}"

    return re.sub(r"^(Input model|Output model|Operation log|Input|Output): .*$", sub, text, flags=re.MULTILINE)


def main(argv: list[str]) -> int:
    if os.environ.get("FAKE_EDGETPU_ARGS"):
        Path(os.environ["FAKE_EDGETPU_ARGS"]).write_text(json.dumps(argv))
    if argv[:1] in (["-v"], ["--version"]):
        print(VERSION_LINE)
        return 0
    mode = os.environ.get("FAKE_EDGETPU_MODE", "replay")
    opts, models = _parse(argv)
    out_dir = Path(opts.get("-o", "."))
    if mode == "sleep":
        print(VERSION_LINE, flush=True)
        time.sleep(float(os.environ.get("FAKE_EDGETPU_SLEEP_S", "60")))
        return 0
    console = os.environ.get("FAKE_EDGETPU_CONSOLE")
    text = Path(console).read_text() if console else VERSION_LINE + "\n"
    sys.stdout.write(_rename(text, models, out_dir))
    code = int(os.environ.get("FAKE_EDGETPU_EXIT", "0"))
    if mode == "replay" and code == 0:
        log = os.environ.get("FAKE_EDGETPU_LOG")
        for model in models:
            stem = Path(model).stem
            shutil.copyfile(model, out_dir / f"{stem}_edgetpu.tflite")
            if log:
                (out_dir / f"{stem}_edgetpu.log").write_text(_rename(Path(log).read_text(), [model], out_dir))
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
