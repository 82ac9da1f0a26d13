"""edgeq check/compile --target ethos-u: the real Vela (ethos-u-vela) on the bundled and zoo models."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from edgeq.errors import BadInput, ConversionFailed, OutputExists, UsageError
from edgeq.findings import Basis, Level, Placement
from edgeq.targets import registry
from edgeq.tflite import read_file
from tests.mcu.conftest import MLPERF_TINY


@pytest.fixture(scope="module")
def ethos():
    t = registry.get("ethos-u")
    from edgeq.targets.ethos_u import vela

    if not vela.available():
        pytest.skip("ethos-u-vela is not installed")
    return t


@pytest.fixture(scope="module")
def compiled(ethos, mcu_models, tmp_path_factory):
    out = tmp_path_factory.mktemp("vela")
    return out, {name: ethos.compile([str(mcu_models[name])], str(out)) for name in (*MLPERF_TINY, "bundled_int8")}


@pytest.mark.parametrize("name", [*MLPERF_TINY, "bundled_int8"])
def test_vela_results_for_the_bundled_and_zoo_models(compiled, mcu_models, name):
    out, results = compiled
    r = results[name]
    d = r.details
    s = d["summary"]
    n_ops = len(read_file(mcu_models[name]).ops)
    assert d["counts"] == {"npu": n_ops, "cpu": 0} and d["npu_custom_ops"] >= 1 and d["cpu_ops_in_output"] == []
    assert s["vela_operators"]["cpu"] == 0 and s["vela_operators"]["npu"] >= n_ops
    assert s["sram_used_bytes"] > 0 and s["off_chip_flash_used_bytes"] > 0
    assert s["cycles"]["total"] >= s["cycles"]["npu"] > 0
    assert s["inference_time_ms"] > 0 and s["inferences_per_second"] == pytest.approx(
        1000 / s["inference_time_ms"], rel=1e-6
    )
    assert s["accelerator"] == "Ethos_U55_128" and s["system_config"] == "Ethos_U55_High_End_Embedded"
    assert s["macs"] >= read_file(mcu_models[name]).macs * 0.9
    # the outputs are on disk, and the optimised model holds ethos-u custom ops
    files = d["files"]
    assert Path(r.output) == Path(files["model"]) and read_file(r.output).op_histogram().get("ethos-u", 0) >= 1
    for key in ("summary_csv", "console_log", "report"):
        assert Path(files[key]).exists()
    report = json.loads(Path(files["report"]).read_text())
    assert report["summary"]["cycles"] == s["cycles"] and report["tool_versions"]["ethos-u-vela"]
    assert not [p for p in out.iterdir() if p.name.startswith(".edgeq-vela")]


def test_bigger_npu_is_not_slower(ethos, mcu_models):
    small = ethos.check(str(mcu_models["resnet8"]), {"accelerator": "ethos-u55-64"}).details["summary"]
    big = ethos.check(str(mcu_models["resnet8"]), {"accelerator": "ethos-u55-256"}).details["summary"]
    assert big["cycles"]["npu"] < small["cycles"]["npu"]


def test_check_reports_the_split(ethos, mcu_models):
    r = ethos.check(str(mcu_models["ds_cnn"]))
    p = r.findings.placement
    n_ops = len(read_file(mcu_models["ds_cnn"]).ops)
    assert r.ok and p == Placement("Ethos-U NPU (ethos-u55-128)", n_ops, 0, Basis.COMPILED, "")
    assert all(row["status"] == "npu" for row in r.ops)
    assert any("Vela estimate" in m for m in r.messages)
    # Vela's memory figures are the compiler's; its time is its performance model's estimate
    s = r.details["summary"]
    sram = r.findings.memory["SRAM"]
    assert sram.basis == Basis.COMPILED and sram.value == s["sram_used_bytes"] and sram.unit == "bytes"
    assert "ethos-u55-128" in sram.where and "Ethos_U55_High_End_Embedded" in sram.where
    lat = r.findings.latency
    assert lat is not None and lat.basis == Basis.ESTIMATED and lat.how == "Vela's performance model"
    assert lat.value == s["inference_time_ms"] and lat.unit == "ms" and "CPU" in lat.error
    assert {m.level for m in r.findings.messages} == {Level.INFO}  # all on the NPU: nothing to warn about
    assert r.describe("ds_cnn.tflite")[0] == f"ds_cnn.tflite on ethos-u: {n_ops} op(s) on the NPU, 0 op(s) on the CPU"


def test_unsupported_op_stays_on_the_cpu_with_vela_reason(ethos, mcu_models):
    r = ethos.check(str(mcu_models["three_missing"]))
    p = r.findings.placement
    assert not r.ok and p is not None and p.off >= 1 and p.basis == Basis.COMPILED
    rows = {row["op"]: row for row in r.ops if row["status"] == "cpu"}
    assert "TOPK_V2" in rows and rows["TOPK_V2"]["reason"]
    first = next(m for m in r.findings.messages if m.text.startswith("first op on the CPU"))
    assert first.level == Level.WARNING and p.first_off and p.first_off.split(":")[0] in first.text


def test_float_model_maps_nothing(ethos, mcu_models):
    r = ethos.check(str(mcu_models["bundled_float"]))
    p = r.findings.placement
    assert not r.ok and p is not None and p.on == 0 and p.off == len(read_file(mcu_models["bundled_float"]).ops)
    nothing = [m for m in r.findings.messages if "nothing runs on the NPU" in m.text]
    assert len(nothing) == 1 and "float" in nothing[0].text and nothing[0].level == Level.WARNING
    assert "Float32" in p.first_off and r.findings.latency is None  # no NPU estimate for a model the NPU does not run


def test_other_accelerators_and_memory_modes(ethos, mcu_models, tmp_path):
    r = ethos.compile(
        [str(mcu_models["bundled_int8"])], str(tmp_path), {"accelerator": "ethos-u65-256", "overwrite": False}
    )
    s = r.details["summary"]
    assert s["accelerator"] == "Ethos_U65_256" and s["memory_mode"] == "Dedicated_Sram" and s["dram_used_bytes"] > 0
    assert Path(r.details["files"]["summary_csv"]).name.endswith("_summary_Ethos_U65_High_End.csv")
    r = ethos.check(str(mcu_models["bundled_int8"]), {"memory_mode": "Sram_Only"})
    assert r.details["summary"]["memory_mode"] == "Sram_Only" and not r.details["summary"]["off_chip_flash_used_bytes"]


def test_refuses_to_overwrite_without_force(ethos, mcu_models, tmp_path):
    model = str(mcu_models["bundled_int8"])
    ethos.compile([model], str(tmp_path), {"overwrite": False})
    with pytest.raises(OutputExists):
        ethos.compile([model], str(tmp_path), {"overwrite": False})
    ethos.compile([model], str(tmp_path))  # the pipeline's call: replaces edgeq's own outputs
    ethos.compile([model], str(tmp_path), {"overwrite": True})


def test_bad_options_and_inputs(ethos, mcu_models, tmp_path):
    with pytest.raises(UsageError):
        ethos.check(str(mcu_models["bundled_int8"]), {"accelerator": "ethos-u77-1"})
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"garbage")
    with pytest.raises(BadInput):
        ethos.check(str(bad))
    with pytest.raises(ConversionFailed, match="did not finish"):
        ethos.check(str(mcu_models["mobilenet_v1_025"]), {"timeout_s": 0.01})


def test_no_runner_here(ethos):
    a = ethos.runner().availability()
    assert not a.available and "Ethos-U" in a.reason


def test_relative_model_and_output_paths(ethos, mcu_models, tmp_path, monkeypatch):
    import shutil

    shutil.copy(mcu_models["bundled_int8"], tmp_path / "m.tflite")
    monkeypatch.chdir(tmp_path)
    r = ethos.compile(["m.tflite"], "out")
    assert (tmp_path / "out" / "m_vela.tflite").exists() and r.details["counts"]["cpu"] == 0


def test_compile_given_the_check_does_not_run_vela_again(ethos, mcu_models, tmp_path, monkeypatch):
    from edgeq.targets.ethos_u import vela

    model = str(mcu_models["bundled_int8"])
    report = ethos.check(model)

    def refuse(*args, **kwargs):
        raise AssertionError("Vela ran again in compile")

    monkeypatch.setattr(vela, "run", refuse)
    r = ethos.compile([model], str(tmp_path / "a"), checked=(report,))
    assert read_file(r.output).op_histogram().get("ethos-u", 0) >= 1
    assert r.findings == report.findings and r.details["summary"] == report.details["summary"]
    for key in ("summary_csv", "console_log", "report"):
        assert Path(r.details["files"][key]).exists()
    saved = json.loads(Path(r.details["files"]["report"]).read_text())
    assert saved["findings"] == report.findings.to_dict()
    # another config, or a report without Vela's outputs, is not this compile's: Vela runs (and here fails)
    with pytest.raises(AssertionError, match="Vela ran again"):
        ethos.compile([model], str(tmp_path / "b"), {"accelerator": "ethos-u55-256"}, checked=(report,))
    with pytest.raises(AssertionError, match="Vela ran again"):
        ethos.compile([model], str(tmp_path / "c"), checked=(dataclasses.replace(report, vela=None),))
    monkeypatch.undo()
    alone = ethos.compile([model], str(tmp_path / "d"))  # without the check: runs Vela itself
    assert alone.findings == report.findings
    assert Path(alone.output).read_bytes() == Path(r.output).read_bytes()


def test_compile_describes_vela_summary(compiled):
    _, results = compiled
    r = results["bundled_int8"]
    lines = r.describe()
    assert lines[0] == f"compiled for ethos-u: {r.output}"
    assert any("sram_used_bytes" in line and "value" in line for line in lines)
