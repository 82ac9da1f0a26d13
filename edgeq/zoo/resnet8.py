"""ResNet-8 for CIFAR-10: the MLPerf Tiny image-classification reference model.

Architecture (input 32x32x3)::

    Conv2D(16, 3x3) -> BatchNorm -> ReLU
    3 residual stacks, filters 16 / 32 / 64, first conv stride 1 / 2 / 2:
        y = Conv2D(f, 3x3, stride s) -> BatchNorm -> ReLU -> Conv2D(f, 3x3) -> BatchNorm
        shortcut = x, or Conv2D(f, 1x1, stride s) when the shape changes (no BatchNorm, as in the reference)
        x = ReLU(Add(shortcut, y))
    AveragePooling2D over the remaining 8x8 map -> Flatten -> Dense(10) -> Softmax

Same layers, biases, ``he_normal`` initializers and L2 weight decay (1e-4) as
``resnet_v1_eembc`` in the reference ``keras_model.py`` of mlcommons/tiny (the
16-filter version used for the v0.5-v1.x results), so the parameter count is the
reference's. ReLU and softmax are separate ``ReLU`` / ``Softmax`` layers instead
of ``Activation('relu')`` and ``Dense(activation='softmax')``, the form TF-MOT
matches for Conv-BN-ReLU folding.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from edgeq.errors import UsageError
from edgeq.zoo._common import check_shape, keras

STACK_FILTERS = (16, 32, 64)
STACK_STRIDES = (1, 2, 2)


def build_resnet8(
    input_shape: Sequence[int] = (32, 32, 3),
    num_classes: int = 10,
    filters: Sequence[int] = STACK_FILTERS,
    weight_decay: float = 1e-4,
) -> Any:
    """Build the (uncompiled) ResNet-8.

    Args:
        input_shape: (height, width, channels) of one image.
        num_classes: size of the softmax output.
        filters: filters of the three residual stacks; the stem uses the first.
        weight_decay: L2 factor on every convolution kernel, as in the reference; 0 disables it.

    Returns:
        An uncompiled ``tf_keras.Model`` named ``resnet8``.

    Raises:
        UsageError: ``input_shape`` is not three positive ints, or ``filters`` not three.
    """
    tf_keras = keras()
    layers = tf_keras.layers
    input_shape = check_shape("resnet8", input_shape, (32, 32, 3), "height, width, channels")
    if len(filters) != len(STACK_STRIDES):
        raise UsageError(
            f"resnet8 has 3 residual stacks, got filters={filters!r}", "pass three ints, e.g. (16, 32, 64)"
        )
    reg = tf_keras.regularizers.l2(weight_decay) if weight_decay else None

    def conv(x: Any, f: int, kernel_size: int, strides: int, name: str) -> Any:
        return layers.Conv2D(
            f,
            kernel_size,
            strides=strides,
            padding="same",
            kernel_initializer="he_normal",
            kernel_regularizer=reg,
            name=name,
        )(x)

    inputs = tf_keras.Input(shape=input_shape, name="image")
    x = conv(inputs, filters[0], 3, 1, "conv1")
    x = layers.BatchNormalization(name="conv1_bn")(x)
    x = layers.ReLU(name="conv1_relu")(x)
    for s, (f, stride) in enumerate(zip(filters, STACK_STRIDES, strict=True), start=1):
        y = conv(x, f, 3, stride, f"stack{s}_conv1")
        y = layers.BatchNormalization(name=f"stack{s}_conv1_bn")(y)
        y = layers.ReLU(name=f"stack{s}_conv1_relu")(y)
        y = conv(y, f, 3, 1, f"stack{s}_conv2")
        y = layers.BatchNormalization(name=f"stack{s}_conv2_bn")(y)
        if stride != 1 or x.shape[-1] != f:
            x = conv(x, f, 1, stride, f"stack{s}_shortcut")
        x = layers.Add(name=f"stack{s}_add")([x, y])
        x = layers.ReLU(name=f"stack{s}_relu")(x)
    x = layers.AveragePooling2D(pool_size=tuple(x.shape[1:3]), name="pool")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(num_classes, kernel_initializer="he_normal", name="logits")(x)
    outputs = layers.Softmax(name="probs")(x)
    return tf_keras.Model(inputs, outputs, name="resnet8")


MODEL_CARD = {
    "name": "resnet8",
    "kind": "classifier",
    "task": "image classification: CIFAR-10, 10 object classes (MLPerf Tiny IC)",
    "input": {
        "shape": [32, 32, 3],
        "dtype": "float32",
        "meaning": "32x32 RGB image; the reference scales pixels to [0, 1]",
    },
    "output": "softmax probabilities over 10 classes, shape [10]",
    "num_classes": 10,
    "loss": "sparse_categorical_crossentropy",
    "parameters": 78666,  # trainable + BN moving statistics (480 of them)
    "macs": 12501632,
    "published": "~96 KB int8 .tflite (MLPerf Tiny v0.5, arXiv:2106.07597)",
    "origin": "MLPerf Tiny IC reference (resnet_v1_eembc, 16 filters); ResNet v1 (He et al. 2016) cut to 3 stacks",
    # Pinned: later revisions of the file default to 26 base filters (~200k parameters).
    "reference": (
        "https://github.com/mlcommons/tiny/blob/bceb91c5ad2e2deb295547d81505721d3a87d578/"
        "benchmark/training/image_classification/keras_model.py"
    ),
}
