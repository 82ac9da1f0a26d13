"""The android target as the pipeline sees it: registry, profile, check, runner options, result notes."""

from __future__ import annotations

import dataclasses

import pytest

from edgeq.config import IOType, Mode
from edgeq.errors import UsageError
from edgeq.findings import Level
from edgeq.targets import registry
from edgeq.targets.android import bench, benchparse
from tests.android.conftest import recorded


def test_registered_and_described():
    assert "android" in registry.names()
    t = registry.get("android")
    assert t.name == "android" and t.build_mode == Mode.INT8 and t.build_io == IOType.INT8
    assert t.profile == {"integer_only": False, "int16_activations": True, "cpu_fallback_splits_graph": False}
    assert [d["delegate"] for d in t.supported_delegates()] == ["cpu", "xnnpack", "gpu", "nnapi"]


def test_check_names_the_flavour_and_delegates(tiny_int8):
    report = registry.get("android").check(str(tiny_int8))
    assert report.ok and report.details["flavour"] == "int8"
    assert report.details["delegates"][0] == "nnapi"
    assert report.messages[0].startswith("flavour int8:")
    assert report.details["inputs"][0]["dtype"] == "int8"
    # typed: no placement (the phone decides), every message with its level
    f = report.findings
    assert f.placement is None
    assert f.no_accelerator == "delegates NNAPI, XNNPACK, CPU: which one runs is decided on the phone"
    assert f.messages[0].level == Level.INFO
    c = report.details["counts"]
    lines = report.describe("m.tflite")
    assert lines[0] == f"m.tflite on android: {c['ops']} op(s), {c['float_ops']} computing in float"
    assert lines[-1] == "delegates it suits, best first: nnapi, xnnpack, cpu"


def test_check_problems_are_warnings(tiny_int8, monkeypatch):
    from edgeq.targets.android import flavours

    real = flavours.describe
    monkeypatch.setattr(
        flavours, "describe", lambda path: dataclasses.replace(real(path), problems=("I/O is not int8",))
    )
    report = registry.get("android").check(str(tiny_int8))
    levels = {m.text: m.level for m in report.findings.messages}
    assert levels["for the int8 flavour: I/O is not int8"] == Level.WARNING


def test_runner_options():
    t = registry.get("android")
    r = t.runner("adb:R5CR1234567", {"delegates": ["cpu", "nnapi"], "nnapi_accelerator": "qti-dsp"})
    assert r.serial == "R5CR1234567" and r.opts.delegates == ("cpu", "nnapi")
    with pytest.raises(UsageError, match="unknown option 'num_threads' for target android"):
        t.runner(None, {"num_threads": 2})
    with pytest.raises(UsageError, match="disagree"):
        t.runner("A", {"serial": "B"})
    with pytest.raises(UsageError, match="single invokes"):
        r.invoke()


def _run(name: str, delegate: str, accelerator: str | None = None) -> bench.DelegateRun:
    parsed = benchparse.parse(recorded(name).read_text())
    return bench.DelegateRun(delegate, "ok", (), (), parsed, nnapi_accelerator=accelerator)


def test_nnapi_not_executed_is_reported_as_cpu_fallback():
    run = _run("tf56301_logcat_nnapi_not_executed.txt", "nnapi")
    assert run.ran_on == "cpu" and run.cpu_fallback is True
    notes = bench._delegate_notes("nnapi", run.parsed, bench.BenchOptions(delegates="nnapi"), "float32")
    assert any("NNAPI fell back to the CPU" in n and "whole model" in n for n in notes)
    assert any("want full-int8 models" in n for n in notes)


def test_nnapi_partial_lists_cpu_ops_with_profiling():
    run = _run("lp6m_mi11_nnapi_qti_gpu_op_profiling.txt", "nnapi", "qti-gpu")
    assert [o["node_type"] for o in run.cpu_ops()] == ["STRIDED_SLICE", "RESIZE_NEAREST_NEIGHBOR"]
    partial = _run("synaptics_nnapi_partial.txt", "nnapi")
    assert partial.ran_on == "nnapi + cpu" and partial.cpu_fallback is True
    opts = bench.BenchOptions(delegates="nnapi")
    assert any(
        "in part" in n and "--op-profiling" in n for n in bench._delegate_notes("nnapi", partial.parsed, opts, "int8")
    )


def test_nnapi_reference_is_the_cpu():
    run = _run("synaptics_nnapi_synap_npu.txt", "nnapi", "nnapi-reference")
    assert run.ran_on == "cpu (nnapi-reference)" and run.cpu_fallback is True
    opts = bench.BenchOptions(delegates="nnapi", nnapi_accelerator="nnapi-reference")
    assert any("NNAPI's CPU implementation" in n for n in bench._delegate_notes("nnapi", run.parsed, opts, "int8"))


def test_unknown_accelerator_name_is_noted():
    run = _run("lp6m_mi11_nnapi_qti_dsp_failed.txt", "nnapi", "qti-npu")
    opts = bench.BenchOptions(delegates="nnapi", nnapi_accelerator="qti-npu")
    notes = bench._delegate_notes("nnapi", run.parsed, opts, "int8")
    assert any(
        "'qti-npu' is not one the phone lists (qti-default, qti-dsp, qti-gpu, nnapi-reference)" in n for n in notes
    )


def test_gpu_partial_notes():
    parsed = benchparse.parse(recorded("tf57907_gpu_unsupported_ops.txt").read_text())
    notes = bench._delegate_notes("gpu", parsed, bench.BenchOptions(delegates="gpu"), "int8")
    assert any(n.startswith("GPU delegate does not support: ARG_MAX (Operation is not supported.)") for n in notes)
    assert any("97 op(s) on the GPU, 200 on the CPU" in n for n in notes)
    assert any("fp16 model is the flavour" in n for n in notes)


def test_android_9_and_10_notes():
    r = registry.get("android").runner(None, {"delegates": "nnapi", "nnapi_accelerator": "qti-dsp"})
    notes = r._notes(r.opts, {"sdk": 28, "android_version": "9"})
    assert any("needs Android 10" in n for n in notes) and any("/data/local/tmp" in n for n in notes)
    assert r._notes(r.opts, {"sdk": 33, "android_version": "13"}) == []


def test_options_as_a_mapping_as_the_cli_passes_them(tiny_int8, tmp_path):
    t = registry.get("android")
    r = t.runner("R5CR1234567", {"delegates": "cpu,gpu"})
    assert r.serial == "R5CR1234567" and r.opts.delegates == ("cpu", "gpu")
    with pytest.raises(UsageError, match="--min-runtime-version does not apply to target android for compile"):
        t.compile([str(tiny_int8)], str(tmp_path), {"min_runtime_version": 13})
    with pytest.raises(UsageError, match="already a .tflite"):
        t.compile([str(tiny_int8)], str(tmp_path), {"data_path": "x.npz", "overwrite": True})
    assert t.compile([str(tiny_int8)], str(tmp_path), {"overwrite": True}).details["kind"] == "verified"


def test_bench_config_fills_what_the_runner_was_not_given():
    from edgeq.config import BenchConfig

    r = registry.get("android").runner()
    eff = r._effective(BenchConfig(num_runs=30, warmup_runs=2, num_threads=4))
    assert (eff.threads, eff.runs, eff.warmup) == (4, 30, 2)
    with pytest.raises(UsageError, match="--batch does not apply"):
        r._effective(BenchConfig(batch=2))
