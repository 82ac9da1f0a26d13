"""``--input-shape`` pins dynamic input dimensions (issue #21): a float .tflite with a dynamic batch and an
ONNX model with a dynamic batch, each quantized (and the .tflite built) with it; bad shapes refused in one line;
advice that names an option which applies."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.conftest import DATA


def _dynamic_tflite(path, features: tuple[int, ...] = (8, 8, 1)) -> None:
    """A float .tflite whose input is ``[-1, *features]`` (a dynamic batch), made from a tf.function: a
    fixed-weight conv, a mean over space and a dense layer to 10 classes."""
    import tensorflow as tf

    rng = np.random.default_rng(0)
    kernel = tf.constant(rng.normal(0, 0.5, (3, 3, features[-1], 8)).astype(np.float32))
    dense = tf.constant(rng.normal(0, 0.5, (8, 10)).astype(np.float32))

    @tf.function(input_signature=[tf.TensorSpec([None, *features], tf.float32, name="x")])
    def serve(x: tf.Tensor) -> tf.Tensor:
        y = tf.nn.relu(tf.nn.conv2d(x, kernel, 1, "SAME"))
        return tf.nn.softmax(tf.reduce_mean(y, axis=[1, 2]) @ dense)

    converter = tf.lite.TFLiteConverter.from_concrete_functions([serve.get_concrete_function()])
    path.write_bytes(converter.convert())


@pytest.fixture(scope="module")
def dynamic_tflite(tmp_path_factory):
    path = tmp_path_factory.mktemp("dyn") / "dyn.tflite"
    _dynamic_tflite(path)
    return path


def test_the_float_model_has_a_dynamic_batch(dynamic_tflite):
    from edgeq import tflite

    assert list(tflite.read_file(str(dynamic_tflite)).inputs[0].shape_signature) == [-1, 8, 8, 1]


def test_dynamic_batch_tflite_quantized_with_input_shape(run_cli, tmp_path, dynamic_tflite):
    out = tmp_path / "q.tflite"
    r = run_cli("--json", "quantize", dynamic_tflite, "--data", DATA / "digits_calib.npz", "--input-shape", "1x8x8x1",
                "-o", out)  # fmt: skip
    assert r.exit_code == 0, r.stderr
    from edgeq import tflite

    info = tflite.read_file(str(out))
    assert list(info.inputs[0].shape_signature) == [1, 8, 8, 1]
    assert not any(t.is_dynamic for t in info.tensors)  # static all the way through
    assert {t.dtype for t in (*info.inputs, *info.outputs)} == {"int8"}

    # the int8 model computes what the float one does (same classes on most of the held-out digits)
    from ai_edge_litert.interpreter import Interpreter

    x = np.load(DATA / "digits_eval.npz")["x"][:200]
    ref = Interpreter(model_path=str(dynamic_tflite))
    ref.resize_tensor_input(0, [len(x), 8, 8, 1])
    ref.allocate_tensors()
    ref.set_tensor(ref.get_input_details()[0]["index"], x)
    ref.invoke()
    want = ref.get_tensor(ref.get_output_details()[0]["index"]).argmax(1)
    q = Interpreter(model_path=str(out))
    q.allocate_tensors()
    (i, o) = q.get_input_details()[0], q.get_output_details()[0]
    got = []
    for sample in x:
        s, z = i["quantization"]
        q.set_tensor(i["index"], np.clip(np.round(sample[None] / s + z), -128, 127).astype(np.int8))
        q.invoke()
        got.append(q.get_tensor(o["index"]).argmax())
    assert np.mean(np.array(got) == want) > 0.9


def test_dynamic_batch_tflite_built_with_input_shape(run_cli, tmp_path, dynamic_tflite):
    r = run_cli("--json", "build", dynamic_tflite, "--target", "cpu", "--method", "ptq", "--input-shape", "1x8x8x1",
                "--data", DATA / "digits_calib.npz", "--eval-data", DATA / "digits_eval.npz", "--runs", "5",
                "--warmup", "1", "-o", tmp_path / "out")  # fmt: skip
    assert r.exit_code == 0, r.stderr
    from edgeq import tflite

    built = [p for p in (tmp_path / "out" / "cpu").glob("*.tflite")]
    assert built, list((tmp_path / "out").rglob("*"))
    for p in built:
        assert not any(t.is_dynamic for t in tflite.read_file(str(p)).tensors), p


def test_edgeq_toml_input_shape(run_cli, tmp_path, dynamic_tflite, monkeypatch):
    (tmp_path / "edgeq.toml").write_text('[build]\ninput-shape = "1x8x8x1x1"\n')
    monkeypatch.chdir(tmp_path)
    r = run_cli("build", dynamic_tflite, "--target", "cpu", "--method", "ptq", "--data", DATA / "digits_calib.npz",
                "--eval-data", DATA / "digits_eval.npz", "-o", tmp_path / "out")  # fmt: skip
    # edgeq.toml's shape reached the model: 5 dimensions for its 4 are refused before any stage
    assert r.exit_code == 2 and "has 4 (?x8x8x1)" in r.stderr, r.stderr
    (tmp_path / "edgeq.toml").write_text('[build]\ninput-shape = "0x8"\n')
    r = run_cli("build", dynamic_tflite, "--target", "cpu", "-o", tmp_path / "out")
    assert r.exit_code == 2 and "every dimension must be between 1 and" in r.stderr, r.stderr


def test_dynamic_batch_without_input_shape_takes_batch(run_cli, tmp_path, dynamic_tflite):
    """--batch is no longer ignored for a .tflite: a dynamic batch alone takes it (default 1)."""
    out = tmp_path / "q.tflite"
    r = run_cli("quantize", dynamic_tflite, "--data", DATA / "digits_calib.npz", "--batch", "2", "-o", out)
    assert r.exit_code == 0, r.stderr
    from edgeq import tflite

    assert list(tflite.read_file(str(out)).inputs[0].shape_signature) == [2, 8, 8, 1]


@pytest.mark.parametrize(
    ("shape", "code", "words"),
    [
        ("0x8x8x1", 2, "every dimension must be between 1 and 16777216, got 0"),
        ("-1x8x8x1", 2, "takes DxDx.. (positive integers)"),
        ("1x99999999x8x1", 2, "every dimension must be between 1 and 16777216"),
        ("64x4096x4096x3", 2, "elements; at most"),
        ("1x8x8", 2, 'has 3 dimensions; input "x"'),
        ("1x9x8x1", 2, "dimension 1 is fixed at 8"),
        ("image:1x8x8x1", 2, 'has no input named "image"; its inputs: "x"'),
        ("1xax8", 2, "takes DxDx.."),
    ],
)
def test_bad_input_shapes(run_cli, tmp_path, dynamic_tflite, shape, code, words):
    out = tmp_path / "q.tflite"
    r = run_cli("quantize", dynamic_tflite, "--data", DATA / "digits_calib.npz", "--input-shape", shape, "-o", out)
    assert r.exit_code == code, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and words in lines[0], r.stderr
    assert "Traceback" not in r.stderr and not out.exists()


def test_batch_and_input_shape_must_agree(run_cli, tmp_path, dynamic_tflite):
    r = run_cli("quantize", dynamic_tflite, "--data", DATA / "digits_calib.npz", "--input-shape", "1x8x8x1",
                "--batch", "4", "-o", tmp_path / "q.tflite")  # fmt: skip
    assert r.exit_code == 2 and "--batch 4 contradicts --input-shape 1x8x8x1" in r.stderr, r.stderr


def test_keras_dynamic_spatial_pinned(run_cli, tmp_path):
    """A Keras model with dynamic height and width: refused with advice naming --input-shape, converted with it."""
    import keras

    inp = keras.Input((None, None, 1))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inp)
    model = keras.Model(inp, keras.layers.Dense(10)(keras.layers.GlobalAveragePooling2D()(x)))
    model.save(tmp_path / "m.keras")
    args = ("quantize", tmp_path / "m.keras", "--data", DATA / "digits_calib.npz")
    r = run_cli(*args, "-o", tmp_path / "a.tflite")
    assert r.exit_code == 3 and "--input-shape" in r.stderr, r.stderr
    r = run_cli(*args, "--input-shape", "1x8x8x1", "-o", tmp_path / "b.tflite")
    assert r.exit_code == 0, r.stderr
    from edgeq import tflite

    assert list(tflite.read_file(str(tmp_path / "b.tflite")).inputs[0].shape_signature) == [1, 8, 8, 1]
    # the debugger converts the same pinned model (it refused the dynamic dimensions before)
    r = run_cli("debug", tmp_path / "m.keras", "--data", DATA / "digits_calib.npz", "--samples", "20",
                "--input-shape", "1x8x8x1", "-o", tmp_path / "dbg")  # fmt: skip
    assert r.exit_code == 0, r.stderr
    assert (tmp_path / "dbg" / "layers.json").exists()


def test_advice_names_an_option_that_applies(run_cli, tmp_path, dynamic_tflite):
    """check --target coral on a model with a dynamic batch: the advice is --input-shape, not --batch
    (which `check` does not take)."""
    r = run_cli("check", dynamic_tflite, "--target", "coral")
    assert r.exit_code == 3, r.stderr
    assert "--input-shape" in r.stderr and "--batch 1" not in r.stderr, r.stderr


def _dynamic_onnx(path) -> None:
    """Conv 3x3 (1->4) -> Relu -> GlobalAveragePool -> Flatten -> Gemm (4->10), NCHW input [N, 1, 8, 8]."""
    from tests.inputs.test_onnx import _tiny_onnx

    _tiny_onnx(path, channels=1, filters=4, classes=10, side=8, batch="N", std=0.5, name="dyn")


@pytest.fixture
def onnx_cache(tmp_path_factory, monkeypatch):
    cache = tmp_path_factory.getbasetemp() / "edgeq-onnx-cache-input-shape"  # its own: test_onnx counts its entries
    monkeypatch.setenv("EDGEQ_CACHE_DIR", str(cache))
    return cache


@pytest.mark.slow
def test_dynamic_batch_onnx_quantized_with_input_shape(run_cli, tmp_path, onnx_cache):
    from edgeq.errors import Unavailable
    from edgeq.onnx_import import require_onnx2tf

    try:
        require_onnx2tf()
    except Unavailable as exc:
        pytest.skip(exc.one_line())
    _dynamic_onnx(tmp_path / "dyn.onnx")
    calib = DATA / "digits_calib.npz"
    unpinned = run_cli("quantize", tmp_path / "dyn.onnx", "--data", calib, "-o", tmp_path / "x")
    assert unpinned.exit_code == 4 and "pin them with --input-shape 1x1x8x8" in unpinned.stderr, unpinned.stderr
    bad = run_cli("quantize", tmp_path / "dyn.onnx", "--data", calib, "--input-shape", "1x8x8x1", "-o", tmp_path / "x")
    assert bad.exit_code == 2 and "dimension 1 is fixed at 1" in bad.stderr, bad.stderr  # the ONNX layout: NCHW
    out = tmp_path / "q.tflite"
    r = run_cli("--json", "quantize", tmp_path / "dyn.onnx", "--data", calib, "--input-shape", "image:1x1x8x8",
                "-o", out)  # fmt: skip
    assert r.exit_code == 0, r.stderr
    assert r.json["result"]["inputs"][0]["shape"] == [1, 8, 8, 1]  # NHWC, static
    from edgeq import tflite

    assert not any(t.is_dynamic for t in tflite.read_file(str(out)).tensors)
    entries = sorted(p.name for p in (onnx_cache / "onnx").iterdir() if not p.name.startswith("."))
    assert any("-shape" in e for e in entries), entries  # the pinned conversion has its own cache entry


def test_build_refuses_a_batch_other_than_1(run_cli, tmp_path, dynamic_tflite):
    r = run_cli("build", dynamic_tflite, "--target", "cpu", "--input-shape", "2x8x8x1", "-o", tmp_path / "out")
    assert r.exit_code == 2 and "the build makes batch-1 models" in r.stderr and "1x8x8x1" in r.stderr, r.stderr
    assert not (tmp_path / "out").exists()


def test_saved_model_dynamic_spatial_pinned(run_cli, tmp_path):
    """A SavedModel whose signature takes [None, None, None, 1]: converted through that signature, pinned."""
    import tensorflow as tf

    rng = np.random.default_rng(0)

    class Model(tf.Module):
        def __init__(self) -> None:
            self.k = tf.Variable(rng.normal(0, 0.5, (3, 3, 1, 4)).astype(np.float32))
            self.w = tf.Variable(rng.normal(0, 0.5, (4, 10)).astype(np.float32))

        @tf.function(input_signature=[tf.TensorSpec([None, None, None, 1], tf.float32)])
        def __call__(self, x: tf.Tensor) -> dict:
            return {"logits": tf.reduce_mean(tf.nn.relu(tf.nn.conv2d(x, self.k, 1, "SAME")), axis=[1, 2]) @ self.w}

    m = Model()
    tf.saved_model.save(m, str(tmp_path / "sm"), signatures=m.__call__)
    args = ("quantize", tmp_path / "sm", "--data", DATA / "digits_calib.npz")
    r = run_cli(*args, "-o", tmp_path / "a.tflite")
    assert r.exit_code == 3 and "--input-shape 1xNxNx1" in r.stderr, r.stderr
    r = run_cli(*args, "--input-shape", "x:1x8x8x1", "-o", tmp_path / "b.tflite")
    assert r.exit_code == 0, r.stderr
    from edgeq import tflite

    assert list(tflite.read_file(str(tmp_path / "b.tflite")).inputs[0].shape_signature) == [1, 8, 8, 1]


def test_inspect_refuses_input_shape_on_a_tflite(run_cli, tmp_path):
    """inspect reads a .tflite as it is: a pinned shape would be silently ignored, so it is a usage error."""
    model = Path(__file__).parents[1] / "data" / "third_party" / "face_detection_short_range.tflite"
    r = run_cli("inspect", model, "--input-shape", "1x8")
    assert r.exit_code == 2 and "--input-shape does not apply to inspecting a .tflite" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
