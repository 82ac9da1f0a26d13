"""Safe mode refuses only real Python code (a Lambda's bytecode), as tf_keras's own safe mode does."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

from edgeq.config import LoadConfig
from edgeq.errors import BadInput


def test_tf_op_layers_load_in_safe_mode(tf_keras_tfops):
    from edgeq.modelio import code_layers, load_model

    config = json.loads(zipfile.ZipFile(tf_keras_tfops).read("config.json"))
    assert code_layers(config) == []
    model = load_model(tf_keras_tfops)  # safe mode: the default
    x = np.random.default_rng(1).random((2, 16, 16, 3)).astype("float32")
    assert model.predict(x).shape == (2, 4)


def test_tf_op_model_quantizes_to_int8(tmp_path, tf_keras_tfops, image_data):
    from edgeq import api
    from edgeq.config import DataConfig, QuantizeConfig
    from edgeq.tflite import read_file

    out = tmp_path / "m.tflite"
    api.quantize(str(tf_keras_tfops), str(out), QuantizeConfig(), DataConfig(path=str(image_data)))
    info = read_file(str(out))
    assert info.float_ops == []


def _tf_keras_lambda(path):
    from edgeq.tfimport import tensorflow

    tensorflow()
    import tf_keras

    inputs = tf_keras.Input((4,))
    outputs = tf_keras.layers.Lambda(lambda t: t * 2.0, name="double")(inputs)
    tf_keras.Model(inputs, outputs).save(path)


def _keras3_lambda(path):
    from edgeq.tfimport import tensorflow

    tensorflow()
    import keras

    inputs = keras.Input((4,))
    outputs = keras.layers.Lambda(lambda t: t * 2.0, name="double")(inputs)
    keras.Model(inputs, outputs).save(path)


@pytest.mark.parametrize("make", [_tf_keras_lambda, _keras3_lambda], ids=["tf_keras", "keras3"])
def test_lambda_is_refused_until_trusted(tmp_path, make):
    from edgeq.modelio import load_model

    path = tmp_path / "lambda.keras"
    make(path)
    with pytest.raises(BadInput) as err:
        load_model(path)
    assert "Lambda layer 'double'" in err.value.message
    assert "--trust-model" in err.value.hint
    model = load_model(path, LoadConfig(trust_model=True))
    np.testing.assert_allclose(model.predict(np.ones((1, 4), "float32")), 2.0)


def _layer(class_name: str, **config) -> dict:
    return {"class_name": class_name, "config": {"name": "layer", **config}}


@pytest.mark.parametrize(
    ("layer", "refused"),
    [
        (_layer("TFOpLambda", function="__operators__.add"), False),
        (_layer("TFOpLambda", function="nn.relu6"), False),
        (_layer("SlicingOpLambda", function="__operators__.getitem"), False),
        (_layer("TFOpLambda", function="io.write_file"), True),
        (_layer("TFOpLambda", function="py_function"), True),
        (_layer("TFOpLambda", function="numpy_function"), True),
        (_layer("Lambda", function=["4wEAAAAA", None, None], function_type="lambda"), True),
        (_layer("Lambda", function="my_fn", function_type="function"), False),  # a name, resolved by lookup
        (_layer("Lambda", function={"class_name": "__lambda__", "config": {"code": "4wEA"}}), True),
        (_layer("Lambda", function={"module": "builtins", "class_name": "function", "config": "my_fn"}), False),
    ],
)
def test_what_counts_as_code(layer, refused):
    from edgeq.modelio import code_layers

    model = {"class_name": "Functional", "config": {"layers": [layer]}}
    assert bool(code_layers(model)) is refused


def test_a_missing_named_function_is_named(tmp_path):
    """A Keras 3 Lambda over a named function is not code, but the function must be given."""
    from edgeq.modelio import custom_classes

    config = {
        "class_name": "Lambda",
        "config": {"function": {"module": "mymod", "class_name": "function", "config": "f"}},
    }
    assert custom_classes(config) == [("mymod", "f")]
