"""edgeq build --target coral,cpu --host USER@127.0.0.1: the build's benchmarks run on the "board" over SSH
(this machine's sshd, with LiteRT's CPU standing in for the board's runtime; no libedgetpu here)."""

from __future__ import annotations

import json
import sys

import pytest

from edgeq.findings import Basis, Findings

SSH_OPTIONS = "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR"


@pytest.mark.slow
def test_build_benchmarks_cpu_over_ssh_and_says_why_coral_cannot(sshd, run_cli, tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEQ_SSH_OPTIONS", SSH_OPTIONS)
    out = tmp_path / "out"
    host = f"{sshd['user']}@127.0.0.1"
    r = run_cli(
        "build", "--target", "coral,cpu", "--method", "ptq", "-o", str(out), "--runs", "5", "--warmup", "1",
        "--host", host, "--port", str(sshd["port"]), "--identity", sshd["key"], "--remote-python", sys.executable,
    )  # fmt: skip
    assert r.exit_code == 0, r.stderr

    cpu = json.loads((out / "cpu" / "build.json").read_text())
    int8 = cpu["variants"][-1]
    assert int8["latency_where"] == host and int8["latency_via"] == "over SSH" and not int8["bench_skipped"]
    assert int8["bench_environment"]["host"] == host and int8["latency_ms"]["p50"] > 0
    lat = Findings.from_dict(cpu["findings"]).latency
    assert lat is not None and lat.basis == Basis.MEASURED and lat.via == "over SSH" and lat.where == host
    assert lat.value == int8["latency_ms"]["p50"] and lat.low is not None and lat.high is not None
    assert cpu["options"]["bench"]["host"] == host and cpu["options"]["bench"]["port"] == sshd["port"]
    cpu_line = next(line for line in r.stdout.splitlines() if line.strip().startswith("cpu:"))
    assert f"measured over SSH on {host}" in cpu_line
    assert f"measured over SSH on {host}" in (out / "report.md").read_text()
    # the float reference is this machine's: only the target's own benchmark goes to the board
    assert cpu["variants"][0]["latency_where"] == "host" and not cpu["variants"][0].get("latency_via")

    # coral reached the board, but its runtime is not there: said, and the host's figure stands in, labelled
    coral = json.loads((out / "coral" / "build.json").read_text())
    assert coral["status"] == "ok" and coral["options"]["bench"]["host"] == host
    skipped = coral["variants"][-1]["bench_skipped"]
    assert Findings.from_dict(coral["findings"]).latency is None  # the host's figure is no latency on coral
    assert skipped and host in skipped and "edgetpu" in skipped.lower()
    coral_line = next(line for line in r.stdout.splitlines() if line.strip().startswith("coral:"))
    assert "not on coral" in coral_line and "measured over SSH" not in coral_line
