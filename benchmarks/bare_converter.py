"""The baseline for the quantize-overhead row: int8 PTQ with nothing but the TFLite converter.

No validation, verification, provenance, hashing or atomic write: load, convert, write. It makes
the same conversion as edgeq (a tf.function with a static batch-1 input signature, through
``from_concrete_functions``), so both sides produce the same bytes and the timing difference is
edgeq's own work. ``benchmarks/run.py`` runs it as a subprocess (so it pays the same Python +
TensorFlow import as the ``edgeq`` CLI) and calls :func:`convert` in-process, and checks that the
two outputs are byte-identical.

    .venv/bin/python benchmarks/bare_converter.py MODEL.keras CALIB.npz OUT.tflite
"""

from __future__ import annotations

import os
import sys

os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def convert(model_path: str, calib_path: str, output: str) -> int:
    """Quantize ``model_path`` to full int8 with int8 I/O; return the size written in bytes."""
    import numpy as np
    import tensorflow as tf
    import tf_keras

    model = tf_keras.models.load_model(model_path, compile=False)
    with np.load(calib_path) as npz:
        x = npz["x"].astype(np.float32)

    def representative():
        for i in range(len(x)):  # same samples as edgeq: all 200, batch 1
            yield [x[i : i + 1]]

    spec = tf.TensorSpec((1, *model.input_shape[1:]), tf.float32, name=model.input_names[0])
    holder = tf.Module()
    holder.variables_ = list(model.variables)  # tracked, so the converter can freeze them
    holder.serve = tf.function(lambda t: model(t, training=False), input_signature=[spec])
    converter = tf.lite.TFLiteConverter.from_concrete_functions([holder.serve.get_concrete_function()], holder)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    data = converter.convert()
    with open(output, "wb") as fh:
        fh.write(data)
    return len(data)


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit("usage: bare_converter.py MODEL.keras CALIB.npz OUT.tflite")
    convert(*sys.argv[1:4])
