"""Failure handling against the REAL adb (Debian's adb package) on a machine with no phone attached.

The adb server runs on a private port for this session (conftest.real_adb) and is killed after it.
"""

from __future__ import annotations

import pytest

from edgeq.errors import UNAVAILABLE, Unavailable
from edgeq.targets import registry
from edgeq.targets.android import adb


def test_finds_the_real_adb(real_adb):
    assert adb.find() == real_adb
    r = adb.run([real_adb, "version"], timeout_s=30)
    assert r.returncode == 0 and "Android Debug Bridge version" in r.stdout


def test_no_device_listed(real_adb):
    assert adb.Adb(real_adb).devices() == []


def test_select_with_no_device(real_adb):
    with pytest.raises(Unavailable) as err:
        adb.Adb(real_adb).select()
    assert err.value.exit_code == UNAVAILABLE
    assert err.value.message == "no Android device attached (adb devices lists none)"
    assert "USB debugging" in err.value.hint


def test_select_a_serial_that_is_not_there(real_adb):
    with pytest.raises(Unavailable, match="device 'emulator-5554' not found \\(adb lists: none\\)"):
        adb.Adb(real_adb).select("emulator-5554")


def test_real_adb_errors_are_typed(real_adb):
    # adb's own wording, straight from the real client: "error: no devices/emulators found"
    with pytest.raises(Unavailable) as err:
        adb.Adb(real_adb).shell("true")
    assert "no Android device attached (adb: error: no devices/emulators found)" == err.value.message
    # "error: device 'XYZ' not found"
    with pytest.raises(Unavailable, match="device 'XYZ' not found"):
        adb.Adb(real_adb, "XYZ").shell("true")


def test_real_push_without_device(real_adb, tmp_path):
    f = tmp_path / "m.tflite"
    f.write_bytes(b"x")
    with pytest.raises(Unavailable, match="no Android device attached"):
        adb.Adb(real_adb).push(str(f), "/data/local/tmp/edgeq/m.tflite")


def test_runner_availability_and_benchmark_without_phone(real_adb, fake_binary, tiny_int8):
    r = registry.get("android").runner(None, {"benchmark_binary": str(fake_binary), "delegates": "cpu,gpu"})
    available = r.availability()
    assert not available.available and available.reason == "no Android device attached (adb devices lists none)"
    with pytest.raises(Unavailable, match="no Android device attached"):
        r.benchmark(str(tiny_int8))


def test_no_adb_on_path(monkeypatch, fake_binary, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(Unavailable) as err:
        adb.find()
    assert err.value.message == "adb is not installed (not on PATH)" and "apt-get install adb" in err.value.hint
    r = registry.get("android").runner(None, {"benchmark_binary": str(fake_binary)})
    assert not r.availability().available and "adb is not installed" in r.availability().reason
    with pytest.raises(Unavailable, match="adb not found: /nowhere/adb"):
        adb.find("/nowhere/adb")


def test_no_benchmark_binary(real_adb, monkeypatch, tiny_int8):
    monkeypatch.delenv("EDGEQ_BENCHMARK_MODEL", raising=False)
    r = registry.get("android").runner()
    reason = r.availability().reason
    assert reason.startswith("no benchmark_model binary given") and "android_aarch64_benchmark_model" in reason
    with pytest.raises(Unavailable, match="no benchmark_model binary given"):
        r.benchmark(str(tiny_int8))


def test_binary_from_environment(monkeypatch, fake_binary):
    monkeypatch.setenv("EDGEQ_BENCHMARK_MODEL", str(fake_binary))
    assert registry.get("android").runner().binary == str(fake_binary)


def test_real_adb_hung_call_times_out(real_adb):
    # adb wait-for-device blocks until a phone appears: with none, the timeout must end it
    with pytest.raises(Unavailable, match="did not answer within 1 s \\(killed\\)"):
        adb.Adb(real_adb).call("wait-for-device", timeout_s=1.0, what="adb wait-for-device")
