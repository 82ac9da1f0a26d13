"""Models for the microcontroller and Ethos-U tests, converted by the real TFLite converter once per session.

The MLPerf Tiny reference architectures come from ``edgeq.zoo`` (untrained). Their BatchNorm statistics are
set from the calibration batch first (a data-dependent initialisation, as training would leave them):
with the default statistics a random 27-layer MobileNet's activations shrink 2x per ReLU and its int8
softmax input scale collapses to ~1e-8, a model TFLM aborts on (see ``degenerate_softmax``).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

MLPERF_TINY = ("ds_cnn", "resnet8", "mobilenet_v1_025", "fc_autoencoder")


def _keras():
    from edgeq.tfimport import tensorflow

    tensorflow()
    import tf_keras

    tf_keras.utils.set_random_seed(0)
    return tf_keras


def _calibrate_batchnorm(model, x, k) -> None:
    """Set every BatchNormalization's moving mean/variance to its input statistics on ``x``.

    One pass in training mode: each BatchNorm then normalizes with the batch statistics, so every later
    BatchNorm sees the input it will see once the earlier ones hold those statistics."""
    bns = [layer for layer in model.layers if isinstance(layer, k.layers.BatchNormalization)]
    if not bns:
        return
    acts = k.Model(model.inputs, [bn.input for bn in bns])(x, training=True)
    for bn, a in zip(bns, acts if isinstance(acts, list) else [acts], strict=True):
        a = a.numpy()
        axes = tuple(range(a.ndim - 1))
        gamma, beta, _, _ = bn.get_weights()
        bn.set_weights([gamma, beta, a.mean(axis=axes), a.var(axis=axes)])


def convert_int8(folder: Path, name: str, fn, shape: tuple, x: np.ndarray) -> Path:
    """``fn`` (a Keras model or any TF function) on a fixed batch-1 input, full int8 with int8 I/O, calibrated
    on ``x``: the TFLite converter's settings of ``edgeq quantize --mode int8``, without its save/reload."""
    from edgeq.tfimport import tensorflow

    tf = tensorflow()
    spec = tf.TensorSpec((1, *shape), tf.float32)
    conc = tf.function(lambda t: fn(t), input_signature=[spec]).get_concrete_function()
    conv = tf.lite.TFLiteConverter.from_concrete_functions([conc], fn if hasattr(fn, "layers") else None)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: ([x[i : i + 1].astype(np.float32)] for i in range(len(x)))
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = conv.inference_output_type = tf.int8
    out = folder / f"{name}.tflite"
    out.write_bytes(conv.convert())
    return out


@pytest.fixture(scope="session")
def mcu_models(tmp_path_factory) -> dict[str, Path]:
    """{name: .tflite}: the MLPerf Tiny zoo models and the bundled model in int8, and special cases."""
    from edgeq import api, bundled, zoo
    from edgeq.config import DataConfig, Mode, QuantizeConfig

    k = _keras()
    folder = tmp_path_factory.mktemp("mcu_models")
    rng = np.random.default_rng(0)
    models: dict[str, Path] = {}

    calib = DataConfig(path=str(bundled.CALIB))
    models["bundled_int8"] = folder / "mnist_int8.tflite"
    api.quantize(str(bundled.MODEL), str(models["bundled_int8"]), QuantizeConfig(), calib, reference_size_bytes=1)
    models["bundled_float"] = folder / "mnist_float.tflite"
    api.quantize(str(bundled.MODEL), str(models["bundled_float"]), QuantizeConfig(mode=Mode.FLOAT), None)

    for name in MLPERF_TINY:
        model = zoo.build(name)
        shape = tuple(model.input_shape[1:])
        x = rng.random((8, *shape)).astype(np.float32)
        _calibrate_batchnorm(model, x, k)
        models[name] = convert_int8(folder, name, model, shape, x)

    def keras_int8(name: str, shape: tuple, layer_fn) -> Path:
        inp = k.Input(shape)
        return convert_int8(folder, name, k.Model(inp, layer_fn(inp)), shape, rng.random((8, *shape)))

    # logits ~1e-10 on every sample: the int8 softmax input scale falls below TFLM's 2^-26 floor
    tiny = k.layers.Dense(4, use_bias=False, kernel_initializer=k.initializers.Constant(1e-10))
    models["degenerate_softmax"] = keras_int8("degenerate_softmax", (8,), lambda t: k.layers.Softmax()(tiny(t)))
    # activations too big for a 256 KB board: two 160x160x8 int8 tensors live at once
    models["big_activations"] = keras_int8("big_activations", (160, 160, 8), k.layers.Conv2D(8, 3, padding="same"))
    # weights too big for 1 MB of flash: 1200 x 1024 int8
    models["big_weights"] = keras_int8("big_weights", (1200,), k.layers.Dense(1024))

    from edgeq.tfimport import tensorflow

    tf = tensorflow()
    x8 = rng.random((8, 8))
    models["tile"] = convert_int8(folder, "tile", lambda t: tf.tile(t, [1, 2]), (8,), x8)
    models["three_missing"] = convert_int8(
        folder, "three_missing", lambda t: tf.math.top_k(tf.sign(tf.tile(t + 1.0, [1, 2]) - 1.5), 3)[0], (8,), x8
    )

    # control flow: the loop body's ops live in a second subgraph (float; TFLM runs it on boards with an FPU)
    def loop(t):
        _, y = tf.while_loop(lambda i, y: i < 3, lambda i, y: (i + 1, tf.nn.relu(y * 0.5 + 1.0)), [tf.constant(0), t])
        return y

    conc = tf.function(loop, input_signature=[tf.TensorSpec([1, 4], tf.float32)]).get_concrete_function()
    models["while_loop"] = folder / "while_loop.tflite"
    models["while_loop"].write_bytes(tf.lite.TFLiteConverter.from_concrete_functions([conc]).convert())
    return models


@pytest.fixture
def gxx() -> str:
    path = shutil.which("g++")
    if path is None:
        pytest.skip("no g++ on PATH to compile the exported C++")
    return path
