"""Keras 3 models with hard-swish, hard-sigmoid and squeeze-excite: quantize, debug and build."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgeq.errors import BadInput


def test_quantize_keeps_hard_swish_as_one_int8_op(tmp_path, keras3_hardswish, image_data):
    from edgeq import api
    from edgeq.config import DataConfig, QuantizeConfig
    from edgeq.tflite import read_file

    out = tmp_path / "m.tflite"
    api.quantize(str(keras3_hardswish), str(out), QuantizeConfig(), DataConfig(path=str(image_data)))
    info = read_file(str(out))
    assert info.float_ops == []
    assert info.op_histogram().get("HARD_SWISH") == 1


def test_debug_runs_on_keras3_activations(tmp_path, keras3_hardswish, image_data):
    """hard_silu has no tf_keras counterpart: the debugger must not go through tf_keras."""
    from edgeq import api
    from edgeq.config import DataConfig

    r = api.debug(str(keras3_hardswish), DataConfig(path=str(image_data)), str(tmp_path / "dbg"))
    ops = {row["op"] for row in r["layers"]}
    assert "HARD_SWISH" in ops
    assert any("se_expand" in row["tensor_name"] for row in r["layers"])
    assert r["model_metrics"]["sqnr_db"] > 20  # a healthy int8 copy of a 10-op net


def _to_tf_keras(path):
    from edgeq.keras_migrate import to_tf_keras
    from edgeq.modelio import load_model

    return to_tf_keras(load_model(path).obj)


def test_qat_migration_names_the_activation_tf_keras_lacks(keras3_hardswish):
    with pytest.raises(BadInput) as err:
        _to_tf_keras(keras3_hardswish)
    assert "'hard_silu'" in err.value.message and "stem_hswish" in err.value.message
    assert "PTQ" in err.value.hint


def test_qat_migration_refuses_hard_sigmoid_tf_keras_computes_differently(tmp_path):
    """tf_keras's hard_sigmoid is 0.2x + 0.5, Keras 3's is relu6(x + 3) / 6: a silent swap changes the model."""
    from edgeq.tfimport import tensorflow

    tensorflow()
    import keras

    inputs = keras.Input((4,))
    outputs = keras.layers.Dense(4, activation="hard_sigmoid", name="gate")(inputs)
    path = tmp_path / "gate.keras"
    keras.Model(inputs, outputs).save(path)
    with pytest.raises(BadInput) as err:
        _to_tf_keras(path)
    assert "'hard_sigmoid'" in err.value.message and "'gate'" in err.value.message


def test_qat_migration_still_moves_plain_activations(tmp_path):
    from edgeq.tfimport import tensorflow

    tensorflow()
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((4,))
    outputs = keras.layers.Dense(3, activation="relu")(keras.layers.Dense(4, activation="tanh")(inputs))
    path = tmp_path / "plain.keras"
    model = keras.Model(inputs, outputs)
    model.save(path)
    moved, _ = _to_tf_keras(path)
    x = np.random.default_rng(0).random((5, 4)).astype("float32")
    np.testing.assert_allclose(np.asarray(moved(x)), np.asarray(model(x)), atol=1e-6)


@pytest.mark.slow
def test_build_coral_and_mcu_names_hard_swish(run_cli, tmp_path, keras3_hardswish, image_data):
    out = tmp_path / "build"
    r = run_cli(
        "--json", "build", keras3_hardswish, "--target", "coral,mcu", "--data", image_data,
        "--method", "ptq", "-o", out, "--runs", "3", "--warmup", "1",
    )  # fmt: skip
    assert r.exit_code == 0, r.stderr
    doc = r.json["result"]
    check = json.dumps(doc["targets"]["coral"])
    assert "HARD_SWISH is not in the Edge TPU's supported operations" in check
    assert doc["targets"]["mcu"]["variants"]


def test_keras3_layer_names_still_select_tensors(run_cli, tmp_path, image_data):
    """A Keras 3 model tf_keras can express still goes through tf_keras, whose tensor names carry the
    layer names --denylist takes (the traced Keras 3 graph suffixes them: dense_1)."""
    from edgeq.tfimport import tensorflow

    tensorflow()
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, activation="relu", name="features")(inputs)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    path = tmp_path / "plain.keras"
    keras.Model(inputs, keras.layers.Dense(4, activation="softmax", name="head")(x)).save(path)
    r = run_cli("quantize", path, "--data", image_data, "--denylist", "head", "-o", tmp_path / "m.tflite")
    assert r.exit_code == 0, r.stderr
