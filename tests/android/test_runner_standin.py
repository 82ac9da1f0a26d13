"""The whole adb path against the STAND-IN adb (tests/android/standin_adb.py, not adb), which replays
real benchmark_model outputs and adb's own wording for the cases a machine without a phone cannot show."""

from __future__ import annotations

import json
import os
import time

import pytest

from edgeq.config import BenchConfig
from edgeq.errors import CONVERSION_FAILED, UNAVAILABLE, USAGE, ConversionFailed, Unavailable, UsageError
from edgeq.findings import Basis, Level
from edgeq.targets import registry
from tests.android.conftest import EM_X86_64, PHONE_PROPS, calls, elf_bytes, recorded

SERIAL = "R5CR1234567"
REMOTE_MODEL = "/data/local/tmp/edgeq/tiny_int8.tflite"


def runner(adb_path, binary, **kw):
    return registry.get("android").runner(None, {"adb": adb_path, "benchmark_binary": str(binary), **kw})


def test_delegates_side_by_side(standin, fake_binary, tiny_int8, tmp_path):
    adb_path, log = standin(
        benchmark={
            "cpu": str(recorded("lp6m_mi11_cpu_int8.txt")),
            "gpu": str(recorded("tf43541_gpu_opencl.txt")),
            "nnapi": str(recorded("lp6m_mi11_nnapi_qti_dsp_failed.txt")),
        }
    )
    r = runner(
        adb_path,
        fake_binary,
        delegates="cpu,gpu,nnapi",
        nnapi_accelerator="qti-dsp",
        log_dir=str(tmp_path / "logs"),
    )
    assert r.availability().available  # one adb devices -l
    log.unlink()
    result = r.benchmark(str(tiny_int8), BenchConfig(num_threads=4, num_runs=50, warmup_runs=1))

    # the exact adb calls, in order
    argvs = calls(log)
    assert argvs[0] == ["devices", "-l"]
    assert argvs[1] == ["-s", SERIAL, "shell", "getprop"]
    assert argvs[2] == ["-s", SERIAL, "shell", "mkdir -p /data/local/tmp/edgeq"]
    assert argvs[3] == ["-s", SERIAL, "push", str(fake_binary), "/data/local/tmp/edgeq/benchmark_model"]
    assert argvs[4] == ["-s", SERIAL, "shell", "chmod 755 /data/local/tmp/edgeq/benchmark_model"]
    assert argvs[5] == ["-s", SERIAL, "push", str(tiny_int8), REMOTE_MODEL]
    common = f"--graph={REMOTE_MODEL} --num_threads=4 --num_runs=50 --warmup_runs=1"
    exe = "echo EDGEQ_PID=$$; exec /data/local/tmp/edgeq/benchmark_model"
    assert argvs[6] == ["-s", SERIAL, "shell", f"{exe} {common} --use_xnnpack=false"]
    assert argvs[7] == ["-s", SERIAL, "shell", f"{exe} {common} --use_gpu=true"]
    assert argvs[8] == ["-s", SERIAL, "shell", f"{exe} {common} --use_nnapi=true --nnapi_accelerator_name=qti-dsp"]
    assert argvs[9] == ["-s", SERIAL, "shell", f"rm -f {REMOTE_MODEL}"]

    cpu, gpu, nnapi = result.delegates
    assert (cpu.status, gpu.status, nnapi.status) == ("ok", "ok", "failed")
    assert cpu.latency_ms()["mean"] == pytest.approx(95.7883)
    assert gpu.ran_on == "gpu" and gpu.cpu_fallback is False
    assert "Failed to apply NNAPI delegate." in nnapi.error and "ANEURALNETWORKS_BAD_DATA" in nnapi.error
    assert result.device == SERIAL
    info = result.device_info
    assert info["model"] == "Mi 11" and info["soc"] == "Qualcomm SM8350" and info["abi"] == "arm64-v8a"
    assert info["android_version"] == "12" and info["sdk"] == 31
    assert info["nnapi_accelerators"] == ["qti-default", "qti-dsp", "qti-gpu", "nnapi-reference"]
    assert result.model["flavour"] == "int8" and result.binary["abi"] == "arm64-v8a"

    table = {row["delegate"]: row for row in result.table()}
    assert table["gpu"]["speedup_vs_cpu"] == pytest.approx(95.7883 / 119.375, abs=1e-3)
    assert table["nnapi:qti-dsp"]["status"] == "failed" and table["nnapi:qti-dsp"]["mean_ms"] is None

    # what a one-number pipeline (edgeq build) reads: the first delegate that ran
    stats = result.stats
    assert (
        stats.mean == pytest.approx(95.7883)
        and stats.num_runs == 50
        and stats.first_invoke_ms == pytest.approx(152.949)
    )
    assert stats.p90 is None and stats.p99 is None  # benchmark_model does not print them; edgeq does not invent them
    doc = json.loads(json.dumps(result.to_dict()))
    assert doc["primary_delegate"] == "cpu" and doc["delegates"][2]["status"] == "failed"
    assert "EDGEQ_PID" not in doc["delegates"][0]["output_tail"]
    assert os.path.exists(doc["delegates"][1]["log"])

    # the typed findings: the first delegate's latency, measured on the phone and brought back over adb
    lat = result.findings.latency
    assert lat is not None and lat.basis == Basis.MEASURED and lat.via == "over adb" == result.via
    assert lat.value == pytest.approx(cpu.latency_ms()["p50"] or cpu.latency_ms()["mean"])
    assert lat.where == f"Xiaomi Mi 11 ({SERIAL})" and "runs of benchmark_model, cpu delegate" in lat.how
    (failed,) = [m for m in result.findings.messages if "nnapi delegate failed" in m.text]
    assert failed.level == Level.WARNING
    assert doc["findings"]["latency"]["via"] == "over adb"
    # what edgeq bench prints: the phone, the delegates side by side, the notes
    head, *lines = result.describe("m.tflite")
    assert head == f"m.tflite on {result.target} ({result.device})"
    assert lines[0].splitlines()[0].split()[:3] == ["delegate", "status", "ran"]
    assert [row.split()[:2] for row in lines[0].splitlines()[2:]] == [
        ["cpu", "ok"],
        ["gpu", "ok"],
        ["nnapi:qti-dsp", "failed"],
    ]
    assert lines[1:] == list(result.notes)


