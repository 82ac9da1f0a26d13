"""DS-CNN keyword spotter: the MLPerf Tiny keyword-spotting reference model.

Architecture (input 49 frames x 10 MFCC coefficients x 1)::

    Conv2D(64, 10x4, stride 2, same) -> BatchNorm -> ReLU -> Dropout 0.2      (49x10 -> 25x5)
    4 x [DepthwiseConv2D(3x3, same) -> BatchNorm -> ReLU
         -> Conv2D(64, 1x1) -> BatchNorm -> ReLU]
    Dropout 0.4 -> AveragePooling2D over the whole 25x5 map -> Flatten -> Dense(12) -> Softmax

Same layers, biases, initializers and L2 weight decay (1e-4) as the reference
``keras_model.py`` of mlcommons/tiny, so the parameter count is the reference's.
Two deliberate differences, both free of parameters and MACs:

* ReLU and softmax are separate ``ReLU`` / ``Softmax`` layers instead of
  ``Activation('relu')`` and ``Dense(activation='softmax')``, the form TF-MOT
  matches for Conv-BN-ReLU folding;
* the average pool covers the whole remaining map (25x5). The reference uses
  ``(int(49 / 2), int(10 / 2)) = (24, 5)``, which silently drops the last of the
  25 time steps; the output shape (1x1x64) is the same.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from edgeq.zoo._common import check_shape, keras

FILTERS = 64
NUM_BLOCKS = 4


def build_ds_cnn(input_shape: Sequence[int] = (49, 10, 1), num_classes: int = 12, weight_decay: float = 1e-4) -> Any:
    """Build the (uncompiled) DS-CNN keyword spotter.

    Args:
        input_shape: (time frames, MFCC coefficients, 1); the reference computes 10 MFCCs
            over 40 ms windows with a 20 ms stride on 1 s clips, which gives 49 frames.
        num_classes: size of the softmax output; the reference's 12 are ten keywords,
            "silence" and "unknown" from Speech Commands v2.
        weight_decay: L2 factor on every convolution kernel, as in the reference; 0 disables it.

    Returns:
        An uncompiled ``tf_keras.Model`` named ``ds_cnn``.

    Raises:
        UsageError: ``input_shape`` is not three positive ints.
    """
    tf_keras = keras()
    layers = tf_keras.layers
    input_shape = check_shape("ds_cnn", input_shape, (49, 10, 1), "time frames, MFCC coefficients, channels")
    reg = tf_keras.regularizers.l2(weight_decay) if weight_decay else None

    inputs = tf_keras.Input(shape=input_shape, name="mfcc")
    x = layers.Conv2D(FILTERS, (10, 4), strides=2, padding="same", kernel_regularizer=reg, name="conv1")(inputs)
    x = layers.BatchNormalization(name="conv1_bn")(x)
    x = layers.ReLU(name="conv1_relu")(x)
    x = layers.Dropout(0.2, name="dropout1")(x)
    for i in range(1, NUM_BLOCKS + 1):
        x = layers.DepthwiseConv2D(3, padding="same", depthwise_regularizer=reg, name=f"dw{i}")(x)
        x = layers.BatchNormalization(name=f"dw{i}_bn")(x)
        x = layers.ReLU(name=f"dw{i}_relu")(x)
        x = layers.Conv2D(FILTERS, 1, kernel_regularizer=reg, name=f"pw{i}")(x)
        x = layers.BatchNormalization(name=f"pw{i}_bn")(x)
        x = layers.ReLU(name=f"pw{i}_relu")(x)
    x = layers.Dropout(0.4, name="dropout2")(x)
    x = layers.AveragePooling2D(pool_size=tuple(x.shape[1:3]), name="pool")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(num_classes, name="logits")(x)
    outputs = layers.Softmax(name="probs")(x)
    return tf_keras.Model(inputs, outputs, name="ds_cnn")


MODEL_CARD = {
    "name": "ds_cnn",
    "kind": "classifier",
    "task": "keyword spotting: 12 classes of 1 s Speech Commands clips (MLPerf Tiny KWS)",
    "input": {
        "shape": [49, 10, 1],
        "dtype": "float32",
        "meaning": "49 time frames x 10 MFCC coefficients (40 ms window, 20 ms stride, 16 kHz audio)",
    },
    "output": "softmax probabilities over 12 classes (10 keywords, silence, unknown), shape [12]",
    "num_classes": 12,
    "loss": "sparse_categorical_crossentropy",
    "parameters": 24908,  # trainable + BN moving statistics (1,152 of them)
    "macs": 2656768,
    "published": "~53 KB int8 .tflite (MLPerf Tiny v0.5, arXiv:2106.07597)",
    "origin": "MLPerf Tiny KWS reference; DS-CNN of Hello Edge (Zhang et al. 2017, arXiv:1711.07128)",
    "reference": "https://github.com/mlcommons/tiny/blob/master/benchmark/training/keyword_spotting/keras_model.py",
}
