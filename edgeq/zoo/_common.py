"""What every zoo factory shares: the lazy tf_keras import, shape checks and the MAC counter.

Nothing here imports TensorFlow at module import time, so reading a model card stays cheap.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from edgeq.errors import UsageError


def keras() -> Any:
    """Return ``tf_keras`` (Keras 2), importing TensorFlow through edgeq's one import point.

    TF-MOT quantization-aware training wraps tf_keras layers only, so the zoo never builds
    Keras 3 models.
    """
    from edgeq.tfimport import tensorflow

    tensorflow()
    import tf_keras

    return tf_keras


def check_shape(model: str, input_shape: Sequence[int], default: tuple[int, ...], meaning: str) -> tuple[int, ...]:
    """Return ``input_shape`` as a tuple of positive ints of the rank of ``default``, or raise UsageError."""
    shape = tuple(input_shape)
    if len(shape) != len(default) or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape):
        raise UsageError(
            f"{model} needs input_shape of {len(default)} positive ints ({meaning}), got {input_shape!r}",
            f"pass for example input_shape={default!r} (the card default)",
        )
    return shape


def count_macs(model: Any) -> int:
    """Multiply-accumulates of one inference (batch 1) in Conv2D, DepthwiseConv2D and Dense layers.

    Each such layer applies its whole kernel once per output position, so its MACs are the
    number of positions times the kernel size: for a convolution the output height x width,
    for Dense the leading (non-batch, non-feature) dimensions of its input, usually 1.
    BatchNorm, activations, pooling, Add and Softmax are not counted: BN folds into the
    preceding convolution at conversion and the others have no multiply-accumulates. Nested
    models are counted through.
    """
    tf_keras = keras()
    layers = tf_keras.layers
    macs = 0
    for layer in model.layers:
        if isinstance(layer, tf_keras.Model):
            macs += count_macs(layer)
        elif isinstance(layer, layers.DepthwiseConv2D):  # not a Conv2D subclass in tf_keras
            macs += math.prod(layer.output_shape[1:-1]) * math.prod(layer.depthwise_kernel.shape)
        elif isinstance(layer, layers.Conv2D):
            macs += math.prod(layer.output_shape[1:-1]) * math.prod(layer.kernel.shape)
        elif isinstance(layer, layers.Dense):
            macs += math.prod(layer.input_shape[1:-1]) * math.prod(layer.kernel.shape)
    return int(macs)
