"""A build keys each step on the versions of the tools it runs: installing edgetpu_compiler after a build
redoes coral's compile (not "skipped" from the cache any more), and only that step; coral's check (which
runs no tool), the quantization and the other targets' steps come from the cache. Issue 20, item 3."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import sys
from pathlib import Path

from tests.coral.conftest import FAKE

COMPILE_STEP = "compile [coral]"


def _stand_in(folder: Path, calls: Path) -> Path:
    """An executable named edgetpu_compiler that logs each call's arguments, then runs the stand-in."""
    folder.mkdir()
    exe = folder / "edgetpu_compiler"
    exe.write_text(f'#!/bin/sh\necho "$*" >> "{calls}"\nexec "{sys.executable}" "{FAKE}" "$@"\n')
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return exe


def _build(run_cli, out: Path) -> tuple[str, dict, dict]:
    r = run_cli("build", "--target", "coral,cpu", "--method", "ptq", "-o", out, "--runs", "3", "--warmup", "1")
    assert r.exit_code == 0, r.stderr
    top = json.loads((out / "build.json").read_text())
    coral = json.loads((out / "coral" / "build.json").read_text())
    return r.stdout, top, coral


def _recomputed(top: dict) -> list[str]:
    return [s["name"] for s in top["stages"] if not s["cached"]]


def test_installing_the_compiler_redoes_its_compile_and_nothing_else(run_cli, tmp_path, monkeypatch):
    for var in [v for v in os.environ if v.startswith("FAKE_EDGETPU_")]:  # the stand-in's defaults: replay, exit 0
        monkeypatch.delenv(var)
    without = os.environ.get("PATH", "")
    assert shutil.which("edgetpu_compiler") is None, "this test wants a machine without edgetpu_compiler"
    out = tmp_path / "out"

    _, top, coral = _build(run_cli, out)
    assert coral["variants"][-1]["compile"]["skipped"] is True and coral["tools"]["edgetpu_compiler"] == "absent"
    first = {s["name"]: s["key"] for s in top["stages"]}

    calls = tmp_path / "calls.txt"
    _stand_in(tmp_path / "bin", calls)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{without}")
    stdout, top, coral = _build(run_cli, out)
    compiled = coral["variants"][-1]["compile"]
    assert compiled["skipped"] is False, compiled["reason"]
    assert coral["tools"]["edgetpu_compiler"] == "16.0.384591198"  # the manifest says which compiler made it
    assert _recomputed(top) == [COMPILE_STEP], top["stages"]
    keys = {s["name"]: s["key"] for s in top["stages"]}
    assert {n for n in keys if keys[n] != first.get(n)} == {COMPILE_STEP}
    assert any(n.startswith("quantize") for n in keys) and any("[cpu]" in n for n in keys)
    n = len(top["stages"])
    assert re.search(rf"^{n} stages \({n - 1} from the cache\)", stdout, re.MULTILINE), stdout
    versions = [c for c in calls.read_text().splitlines() if c == "--version"]
    assert len(versions) == 1, calls.read_text()  # asked once for the key and the compile together

    # the same tools again: every step from the cache, and the compiler is not asked again in this process
    _, top, coral = _build(run_cli, out)
    assert _recomputed(top) == [] and coral["variants"][-1]["compile"]["skipped"] is False
    assert [c for c in calls.read_text().splitlines() if c == "--version"] == versions
