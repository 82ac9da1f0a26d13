"""Cross-layer equalization: the float function is unchanged; the 1000x-imbalanced CNN recovers in int8."""

from __future__ import annotations

import numpy as np
import pytest

from edgeq.errors import UsageError
from edgeq.modelio import Format, from_keras
from edgeq.quantize import cle


def _randomize(model, seed: int = 0) -> None:
    """Random weights and BN statistics; two output channels of layer pw 100x larger (imbalance)."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        weights = layer.get_weights()
        if not weights:
            continue
        if type(layer).__name__ == "BatchNormalization":
            n = weights[0].shape[0]
            weights = [rng.uniform(0.5, 2, n), rng.normal(size=n), rng.normal(size=n), rng.uniform(0.5, 2, n)]
        else:
            fan_in = int(np.prod(weights[0].shape[:-1])) if weights[0].ndim > 1 else 1
            weights = [rng.normal(size=w.shape) / np.sqrt(fan_in) for w in weights]
            if layer.name == "pw":
                weights[0][..., :2] *= 100.0
        layer.set_weights([w.astype(np.float32) for w in weights])


def _zoo(keras):
    """Every case CLE meets: conv+BN folding, depthwise->pointwise, BN after ReLU, Flatten and
    GlobalAveragePooling into Dense, a residual Add, a ReLU6."""
    layers = keras.layers
    inp = keras.Input((12, 12, 3))
    x = layers.Conv2D(8, 3, padding="same", name="c1")(inp)
    x = layers.BatchNormalization(name="bn1")(x)  # folded into c1
    x = layers.ReLU(name="r1")(x)
    x = layers.DepthwiseConv2D(3, padding="same", name="dw")(x)  # c1 -> dw: depthwise as second, skipped
    x = layers.ReLU(name="r2")(x)
    x = layers.Conv2D(8, 1, name="pw")(x)  # dw -> pw: depthwise to pointwise
    x = layers.LeakyReLU(name="lr")(x)
    x = layers.BatchNormalization(name="bn2")(x)  # after the nonlinearity: kept, made to commute
    x = layers.MaxPooling2D(name="pool")(x)
    x = layers.Conv2D(8, 3, padding="same", activation="relu", name="c7")(x)  # pw -> c7; c7 forks: skipped
    y = layers.Conv2D(8, 3, padding="same", activation="relu", name="c2")(x)  # pw -> c2
    y = layers.Conv2D(8, 3, padding="same", name="c3")(y)  # c2 -> c3; c3 -> add: residual, skipped
    x = layers.Add(name="add")([x, y])
    z = layers.Conv2D(8, 3, padding="same", activation="relu6", name="c4")(x)  # relu6: skipped
    z = layers.Conv2D(8, 3, padding="same", name="c5")(z)
    z = layers.ReLU(6.0, name="r6")(z)  # c5 -> r6: skipped
    f = layers.Flatten(name="flat")(layers.Conv2D(4, 1, activation="relu", name="c6")(z))
    f = layers.Dense(16, activation="relu", name="d1")(f)  # c6 -> d1 through Flatten
    out = layers.Dense(5, name="d2")(f)  # d1 -> d2; linear, so the test sees every change
    return keras.Model(inp, out)


def _check_function_unchanged(keras_model, fmt, tmp_path):
    _randomize(keras_model)
    model = from_keras(keras_model, str(tmp_path / "m.keras"), fmt)
    x = np.random.default_rng(1).normal(size=(16, 12, 12, 3)).astype(np.float32)
    before = model.predict(x)
    weights_before = [w.copy() for w in keras_model.get_weights()]
    result = cle.equalize(model)
    after = result.model.predict(x)
    assert np.abs(after - before).max() <= 1e-5 * np.abs(before).max()
    # the caller's model is not changed
    assert all(np.array_equal(a, b) for a, b in zip(weights_before, keras_model.get_weights(), strict=True))
    return result


@pytest.mark.slow
def test_cle_keeps_the_float_function_and_reports_each_case(tmp_path):
    from edgeq.tfimport import tensorflow

    tensorflow()
    import tf_keras

    result = _check_function_unchanged(_zoo(tf_keras), Format.TF_KERAS, tmp_path)
    assert result.folded_batchnorm == ("bn1 into c1",)
    assert set(result.pairs) == {
        "dw -> pw (through r2)",
        "pw -> c7 (through lr, bn2, pool)",
        "c2 -> c3",
        "c6 -> d1 (through flat)",
        "d1 -> d2",
    }
    skipped = dict(s.split(": ", 1) for s in result.skipped)
    assert "depthwise" in skipped["c1"]
    assert "add" in skipped["c3"]
    assert "fork" in skipped["c7"]
    assert "relu6" in skipped["c4"]
    assert "ReLU6" in skipped["c5"]
    assert result.max_scale > 5  # the 100x channels were equalized
    # the equalized layers now have balanced per-channel ranges
    pw = result.model.obj.get_layer("pw").get_weights()[0]
    ranges = np.abs(pw).reshape(-1, pw.shape[-1]).max(axis=0)
    assert ranges.max() / ranges.min() < 20


def test_cle_works_on_keras3_models(tmp_path):
    from edgeq.tfimport import tensorflow

    tensorflow()
    import keras

    result = _check_function_unchanged(_zoo(keras), Format.KERAS3, tmp_path)
    assert "c6 -> d1 (through flat)" in result.pairs


def test_no_equalizable_pair_is_a_note_not_a_failure(tmp_path):
    from edgeq.tfimport import tensorflow

    tensorflow()
    import tf_keras

    inp = tf_keras.Input((6, 6, 1))
    x = tf_keras.layers.Conv2D(4, 3, activation="relu6")(inp)
    x = tf_keras.layers.ReLU(6.0)(tf_keras.layers.Conv2D(4, 3)(x))
    out = tf_keras.layers.Dense(3, activation="softmax")(tf_keras.layers.GlobalAveragePooling2D()(x))
    model = from_keras(tf_keras.Model(inp, out), str(tmp_path / "none.keras"))
    result = cle.equalize(model)
    assert result.pairs == () and not result.changed
    assert result.model is model
    assert result.notes and "no equalizable" in result.notes[0]
    assert any("relu6" in s for s in result.skipped)


def test_cle_refuses_a_saved_model_with_a_usage_error():
    from dataclasses import replace

    from edgeq.modelio import LoadedModel

    model = LoadedModel("m", Format.SAVED_MODEL, "", None, (), (), None)
    with pytest.raises(UsageError, match="Keras model"):
        cle.equalize(replace(model))


@pytest.mark.slow
def test_cle_recovers_the_1000x_imbalanced_cnn_in_int8(hostile_path):
    from edgeq.bench import fidelity
    from edgeq.config import DataConfig, QuantizeConfig
    from edgeq.data import load
    from edgeq.modelio import load_model
    from edgeq.quantize import ptq
    from tests.conftest import DATA
    from tests.quantize.conftest import predict_tflite

    model = load_model(str(hostile_path))
    calib = load(DataConfig(str(DATA / "mnist_calib.npz")))
    ev = load(DataConfig(str(DATA / "mnist_eval.npz"), samples=1000, seed=2))
    reference = model.predict(ev.x)
    plain, _ = ptq.convert(model, QuantizeConfig(), calib)
    result = cle.equalize(model)
    assert result.pairs[0] == "conv1 -> conv2" and result.max_scale > 500
    equalized, _ = ptq.convert(result.model, QuantizeConfig(), calib)
    float_acc = fidelity.top1_accuracy(reference, ev.y)
    plain_acc = fidelity.top1_accuracy(predict_tflite(plain, ev.x), ev.y)
    cle_acc = fidelity.top1_accuracy(predict_tflite(equalized, ev.x), ev.y)
    # measured: float 92.8%, plain int8 86.9%, CLE int8 93.1% (1000 samples)
    assert plain_acc < float_acc - 0.03, "the hostile model should hurt plain int8"
    assert cle_acc >= float_acc - 0.01, (float_acc, plain_acc, cle_acc)
