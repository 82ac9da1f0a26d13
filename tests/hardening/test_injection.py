"""No local command from a host name or a device serial (issue 11, defect 1).

The CLI cases run the real ssh client: before the fix, ``--host '-oProxyCommand=touch pwned'``
made ssh run ``touch pwned`` on this machine. The argv cases record every ssh/scp/adb command
line and check that ``--`` ends the options before the destination.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from edgeq import procs
from edgeq.errors import UsageError
from edgeq.targets.addresses import adb_serial, ssh_destination
from edgeq.targets.android.adb import Adb
from edgeq.targets.remote import SshRunner

HOSTILE_HOSTS = [
    "-oProxyCommand=touch pwned",
    "-o ProxyCommand=touch pwned",
    "-oProxyCommand=touch${IFS}pwned",
    "-F/dev/null",
    "--",
    "-p22",
    "-oLocalCommand=touch pwned",
    "user@-oProxyCommand=touch pwned",
    "host;touch pwned",
    "host && touch pwned",
    "$(touch pwned)",
    "`touch pwned`",
    "host touch pwned",
    "host\ntouch pwned",
    "host|touch pwned",
    "ssh://user@host",
    "user@host:22:22",
    "user@host:abc",
    "user@host:99999",
    "user@host:0",
    "us er@host",
    "-user@host",
    "[::1",
    "[::1]x",
    "[not:v6;x]",
    "user@",
    "@host",
    "a" * 400,
]

GOOD_HOSTS = {
    "board": ("board", None, None),
    "mendel@coral.local": ("coral.local", "mendel", None),
    "pi@192.168.1.20:2222": ("192.168.1.20", "pi", 2222),
    "root@[fe80::1%eth0]": ("fe80::1%eth0", "root", None),
    "[::1]:22": ("::1", None, 22),
    "my_board": ("my_board", None, None),
    "first.last@dev-board-01.lab.example.com": ("dev-board-01.lab.example.com", "first.last", None),
}


@pytest.mark.parametrize("text", HOSTILE_HOSTS)
def test_hostile_host_is_refused(text):
    with pytest.raises(UsageError) as exc:
        ssh_destination(text)
    assert exc.value.hint  # says what a host looks like


@pytest.mark.parametrize("text", list(GOOD_HOSTS))
def test_real_hosts_parse(text):
    d = ssh_destination(text)
    assert (d.host, d.user, d.port) == GOOD_HOSTS[text]


def test_empty_host_says_so():
    for text in ("", "  "):
        with pytest.raises(UsageError, match="--host is empty"):
            ssh_destination(text)


def test_port_in_host_and_port_flag_must_agree():
    assert ssh_destination("pi@board:2222", 2222).port == 2222
    assert ssh_destination("pi@board", 2200).port == 2200
    with pytest.raises(UsageError, match="port 2222 and --port says 22"):
        ssh_destination("pi@board:2222", 22)
    with pytest.raises(UsageError, match="--port must be from 1 to 65535"):
        ssh_destination("pi@board", 70000)


def _recording_runner(monkeypatch, host: str, **kw) -> tuple[SshRunner, list[list[str]]]:
    calls: list[list[str]] = []

    def fake_run(cmd, *_a, **_kw):
        calls.append(list(cmd))
        out = "/tmp/edgeq-bench.abc123\n" if "mktemp" in cmd[-1] else '{"error": "stop here"}\n'
        return subprocess.CompletedProcess(cmd, 0, out, "")

    # every ssh and scp goes through edgeq's one child-process runner (its own process group)
    monkeypatch.setattr(procs, "run", fake_run)
    return SshRunner(host=host, **kw), calls


def test_every_ssh_and_scp_argv_ends_options_before_the_destination(monkeypatch, tmp_path):
    model = tmp_path / "we:ird -name.tflite"
    model.write_bytes(b"x")
    runner, calls = _recording_runner(monkeypatch, "pi@[fe80::1]:2222", identity="/keys/id")
    with pytest.raises(Exception, match="stop here"):
        from edgeq.config import BenchConfig

        runner.benchmark(str(model), BenchConfig(num_runs=1, warmup_runs=0))
    assert {c[0] for c in calls} == {"ssh", "scp"}
    for argv in calls:
        cut = argv.index("--")
        # everything before "--" is edgeq's own options; the destination comes right after it
        assert all(not a.startswith("pi@") for a in argv[:cut])
        if argv[0] == "ssh":
            assert argv[cut + 1] == "pi@fe80::1" and argv[argv.index("-p") + 1] == "2222"
        else:
            assert argv[-1].startswith("pi@[fe80::1]:/tmp/edgeq-bench.abc123/")
            assert argv[argv.index("-P") + 1] == "2222"
            # local files are absolute, so scp never reads "we:ird -name.tflite" as host:path
            assert all(os.path.isabs(a) for a in argv[cut + 1 : -1])


@pytest.mark.parametrize("serial", ["-H evil", "-a", "", "x;reboot", "a b", "$(reboot)", "emulator-5554\n-d"])
def test_hostile_adb_serial_is_refused(serial):
    with pytest.raises(UsageError):
        adb_serial(serial)
    with pytest.raises(UsageError):
        Adb("adb", serial)


@pytest.mark.parametrize(
    "serial", ["emulator-5554", "R58M12ABCDE", "192.168.1.5:5555", "adb-1A2B3C-xYz._adb-tls-connect._tcp"]
)
def test_real_adb_serials_pass(serial):
    assert Adb("adb", serial).argv("devices")[:3] == ["adb", "-s", serial]


# --- the real CLI, the real ssh client ---------------------------------------------------------------------------

needs_ssh = pytest.mark.skipif(shutil.which("ssh") is None, reason="no ssh client (apt-get install openssh-client)")


@needs_ssh
@pytest.mark.parametrize("target", ["cpu", "coral"])
@pytest.mark.parametrize(
    "host", ["-oProxyCommand=touch pwned", "-oProxyCommand=touch${IFS}pwned", "x@-oProxyCommand=touch pwned"]
)
def test_cli_host_injection_runs_nothing(run_cli, tiny_int8, tmp_path, monkeypatch, target, host):
    monkeypatch.chdir(tmp_path)
    r = run_cli("--json", "bench", tiny_int8, "--target", target, "--host", host, "--timeout-s", "10")
    assert not (tmp_path / "pwned").exists(), "ssh ran a command from --host"
    assert r.exit_code == 2 and r.json["error"]["type"] == "usage" and "--host" in r.json["error"]["message"]


@needs_ssh
def test_cli_empty_host(run_cli, tiny_int8):
    r = run_cli("bench", tiny_int8, "--host", "")
    assert r.exit_code == 2 and "--host is empty" in r.stderr and "needs --host" not in r.stderr


@pytest.mark.parametrize("serial", ["-H evil", "x;reboot"])
def test_cli_hostile_serial(run_cli, tiny_int8, tmp_path, serial):
    binary = tmp_path / "benchmark_model"
    binary.write_bytes(b"\x7fELF")
    r = run_cli("--json", "bench", tiny_int8, "--target", "android", "--serial", serial, "--benchmark-binary", binary)
    assert r.exit_code == 2 and "--serial" in r.json["error"]["message"]
    r = run_cli("--json", "bench", tiny_int8, "--target", "android", "--device", serial, "--benchmark-binary", binary)
    assert r.exit_code == 2 and "--device" in r.json["error"]["message"]


@pytest.mark.parametrize("target", ["cpu", "mcu", "ethos-u"])
def test_cli_device_that_does_not_apply_is_a_usage_error(run_cli, tiny_int8, target):
    r = run_cli("--json", "bench", tiny_int8, "--target", target, "--device", "usb:0")
    assert r.exit_code == 2 and r.json["error"]["message"] == f"--device does not apply to target {target} for bench"


def test_relative_compiler_path_is_resolved(tmp_path, monkeypatch):
    from edgeq.targets.coral import compiler

    exe = tmp_path / "edgetpu_compiler"
    exe.write_text("#!/bin/sh\necho 'Edge TPU Compiler version 16.0.384591198'\n")
    exe.chmod(0o755)
    monkeypatch.chdir(tmp_path)
    found = compiler.find("./edgetpu_compiler")
    assert found == str(exe) and Path(found).is_absolute()
    monkeypatch.chdir("/")  # the compiler is run from other folders: the path must still point at it
    assert compiler.version(found) == "16.0.384591198"
