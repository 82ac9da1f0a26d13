"""Fully connected autoencoder: the MLPerf Tiny anomaly-detection reference model.

Architecture (input 640 = 5 frames x 128 log-mel bins, flattened)::

    4 x [Dense(128) -> BatchNorm -> ReLU]      encoder
    Dense(8) -> BatchNorm -> ReLU               bottleneck
    4 x [Dense(128) -> BatchNorm -> ReLU]      decoder
    Dense(640)                                  linear reconstruction

Trained with mean squared error to reconstruct normal machine sounds; the
reconstruction error of a clip is its anomaly score, so there are no classes.
Same layers and biases as the reference ``keras_model.py`` (DCASE 2020 task 2
baseline by Hitachi, used by MLPerf Tiny AD), so the parameter count is the
reference's. ReLU is a separate ``ReLU`` layer instead of ``Activation('relu')``.

Quantization: post-training int8 conversion folds every BatchNorm and gives a
model of int8 FULLY_CONNECTED ops only. TF-MOT (0.8.1) QAT alone does not: it folds
BatchNorm only into convolutions, and 9 of the 10 FULLY_CONNECTED ops come out float.
edgeq's QAT (``edgeq.quantize.qat.prepare``) folds each Dense -> BatchNorm pair into
one Dense first, which keeps the model int8 throughout.
"""

from __future__ import annotations

from typing import Any

from edgeq.errors import UsageError
from edgeq.zoo._common import keras

HIDDEN_UNITS = 128
BOTTLENECK_UNITS = 8
DEPTH = 4  # Dense-BN-ReLU layers on each side of the bottleneck


def build_fc_autoencoder(
    input_dim: int = 640,
    hidden_units: int = HIDDEN_UNITS,
    bottleneck_units: int = BOTTLENECK_UNITS,
    batch_norm: bool = True,
) -> Any:
    """Build the (uncompiled) fully connected autoencoder.

    Args:
        input_dim: length of one flattened input vector; the reference stacks 5 frames of
            128 log-mel energies (64 ms window, 32 ms hop, 16 kHz audio) into 640 values.
        hidden_units: width of the 4 encoder and 4 decoder layers.
        bottleneck_units: width of the code layer.
        batch_norm: BatchNorm between each hidden Dense and its ReLU, as in the reference.
            False gives Dense -> ReLU, the form that survives QAT conversion as int8
            (see the module docstring); it has 4,128 fewer parameters at the defaults.

    Returns:
        An uncompiled ``tf_keras.Model`` named ``fc_autoencoder`` mapping ``(batch, input_dim)``
        to a reconstruction of the same shape.

    Raises:
        UsageError: a size is not a positive int.
    """
    defaults = {"input_dim": 640, "hidden_units": HIDDEN_UNITS, "bottleneck_units": BOTTLENECK_UNITS}
    given = {"input_dim": input_dim, "hidden_units": hidden_units, "bottleneck_units": bottleneck_units}
    for arg, value in given.items():
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise UsageError(
                f"fc_autoencoder needs {arg} to be a positive int, got {value!r}", f"default: {arg}={defaults[arg]}"
            )
    tf_keras = keras()
    layers = tf_keras.layers

    def dense_bn_relu(x: Any, units: int, name: str) -> Any:
        x = layers.Dense(units, name=name)(x)
        if batch_norm:
            x = layers.BatchNormalization(name=f"{name}_bn")(x)
        return layers.ReLU(name=f"{name}_relu")(x)

    inputs = tf_keras.Input(shape=(input_dim,), name="features")
    x = inputs
    for i in range(1, DEPTH + 1):
        x = dense_bn_relu(x, hidden_units, f"enc{i}")
    x = dense_bn_relu(x, bottleneck_units, "bottleneck")
    for i in range(1, DEPTH + 1):
        x = dense_bn_relu(x, hidden_units, f"dec{i}")
    outputs = layers.Dense(input_dim, name="reconstruction")(x)
    return tf_keras.Model(inputs, outputs, name="fc_autoencoder")


MODEL_CARD = {
    "name": "fc_autoencoder",
    "kind": "autoencoder",
    "task": "anomaly detection: reconstruct normal machine sounds (ToyADMOS toy car, MLPerf Tiny AD)",
    "input": {
        "shape": [640],
        "dtype": "float32",
        "meaning": "5 consecutive frames x 128 log-mel energies (16 kHz, 64 ms window, 32 ms hop), flattened",
    },
    "output": "linear reconstruction of the input, shape [640]; anomaly score = mean squared error",
    "num_outputs": 640,
    "loss": "mse",
    "parameters": 269992,  # trainable + BN moving statistics
    "macs": 264192,
    "published": "~270 KB int8 .tflite (MLPerf Tiny v0.5, arXiv:2106.07597)",
    "notes": "edgeq QAT folds each Dense -> BatchNorm into one Dense (TF-MOT alone leaves them float)",
    "origin": "MLPerf Tiny AD reference; DCASE 2020 task 2 baseline (Koizumi et al. 2020, arXiv:2006.05822)",
    "reference": "https://github.com/mlcommons/tiny/blob/master/benchmark/training/anomaly_detection/keras_model.py",
}
