"""Training and quantization-aware training (TF-MOT), on real data and real layers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from edgeq import api, tflite
from edgeq.config import DataConfig, QuantizeConfig, TrainConfig
from tests.conftest import DATA, ROOT, listing

MNIST = ROOT / "models" / "mnist_cnn.keras"


@pytest.fixture(scope="module")
def mnist_small(tmp_path_factory) -> Path:
    """600 seeded MNIST training images (60 per class), for fast training tests."""
    with np.load(DATA / "mnist_train.npz") as d:
        idx = np.sort(np.random.default_rng(0).choice(len(d["x"]), 600, replace=False))
        path = tmp_path_factory.mktemp("data") / "mnist_600.npz"
        np.savez(path, x=d["x"][idx], y=d["y"][idx])
    return path


def test_qat_bundled_model_float_ptq_qat_side_by_side(run_cli, tmp_path):
    r = run_cli(
        "--json", "quantize", MNIST, "--qat", "--train-data", DATA / "mnist_train.npz",
        "--data", DATA / "mnist_calib.npz", "--eval-data", DATA / "mnist_eval.npz", "-o", tmp_path / "qat.tflite",
    )  # fmt: skip
    assert r.exit_code == 0, r.stderr
    res = r.json["result"]
    acc = res["accuracy"]
    assert acc["num_samples"] == 2000
    assert acc["qat"] >= acc["float"] - 0.002  # within 0.2 points of float
    assert acc["ptq"] > 0.96
    assert res["float_ops"] == [] and res["inputs"][0]["dtype"] == "int8" and res["outputs"][0]["dtype"] == "int8"
    statuses = {x["layer"]: x["status"] for x in res["qat"]["layers"]}
    assert statuses["conv1"] == "quantized" and statuses["bn1"] == "quantized"
    assert res["qat"]["training"]["epochs_run"] == 2
    side = json.loads((tmp_path / "qat.tflite.edgeq.json").read_text())
    assert side["command"] == "quantize --qat" and side["qat"]["layers"]


def _mixed_keras3_model(path: Path) -> None:
    """Keras 3, with layers TF-MOT's default registry does not all quantize."""
    import keras

    keras.utils.set_random_seed(0)
    inp = keras.Input((8, 8, 1))
    x = keras.layers.Rescaling(2.0, offset=-1.0)(inp)
    x = keras.layers.Conv2D(8, 3, padding="same", use_bias=False, kernel_regularizer=keras.regularizers.L2(1e-4))(x)
    x = keras.layers.BatchNormalization()(x)
    a = keras.layers.LeakyReLU(negative_slope=0.1)(x)
    b = keras.layers.ReLU()(x)
    x = keras.layers.Concatenate()([a, b])
    x = keras.layers.Conv2D(16, 3, strides=2, padding="same")(x)
    x = keras.layers.PReLU(shared_axes=[1, 2])(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.BatchNormalization()(x)
    out = keras.layers.Dense(10, activation="softmax")(x)
    keras.Model(inp, out).save(path)


def test_leakyrelu_concatenate_rescaling_go_through_qat(run_cli, tmp_path, digits_calib, digits_eval):
    model = tmp_path / "mixed.keras"
    _mixed_keras3_model(model)
    r = run_cli(
        "--json", "quantize", model, "--qat", "--train-data", digits_calib, "--eval-data", digits_eval,
        "-o", tmp_path / "mixed.tflite", "--epochs", "2", "--lr", "1e-3",
    )  # fmt: skip
    assert r.exit_code == 0, r.stderr
    res = r.json["result"]
    plan = {x["type"]: (x["status"], x["reason"]) for x in res["qat"]["layers"]}
    assert plan["Rescaling"][0] == "quantized (output only)"
    assert plan["LeakyReLU"][0] == "quantized" and plan["Concatenate"][0] == "quantized"
    assert plan["PReLU"] == ("float during training", "TF-MOT 0.8 has no 8-bit scheme for PReLU")
    bns = [x for x in res["qat"]["layers"] if x["type"] == "BatchNormalization"]
    assert bns[0]["status"] == "quantized" and "folded into conv2d" in bns[0]["reason"]
    assert bns[1]["status"] == "float during training" and "not after a convolution" in bns[1]["reason"]
    impact = " ".join(res["qat"]["target_impact"])
    assert "p_re_lu (PReLU)" in impact and "falls back to the CPU" in impact
    assert any("moved from Keras 3 to tf_keras" in n for n in res["qat"]["notes"])
    # the converter still makes every op integer: the float-trained layers are calibrated
    assert res["float_ops"] == []


def test_keras3_to_tf_keras_keeps_the_function(tmp_path):
    import keras

    from edgeq.keras_migrate import to_tf_keras

    path = tmp_path / "mixed.keras"
    _mixed_keras3_model(path)
    k3 = keras.saving.load_model(path)
    tk, dropped = to_tf_keras(k3)
    x = np.random.default_rng(0).random((4, 8, 8, 1), dtype=np.float32)
    np.testing.assert_allclose(np.asarray(k3(x)), tk(x).numpy(), rtol=1e-5, atol=1e-6)
    assert type(tk).__module__.startswith("tf_keras")


ZOO_CASES = {
    # name: (input shape, num classes or None for the autoencoder, zoo args)
    "mnist_cnn": ((28, 28, 1), 10, {}),
    "ds_cnn": ((49, 10, 1), 12, {}),
    "resnet8": ((32, 32, 3), 10, {}),
    "mobilenet_v1_025": ((96, 96, 3), 2, {}),
    "fc_autoencoder": ((640,), None, {}),
    "mobilenet_v2": ((32, 32, 3), 10, {"alpha": 0.35}),
}


@pytest.mark.parametrize("name", list(ZOO_CASES))
def test_zoo_model_trains_qat_and_converts_to_full_int8(tmp_path, name):
    shape, classes, zoo_args = ZOO_CASES[name]
    rng = np.random.default_rng(0)
    x = rng.random((32, *shape), dtype=np.float32)
    arrays = {"x": x} if classes is None else {"x": x, "y": rng.integers(0, classes, 32)}
    np.savez(tmp_path / "d.npz", **arrays)
    data = DataConfig(path=str(tmp_path / "d.npz"))
    cfg = TrainConfig(epochs=1, batch_size=8, val_split=0.25, loss="mse" if classes is None else None)
    summary = api.train(name, data, str(tmp_path / "qat.h5"), cfg, qat=True, zoo_args=zoo_args)
    assert np.isfinite(summary.training["history"]["loss"][0])
    assert all(x["status"] != "float during training" for x in summary.qat_layers), summary.qat_layers
    q = api.quantize(summary.output, str(tmp_path / "m.tflite"), QuantizeConfig(), data)
    assert q.float_ops == []
    info = tflite.read_file(q.output)
    assert info.inputs[0].dtype == "int8" and info.outputs[0].dtype == "int8"
    assert set(info.compute_histogram()) <= {"int8", "other"}


def test_train_json_summary_and_sidecar(run_cli, tmp_path, mnist_small):
    r = run_cli("--json", "train", "mnist_cnn", "--data", mnist_small, "--epochs", "2", "-o", tmp_path / "m.keras")
    assert r.exit_code == 0, r.stderr
    res = r.json["result"]
    assert res["output"] == str(tmp_path / "m.keras")
    assert len(res["history"]["loss"]) == 2 and len(res["history"]["val_accuracy"]) == 2
    assert 0 < res["best_val_accuracy"] <= 1
    assert res["training"]["num_train_samples"] == 540 and res["training"]["num_val_samples"] == 60
    side = json.loads((tmp_path / "m.keras.edgeq.json").read_text())
    assert side["data"]["value_range"] == [0.0, 1.0]
    # the trained model is a model edgeq loads and quantizes
    q = run_cli(
        "--json", "quantize", tmp_path / "m.keras", "--data", DATA / "mnist_calib.npz", "-o", tmp_path / "m.tflite"
    )
    assert q.exit_code == 0 and q.json["result"]["float_ops"] == []


def test_early_stopping_on_random_labels(tmp_path):
    rng = np.random.default_rng(1)
    np.savez(tmp_path / "noise.npz", x=rng.random((200, 8, 8, 1), dtype=np.float32), y=rng.integers(0, 10, 200))
    cfg = TrainConfig(epochs=40, batch_size=16, learning_rate=1e-2, patience=2, lr_schedule="constant")
    s = api.train(
        "mnist_cnn",
        DataConfig(path=str(tmp_path / "noise.npz")),
        str(tmp_path / "m.keras"),
        cfg,
        zoo_args={"input_shape": (8, 8, 1)},
    )
    assert s.training["stopped_early"] and s.training["epochs_run"] < 40


def _wait_for_epoch(state: Path, epoch: int, proc: subprocess.Popen, timeout_s: float = 120) -> None:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        try:
            if json.loads(state.read_text())["epoch"] >= epoch:
                return
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.2)
    raise AssertionError("training never reached the epoch")


