"""edgeq bench --target mcu: host TFLM timing (labelled host) plus the board estimate (labelled estimate)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgeq.config import BenchConfig
from edgeq.errors import UnsupportedOp
from edgeq.targets import registry
from edgeq.targets.mcu import estimate
from edgeq.tflite import read_file
from tests.mcu.conftest import MLPERF_TINY

ROOT = Path(__file__).resolve().parents[2]
FAST = BenchConfig(num_runs=5, warmup_runs=1)


@pytest.fixture(scope="module")
def mcu():
    return registry.get("mcu")


def test_runner_times_tflm_on_the_host_and_estimates_the_board(mcu, mcu_models):
    runner = mcu.runner(None, {"board": "stm32l4r5"})
    assert runner.availability().available
    r = runner.benchmark(str(mcu_models["ds_cnn"]), FAST)
    doc = r.to_dict()
    assert doc["timing_kind"] == "host" and doc["num_runs"] == 5 and doc["warmup_runs"] == 1
    assert doc["latency_ms"]["p50"] > 0 and doc["first_invoke_ms"] > 0
    assert "tflite-micro" in doc["environment"]["runtime"]
    assert any(n.startswith("host timing") for n in doc["notes"])
    est = doc["estimate"]
    assert est["kind"] == "estimate" and est["board"] == "stm32l4r5"
    published_row = next(
        row
        for row in estimate.calibration_table()
        if row["model"] == "ds_cnn" and row["board"] == "stm32l4r5" and row["fitted"]
    )
    # the zoo's DS-CNN is the reference architecture: the same estimate as in the calibration table
    assert est["latency_ms"] == pytest.approx(published_row["estimate_ms"], rel=1e-3)
    assert any("leave-one-out" in n for n in doc["notes"])


def test_runner_defaults_and_an_uncalibrated_core(mcu, mcu_models):
    assert mcu.runner().board.name == "stm32h7a3"
    r = mcu.runner(None, {"board": "esp32s3"}).benchmark(str(mcu_models["bundled_int8"]), FAST)
    assert r.estimate["latency_ms"] is None and any("no latency estimate" in n for n in r.notes)


def test_runner_load_and_invoke(mcu, mcu_models):
    runner = mcu.runner()
    runner.load(str(mcu_models["bundled_int8"]), FAST)
    runner.invoke()
    out = runner._interp.get_output(0)
    assert out.shape == (1, 10) and out.dtype == np.int8
    assert len(np.unique(out)) > 1  # class scores, not the untouched (constant) output buffer


def test_runner_names_a_missing_op(mcu, mcu_models):
    with pytest.raises(UnsupportedOp, match="TILE"):
        mcu.runner().benchmark(str(mcu_models["tile"]), FAST)


@pytest.mark.parametrize("name", MLPERF_TINY)
def test_stored_reference_work_is_the_zoo_models(mcu_models, name):
    work = estimate.work_of(read_file(mcu_models[name]))
    stored = {k: v for k, v in estimate.REFERENCE_WORK[name].items() if k != "task"}
    assert work == stored


def test_calibration_script_prints_the_table():
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "mcu_calibration.py")], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    for model in estimate.REFERENCE_WORK:
        assert model in proc.stdout
    assert "leave-one-out" in proc.stdout and "NUCLEO" not in proc.stderr
