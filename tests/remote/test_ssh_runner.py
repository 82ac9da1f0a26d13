"""The SSH benchmark runner, for real: an OpenSSH server on 127.0.0.1 with throwaway keys,
and the LiteRT CPU in place of the Edge TPU on the "board"."""

from __future__ import annotations

import sys

import pytest

from edgeq.config import BenchConfig
from edgeq.errors import BadInput, Unavailable, UsageError
from edgeq.findings import Basis
from edgeq.targets.remote import RUNNER_SCRIPT, SshRunner
from tests.remote.conftest import free_port


def _runner(sshd, **kw) -> SshRunner:
    return SshRunner(
        host=f"{sshd['user']}@127.0.0.1",
        port=sshd["port"],
        identity=sshd["key"],
        python=sys.executable,
        ssh_options=["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR"],
        **kw,
    )


def test_remote_benchmark_over_ssh(sshd, tiny_int8, tmp_path, monkeypatch):
    board_tmp = tmp_path / "board-tmp"  # the "board"'s temp folder: this test's own, nothing else's
    board_tmp.mkdir()
    seen_during_the_run: list[dict[str, list[str]]] = []
    real_ssh = SshRunner.ssh

    def watching(self, remote_command, what, timeout_s=None):
        if remote_command.startswith(sys.executable):  # the benchmark: its folder holds the copies
            seen_during_the_run.append({d.name: sorted(p.name for p in d.iterdir()) for d in board_tmp.iterdir()})
        return real_ssh(self, remote_command, what, timeout_s)

    monkeypatch.setattr(SshRunner, "ssh", watching)
    r = _runner(sshd, target="coral", remote_tmp=str(board_tmp))
    assert r.availability().available
    res = r.benchmark(str(tiny_int8), BenchConfig(num_runs=20, warmup_runs=3))
    assert res.stats.num_runs == 20 and res.stats.warmup_runs == 3
    assert res.stats.first_invoke_ms > 0 and 0 < res.stats.p50 <= res.stats.p99
    assert res.environment["runtime"] == "ai_edge_litert.interpreter" and res.environment["host"].endswith("@127.0.0.1")
    # during the run, one temp folder of this run held the model and the runner; afterwards the board's
    # temp folder is empty: any file or folder the runner leaves behind fails here
    ((folder, files),) = seen_during_the_run[0].items()
    assert len(seen_during_the_run) == 1 and folder.startswith("edgeq-bench.")
    assert files == sorted([tiny_int8.name, RUNNER_SCRIPT.name])
    assert list(board_tmp.iterdir()) == []
    # the latency as typed findings: measured on the board, brought back over SSH
    lat = res.findings.latency
    assert lat is not None and lat.basis == Basis.MEASURED and lat.via == "over SSH" == res.via
    assert lat.value == res.stats.p50 and lat.where == res.device and lat.how == "p50 of 20 runs"
    assert (lat.low, lat.high) == (res.stats.min, res.stats.max)


def test_the_boards_temp_folder_is_an_absolute_path(sshd):
    with pytest.raises(UsageError, match="absolute path"):
        _runner(sshd, remote_tmp="tmp")


def test_remote_delegate_missing_is_unavailable(sshd, tiny_int8):
    r = _runner(sshd, delegate="libedgetpu.so.1", device="usb:0")
    with pytest.raises(Unavailable, match="libedgetpu.so.1") as exc:
        r.benchmark(str(tiny_int8), BenchConfig(num_runs=2, warmup_runs=0))
    assert "install libedgetpu" in exc.value.hint


def test_unreachable_board(tiny_int8):
    r = SshRunner(
        host="nobody@127.0.0.1",
        port=free_port(),
        timeout_s=20,
        ssh_options=["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null"],
    )
    avail = r.availability()
    assert not avail.available and "cannot reach" in avail.reason
    with pytest.raises(Unavailable):
        r.benchmark(str(tiny_int8), BenchConfig(num_runs=2))


def test_remote_model_that_does_not_run(sshd, tmp_path):
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"not a model")
    with pytest.raises(BadInput, match="failed on"):
        _runner(sshd).benchmark(str(bad), BenchConfig(num_runs=2))


def test_cli_bench_on_a_board_over_ssh(run_cli, sshd, tiny_int8, monkeypatch):
    ssh = [
        "--host",
        f"{sshd['user']}@127.0.0.1",
        "--port",
        sshd["port"],
        "--identity",
        sshd["key"],
        "--remote-python",
        sys.executable,
    ]
    monkeypatch.setenv(
        "EDGEQ_SSH_OPTIONS", "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR"
    )
    r = run_cli("--json", "bench", tiny_int8, "--target", "cpu", "--runs", "10", "--warmup", "2", *ssh)
    assert r.exit_code == 0, r.stderr
    res = r.json["result"]
    assert res["target"] == "cpu" and res["device"] == f"{sshd['user']}@127.0.0.1" and res["num_runs"] == 10
    # the same board as a Coral host: no Edge TPU runtime there, so a clear exit 5
    r = run_cli("bench", tiny_int8, "--target", "coral", "--device", "usb:0", "--runs", "2", *ssh)
    assert r.exit_code == 5 and "libedgetpu.so.1" in r.stderr
