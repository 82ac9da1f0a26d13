"""A quantization-hostile model, trained here on real MNIST (used by tests and benchmarks)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parent.parent / "representative_data"


def make_hostile_model(path: Path) -> Path:
    """A CNN trained here on real MNIST whose first conv has two output channels scaled up 1000x
    (and the next conv's matching inputs scaled down 1000x): the float function is unchanged,
    but one per-tensor int8 scale must now cover both the huge and the normal channels."""
    from edgeq.tfimport import tensorflow

    tensorflow()
    import tf_keras

    tf_keras.utils.set_random_seed(0)
    layers = tf_keras.layers
    inp = tf_keras.Input((28, 28, 1))
    x = layers.Conv2D(8, 3, padding="same", activation="relu", name="conv1")(inp)
    x = layers.Conv2D(16, 3, strides=2, padding="same", activation="relu", name="conv2")(x)
    for i in range(4):  # residual blocks: enough ops that two float layers are under 10%
        y = layers.Conv2D(16, 3, padding="same", activation="relu", name=f"block{i}a")(x)
        y = layers.Conv2D(16, 3, padding="same", name=f"block{i}b")(y)
        x = layers.ReLU()(layers.Add()([x, y]))
    x = layers.MaxPooling2D(name="pool")(x)
    x = layers.Conv2D(16, 3, strides=2, padding="same", activation="relu", name="conv3")(x)
    x = layers.Flatten()(x)
    x = layers.Dense(32, activation="relu", name="fc1")(x)
    model = tf_keras.Model(inp, layers.Dense(10, activation="softmax", name="fc2")(x))
    with np.load(DATA / "mnist_train.npz") as d:
        model.compile("adam", "sparse_categorical_crossentropy")
        model.fit(d["x"], d["y"], epochs=4, batch_size=64, verbose=0)
    k1, b1 = model.get_layer("conv1").get_weights()
    k2, b2 = model.get_layer("conv2").get_weights()
    for c in (0, 1):  # ReLU is positively homogeneous, so this leaves the function unchanged
        k1[..., c] *= 1000.0
        b1[c] *= 1000.0
        k2[:, :, c, :] /= 1000.0
    model.get_layer("conv1").set_weights([k1, b1])
    model.get_layer("conv2").set_weights([k2, b2])
    model.save(path)
    return path