def test_nnapi_on_npu_fully_delegated_and_android_15_deprecation(standin, fake_binary, tiny_int8):
    props = dict(PHONE_PROPS, **{"ro.build.version.release": "15", "ro.build.version.sdk": "35"})
    adb_path, _ = standin(getprop=props, benchmark={"nnapi": str(recorded("synaptics_nnapi_synap_npu.txt"))})
    result = runner(adb_path, fake_binary, delegates="nnapi", nnapi_accelerator="synap-npu").benchmark(str(tiny_int8))
    (run,) = result.delegates
    assert run.ok and run.ran_on == "nnapi:synap-npu" and run.cpu_fallback is False
    assert run.stats().num_runs == 520 and run.stats().warmup_runs == 1
    assert any("NNAPI is deprecated from Android 15" in n for n in result.notes)
    assert any("ran 520 timed runs" in n for n in run.notes)  # count differs from --num_runs=50
    deprecated = [m for m in result.findings.messages if "NNAPI is deprecated" in m.text]
    assert [m.level for m in deprecated] == [Level.WARNING]
    assert "of 520 runs of benchmark_model, nnapi delegate" in result.findings.latency.how


def test_every_delegate_failing_is_exit_4(standin, fake_binary, tiny_int8):
    adb_path, _ = standin(benchmark={"xnnpack": str(recorded("tf56166_xnnpack_failed.txt"))})
    with pytest.raises(ConversionFailed) as err:
        runner(adb_path, fake_binary, delegates="xnnpack").benchmark(str(tiny_int8))
    assert err.value.exit_code == CONVERSION_FAILED
    assert "Failed to apply XNNPACK delegate." in err.value.message


def test_several_devices_without_serial(standin, fake_binary, tiny_int8):
    adb_path, log = standin(
        devices=[[SERIAL, "device", "transport_id:1"], ["emulator-5554", "device", "transport_id:2"]]
    )
    r = runner(adb_path, fake_binary)
    with pytest.raises(UsageError) as err:
        r.benchmark(str(tiny_int8))
    assert err.value.exit_code == USAGE
    assert "2 devices attached" in err.value.message and f"{SERIAL}, emulator-5554" in err.value.hint
    assert calls(log) == [["devices", "-l"]]  # nothing pushed
    # with --serial it goes ahead
    adb_path, _ = standin(
        devices=[[SERIAL, "device", ""], ["emulator-5554", "device", ""]],
        benchmark={"cpu": str(recorded("lp6m_mi11_cpu_fp32.txt"))},
    )
    assert runner(adb_path, fake_binary, serial="emulator-5554").benchmark(str(tiny_int8)).device == "emulator-5554"


