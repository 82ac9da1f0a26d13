"""eval, bench and inspect, on our models and on third-party .tflite files nobody here wrote."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from tests.conftest import DATA, ROOT, THIRD_PARTY

# Real models from the mediapipe 0.10.14 wheel (Apache-2.0); see tests/data/third_party/SOURCE.md.
FACE_DETECTION = THIRD_PARTY / "face_detection_short_range.tflite"
HAND_RECROP = THIRD_PARTY / "hand_recrop.tflite"


def test_eval_json_with_labels(run_cli, tiny_int8, tf_keras_model):
    r = run_cli("--json", "eval", tiny_int8, "--reference", tf_keras_model, "--data", DATA / "digits_eval.npz")
    assert r.exit_code == 0, r.stderr
    res = r.json["result"]
    assert res["num_samples"] == 1597
    assert 0.5 < res["reference"]["accuracy"] <= 1 and 0.5 < res["quantized"]["accuracy"] <= 1
    assert res["agreement"] > 0.9
    assert res["sqnr_db"] > 10 and 0.9 < res["cosine_similarity"] <= 1
    assert res["max_abs_error"] >= res["mean_abs_error"] > 0


def test_eval_gives_95_percent_intervals(run_cli, tiny_int8, tf_keras_model):
    r = run_cli("eval", tiny_int8, "--reference", tf_keras_model, "--data", DATA / "digits_eval.npz")
    assert r.exit_code == 0, r.stderr
    assert re.search(r"top-1 agreement: [\d.]+% \(95% CI [\d.]+-[\d.]+, n=1597\)", r.stdout)
    assert re.search(r"accuracy drop: -?[\d.]+ points \(95% CI [+-][\d.]+\.\.[+-][\d.]+\)", r.stdout)
    r = run_cli("--json", "eval", tiny_int8, "--reference", tf_keras_model, "--data", DATA / "digits_eval.npz")
    iv = r.json["result"]["intervals"]
    assert iv["agreement"]["n"] == 1597 and iv["agreement"]["method"] == "exact binomial (Clopper-Pearson)"
    drop = iv["accuracy_drop_points"]
    assert drop["low"] <= r.json["result"]["accuracy_drop_points"] <= drop["high"]


def test_eval_without_labels_gives_fidelity_only(run_cli, tmp_path, tiny_int8, tf_keras_model):
    with np.load(DATA / "digits_eval.npz") as d:
        np.save(tmp_path / "x.npy", d["x"][:100])
    r = run_cli("--json", "eval", tiny_int8, "--reference", tf_keras_model, "--data", tmp_path / "x.npy")
    assert r.exit_code == 0, r.stderr
    res = r.json["result"]
    assert res["quantized"]["accuracy"] is None and res["reference"]["accuracy"] is None
    assert res["sqnr_db"] > 10 and res["agreement"] > 0.9


def test_eval_against_itself_is_exact(run_cli, tiny_int8):
    r = run_cli("--json", "eval", tiny_int8, "--reference", tiny_int8, "--data", DATA / "digits_eval.npz")
    res = r.json["result"]
    assert res["agreement"] == 1.0 and res["max_abs_error"] == 0.0 and res["sqnr_db"] == "inf"


def test_bench_json_latency(run_cli, tiny_int8):
    r = run_cli("--json", "bench", tiny_int8, "--target", "cpu", "--runs", "30", "--warmup", "3", "--threads", "1")
    assert r.exit_code == 0, r.stderr
    res = r.json["result"]
    lat = res["latency_ms"]
    assert set(lat) >= {"p50", "p90", "p99", "mean"}
    assert 0 < lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["max"]
    assert res["num_runs"] == 30 and res["warmup_runs"] == 3 and res["num_threads"] == 1
    assert res["first_invoke_ms"] > 0
    assert res["environment"]["logical_cpus"] >= 1 and "ai-edge-litert" in res["environment"]["runtime"]


@pytest.mark.parametrize("model", [FACE_DETECTION, HAND_RECROP], ids=lambda p: p.stem)
def test_third_party_inspect_and_bench(run_cli, model):
    r = run_cli("--json", "inspect", model)
    assert r.exit_code == 0, r.stderr
    res = r.json["result"]
    assert res["inputs"][0]["dtype"] == "float32" and res["num_ops"] > 10
    assert res["macs"] > 1_000_000 and res["num_parameters"] > 10_000
    assert res["custom_ops"] == []
    assert res["num_float_ops"] > 0  # float models: their conv ops compute in float
    r = run_cli("--json", "bench", model, "--runs", "5", "--warmup", "1")
    assert r.exit_code == 0, r.stderr
    assert r.json["result"]["latency_ms"]["p50"] > 0


def test_face_detection_is_fp16_weights(run_cli):
    """mediapipe ships the short-range face detector with float16 weights behind DEQUANTIZE ops."""
    res = run_cli("--json", "inspect", FACE_DETECTION).json["result"]
    assert res["weight_dtypes"].get("float16", 0) > 0
    assert res["ops"].get("DEQUANTIZE", 0) > 0
    assert res["inputs"][0]["shape"] == [1, 128, 128, 3]


def test_inspect_keras_lists_layers(run_cli):
    res = run_cli("--json", "inspect", ROOT / "models/mnist_cnn.keras").json["result"]
    assert res["format"] == "tf_keras"
    assert (
        res["num_parameters"]
        == json.loads((ROOT / "models/mnist_cnn.keras.edgeq.json").read_text())["model"]["parameters"]
    )
    assert [x["type"] for x in res["layers"]][:4] == ["InputLayer", "Conv2D", "BatchNormalization", "ReLU"]
    assert res["expected_input_range"] == [0.0, 1.0]


def test_inspect_int8_macs_match_the_architecture(run_cli, tiny_int8):
    res = run_cli("--json", "inspect", tiny_int8).json["result"]
    # conv1 8x8x8 outputs x 3*3*1, conv2 4x4x16 x 3*3*8, dense 10 x 16
    assert res["macs"] == 8 * 8 * 8 * 9 + 4 * 4 * 16 * 72 + 10 * 16
    assert res["float_ops"] == [] and res["compute"]["int8"] == res["num_ops"]