def test_sigint_then_resume_reaches_the_requested_epochs(tmp_path, mnist_small):
    out = tmp_path / "m.keras"
    cmd = [
        sys.executable,
        "-m",
        "edgeq",
        "--json",
        "train",
        "mnist_cnn",
        "--data",
        str(mnist_small),
        "--epochs",
        "8",
        "-o",
        str(out),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    state = tmp_path / "m.keras.ckpt" / "state.json"
    _wait_for_epoch(state, 2, proc)
    proc.send_signal(signal.SIGINT)
    stdout, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130
    assert json.loads(stdout)["error"]["type"] == "interrupted"
    assert not out.exists()  # no half-trained output
    stopped_at = json.loads(state.read_text())["epoch"]
    assert 2 <= stopped_at < 8
    # no corrupt checkpoint: no temp files left, and last.h5 loads
    assert listing(state.parent) == ["best.h5", "last.h5", "state.json"]
    import tf_keras

    tf_keras.models.load_model(state.parent / "last.h5")
    resumed = subprocess.run([*cmd, "--resume"], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    res = json.loads(resumed.stdout)["result"]
    assert res["training"]["resumed_from_epoch"] == stopped_at
    assert res["training"]["epochs_run"] == 8 and len(res["history"]["loss"]) == 8
    assert out.exists()


def test_mirrored_strategy_on_two_logical_cpus(tmp_path, mnist_small):
    cmd = [
        sys.executable, "-m", "edgeq", "--json", "train", "mnist_cnn", "--data", str(mnist_small), "--epochs", "1",
        "--strategy", "mirrored", "--cpu-devices", "2", "-o", str(tmp_path / "m.keras"),
    ]  # fmt: skip
    p = subprocess.run(
        cmd, capture_output=True, text=True, cwd=ROOT, timeout=300, env=os.environ | {"TF_CPP_MIN_LOG_LEVEL": "3"}
    )
    assert p.returncode == 0, p.stderr
    res = json.loads(p.stdout)["result"]
    assert res["training"]["strategy"] == "mirrored" and res["training"]["num_replicas"] == 2
    assert np.isfinite(res["history"]["loss"][0])


def test_multi_worker_without_tf_config(run_cli, tmp_path, mnist_small, monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    r = run_cli("train", "mnist_cnn", "--data", mnist_small, "--strategy", "multi-worker", "-o", tmp_path / "m.keras")
    assert r.exit_code == 2 and "TF_CONFIG" in r.stderr


# Bad input -----------------------------------------------------------------------------------


def test_labels_that_do_not_match_the_output_size(run_cli, tmp_path):
    with np.load(DATA / "digits_calib.npz") as d:
        np.savez(tmp_path / "d.npz", x=d["x"], y=d["y"] + 5)
    r = run_cli(
        "train", "mnist_cnn", "--data", tmp_path / "d.npz", "--zoo-arg", "num_classes=10", "-o", tmp_path / "m.keras"
    )
    assert r.exit_code == 3 and "span 5..14 but the model has 10 outputs" in r.stderr
    assert listing(tmp_path) == ["d.npz"]


def test_qat_of_a_non_classifier_without_loss(run_cli, tmp_path):
    from edgeq import zoo

    zoo.build("fc_autoencoder").save(tmp_path / "ae.keras")
    np.savez(tmp_path / "d.npz", x=np.random.default_rng(0).random((32, 640), dtype=np.float32))
    r = run_cli(
        "quantize", tmp_path / "ae.keras", "--qat", "--train-data", tmp_path / "d.npz", "-o", tmp_path / "ae.tflite"
    )
    assert r.exit_code == 3 and "no --loss was given" in r.stderr and "--loss mse" in r.stderr
    assert not (tmp_path / "ae.tflite").exists()
    r = run_cli(
        "quantize",
        tmp_path / "ae.keras",
        "--qat",
        "--train-data",
        tmp_path / "d.npz",
        "--loss",
        "mse",
        "--epochs",
        "1",
        "-o",
        tmp_path / "ae.tflite",
    )
    assert r.exit_code == 0, r.stderr


def test_empty_training_data(run_cli, tmp_path):
    np.savez(tmp_path / "d.npz", x=np.zeros((0, 28, 28, 1), np.float32), y=np.zeros((0,), np.int64))
    r = run_cli("train", "mnist_cnn", "--data", tmp_path / "d.npz", "-o", tmp_path / "m.keras")
    assert r.exit_code == 3 and "empty" in r.stderr


def test_model_file_that_does_not_load(run_cli, tmp_path, mnist_small):
    bad = tmp_path / "bad.keras"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    for args in (["train", bad, "--data", mnist_small, "-o", tmp_path / "m.keras"],
                 ["quantize", bad, "--qat", "--train-data", mnist_small, "-o", tmp_path / "m.tflite"]):  # fmt: skip
        r = run_cli(*args)
        assert r.exit_code == 3 and "truncated or corrupt" in r.stderr
    assert listing(tmp_path) == ["bad.keras"]


def test_qat_output_must_be_h5_and_qat_needs_train_data(run_cli, tmp_path, mnist_small):
    r = run_cli("train", "mnist_cnn", "--qat", "--data", mnist_small, "-o", tmp_path / "m.keras")
    assert r.exit_code == 2 and "-o model_qat.h5" in r.stderr
    r = run_cli("quantize", MNIST, "--qat", "-o", tmp_path / "m.tflite")
    assert r.exit_code == 2 and "--train-data" in r.stderr
    r = run_cli("quantize", MNIST, "--eval-data", mnist_small, "--data", mnist_small, "-o", tmp_path / "m.tflite")
    assert r.exit_code == 2 and "go with --qat" in r.stderr


def test_layers_tfmot_cannot_quantize_are_reported_not_fatal(tmp_path, digits_calib):
    import tf_keras

    from edgeq.config import LoadConfig

    inp = tf_keras.Input((8, 8, 1))
    x = tf_keras.layers.Reshape((64, 1))(inp)
    x = tf_keras.layers.Conv1D(4, 3, padding="same")(x)
    x = tf_keras.layers.Reshape((8, 8, 4))(x)
    x = tf_keras.layers.Conv2DTranspose(4, 3, strides=2, padding="same")(x)
    y = tf_keras.layers.Lambda(lambda t: t * 0.5, name="halve")(x)
    x = tf_keras.layers.Multiply()([x, y])
    x = tf_keras.layers.GlobalAveragePooling2D()(x)
    tf_keras.Model(inp, tf_keras.layers.Dense(10, activation="softmax")(x)).save(tmp_path / "odd.keras")
    res = api.quantize_aware(
        str(tmp_path / "odd.keras"),
        str(tmp_path / "odd.tflite"),
        QuantizeConfig(),
        DataConfig(path=str(digits_calib)),
        TrainConfig(epochs=1, batch_size=32),
        load_cfg=LoadConfig(trust_model=True),
    )
    plan = {x["type"]: x for x in res["qat"]["layers"]}
    assert plan["Conv1D"]["status"] == "float during training" and "Conv1D" in plan["Conv1D"]["reason"]
    assert plan["Conv2DTranspose"]["status"] == "quantized"  # TF-MOT 0.8.1 has a scheme for it
    assert plan["Lambda"]["status"] == "float during training" and "Python code" in plan["Lambda"]["reason"]
    assert plan["Multiply"]["status"] == "quantized (output only)"
    assert plan["Conv2D" if "Conv2D" in plan else "Dense"]["status"] == "quantized"
    assert res["float_ops"] == []  # the converter calibrates what trained in float


def test_weights_option_starts_from_trained_weights(run_cli, tmp_path, mnist_small):
    import tf_keras

    tf_keras.models.load_model(MNIST).save_weights(tmp_path / "w.weights.h5")
    r = run_cli("--json", "train", "mnist_cnn", "--data", mnist_small, "--weights", tmp_path / "w.weights.h5",
                "--epochs", "1", "--lr", "1e-5", "-o", tmp_path / "m.keras")  # fmt: skip
    assert r.exit_code == 0, r.stderr
    assert r.json["result"]["history"]["val_accuracy"][0] > 0.95  # an untrained model is near 0.1
    r = run_cli(
        "train", "resnet8", "--data", mnist_small, "--weights", tmp_path / "w.weights.h5", "-o", tmp_path / "r.keras"
    )
    assert r.exit_code == 3 and "cannot load weights" in r.stderr
