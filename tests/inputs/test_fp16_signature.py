"""A float .tflite with float16 weights and a signature, as the TFLite converter writes it (issue 21,
defect 2): folding the float16 constants drops the now unused copies and renumbers the tensors; the
signature's tensor indices must follow, or LiteRT refuses the model ("Invalid tensor index 81 exceeds
max 63") and the quantizer cannot calibrate it."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import DATA


@pytest.fixture(scope="module")
def fp16_tflite(tmp_path_factory):
    """A seeded conv net on 8x8x1 digits (logits out) converted with float16 weights: DEQUANTIZE ops in
    front of float16 constants, and the converter's ``serving_default`` signature."""
    from edgeq.tfimport import tensorflow

    tf = tensorflow()
    import tf_keras

    tf_keras.utils.set_random_seed(0)
    inputs = tf_keras.Input((8, 8, 1), batch_size=1, name="image")  # a fixed shape: the route needs one
    x = tf_keras.layers.Conv2D(8, 3, padding="same", activation="relu")(inputs)
    x = tf_keras.layers.Conv2D(16, 3, strides=2, padding="same", activation="relu")(x)
    x = tf_keras.layers.GlobalAveragePooling2D()(x)
    outputs = tf_keras.layers.Dense(10, name="logits")(x)
    model = tf_keras.Model(inputs, outputs)
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_types = [tf.float16]
    path = tmp_path_factory.mktemp("fp16") / "digits_fp16.tflite"
    path.write_bytes(converter.convert())
    return path


def _signature_outputs(path, x: np.ndarray) -> np.ndarray:
    """The float output of the model's signature runner on each sample (dequantized when int8)."""
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(path))
    [key] = interp.get_signature_list()
    runner = interp.get_signature_runner(key)
    [in_name] = runner.get_input_details()
    (in_detail,) = runner.get_input_details().values()
    (out_detail,) = runner.get_output_details().values()
    got = []
    for sample in x:
        v = sample[None]
        if in_detail["dtype"] != np.float32:
            s, z = in_detail["quantization"]
            v = np.clip(np.round(v / s + z), -128, 127).astype(in_detail["dtype"])
        (y,) = runner(**{in_name: v}).values()
        y = y.astype(np.float64)
        if out_detail["dtype"] != np.float32:
            s, z = out_detail["quantization"]
            y = (y - z) * s
        got.append(y)
    return np.concatenate(got)


def test_the_fixture_has_what_the_defect_needs(fp16_tflite):
    from edgeq.tflite import edit

    model = edit.unpack(fp16_tflite.read_bytes())
    ops = [edit.op_name(model, op) for op in model.subgraphs[0].operators]
    assert ops.count("DEQUANTIZE") >= 3 and model.signatureDefs  # fp16 constants, and a signature


def test_prepare_keeps_the_signature_pointing_at_its_tensors(fp16_tflite):
    from edgeq.quantize import from_tflite
    from edgeq.tflite import edit

    ready = from_tflite.prepare(fp16_tflite.read_bytes(), "digits_fp16")
    model = edit.unpack(ready.data)
    sg, [sig] = model.subgraphs[0], model.signatureDefs
    assert ready.folded_fp16_constants >= 3 and not ready.added_signature
    assert [e.tensorIndex for e in sig.inputs] == list(sg.inputs)
    assert [e.tensorIndex for e in sig.outputs] == list(sg.outputs)
    x = np.load(DATA / "digits_calib.npz")["x"][:8]
    (tmp := fp16_tflite.parent / "ready.tflite").write_bytes(ready.data)
    np.testing.assert_allclose(_signature_outputs(tmp, x), _signature_outputs(fp16_tflite, x), rtol=1e-5, atol=1e-5)


def test_quantize_an_fp16_tflite_with_a_signature(run_cli, fp16_tflite, tmp_path):
    out = tmp_path / "digits_int8.tflite"
    r = run_cli("--json", "quantize", fp16_tflite, "--mode", "int8", "--data", DATA / "digits_calib.npz", "-o", out)
    assert r.exit_code == 0, r.stderr  # before: exit 4, "Invalid tensor index ... exceeds max ..."
    res = r.json["result"]
    assert res["float_ops"] == [] and {t["dtype"] for t in res["inputs"] + res["outputs"]} == {"int8"}
    with np.load(DATA / "digits_eval.npz") as d:
        x = d["x"][:64]
    ref, test = _signature_outputs(fp16_tflite, x), _signature_outputs(out, x)
    sqnr = 10 * np.log10(np.sum(ref**2) / np.sum((ref - test) ** 2))
    assert sqnr > 20, sqnr
    assert np.mean(ref.argmax(1) == test.argmax(1)) > 0.9
