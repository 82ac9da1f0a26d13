"""Real-phone tests. They never pass silently: each skips with the concrete cause when the phone,
adb or the benchmark binary is missing.

Run: EDGEQ_BENCHMARK_MODEL=/path/android_aarch64_benchmark_model [EDGEQ_ANDROID_SERIAL=SERIAL] \
     .venv/bin/pytest -q device_tests/android
Results (JSON and each benchmark_model log) go to $EDGEQ_DEVICE_RESULTS/<timestamp>/
(default device_tests/android/results/<timestamp>/).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest

os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="session")
def phone() -> dict:
    """The attached phone, or a skip that says what is missing."""
    from edgeq.errors import Unavailable, UsageError
    from edgeq.targets.android import adb, bench

    try:
        path = adb.find()
    except Unavailable as exc:
        pytest.skip(f"adb is not installed: {exc.one_line()}")
    serial = os.environ.get("EDGEQ_ANDROID_SERIAL") or None
    try:
        device = adb.Adb(path).select(serial)
    except (Unavailable, UsageError) as exc:
        pytest.skip(f"no usable phone: {exc.one_line()}")
    binary = bench.find_binary(None)
    if not binary:
        pytest.skip(
            f"no benchmark_model binary: set {bench.ENV_BINARY}=PATH ({bench.NIGHTLY}android_aarch64_benchmark_model)"
        )
    return {"adb": path, "serial": device.serial, "binary": binary}


@pytest.fixture(scope="session")
def flavours_dir(tmp_path_factory) -> Path:
    """float32, fp16 and int8 flavours of a small CNN (8x8 digits), made by compile --target android."""
    from edgeq.targets import registry
    from edgeq.tfimport import tensorflow

    tensorflow()
    import tf_keras as k

    k.utils.set_random_seed(0)
    inputs = k.Input((8, 8, 1), name="image")
    x = k.layers.Conv2D(16, 3, padding="same", activation="relu")(inputs)
    x = k.layers.Conv2D(32, 3, strides=2, padding="same", activation="relu")(x)
    x = k.layers.GlobalAveragePooling2D()(x)
    outputs = k.layers.Dense(10, activation="softmax")(x)
    folder = tmp_path_factory.mktemp("phone")
    model = folder / "digits_cnn.keras"
    k.Model(inputs, outputs).save(model)
    data = ROOT / "representative_data" / "digits_calib.npz"
    with np.load(data) as d:
        assert d["x"].shape[1:] == (8, 8, 1)
    registry.get("android").compile([str(model)], str(folder), {"data_path": str(data)})
    return folder


@pytest.fixture(scope="session")
def results_dir() -> Path:
    base = Path(os.environ.get("EDGEQ_DEVICE_RESULTS") or HERE / "results")
    path = base / time.strftime("%Y%m%d-%H%M%S")
    path.mkdir(parents=True, exist_ok=True)
    return path
