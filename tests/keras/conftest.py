"""Tiny modern-Keras models built in code: Keras 3 with hard-swish, hard-sigmoid and squeeze-excite; tf_keras with
TF-op layers (``x + 3``, ``tf.nn.relu6``, slicing) the way tf_keras records them; a SavedModel."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


def _tensorflow():
    from edgeq.tfimport import tensorflow

    return tensorflow()


@pytest.fixture(scope="session")
def image_data(tmp_path_factory) -> Path:
    """48 seeded 16x16x3 images in [0, 1] with 4 classes."""
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("data") / "images.npz"
    np.savez(path, x=rng.random((48, 16, 16, 3)).astype("float32"), y=rng.integers(0, 4, 48))
    return path


@pytest.fixture(scope="session")
def keras3_hardswish(tmp_path_factory) -> Path:
    """Keras 3: conv + hard_silu, a squeeze-excite block gated by hard_sigmoid, a residual add, softmax."""
    _tensorflow()
    import keras
    from keras import layers

    keras.utils.set_random_seed(0)
    inputs = keras.Input((16, 16, 3), name="image")
    x = layers.Conv2D(8, 3, padding="same", name="stem")(inputs)
    x = layers.Activation("hard_silu", name="stem_hswish")(x)
    se = layers.GlobalAveragePooling2D(keepdims=True, name="se_squeeze")(x)
    se = layers.Conv2D(4, 1, activation="relu", name="se_reduce")(se)
    se = layers.Conv2D(8, 1, activation="hard_sigmoid", name="se_expand")(se)
    y = layers.Multiply(name="se_excite")([x, se])
    x = layers.Add(name="residual")([x, y])
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    outputs = layers.Dense(4, activation="softmax", name="logits")(x)
    path = tmp_path_factory.mktemp("models") / "k3_hardswish.keras"
    keras.Model(inputs, outputs).save(path)
    return path


@pytest.fixture(scope="session")
def tf_keras_tfops(tmp_path_factory) -> Path:
    """tf_keras with TF-op layers: ``x + 3`` (TFOpLambda __operators__.add), tf.nn.relu6, ``* (1/6)``, a slice."""
    tf = _tensorflow()
    import tf_keras

    tf_keras.utils.set_random_seed(0)
    inputs = tf_keras.Input((16, 16, 3), name="image")
    x = tf_keras.layers.Conv2D(8, 3, padding="same")(inputs)
    x = x * (tf.nn.relu6(x + 3.0) * (1.0 / 6.0))  # hard-swish the way tf_keras's MobileNetV3 writes it
    x = x[:, :, :, :6]
    x = tf_keras.layers.GlobalAveragePooling2D()(x)
    outputs = tf_keras.layers.Dense(4, activation="softmax")(x)
    model = tf_keras.Model(inputs, outputs)
    assert {"TFOpLambda", "SlicingOpLambda"} <= {type(layer).__name__ for layer in model.layers}
    path = tmp_path_factory.mktemp("models") / "tfk_tfops.keras"
    model.save(path)
    return path


@pytest.fixture(scope="session")
def saved_model_dir(tmp_path_factory, tf_keras_tfops) -> Path:
    tf = _tensorflow()
    import tf_keras

    model = tf_keras.models.load_model(tf_keras_tfops, compile=False)
    path = tmp_path_factory.mktemp("models") / "sm"
    tf.saved_model.save(model, str(path))
    return path
