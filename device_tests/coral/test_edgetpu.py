"""The Edge TPU for real: compile (when edgetpu_compiler is here), then benchmark on the TPU.

Skips with the concrete cause when there is no Edge TPU (locally or at EDGEQ_CORAL_HOST).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from edgeq import api
from edgeq.config import BenchConfig, DataConfig, QuantizeConfig

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def int8_model(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("coral") / "mnist_int8.tflite"
    api.quantize(
        str(ROOT / "models/mnist_cnn.keras"),
        str(out),
        QuantizeConfig(),
        DataConfig(path=str(ROOT / "representative_data/mnist_calib.npz")),
    )
    return out


@pytest.fixture(scope="module")
def edgetpu_model(int8_model) -> Path:
    if shutil.which("edgetpu_compiler") is None:
        pytest.skip("edgetpu_compiler is not on PATH (use the Docker image, see docs/coral.md)")
    from edgeq.targets import registry

    result = registry.get("coral").compile([str(int8_model)], str(int8_model.parent))
    assert not result.skipped, result.reason
    return Path(result.output)


def _runner():
    from edgeq.targets.coral import edgetpu_runner

    host = os.environ.get("EDGEQ_CORAL_HOST")
    runner = edgetpu_runner(os.environ.get("EDGEQ_CORAL_DEVICE", "usb:0"), {"host": host} if host else None)
    available = runner.availability()
    if not available.available:
        pytest.skip(f"no Edge TPU: {available.reason}")
    return runner


def test_benchmark_on_the_edge_tpu(edgetpu_model):
    result = _runner().benchmark(str(edgetpu_model), BenchConfig(num_runs=200, warmup_runs=10))
    s = result.stats
    assert s.num_runs == 200 and s.p50 > 0
    # the first invoke loads the parameters onto the TPU and is reported apart
    assert s.first_invoke_ms >= s.p50
