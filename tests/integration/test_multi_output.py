"""Multi-output models through eval, debug, the planner and build: every output paired by name,
each with its own figures; the model summary is the worst output."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.conftest import DATA, THIRD_PARTY

MTCNN_RNET = THIRD_PARTY / "mtcnn" / "mtcnn_rnet.keras"
FACE_DETECTION = THIRD_PARTY / "face_detection_short_range.tflite"
HEADS = ["bbox", "landmarks", "face_prob"]  # the Keras order; the .tflite lists its tensors otherwise


def _three_heads(tf_keras):
    tf_keras.utils.set_random_seed(0)
    inputs = tf_keras.Input((8, 8, 1), name="image")
    x = tf_keras.layers.Conv2D(8, 3, padding="same", activation="relu")(inputs)
    x = tf_keras.layers.GlobalAveragePooling2D()(x)
    x = tf_keras.layers.Dense(16, activation="relu")(x)
    outs = [
        tf_keras.layers.Dense(4, name="bbox")(x),
        tf_keras.layers.Dense(10, name="landmarks")(x),
        tf_keras.layers.Dense(2, activation="softmax", name="face_prob")(x),
    ]
    return tf_keras.Model(inputs, outs)


@pytest.fixture(scope="module")
def multi(tmp_path_factory):
    """A 3-output tf_keras model (.keras and SavedModel), its int8 .tflite, and unlabeled data."""
    from edgeq.tfimport import tensorflow

    tf = tensorflow()
    import tf_keras

    from edgeq import api
    from edgeq.config import DataConfig, QuantizeConfig

    d = tmp_path_factory.mktemp("multi")
    model = _three_heads(tf_keras)
    model.save(d / "m.keras")
    tf.saved_model.save(model, str(d / "saved"))
    with np.load(DATA / "digits_calib.npz") as z:
        np.save(d / "x.npy", z["x"][:128])
    api.quantize(str(d / "m.keras"), str(d / "m_int8.tflite"), QuantizeConfig(), DataConfig(path=str(d / "x.npy")))
    return d


def test_the_tflite_lists_its_outputs_in_another_order(multi):
    # what made pairing by position wrong: LiteRT's output tensors are not in the Keras order
    from ai_edge_litert.interpreter import Interpreter

    from edgeq.runtime import open_session

    raw = [tuple(d["shape"][1:]) for d in Interpreter(str(multi / "m_int8.tflite")).get_output_details()]
    assert raw != [(4,), (10,), (2,)]
    assert sorted(open_session(str(multi / "m_int8.tflite"), batch=1).output_names) == sorted(HEADS)


def test_eval_pairs_every_output_by_name(run_cli, multi):
    r = run_cli("--json", "eval", multi / "m_int8.tflite", "--reference", multi / "m.keras", "--data", multi / "x.npy")
    assert r.exit_code == 0, r.stderr
    res = r.json["result"]
    rows = {o["name"]: o for o in res["outputs"]}
    assert list(rows) == HEADS
    assert [rows[n]["shape"] for n in HEADS] == [[4], [10], [2]]
    for o in rows.values():
        assert o["sqnr_db"] > 15 and o["cosine_similarity"] > 0.95 and o["max_abs_error"] >= o["mean_abs_error"] > 0
    assert res["sqnr_db"] == min(o["sqnr_db"] for o in rows.values()) and res["worst_output"] in HEADS
    assert "agreement" in rows["face_prob"] and "agreement" not in rows["bbox"]
    assert res["agreement"] == rows["face_prob"]["agreement"]


def test_eval_human_output_names_each_output(run_cli, multi):
    r = run_cli("eval", multi / "m_int8.tflite", "--reference", multi / "saved", "--data", multi / "x.npy")
    assert r.exit_code == 0, r.stderr
    for name in HEADS:
        assert any(line.startswith(name) for line in r.stdout.splitlines()), name
    assert "worst output" in r.stdout and "top-1 agreement (face_prob)" in r.stdout


def test_eval_task_detection_on_a_classifier_is_exit_3(run_cli, tiny_int8, tf_keras_model):
    r = run_cli(
        "eval", tiny_int8, "--reference", tf_keras_model, "--data", DATA / "digits_eval.npz", "--task", "detection"
    )
    assert r.exit_code == 3 and "--task detection needs a boxes output" in r.stderr and "Traceback" not in r.stderr


def test_eval_outputs_that_do_not_match_by_name_is_exit_3(run_cli, multi, tmp_path):
    import tf_keras

    other = _three_heads(tf_keras)
    renamed = tf_keras.Model(other.inputs, [tf_keras.layers.Activation("linear", name=f"o{i}")(o) for i, o in
                                             enumerate(other.outputs)])  # fmt: skip
    renamed.save(tmp_path / "renamed.keras")
    r = run_cli("eval", multi / "m_int8.tflite", "--reference", tmp_path / "renamed.keras", "--data", multi / "x.npy")
    assert r.exit_code == 3, r.stderr
    assert "'o0'" in r.stderr and "bbox" in r.stderr and "Traceback" not in r.stderr


def test_debug_on_a_multi_output_saved_model(run_cli, multi, tmp_path):
    r = run_cli("--json", "debug", multi / "saved", "--data", multi / "x.npy", "-o", tmp_path / "dbg")
    assert r.exit_code == 0, r.stderr
    m = r.json["result"]["model_metrics"]
    assert sorted(o["name"] for o in m["outputs"]) == sorted(HEADS)
    assert m["sqnr_db"] == min(o["sqnr_db"] for o in m["outputs"]) > 10


def _dead_output_data(d):
    """Calibration on inputs 1000x larger than the evaluation inputs: int8 rounds every evaluation input
    to zero, so a ReLU head with no bias is all zeros in int8 while the float model still answers."""
    import tf_keras

    tf_keras.utils.set_random_seed(1)
    inp = tf_keras.Input((6,), name="x")
    h = tf_keras.layers.Dense(8, use_bias=False)(inp)
    model = tf_keras.Model(inp, [tf_keras.layers.ReLU(name="energy")(h), tf_keras.layers.Dense(3, name="pose")(h)])
    model.save(d / "dead.keras")
    x = np.random.default_rng(0).normal(size=(64, 6)).astype(np.float32)
    np.save(d / "big.npy", x * 1000)
    np.save(d / "small.npy", x)
    return model


def test_an_all_zero_int8_output_is_a_loud_warning_and_never_meets_a_budget(run_cli, tmp_path):
    from edgeq import api
    from edgeq.config import DataConfig, QuantizeConfig
    from edgeq.modelio import load_model
    from edgeq.quantize import planner

    _dead_output_data(tmp_path)
    api.quantize(
        str(tmp_path / "dead.keras"),
        str(tmp_path / "dead.tflite"),
        QuantizeConfig(),
        DataConfig(str(tmp_path / "big.npy")),
    )
    r = run_cli(
        "eval", tmp_path / "dead.tflite", "--reference", tmp_path / "dead.keras", "--data", tmp_path / "small.npy"
    )
    assert r.exit_code == 0, r.stderr
    assert "WARNING: int8 output 'energy' is all zeros" in r.stderr
    x = np.load(tmp_path / "small.npy")
    ref = load_model(tmp_path / "dead.keras").predict_outputs(x)
    p = planner.Planner(ref, x, None, planner.Budget(min_sqnr=-1000.0), planner.Profile())
    step = p.evaluate(planner.Step("int8 PTQ", "ptq"), (tmp_path / "dead.tflite").read_bytes())
    assert not step.meets and any("'energy' is all zeros" in m for m in step.misses)
    assert {o["name"] for o in step.outputs} == {"energy", "pose"}


def test_mediapipe_face_detector_outputs_are_a_detection_head(run_cli):
    # a real third-party float .tflite (no signature: tensor names) against itself: the roles and the
    # detection figures, not the quantization, are what is checked here
    x = np.random.default_rng(0).uniform(-1, 1, size=(2, 128, 128, 3)).astype(np.float32)
    from edgeq.bench import fidelity
    from edgeq.runtime import open_session

    s = open_session(str(FACE_DETECTION), batch=1)
    assert s.output_names == ["regressors", "classificators"]
    r = fidelity.compare_session(s.predict_outputs(x), s, x, None)
    assert r["task"] == "detection" and r["detection"]["boxes"] == "regressors"
    assert {o["name"]: o["role"] for o in r["outputs"]} == {"regressors": "boxes", "classificators": "scores"}


@pytest.mark.slow
def test_third_party_mtcnn_rnet_eval_and_debug(run_cli, tmp_path):
    """MTCNN's RNet from the mtcnn 1.0.0 wheel: box regression (4) and face probability (2)."""
    from edgeq import api
    from edgeq.config import DataConfig, QuantizeConfig

    x = np.random.default_rng(0).uniform(-1, 1, size=(48, 24, 24, 3)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    api.quantize(str(MTCNN_RNET), str(tmp_path / "rnet.tflite"), QuantizeConfig(), DataConfig(str(tmp_path / "x.npy")))
    r = run_cli("--json", "eval", tmp_path / "rnet.tflite", "--reference", MTCNN_RNET, "--data", tmp_path / "x.npy")
    assert r.exit_code == 0, r.stderr
    rows = {o["name"]: o for o in r.json["result"]["outputs"]}
    assert rows["fc5-1"]["role"] == "regression" and rows["fc5-2"]["role"] == "class_scores"
    assert all(o["sqnr_db"] > 15 for o in rows.values())
    r = run_cli("--json", "debug", MTCNN_RNET, "--data", tmp_path / "x.npy", "-o", tmp_path / "dbg")
    assert r.exit_code == 0, r.stderr
    assert {o["name"] for o in r.json["result"]["model_metrics"]["outputs"]} == {"fc5-1", "fc5-2"}


@pytest.mark.slow
def test_build_min_sqnr_on_unlabeled_data_shows_sqnr_and_agreement(run_cli, multi, tmp_path):
    out = tmp_path / "b"
    r = run_cli(
        "build", multi / "m.keras", "--target", "cpu", "--data", multi / "x.npy", "--eval-data", multi / "x.npy",
        "--min-sqnr", "15", "-o", out, "--runs", "2", "--warmup", "0",
    )  # fmt: skip
    assert r.exit_code == 0, r.stderr
    head = next(line for line in r.stdout.splitlines() if line.startswith("variant"))
    assert "agreement" in head.split() and "sqnr_db" in head.split()
    int8_row = next(line for line in r.stdout.splitlines() if line.startswith("int8"))
    assert "%" in int8_row  # the agreement, where top-1 shows "-"
    for name in HEADS:
        assert f"output {name} " in r.stdout
    manifest = json.loads((out / "cpu" / "build.json").read_text())
    q = next(v for v in manifest["variants"] if v["variant"] == "int8")
    assert q["accuracy"] is None and q["sqnr_db"] > 15 and q["agreement"] is not None
    assert sorted(o["name"] for o in q["outputs"]) == sorted(HEADS)
    md = (out / "report.md").read_text()
    assert "Outputs: fidelity per output" in md and "SQNR >= 15.0 dB" in md


def test_build_min_sqnr_goes_with_auto_not_ptq(run_cli, tmp_path):
    r = run_cli("build", "--target", "cpu", "--method", "ptq", "--min-sqnr", "20", "-o", tmp_path / "b")
    assert r.exit_code == 2 and "--min-sqnr goes with --method auto" in r.stderr


def test_min_sqnr_is_an_edgeq_toml_key(tmp_path):
    from edgeq.config import BuildConfig, load_toml

    (tmp_path / "edgeq.toml").write_text('target = "cpu"\nmin-sqnr = 25.0\n')
    settings = load_toml(str(tmp_path / "edgeq.toml"))
    assert BuildConfig(**settings).min_sqnr == 25.0


@pytest.mark.slow
def test_build_warns_of_a_dead_int8_output(run_cli, tmp_path):
    _dead_output_data(tmp_path)
    r = run_cli(
        "--json", "build", tmp_path / "dead.keras", "--target", "cpu", "--method", "ptq", "--data", tmp_path / "big.npy",
        "--eval-data", tmp_path / "small.npy", "-o", tmp_path / "b", "--runs", "2", "--warmup", "0",
    )  # fmt: skip
    assert r.exit_code == 0, r.stderr
    warnings = r.json["result"]["warnings"]
    assert any("'energy' is all zeros" in w for w in warnings)


@pytest.mark.slow
def test_build_without_labels_or_min_sqnr_applies_the_tasks_default_budget(run_cli, multi, tmp_path):
    r = run_cli(
        "build", multi / "m.keras", "--target", "cpu", "--data", multi / "x.npy", "--eval-data", multi / "x.npy",
        "-o", tmp_path / "b", "--runs", "2", "--warmup", "0",
    )  # fmt: skip
    assert r.exit_code == 0, r.stderr
    assert "note: budget: worst-output SQNR >= " in r.stdout and "with unlabeled evaluation data" in r.stdout, r.stdout


def test_eval_against_a_float_tflite_reference_pairs_by_signature_names(run_cli, multi):
    from edgeq import api
    from edgeq.config import Mode, QuantizeConfig

    api.quantize(str(multi / "m.keras"), str(multi / "m_float.tflite"), QuantizeConfig(mode=Mode.FLOAT))
    r = run_cli(
        "--json", "eval", multi / "m_int8.tflite", "--reference", multi / "m_float.tflite", "--data", multi / "x.npy"
    )
    assert r.exit_code == 0, r.stderr
    rows = {o["name"]: o for o in r.json["result"]["outputs"]}
    assert sorted(rows) == sorted(HEADS) and rows["bbox"]["shape"] == [4] and rows["bbox"]["sqnr_db"] > 15
