"""MobileNetV2 with a width multiplier, written layer by layer for quantization-aware training.

Architecture (Sandler et al. 2018, Table 2; filters at alpha 1)::

    Conv2D(32, 3x3, stride 2) -> BatchNorm -> ReLU6
    17 inverted residual blocks (expansion t, output channels c, repeats n, first stride s):
        t=1 c=16 n=1 s=1 | t=6 c=24 n=2 s=2 | t=6 c=32 n=3 s=2 | t=6 c=64 n=4 s=2
        t=6 c=96 n=3 s=1 | t=6 c=160 n=3 s=2 | t=6 c=320 n=1 s=1
      each: Conv2D(t*in, 1x1) -> BatchNorm -> ReLU6      (expand; absent when t=1)
            DepthwiseConv2D(3x3, stride) -> BatchNorm -> ReLU6
            Conv2D(c, 1x1) -> BatchNorm                   (linear projection)
            Add(input, projection) when stride 1 and channels unchanged
    Conv2D(1280, 1x1) -> BatchNorm -> ReLU6 -> GlobalAveragePooling2D -> Dense(classes) -> Softmax

Filter counts, rounding (``make_divisible`` to multiples of 8), bias-free
convolutions and BatchNorm settings (momentum 0.999, epsilon 1e-3) follow
``tf_keras.applications.MobileNetV2``, so the parameter count at alpha 1 and
1000 classes is the same 3,538,984. Differences, none of which changes
parameters or MACs: ``same`` padding on stride-2 layers instead of
ZeroPadding2D + ``valid`` (TFLite pads bottom/right instead of top/left), ReLU6
as ``ReLU(max_value=6.0)`` layers, and a separate ``Softmax`` layer. Written out
rather than wrapping ``tf_keras.applications`` so the layer types are the
plain ones TF-MOT annotates, and so any input size works (e.g. 32x32).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from edgeq.errors import UsageError
from edgeq.zoo._common import check_shape, keras

STEM_FILTERS = 32
LAST_FILTERS = 1280
# (expansion, output channels at alpha 1, repeats, stride of the first repeat)
BLOCKS = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)
BN = {"momentum": 0.999, "epsilon": 1e-3}


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round a channel count to the nearest multiple of ``divisor``, never more than 10% down."""
    new = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if new < 0.9 * value:
        new += divisor
    return new


def build_mobilenet_v2(input_shape: Sequence[int] = (224, 224, 3), num_classes: int = 1000, alpha: float = 1.0) -> Any:
    """Build the (uncompiled) MobileNetV2.

    Args:
        input_shape: (height, width, channels) of one image; any size works, the map
            shrinks by 32 (rounded up) before the pooling head.
        num_classes: size of the softmax output.
        alpha: width multiplier (0.35, 0.5, 0.75, 1.0, 1.3, 1.4 are the published ones).
            The last 1x1 convolution stays at 1280 filters for alpha <= 1, as in Keras.

    Returns:
        An uncompiled ``tf_keras.Model`` named ``mobilenet_v2_<alpha>``, e.g. ``mobilenet_v2_035``.

    Raises:
        UsageError: ``input_shape`` is not three positive ints, or ``alpha`` is not positive.
    """
    tf_keras = keras()
    layers = tf_keras.layers
    input_shape = check_shape("mobilenet_v2", input_shape, (224, 224, 3), "height, width, channels")
    if not alpha > 0:
        raise UsageError(f"mobilenet_v2 needs alpha > 0, got {alpha!r}", "published widths are 0.35 to 1.4")

    def conv_bn(x: Any, filters: int, kernel_size: int, strides: int, name: str, relu6: bool = True) -> Any:
        x = layers.Conv2D(filters, kernel_size, strides=strides, padding="same", use_bias=False, name=name)(x)
        x = layers.BatchNormalization(**BN, name=f"{name}_bn")(x)
        return layers.ReLU(max_value=6.0, name=f"{name}_relu")(x) if relu6 else x

    inputs = tf_keras.Input(shape=input_shape, name="image")
    x = conv_bn(inputs, make_divisible(STEM_FILTERS * alpha), 3, 2, "conv1")
    block = 0
    for expansion, channels, repeats, first_stride in BLOCKS:
        out_channels = make_divisible(int(channels * alpha))
        for r in range(repeats):
            stride = first_stride if r == 0 else 1
            name = f"block{block}"
            in_channels = x.shape[-1]
            y = x
            if expansion != 1:
                y = conv_bn(y, expansion * in_channels, 1, 1, f"{name}_expand")
            y = layers.DepthwiseConv2D(3, strides=stride, padding="same", use_bias=False, name=f"{name}_dw")(y)
            y = layers.BatchNormalization(**BN, name=f"{name}_dw_bn")(y)
            y = layers.ReLU(max_value=6.0, name=f"{name}_dw_relu")(y)
            y = conv_bn(y, out_channels, 1, 1, f"{name}_project", relu6=False)
            x = layers.Add(name=f"{name}_add")([x, y]) if stride == 1 and in_channels == out_channels else y
            block += 1
    last = make_divisible(LAST_FILTERS * alpha) if alpha > 1.0 else LAST_FILTERS
    x = conv_bn(x, last, 1, 1, "conv_last")
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    x = layers.Dense(num_classes, name="logits")(x)
    outputs = layers.Softmax(name="probs")(x)
    return tf_keras.Model(inputs, outputs, name=f"mobilenet_v2_{alpha:g}".replace(".", ""))


MODEL_CARD = {
    "name": "mobilenet_v2",
    "kind": "classifier",
    "task": "image classification: ImageNet, 1000 classes (mobile / Edge TPU reference network)",
    "input": {
        "shape": [224, 224, 3],
        "dtype": "float32",
        "meaning": "224x224 RGB image; Keras' MobileNetV2 scales pixels to [-1, 1]",
    },
    "output": "softmax probabilities over 1000 classes, shape [1000]",
    "num_classes": 1000,
    "loss": "sparse_categorical_crossentropy",
    "parameters": 3538984,  # trainable + BN moving statistics, alpha 1.0
    "macs": 300774272,
    "published": "3.4 M parameters, 300 M MACs (paper, alpha 1, 224x224); Keras: 3,538,984 parameters",
    "origin": "MobileNetV2 (Sandler et al. 2018, arXiv:1801.04381), as tf_keras.applications.MobileNetV2",
    "reference": "https://github.com/keras-team/tf-keras/blob/master/tf_keras/applications/mobilenet_v2.py",
}
