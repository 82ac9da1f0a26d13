"""SIGTERM is handled like Ctrl-C (issue 19, defect 9): one JSON document, exit 130, the staged folder
removed, the compiler's process group ended; a dead run's staging folder is removed by the next run."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import listing

needs_gcc = pytest.mark.skipif(shutil.which("gcc") is None, reason="no gcc on PATH")
ROOT = Path(__file__).resolve().parents[2]
BUILD_TOOLS = {"gcc", "cc1", "as", "ld", "collect2", "arm-none-eabi-gcc", "qemu-system-arm", "model_host"}


def _processes() -> list[tuple[int, int, int, str]]:
    """(pid, ppid, pgid, name) of every process, from /proc."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                raw = fh.read()
        except OSError:
            continue
        name = raw[raw.index("(") + 1 : raw.rindex(")")]
        fields = raw[raw.rindex(")") + 2 :].split()
        if fields[0] != "Z":  # a zombie has ended; it only waits to be reaped
            found.append((int(entry), int(fields[1]), int(fields[2]), name))
    return found


def _group_alive(pgid: int) -> bool:
    return any(g == pgid for _, _, g, _ in _processes())


def _wait_for_tool(parent: int, timeout_s: float) -> tuple[int, str] | None:
    """(pgid, name) of the first build tool that ``parent`` started."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        for _pid, ppid, pgid, name in _processes():
            if ppid == parent and name in BUILD_TOOLS:
                return pgid, name
        time.sleep(0.01)
    return None


@needs_gcc
@pytest.mark.slow
def test_sigterm_during_compile_runtime_c(tmp_path, tiny_int8):
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "edgeq", "--json", "compile", str(tiny_int8), "--target", "mcu", "--runtime", "c"]
    cmd += ["--proof-samples", "2", "-o", str(out)]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(os.environ, PYTHONPATH=str(ROOT))
    )
    try:
        tool = _wait_for_tool(proc.pid, 120)
        assert tool is not None, "the compile started no build tool"
        assert tool[0] != os.getpgid(proc.pid)  # its own group, ended as one
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr.decode()
    doc = json.loads(stdout)  # exactly one document: json.loads refuses trailing text
    assert doc["ok"] is False and doc["error"]["type"] == "interrupted" and doc["error"]["exit_code"] == 130
    assert "SIGTERM" in doc["error"]["message"]
    assert listing(out) == []  # the staging folder is gone
    end = time.monotonic() + 10
    while _group_alive(tool[0]) and time.monotonic() < end:
        time.sleep(0.05)
    assert not _group_alive(tool[0]), f"{tool[1]}'s process group outlived edgeq"


def _staging_in(folder: Path) -> list[Path]:
    return [p for p in folder.rglob(".*") if ".tmp" in p.name or p.name.startswith(".edgeq-stage-")]


@pytest.mark.slow
def test_sigterm_during_build(tmp_path, tf_keras_model, digits_calib):
    out = tmp_path / "build"
    cmd = [sys.executable, "-m", "edgeq", "--json", "build", str(tf_keras_model), "--data", str(digits_calib)]
    cmd += ["--target", "cpu", "-o", str(out)]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(os.environ, PYTHONPATH=str(ROOT))
    )
    try:
        end = time.monotonic() + 600  # a loaded 2-core machine took over 120 s to reach the first staged file
        while not (out.is_dir() and _staging_in(out)) and time.monotonic() < end and proc.poll() is None:
            time.sleep(0.005)
        assert proc.poll() is None and _staging_in(out), "the build staged nothing before it ended"
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr.decode()
    doc = json.loads(stdout)
    assert doc["error"]["type"] == "interrupted" and "rerun" in doc["error"]["hint"]
    assert _staging_in(out) == []


def test_ctrl_c_and_sigterm_give_the_same_document(run_cli, monkeypatch):
    """Both go through one path: SIGTERM raises KeyboardInterrupt's subclass inside the command."""
    from edgeq.cli import cmd_targets

    def term(*_a, **_k):
        signal.raise_signal(signal.SIGTERM)

    def outside(*_a) -> None:  # what was there before the run (keeps pytest alive if the CLI had no handler)
        pass

    monkeypatch.setattr(cmd_targets, "_supported_ops", term)
    previous = signal.signal(signal.SIGTERM, outside)
    try:
        r = run_cli("--json", "targets", "--supported-ops", "cpu")
        assert signal.getsignal(signal.SIGTERM) is outside  # put back after the run
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert r.exit_code == 130, r.stdout + r.stderr
    assert r.json["error"]["type"] == "interrupted" and r.json["error"]["message"] == "terminated (SIGTERM)"


def test_a_dead_runs_staging_folder_is_removed_by_the_next_run(run_cli, tmp_path, tiny_int8):
    """A staging folder named with a pid that no longer runs (SIGKILL: no handler can clean up)."""
    dead = subprocess.Popen(["true"])
    dead.wait()
    out = tmp_path / "out"
    out.mkdir()
    stale = out / f".edgeq-stage-{dead.pid}-{tiny_int8.stem}_tflm.abc123"
    stale.mkdir()
    (stale / "model.c").write_text("half")
    alive = out / f".edgeq-stage-{os.getpid()}-{tiny_int8.stem}_tflm.def456"  # a running process's: kept
    alive.mkdir()
    r = run_cli("compile", tiny_int8, "--target", "mcu", "-o", out)
    assert r.exit_code == 0, r.stderr
    assert listing(out) == [alive.name, f"{tiny_int8.stem}_tflm"]


def test_procs_run_ends_the_whole_group(tmp_path):
    """A timeout (as an interruption) kills the child's children too, not only the child."""
    from edgeq import procs

    pidfile = tmp_path / "grandchild.pid"
    script = f"sleep 60 & echo $! > {pidfile}; wait"
    with pytest.raises(subprocess.TimeoutExpired):
        procs.run(["sh", "-c", script], 1.0)
    grandchild = int(pidfile.read_text())
    end = time.monotonic() + 5
    while any(p == grandchild for p, *_ in _processes()) and time.monotonic() < end:
        time.sleep(0.05)
    assert not any(p == grandchild for p, *_ in _processes()), "the grandchild outlived the timeout"
