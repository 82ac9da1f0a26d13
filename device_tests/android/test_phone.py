"""benchmark_model on a real phone, every flavour with every delegate, side by side."""

from __future__ import annotations

import json

import pytest

from edgeq.config import BenchConfig
from edgeq.errors import ConversionFailed
from edgeq.targets import registry


def _runner(phone, results_dir, **kw):
    options = {"serial": phone["serial"], "adb": phone["adb"], "benchmark_binary": phone["binary"]}
    return registry.get("android").runner(None, {**options, "log_dir": str(results_dir / "logs"), **kw})


def test_device_is_described(phone, flavours_dir, results_dir):
    result = _runner(phone, results_dir, delegates="cpu").benchmark(str(flavours_dir / "digits_cnn_float32.tflite"))
    info = result.device_info
    assert info["serial"] == phone["serial"] and info["model"] and info["abilist"] and info["sdk"]
    run = result.delegates[0]
    assert run.ok, run.error
    assert run.stats().mean > 0 and run.stats().num_runs >= 1


@pytest.mark.parametrize("flavour", ["float32", "fp16", "int8"])
def test_flavour_on_every_delegate(phone, flavours_dir, results_dir, flavour):
    model = flavours_dir / f"digits_cnn_{flavour}.tflite"
    runner = _runner(phone, results_dir, delegates="cpu,xnnpack,gpu,nnapi", op_profiling=True)
    try:
        result = runner.benchmark(str(model), BenchConfig(num_runs=50, warmup_runs=5, num_threads=1))
    except ConversionFailed as exc:  # every delegate failed: keep the evidence, then fail
        (results_dir / f"{flavour}.failed.json").write_text(json.dumps(exc.to_dict(), indent=2, default=str))
        raise
    (results_dir / f"{flavour}.json").write_text(json.dumps(result.to_dict(), indent=2))
    by = {r.delegate: r for r in result.delegates}
    assert by["cpu"].ok and by["xnnpack"].ok, (by["cpu"].error, by["xnnpack"].error)
    for run in result.delegates:
        # a delegate may fail or fall back on a given phone; the result must say which, never hide it
        assert run.ok or run.error
        if run.ok and run.delegate in ("gpu", "nnapi"):
            assert run.ran_on is not None
    if (result.device_info.get("sdk") or 0) >= 35:
        assert any("NNAPI is deprecated" in n for n in result.notes)
