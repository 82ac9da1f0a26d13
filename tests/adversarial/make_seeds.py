"""Regenerate the small valid .tflite seeds the adversarial suite mutates (needs TensorFlow).

    python tests/adversarial/make_seeds.py

Three tiny seeded Keras models converted by the TFLite converter: full-integer with int8 I/O, full-integer
with float I/O (QUANTIZE/DEQUANTIZE at the edges) and plain float. Each is a few KB, so the suite needs
no TensorFlow and stays fast; ``hand_recrop.tflite`` from tests/data/third_party adds a real-world float model.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

SEEDS = Path(__file__).resolve().parent / "seeds"


def _model():
    import tf_keras

    tf_keras.utils.set_random_seed(0)
    layers = tf_keras.layers
    inp = tf_keras.Input((8, 8, 1), batch_size=1)
    x = layers.Conv2D(4, 3, padding="same", activation="relu")(inp)
    x = layers.DepthwiseConv2D(3, padding="same")(x)
    x = layers.MaxPooling2D()(x)
    x = layers.Flatten()(x)
    return tf_keras.Model(inp, layers.Dense(3, activation="softmax")(x))


def _convert(model, integer: bool, int8_io: bool) -> bytes:
    from edgeq.tfimport import tensorflow

    tf = tensorflow()
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    if integer:
        rng = np.random.default_rng(0)
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = lambda: ([rng.random((1, 8, 8, 1), dtype=np.float32)] for _ in range(8))
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if int8_io:
            conv.inference_input_type = conv.inference_output_type = tf.int8
    return conv.convert()


def main() -> None:
    from edgeq.tfimport import tensorflow

    tensorflow()
    model = _model()
    SEEDS.mkdir(exist_ok=True)
    for name, integer, int8_io in (("int8_io", True, True), ("int8_float_io", True, False), ("float", False, False)):
        (SEEDS / f"{name}.tflite").write_bytes(_convert(model, integer, int8_io))
        print(name, (SEEDS / f"{name}.tflite").stat().st_size, "bytes")


if __name__ == "__main__":
    main()
