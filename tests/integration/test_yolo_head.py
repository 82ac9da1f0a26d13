"""A YOLOv5/v8-style head ([1, 4+C, anchors]: boxes in pixels, class scores in 0..1) through the plain int8
converter, eval and debug: one int8 scale over both leaves the scores 0 or 1 step. eval --task detection
measures the collapse (anchors above 0.25, class agreement) and every evaluation names the output and the
ranges of its row groups; the same network with its head split into boxes and scores keeps its scores.

Real images (the bundled MNIST digits; no photo set ships with the repository or its environment)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import DATA

CLASSES = 3
BIAS, STD = -2.5, 6.0  # score logits: most anchors find nothing, a few are confident, as in a trained head


def _yolo(tf_keras, split: bool, bias: float = BIAS, std: float = STD):
    """Conv backbone 28x28 -> 7x7 anchors; boxes sigmoid*320 (pixels), scores sigmoid; one [4+C, 49] output
    (``split`` False) or boxes (49, 4) and scores (49, C)."""
    layers = tf_keras.layers
    tf_keras.utils.set_random_seed(0)
    inputs = tf_keras.Input((28, 28, 1), name="images")
    x = layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(inputs)
    x = layers.Conv2D(16, 3, strides=2, padding="same", activation="relu")(x)
    box = layers.Conv2D(4, 1, activation="sigmoid")(x)
    box = layers.Rescaling(320.0)(box)
    init = tf_keras.initializers.RandomNormal(stddev=std, seed=1)
    score = layers.Conv2D(
        CLASSES, 1, activation="sigmoid", kernel_initializer=init, bias_initializer=tf_keras.initializers.Constant(bias)
    )(x)
    if split:
        boxes = layers.Reshape((49, 4), name="boxes")(box)
        scores = layers.Reshape((49, CLASSES), name="scores")(score)
        return tf_keras.Model(inputs, [boxes, scores])
    head = layers.Reshape((49, 4 + CLASSES))(layers.Concatenate()([box, score]))
    return tf_keras.Model(inputs, layers.Permute((2, 1), name="output0")(head))


@pytest.fixture(scope="module")
def yolo(tmp_path_factory):
    """Both models (.keras), their int8 .tflite from the plain converter (`edgeq quantize --mode int8`'s
    defaults), calibration and eval data."""
    import tf_keras

    from edgeq import api
    from edgeq.config import DataConfig, QuantizeConfig
    from edgeq.tfimport import tensorflow

    tensorflow()
    d = tmp_path_factory.mktemp("yolo")
    with np.load(DATA / "mnist_calib.npz") as z:
        np.save(d / "calib.npy", z["x"][:64])
    with np.load(DATA / "mnist_eval.npz") as z:
        np.save(d / "eval.npy", z["x"][:60])
    for name, split in (("head", False), ("split", True)):
        _yolo(tf_keras, split).save(d / f"{name}.keras")
        api.quantize(
            str(d / f"{name}.keras"), str(d / f"{name}.tflite"), QuantizeConfig(), DataConfig(path=str(d / "calib.npy"))
        )
    return d


def _eval(run_cli, d, name: str, *extra: str) -> dict:
    r = run_cli(
        "--json", "eval", d / f"{name}.tflite", "--reference", d / f"{name}.keras", "--data", d / "eval.npy", *extra
    )
    assert r.exit_code == 0, r.stderr
    return r.json


def test_one_output_head_collapses_and_is_named(run_cli, yolo):
    doc = _eval(run_cli, yolo, "head", "--task", "detection")
    res = doc["result"]
    det = res["detection"]
    assert det["layout"] == "rows" and det["classes"] == CLASSES and det["score_threshold"] == 0.25
    assert det["reference_detections"] > 0
    # measured: 565 float anchors above 0.25, 277 int8; class agreement 63% (scores 0, 1 or 2 steps of 0.82)
    assert det["quantized_detections"] < 0.7 * det["reference_detections"]
    assert det["class_agreement"] < 0.8
    mixed = res["outputs"][0]["mixed_ranges"]
    assert [(g["first"], g["last"], g["narrow"]) for g in mixed["groups"]] == [(0, 3, False), (4, 6, True)]
    text = "\n".join(res["warnings"])
    assert "output 'output0': rows 0-3 span" in text and "rows 4-6 span" in text and "split the head" in text
    # without --task, the layout is guessed from the output's shape and values
    assert _eval(run_cli, yolo, "head")["result"]["task"] == "detection"


def test_the_head_split_in_two_keeps_its_scores_and_says_nothing(run_cli, yolo):
    res = _eval(run_cli, yolo, "split")["result"]
    assert all(o["mixed_ranges"] is None for o in res["outputs"])
    assert not any("int8 scale" in w for w in res["warnings"])
    scores = next(o for o in res["outputs"] if o["name"] == "scores")
    assert scores["sqnr_db"] > 25  # its own scale: 0..1 in 255 steps
    # measured: 271 float / 268 int8 anchors above 0.5, score agreement 97%
    det = res["detection"]
    assert det["quantized_detections"] > 0.9 * det["reference_detections"] and det["class_agreement"] > 0.9


def test_debug_warns_too(run_cli, yolo, tmp_path):
    r = run_cli("--json", "debug", yolo / "head.keras", "--data", yolo / "calib.npy", "-o", tmp_path / "dbg")
    assert r.exit_code == 0, r.stderr
    assert any("output 'output0': rows 0-3 span" in w for w in r.json["result"]["warnings"])
