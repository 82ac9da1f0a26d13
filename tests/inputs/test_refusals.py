"""Refusals speak of what the user gave: an ONNX file is named as ONNX (never as the SavedModel edgeq
converts it to), a .tflite as a .tflite, each with a fix that applies to it."""

from __future__ import annotations

import numpy as np
import pytest

from tests.inputs.test_onnx import HAVE_EXTRA

needs_onnx = pytest.mark.skipif(not HAVE_EXTRA, reason="the onnx extra is not installed (pip install edgeq[onnx])")


@pytest.fixture
def tiny_onnx(tmp_path):
    from edgeq.onnx_import import require_onnx2tf
    from tests.inputs.test_onnx import _tiny_onnx

    require_onnx2tf()  # the extra is there (skipped above otherwise); --cle is refused before any conversion
    path = tmp_path / "model.onnx"
    _tiny_onnx(path)
    np.savez(tmp_path / "calib.npz", x=np.random.default_rng(0).uniform(-1, 1, (4, 1, 3, 16, 16)).astype(np.float32))
    return path


@needs_onnx
def test_cle_on_onnx_names_the_onnx_file(run_cli, tmp_path, tiny_onnx):
    r = run_cli("quantize", tiny_onnx, "--cle", "--data", tmp_path / "calib.npz", "-o", tmp_path / "q.tflite")
    assert r.exit_code == 2, r.stderr
    assert "--cle needs a Keras model (.keras, .h5): model.onnx is an ONNX model" in r.stderr
    assert "saved_model" not in r.stderr and "Traceback" not in r.stderr
    assert "drop --cle" in r.stderr and "export the model as a .keras file" in r.stderr
    assert not (tmp_path / "q.tflite").exists()


@needs_onnx
def test_planner_skip_reason_names_the_onnx_file(tiny_onnx):
    from edgeq.quantize import cle

    why, fix = cle.not_keras(str(tiny_onnx))
    assert why.startswith("model.onnx is an ONNX model") and "saved_model" not in why.lower()


def test_cle_on_tflite_names_the_tflite(run_cli, tmp_path):
    from tests.conftest import THIRD_PARTY

    model = THIRD_PARTY / "face_detection_short_range.tflite"
    np.savez(tmp_path / "calib.npz", x=np.zeros((2, 128, 128, 3), np.float32))
    r = run_cli("quantize", model, "--cle", "--data", tmp_path / "calib.npz", "-o", tmp_path / "q.tflite")
    assert r.exit_code == 2, r.stderr
    assert "this model is a .tflite" in r.stderr and "the Keras model the .tflite came from" in r.stderr
    assert "SavedModel" not in r.stderr and "Traceback" not in r.stderr


def test_not_keras_for_each_format(tmp_path):
    """A Keras file needs no refusal; a SavedModel and a .tflite are named as such."""
    from edgeq.quantize import cle
    from tests.conftest import THIRD_PARTY

    (tmp_path / "sm").mkdir()
    (tmp_path / "sm" / "saved_model.pb").write_bytes(b"\x08\x01")
    assert cle.not_keras(str(tmp_path / "sm"))[0].startswith("sm is a SavedModel")
    assert cle.not_keras(str(THIRD_PARTY / "hand_recrop.tflite"))[0].startswith("hand_recrop.tflite is a .tflite")


@needs_onnx
def test_training_an_onnx_model_names_the_onnx_file(tiny_onnx):
    """train and --qat need a Keras model: an ONNX file is named as ONNX, not as the SavedModel it becomes."""
    from edgeq.config import LoadConfig
    from edgeq.errors import BadInput
    from edgeq.stages.train import trainable_model

    with pytest.raises(BadInput) as refused:
        trainable_model(str(tiny_onnx), (3, 16, 16), None, LoadConfig())
    assert "is an ONNX model" in refused.value.message and "needs a Keras model" in refused.value.message
    assert "PTQ works on it" in refused.value.hint
