"""MobileNetV1, alpha 0.25 at 96x96: the MLPerf Tiny visual-wake-words reference model.

Architecture (input 96x96x3, filters shown for alpha 0.25)::

    Conv2D(8, 3x3, stride 2) -> BatchNorm -> ReLU                                  (96 -> 48)
    13 x [DepthwiseConv2D(3x3, stride s) -> BatchNorm -> ReLU
          -> Conv2D(f, 1x1) -> BatchNorm -> ReLU]
         f = 16, 32, 32, 64, 64, 128, 128 x 5, 256, 256; s = 2 where the map halves (48 -> 3)
    AveragePooling2D over the remaining 3x3 map -> Flatten -> Dense(2) -> Softmax

The standard MobileNetV1 layer list (Howard et al. 2017, Table 1) with every
filter count scaled by ``alpha``. As in the reference ``vww_model.py`` of
mlcommons/tiny (taken from Silicon Labs' ``mobilenet_v1_eembc.py``): plain ReLU
rather than ReLU6, ``same`` padding on the stride-2 layers instead of
ZeroPadding2D + ``valid``, biases on every convolution, ``he_normal``
initializers, L2 weight decay 1e-4, and an average-pool + Dense head instead of
Keras' Dropout + 1x1-conv head, so the parameter count is the reference's.
ReLU and softmax are separate ``ReLU`` / ``Softmax`` layers, the form TF-MOT
matches for Conv-BN-ReLU folding.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from edgeq.errors import UsageError
from edgeq.zoo._common import check_shape, keras

STEM_FILTERS = 32
# (pointwise filters, depthwise stride) of the 13 depthwise-separable blocks at alpha 1.
BLOCKS = (
    (64, 1),
    (128, 2),
    (128, 1),
    (256, 2),
    (256, 1),
    (512, 2),
    (512, 1),
    (512, 1),
    (512, 1),
    (512, 1),
    (512, 1),
    (1024, 2),
    (1024, 1),
)


def build_mobilenet_v1(
    input_shape: Sequence[int] = (96, 96, 3), num_classes: int = 2, alpha: float = 0.25, weight_decay: float = 1e-4
) -> Any:
    """Build the (uncompiled) MobileNetV1.

    Args:
        input_shape: (height, width, channels) of one image.
        num_classes: size of the softmax output; the reference's 2 are "no person" and "person".
        alpha: width multiplier applied to every filter count (0.25 in the reference).
        weight_decay: L2 factor on every convolution kernel, as in the reference; 0 disables it.

    Returns:
        An uncompiled ``tf_keras.Model`` named ``mobilenet_v1_<alpha>``, e.g. ``mobilenet_v1_025``.

    Raises:
        UsageError: ``input_shape`` is not three positive ints, or ``alpha`` is not positive.
    """
    tf_keras = keras()
    layers = tf_keras.layers
    input_shape = check_shape("mobilenet_v1", input_shape, (96, 96, 3), "height, width, channels")
    if not alpha > 0:
        raise UsageError(f"mobilenet_v1 needs alpha > 0, got {alpha!r}", "the reference uses alpha=0.25")
    reg = tf_keras.regularizers.l2(weight_decay) if weight_decay else None
    init = "he_normal"

    inputs = tf_keras.Input(shape=input_shape, name="image")
    x = layers.Conv2D(
        max(1, int(STEM_FILTERS * alpha)),
        3,
        strides=2,
        padding="same",
        kernel_initializer=init,
        kernel_regularizer=reg,
        name="conv1",
    )(inputs)
    x = layers.BatchNormalization(name="conv1_bn")(x)
    x = layers.ReLU(name="conv1_relu")(x)
    for i, (filters, stride) in enumerate(BLOCKS, start=1):
        x = layers.DepthwiseConv2D(
            3,
            strides=stride,
            padding="same",
            depthwise_initializer=init,
            depthwise_regularizer=reg,
            name=f"dw{i}",
        )(x)
        x = layers.BatchNormalization(name=f"dw{i}_bn")(x)
        x = layers.ReLU(name=f"dw{i}_relu")(x)
        x = layers.Conv2D(
            max(1, int(filters * alpha)), 1, kernel_initializer=init, kernel_regularizer=reg, name=f"pw{i}"
        )(x)
        x = layers.BatchNormalization(name=f"pw{i}_bn")(x)
        x = layers.ReLU(name=f"pw{i}_relu")(x)
    x = layers.AveragePooling2D(pool_size=tuple(x.shape[1:3]), name="pool")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(num_classes, name="logits")(x)
    outputs = layers.Softmax(name="probs")(x)
    return tf_keras.Model(inputs, outputs, name=f"mobilenet_v1_{alpha:g}".replace(".", ""))


MODEL_CARD = {
    "name": "mobilenet_v1_025",
    "kind": "classifier",
    "task": "visual wake words: person / no person in a 96x96 image (MLPerf Tiny VWW)",
    "input": {
        "shape": [96, 96, 3],
        "dtype": "float32",
        "meaning": "96x96 RGB image (COCO 2014 crops); the reference scales pixels to [0, 1]",
    },
    "output": "softmax probabilities over 2 classes (no person, person), shape [2]",
    "num_classes": 2,
    "loss": "sparse_categorical_crossentropy",
    "parameters": 221794,  # trainable + BN moving statistics
    "macs": 7489664,
    "published": "~325 KB int8 .tflite (MLPerf Tiny v0.5, arXiv:2106.07597)",
    "origin": "MLPerf Tiny VWW reference; MobileNetV1 (Howard et al. 2017, arXiv:1704.04861) at alpha 0.25",
    "reference": "https://github.com/mlcommons/tiny/blob/master/benchmark/training/visual_wake_words/vww_model.py",
}
