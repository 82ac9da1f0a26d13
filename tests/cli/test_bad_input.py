"""Bad input: a one-line message naming problem and fix, the documented exit code,
no traceback without -v, and no file left behind."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import DATA, THIRD_PARTY, listing


def assert_clean_failure(r, code: int, *needles: str) -> None:
    assert r.exit_code == code, r.stderr
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1, r.stderr
    assert "Traceback" not in r.stderr
    for n in needles:
        assert n in errors[0], errors[0]


@pytest.fixture
def out_dir(tmp_path) -> Path:
    d = tmp_path / "out"
    d.mkdir()
    return d


def test_missing_model_file(run_cli, out_dir, digits_calib):
    r = run_cli("quantize", out_dir / "nope.keras", "-o", out_dir / "m.tflite", "--data", digits_calib)
    assert_clean_failure(r, 3, "not found", "check the path")
    assert listing(out_dir) == []


def test_truncated_tflite(run_cli, tmp_path, tiny_int8):
    bad = tmp_path / "trunc.tflite"
    bad.write_bytes(tiny_int8.read_bytes()[: tiny_int8.stat().st_size // 2])
    for cmd in (
        ["inspect", bad],
        ["bench", bad],
        ["eval", bad, "--reference", bad, "--data", DATA / "digits_eval.npz"],
    ):
        assert_clean_failure(run_cli(*cmd), 3, "truncated or corrupt")


def test_corrupt_keras(run_cli, tmp_path, out_dir, tf_keras_model, digits_calib):
    bad = tmp_path / "bad.keras"
    bad.write_bytes(tf_keras_model.read_bytes()[:2000])
    r = run_cli("quantize", bad, "-o", out_dir / "m.tflite", "--data", digits_calib)
    assert_clean_failure(r, 3, "truncated or corrupt", "re-save")
    assert listing(out_dir) == []


def test_corrupt_h5(run_cli, tmp_path, out_dir, tf_keras_model, digits_calib):
    import tf_keras

    good = tmp_path / "good.h5"
    tf_keras.models.load_model(tf_keras_model).save(good)
    bad = tmp_path / "bad.h5"
    bad.write_bytes(good.read_bytes()[:4000])
    r = run_cli("quantize", bad, "-o", out_dir / "m.tflite", "--data", digits_calib)
    assert_clean_failure(r, 3, "bad.h5")
    assert listing(out_dir) == []


def test_directory_that_is_not_a_saved_model(run_cli, tmp_path, out_dir, digits_calib):
    d = tmp_path / "notamodel"
    d.mkdir()
    (d / "readme.txt").write_text("hello")
    r = run_cli("quantize", d, "-o", out_dir / "m.tflite", "--data", digits_calib)
    assert_clean_failure(r, 3, "not a SavedModel", "saved_model.pb")


def test_wrong_input_shape_in_data(run_cli, out_dir, tf_keras_model):
    r = run_cli("quantize", tf_keras_model, "-o", out_dir / "m.tflite", "--data", DATA / "mnist_calib.npz")
    assert_clean_failure(r, 3, "(28, 28, 1)", "(8, 8, 1)")
    assert listing(out_dir) == []


def test_nan_in_data(run_cli, tmp_path, out_dir, tf_keras_model):
    x = np.random.default_rng(0).random((20, 8, 8, 1), dtype=np.float32)
    x[7, 1, 1, 0] = np.nan
    np.savez(tmp_path / "nan.npz", x=x)
    r = run_cli("quantize", tf_keras_model, "-o", out_dir / "m.tflite", "--data", tmp_path / "nan.npz")
    assert_clean_failure(r, 3, "NaN or Inf", "index 7")
    assert listing(out_dir) == []


def test_empty_data_folder(run_cli, tmp_path, out_dir, tf_keras_model):
    empty = tmp_path / "images"
    (empty / "0").mkdir(parents=True)
    r = run_cli("quantize", tf_keras_model, "-o", out_dir / "m.tflite", "--data", empty)
    assert_clean_failure(r, 3, "no images")
    assert listing(out_dir) == []


def test_empty_npz(run_cli, tmp_path, out_dir, tf_keras_model):
    np.savez(tmp_path / "empty.npz", x=np.zeros((0, 8, 8, 1), np.float32))
    r = run_cli("quantize", tf_keras_model, "-o", out_dir / "m.tflite", "--data", tmp_path / "empty.npz")
    assert_clean_failure(r, 3, "empty")


def test_dynamic_mode_with_int8_io(run_cli, out_dir, tf_keras_model):
    r = run_cli("quantize", tf_keras_model, "-o", out_dir / "m.tflite", "--mode", "dynamic", "--io", "int8")
    assert_clean_failure(r, 2, "dynamic quantization cannot have int8 I/O", "--mode int8 with --data")
    assert listing(out_dir) == []


def test_int8_without_data(run_cli, out_dir, tf_keras_model):
    r = run_cli("quantize", tf_keras_model, "-o", out_dir / "m.tflite")
    assert_clean_failure(r, 2, "needs calibration data", "--data")


def test_unknown_mode(run_cli, out_dir, tf_keras_model):
    r = run_cli("quantize", tf_keras_model, "-o", out_dir / "m.tflite", "--mode", "int4")
    assert_clean_failure(r, 2, "int4")
    assert listing(out_dir) == []


def test_output_already_exists(run_cli, out_dir, tf_keras_model, digits_calib):
    existing = out_dir / "m.tflite"
    existing.write_bytes(b"keep me")
    r = run_cli("quantize", tf_keras_model, "-o", existing, "--data", digits_calib)
    assert_clean_failure(r, 3, "already exists", "--force")
    assert existing.read_bytes() == b"keep me"
    assert listing(out_dir) == ["m.tflite"]


def test_unwritable_output_folder(run_cli, tmp_path, tf_keras_model, digits_calib):
    if os.geteuid() == 0:  # root ignores permission bits; /sys refuses new files even to root
        target = Path("/sys/edgeq_test.tflite")
    else:
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o555)
        target = locked / "m.tflite"
    r = run_cli("quantize", tf_keras_model, "-o", target, "--data", digits_calib)
    assert_clean_failure(r, 3, "not writable", "another -o")
    assert not target.exists()


def test_lambda_layer_without_custom_objects(run_cli, tmp_path, out_dir, digits_calib):
    from edgeq.tfimport import tensorflow

    tensorflow()
    import tf_keras

    inputs = tf_keras.Input((8, 8, 1))
    x = tf_keras.layers.Lambda(lambda t: t * 2.0, name="double")(inputs)
    x = tf_keras.layers.Flatten()(x)
    model = tf_keras.Model(inputs, tf_keras.layers.Dense(10)(x))
    path = tmp_path / "lambda.keras"
    model.save(path)
    r = run_cli("quantize", path, "-o", out_dir / "m.tflite", "--data", digits_calib)
    assert_clean_failure(r, 3, "Lambda layer 'double'", "--custom-objects")
    assert listing(out_dir) == []
    # The user who trusts the model can go on.
    r = run_cli("quantize", path, "-o", out_dir / "m.tflite", "--data", digits_calib, "--trust-model")
    assert r.exit_code == 0, r.stderr


def test_dynamic_batch_where_static_is_needed(run_cli, tmp_path, tf_keras_model):
    from edgeq.tfimport import tensorflow

    tf = tensorflow()
    import tf_keras

    # from_keras_model keeps the batch dynamic (shape signature -1), unlike edgeq quantize.
    model = tf_keras.models.load_model(tf_keras_model)
    dyn = tmp_path / "dynamic.tflite"
    dyn.write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    r = run_cli("bench", dyn, "--runs", "3")
    assert_clean_failure(r, 3, "dynamic batch", "--batch 1")
    r = run_cli("bench", dyn, "--runs", "3", "--warmup", "0", "--batch", "1")
    assert r.exit_code == 0, r.stderr


def test_custom_op_litert_cannot_resolve(run_cli):
    model = THIRD_PARTY / "face_landmark_with_attention.tflite"
    r = run_cli("bench", model, "--runs", "2")
    assert_clean_failure(r, 3, "Landmarks2TransformMatrix", "cannot resolve")
    # inspect still reads it and names the custom ops
    r = run_cli("--json", "inspect", model)
    assert r.exit_code == 0
    assert "Landmarks2TransformMatrix" in r.json["result"]["custom_ops"]


def test_unknown_target(run_cli, tiny_int8):
    r = run_cli("bench", tiny_int8, "--target", "abacus")
    assert_clean_failure(r, 2, "unknown target 'abacus'", "cpu")


def test_data_labels_do_not_fit_outputs(run_cli, tmp_path, tiny_int8, tf_keras_model):
    with np.load(DATA / "digits_eval.npz") as d:
        x, y = d["x"][:50], d["y"][:50] + 10
    np.savez(tmp_path / "labels.npz", x=x, y=y)
    r = run_cli("eval", tiny_int8, "--reference", tf_keras_model, "--data", tmp_path / "labels.npz")
    assert_clean_failure(r, 3, "10 outputs")


def test_verbose_shows_traceback(run_cli, tmp_path):
    r = run_cli("-v", "inspect", tmp_path / "missing.tflite")
    assert r.exit_code == 3
    assert "Traceback" in r.stderr


def test_interrupted_write_leaves_nothing(tmp_path, monkeypatch):
    from edgeq import artifacts

    target = tmp_path / "m.tflite"

    def boom(fd):
        raise KeyboardInterrupt

    monkeypatch.setattr(artifacts.os, "fsync", boom)
    with pytest.raises(KeyboardInterrupt):
        artifacts.write_bytes_atomic(target, b"x" * 1000)
    assert listing(tmp_path) == []


def test_compile_for_cpu_refuses_what_is_not_a_tflite(run_cli, tf_keras_model, tmp_path):
    """'Nothing to compile' holds for a .tflite only: a Keras file cannot run on the CPU as is."""
    r = run_cli("compile", tf_keras_model, "--target", "cpu", "-o", tmp_path)
    assert r.exit_code == 3 and "not a TFLite model" in r.stderr and "Traceback" not in r.stderr
