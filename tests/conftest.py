"""Shared fixtures: tiny seeded models built in code, real bundled data, an in-process CLI runner."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "representative_data"
THIRD_PARTY = Path(__file__).resolve().parent / "data" / "third_party"


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str

    @property
    def json(self) -> dict:
        return json.loads(self.stdout)


@pytest.fixture
def run_cli(capfd):
    """Run ``edgeq ARGS`` in this process and capture what reaches the terminal."""
    from edgeq.cli.app import run
    from edgeq.cli.main import cli

    def _run(*args: str) -> CliResult:
        capfd.readouterr()
        code = run(cli, [str(a) for a in args])
        out, err = capfd.readouterr()
        return CliResult(code, out, err)

    return _run


def _tiny_layers(keras):
    """Conv -> BN -> ReLU on 8x8x1 digits: the shape of model edgeq is built for."""
    inputs = keras.Input((8, 8, 1), name="image")
    x = keras.layers.Conv2D(8, 3, padding="same", use_bias=False)(inputs)
    x = keras.layers.BatchNormalization(momentum=0.8)(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.Conv2D(16, 3, strides=2, padding="same", use_bias=False)(x)
    x = keras.layers.BatchNormalization(momentum=0.8)(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(10, activation="softmax")(x)
    return inputs, outputs


def _fit(model, keras_utils):
    keras_utils.set_random_seed(0)
    with np.load(DATA / "digits_calib.npz") as d:
        x, y = d["x"], d["y"]
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=30, batch_size=16, verbose=0)
    return model


@pytest.fixture(scope="session")
def tf_keras_model(tmp_path_factory) -> Path:
    """A tf_keras .keras model, trained 30 epochs on the digits calibration split."""
    from edgeq.tfimport import tensorflow

    tensorflow()
    import tf_keras

    tf_keras.utils.set_random_seed(0)
    model = tf_keras.Model(*_tiny_layers(tf_keras))
    _fit(model, tf_keras.utils)
    path = tmp_path_factory.mktemp("models") / "tiny_tfkeras.keras"
    model.save(path)
    return path


@pytest.fixture(scope="session")
def keras3_model(tmp_path_factory) -> Path:
    """The same network built and saved with Keras 3."""
    from edgeq.tfimport import tensorflow

    tensorflow()
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Model(*_tiny_layers(keras))
    _fit(model, keras.utils)
    path = tmp_path_factory.mktemp("models") / "tiny_keras3.keras"
    model.save(path)
    return path


@pytest.fixture(scope="session")
def digits_calib() -> Path:
    return DATA / "digits_calib.npz"


@pytest.fixture(scope="session")
def digits_eval() -> Path:
    return DATA / "digits_eval.npz"


@pytest.fixture(scope="session")
def tiny_int8(tmp_path_factory, tf_keras_model, digits_calib) -> Path:
    """The tiny model quantized to int8 with int8 I/O through the API."""
    from edgeq import api
    from edgeq.config import DataConfig, QuantizeConfig

    out = tmp_path_factory.mktemp("tflite") / "tiny_int8.tflite"
    api.quantize(str(tf_keras_model), str(out), QuantizeConfig(), DataConfig(path=str(digits_calib)))
    return out


def listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# -- long runs ----------------------------------------------------------------------------------------
# `slow` tests run in `make test` (seconds each); `long` ones run for minutes (whole adversarial families)
# and only with --long: `make adversarial` runs them, CI does not.


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--long", action="store_true", help="also run the tests marked long (minutes each)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--long"):
        return
    skip = pytest.mark.skip(reason="runs for minutes: only with --long (make adversarial)")
    for item in items:
        if "long" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _recursion_limit_kept():
    """A test that leaves the recursion limit raised (importing onnx2tf sets it to 2**31 - 1) turns a later
    test's deep recursion into a segmentation fault of the whole run: fail the test that leaked it."""
    import sys

    before = sys.getrecursionlimit()
    yield
    after = sys.getrecursionlimit()
    if after != before:
        sys.setrecursionlimit(before)
        pytest.fail(f"the recursion limit was left at {after} (was {before})")


@pytest.fixture(autouse=True)
def _one_job(monkeypatch):
    """The planner's candidates in the test's own process unless a test asks for more (--jobs, jobs=):
    a spy on a builder sees them, and no test spawns a pool of TensorFlow processes by default."""
    monkeypatch.setenv("EDGEQ_JOBS", "1")


@pytest.fixture(autouse=True)
def _private_plan_cache(tmp_path_factory, monkeypatch):
    """Each test's planner starts with an empty candidate cache of its own (edgeq.stages.plan_cache): a
    candidate cached by another test (or a run outside the tests) would skip a builder a test patches."""
    from edgeq.stages import plan_cache

    folder = tmp_path_factory.mktemp("plan-cache")
    monkeypatch.setattr(plan_cache, "cache_home", lambda: folder)
