"""`edgeq build --target android` with a phone attached (the stand-in adb replaying a real
benchmark_model output): the build table and the report render the phone's figures, and the
figures benchmark_model does not print (p90/p99) show as "-", never as a crash or a made-up number."""

from __future__ import annotations

import json
import os

import pytest

from edgeq.findings import Basis, Findings
from tests.android.conftest import recorded


@pytest.mark.slow
def test_android_build_with_a_phone_renders(run_cli, standin, fake_binary, tmp_path, monkeypatch):
    adb_path, log = standin(benchmark={"cpu": str(recorded("lp6m_mi11_cpu_int8.txt"))})
    monkeypatch.setenv("PATH", os.path.dirname(adb_path) + os.pathsep + os.environ["PATH"])
    monkeypatch.setenv("EDGEQ_BENCHMARK_MODEL", str(fake_binary))
    out = tmp_path / "b"
    r = run_cli("build", "--target", "android", "-o", out)
    assert r.exit_code == 0, r.stderr
    manifest = json.loads((out / "android" / "build.json").read_text())
    int8 = manifest["variants"][-1]
    assert "R5CR1234567" in int8["latency_on"]  # measured on the phone, not the host
    lat = int8["latency_ms"]
    assert lat["mean"] == pytest.approx(95.788, abs=1e-3) and lat["std"] == pytest.approx(1.284)  # as recorded
    assert lat["p50"] is None and lat["p99"] is None  # this benchmark_model printed no percentiles
    assert "R5CR1234567" in r.stdout
    # the findings: measured on the phone (the mean: no percentiles printed), where, and over adb
    assert not {"verdict", "info", "warnings"} & set(manifest)
    found = Findings.from_dict(manifest["findings"]).latency
    assert found is not None and found.basis == Basis.MEASURED and "R5CR1234567" in found.where
    assert found.value == pytest.approx(95.788, abs=1e-3) and found.how.startswith("mean of ")
    assert int8["latency_kind"] == "measured" and "R5CR1234567" in int8["latency_where"]
    # every phone flavour is deployed: float32 (the reference), fp16 (GPU delegate), int8
    assert [v["variant"] for v in manifest["variants"]] == ["float", "fp16", "int8"]
    for name in ("mnist_cnn_float.tflite", "mnist_cnn_fp16.tflite", "mnist_cnn_int8.tflite"):
        assert name in manifest["artifacts"] and (out / "android" / name).is_file()
    assert ".cache" not in r.stdout
    html = (out / "report.html").read_text()
    assert "R5CR1234567" in html and "None" not in (out / "report.md").read_text()
    assert any("benchmark_model" in " ".join(c) for c in map(json.loads, log.read_text().splitlines()))