@pytest.mark.parametrize(
    "state, words, hint",
    [
        ("unauthorized", "is unauthorized", "Allow USB debugging"),
        ("offline", "is offline", "adb reconnect"),
        ("no permissions", "no permission to open USB device", "udev"),
        ("recovery", "'recovery' state", "boot the phone"),
    ],
)
def test_device_states(standin, fake_binary, tiny_int8, state, words, hint):
    adb_path, log = standin(devices=[[SERIAL, state, "usb:1-1 transport_id:1"]])
    r = runner(adb_path, fake_binary)
    assert r.availability().available  # attached: benchmark() names the fix
    with pytest.raises(Unavailable) as err:
        r.benchmark(str(tiny_int8))
    assert err.value.exit_code == UNAVAILABLE and words in err.value.message and hint in err.value.hint


def test_serial_not_attached(standin, fake_binary, tiny_int8):
    adb_path, _ = standin()
    r = runner(adb_path, fake_binary, serial="emulator-5554")
    assert not r.availability().available
    with pytest.raises(Unavailable, match=f"'emulator-5554' not found \\(adb lists: {SERIAL} \\(device\\)\\)"):
        r.benchmark(str(tiny_int8))


def test_phone_locked_mid_run_uses_adbs_words(standin, fake_binary, tiny_int8):
    adb_path, _ = standin(fail_shell="error: device unauthorized.\nThis adb server's $ADB_VENDOR_KEYS is not set")
    with pytest.raises(Unavailable, match="unauthorized"):
        runner(adb_path, fake_binary).benchmark(str(tiny_int8))


def test_wrong_abi_refused_before_pushing(standin, tmp_path, tiny_int8):
    x86 = tmp_path / "android_x86_64_benchmark_model"
    x86.write_bytes(elf_bytes(EM_X86_64, 64, "/system/bin/linker64"))
    adb_path, log = standin()
    with pytest.raises(Unavailable) as err:
        runner(adb_path, x86).benchmark(str(tiny_int8))
    assert "built for x86_64, but the phone runs arm64-v8a" in err.value.message
    assert not any("push" in argv for argv in calls(log))


def test_phone_shell_refusing_the_binary(standin, fake_binary, tiny_int8):
    adb_path, _ = standin(
        exec_error="/system/bin/sh: /data/local/tmp/edgeq/benchmark_model: not executable: 64-bit ELF file"
    )
    with pytest.raises(Unavailable) as err:
        runner(adb_path, fake_binary).benchmark(str(tiny_int8))
    assert "not executable: 64-bit ELF file" in err.value.message and "ABI" in err.value.hint


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_hung_adb_call_is_killed(standin, fake_binary, tiny_int8, tmp_path):
    pidfile = tmp_path / "standin.pid"
    adb_path, _ = standin(hang=["getprop"], pidfile=str(pidfile))
    start = time.monotonic()
    with pytest.raises(Unavailable) as err:
        runner(adb_path, fake_binary, adb_timeout_s=1.0).benchmark(str(tiny_int8))
    assert time.monotonic() - start < 20
    assert "'adb shell getprop' did not answer within 1 s (killed)" in err.value.message
    assert "adb kill-server" in err.value.hint
    assert not _alive(int(pidfile.read_text()))


def test_hung_benchmark_is_killed_here_and_on_the_phone(standin, fake_binary, tiny_int8, tmp_path):
    pidfile = tmp_path / "standin.pid"
    adb_path, log = standin(hang=["benchmark"], pidfile=str(pidfile))
    with pytest.raises(Unavailable) as err:
        runner(adb_path, fake_binary, timeout_s=1.0).benchmark(str(tiny_int8))
    assert "did not finish" in err.value.message and "--timeout-s" in err.value.hint
    assert err.value.details["delegates"][0]["status"] == "timeout"
    assert ["-s", SERIAL, "shell", "kill 4242"] in calls(log)  # the PID the phone's shell printed
    assert not _alive(int(pidfile.read_text()))


def test_not_a_tflite_model(standin, fake_binary, tmp_path):
    from edgeq.errors import BadInput

    bogus = tmp_path / "model.tflite"
    bogus.write_bytes(b"not a model")
    adb_path, log = standin()
    with pytest.raises(BadInput):
        runner(adb_path, fake_binary).benchmark(str(bogus))
    assert calls(log) == []
