"""keras.applications models in Keras 3 (random weights) through the pipeline: slow, kept small (64x64 inputs)."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytestmark = pytest.mark.slow


def _with_batch_statistics(model, x):
    """Random-init BatchNorm statistics shrink every activation to ~1e-10 (no int8 scale holds that, and
    TFLM rejects such a softmax): set each BatchNorm's moving statistics from one batch, layer by layer."""
    import keras

    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    for layer in norms:
        layer.momentum = 0.0
    model(x, training=True)
    for layer in norms:
        layer.momentum = 0.99
    return model


@pytest.fixture(scope="module")
def app_data(tmp_path_factory):
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("data") / "images64.npz"
    x = (rng.random((16, 64, 64, 3)) * 255).astype("float32")  # both models rescale 0..255 themselves
    np.savez(path, x=x, y=rng.integers(0, 10, len(x)))
    return path, x


def _save(tmp_path, name, factory, x):
    from edgeq.tfimport import tensorflow

    tensorflow()
    import keras

    keras.utils.set_random_seed(0)
    model = _with_batch_statistics(factory(input_shape=(64, 64, 3), weights=None, classes=10), x)
    path = tmp_path / f"{name}.keras"
    model.save(path)
    return path


def test_mobilenet_v3_small_builds_for_coral_and_mcu(run_cli, tmp_path, app_data):
    import keras

    data, x = app_data
    model = _save(tmp_path, "mobilenetv3small", keras.applications.MobileNetV3Small, x)
    r = run_cli(
        "--json", "build", model, "--target", "coral,mcu", "--data", data, "--eval-data", data,
        "--method", "ptq", "-o", tmp_path / "build", "--runs", "3", "--warmup", "1",
    )  # fmt: skip
    assert r.exit_code == 0, r.stderr
    doc = r.json["result"]
    assert "HARD_SWISH is not in the Edge TPU's supported operations" in json.dumps(doc["targets"]["coral"])
    assert doc["targets"]["mcu"]["variants"]


def test_efficientnet_b0_quantizes_and_maps_to_the_edge_tpu(tmp_path, app_data):
    """EfficientNet's swish is LOGISTIC x MUL, both Edge TPU ops: unlike MobileNetV3, nothing is left on the CPU."""
    import keras

    from edgeq import api
    from edgeq.config import DataConfig, QuantizeConfig
    from edgeq.tflite import read_file

    data, x = app_data
    model = _save(tmp_path, "efficientnetb0", keras.applications.EfficientNetB0, x)
    out = tmp_path / "effb0_int8.tflite"
    api.quantize(str(model), str(out), QuantizeConfig(), DataConfig(path=str(data)))
    assert read_file(str(out)).float_ops == []
    report = api.check(str(out), "coral")
    placement = report.findings.placement
    assert placement is not None and placement.first_off == "", placement.first_off
    assert placement.on > 200 and placement.off == 0
