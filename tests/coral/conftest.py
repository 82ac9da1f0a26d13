"""Models for the Coral tests, converted by the real TFLite converter once per session, and the stand-in
compiler (tests/coral/fake_edgetpu_compiler.py, NOT edgetpu_compiler) wrapped as an executable."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).resolve().parent
EDGETPU_DATA = HERE.parent / "data" / "edgetpu"
FAKE = HERE / "fake_edgetpu_compiler.py"


def recorded(name: str) -> Path:
    """A real compiler output kept in tests/data/edgetpu (sources in SOURCE.md)."""
    path = EDGETPU_DATA / name
    assert path.exists(), path
    return path


def _keras():
    from edgeq.tfimport import tensorflow

    tensorflow()
    import tf_keras

    tf_keras.utils.set_random_seed(0)
    return tf_keras


def _quantize(folder: Path, name: str, model, x: np.ndarray, **cfg) -> Path:
    from edgeq import api
    from edgeq.config import DataConfig, QuantizeConfig

    keras_path = folder / f"{name}.keras"
    model.save(keras_path)
    np.savez(folder / f"{name}_calib.npz", x=x.astype(np.float32))
    out = folder / f"{name}.tflite"
    api.quantize(
        str(keras_path),
        str(out),
        QuantizeConfig(**cfg),
        DataConfig(path=str(folder / f"{name}_calib.npz")),
        reference_size_bytes=1,  # skip the float conversion that only measures size
    )
    return out


def _mnist_like(k):
    """The op histogram of the mnist4/mnist7 models in nrf20's real compiler logs: 2 CONV_2D, 2 MAX_POOL_2D,
    a RESHAPE, 2 FULLY_CONNECTED and a SOFTMAX."""
    inputs = k.Input((28, 28, 1))
    x = k.layers.Conv2D(8, 3, activation="relu")(inputs)
    x = k.layers.MaxPooling2D()(x)
    x = k.layers.Conv2D(16, 3, activation="relu")(x)
    x = k.layers.MaxPooling2D()(x)
    x = k.layers.Flatten()(x)
    x = k.layers.Dense(32, activation="relu")(x)
    outputs = k.layers.Dense(10, activation="softmax")(x)
    return k.Model(inputs, outputs)


def _with_middle(k, layer):
    """conv -> ``layer`` -> conv -> conv -> global average pool -> dense softmax."""
    inputs = k.Input((16, 16, 4))
    x = k.layers.Conv2D(8, 3, padding="same", activation="relu")(inputs)
    x = layer(x)
    x = k.layers.Conv2D(8, 3, padding="same", activation="relu")(x)
    x = k.layers.Conv2D(8, 3, padding="same", activation="relu")(x)
    x = k.layers.GlobalAveragePooling2D()(x)
    outputs = k.layers.Dense(10, activation="softmax")(x)
    return k.Model(inputs, outputs)


@pytest.fixture(scope="session")
def coral_models(tmp_path_factory) -> dict[str, Path]:
    """Real converted models, made once: {name: .tflite path}."""
    from edgeq import api, bundled
    from edgeq.config import DataConfig, IOType, Mode, QuantizeConfig

    k = _keras()
    folder = tmp_path_factory.mktemp("coral_models")
    rng = np.random.default_rng(0)
    models: dict[str, Path] = {}

    calib = DataConfig(path=str(bundled.CALIB))
    for name, cfg in {
        "bundled_int8": QuantizeConfig(),
        "bundled_float_io": QuantizeConfig(io=IOType.FLOAT),
        "bundled_dynamic": QuantizeConfig(mode=Mode.DYNAMIC),
        "bundled_float": QuantizeConfig(mode=Mode.FLOAT),
        "bundled_batch2": QuantizeConfig(batch=2),
    }.items():
        out = folder / f"{name}.tflite"
        api.quantize(str(bundled.MODEL), str(out), cfg, calib, reference_size_bytes=1)
        models[name] = out

    mnist = _mnist_like(k)
    x28 = rng.random((32, 28, 28, 1))
    models["mnist7_like"] = _quantize(folder, "mnist7_like", mnist, x28)
    models["mnist4_like"] = _quantize(folder, "mnist4_like", mnist, x28, io=IOType.FLOAT)

    x16 = rng.random((32, 16, 16, 4))
    models["leaky"] = _quantize(folder, "leaky", _with_middle(k, k.layers.LeakyReLU(0.1)), x16)
    models["permute"] = _quantize(folder, "permute", _with_middle(k, k.layers.Permute((2, 1, 3))), x16)

    dense_in = k.Input((2048,))
    big = k.Model(dense_in, k.layers.Dense(10)(k.layers.Dense(4608, activation="relu")(dense_in)))
    models["big_dense"] = _quantize(folder, "big_dense", big, rng.random((8, 2048)))

    models["dynamic_batch"] = _dynamic_batch(folder, mnist, x28)
    return models


def _dynamic_batch(folder: Path, model, x: np.ndarray) -> Path:
    """int8 straight from the TFLite converter's Keras path, which keeps the batch dimension dynamic."""
    from edgeq.tfimport import tensorflow

    tf = tensorflow()
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: ([x[i : i + 1].astype(np.float32)] for i in range(len(x)))
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = conv.inference_output_type = tf.int8
    out = folder / "dynamic_batch.tflite"
    out.write_bytes(conv.convert())
    return out


@pytest.fixture
def fake_compiler(tmp_path, monkeypatch):
    """An executable named edgetpu_compiler that runs the stand-in; returns a function to set its replay."""
    bin_dir = tmp_path / "fakebin"
    bin_dir.mkdir()
    exe = bin_dir / "edgetpu_compiler"
    exe.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{FAKE}" "$@"\n')
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    args_file = tmp_path / "fake_args.json"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("FAKE_EDGETPU_ARGS", str(args_file))
    for var in ("FAKE_EDGETPU_MODE", "FAKE_EDGETPU_CONSOLE", "FAKE_EDGETPU_LOG", "FAKE_EDGETPU_EXIT"):
        monkeypatch.delenv(var, raising=False)

    def replay(console: str | None = None, log: str | None = None, mode: str = "replay", exit_code: int = 0, **env):
        monkeypatch.setenv("FAKE_EDGETPU_MODE", mode)
        monkeypatch.setenv("FAKE_EDGETPU_EXIT", str(exit_code))
        if console:
            monkeypatch.setenv("FAKE_EDGETPU_CONSOLE", str(recorded(console)))
        if log:
            monkeypatch.setenv("FAKE_EDGETPU_LOG", str(recorded(log)))
        for key, value in env.items():
            monkeypatch.setenv(key, str(value))
        return exe

    replay.exe = exe
    replay.args_file = args_file
    return replay


@pytest.fixture
def no_compiler(tmp_path, monkeypatch):
    """A PATH without edgetpu_compiler (the machines edgeq is tested on have none anyway)."""
    empty = tmp_path / "emptybin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
