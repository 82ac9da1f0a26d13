"""Data sets: image folders with an explicit, recorded preprocessing spec; sampling; validation."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgeq import data
from edgeq.config import DataConfig, Preprocess
from edgeq.errors import BadInput, UsageError
from tests.conftest import DATA, ROOT


def test_image_folder_matches_the_npz_it_came_from():
    ds = data.load(DataConfig(path=str(DATA / "mnist_images")), input_shape=(28, 28, 1))
    assert ds.num_samples == 50 and ds.x.shape == (50, 28, 28, 1)
    assert ds.class_names == tuple(str(i) for i in range(10))
    assert ds.preprocess.scale == pytest.approx(1 / 255) and ds.preprocess.color_mode == "grayscale"
    assert ds.preprocess.resize == (28, 28)
    assert 0.0 <= ds.x.min() and ds.x.max() <= 1.0
    # the PNGs are the calibration images, so each must appear in the npz
    with np.load(DATA / "mnist_calib.npz") as d:
        calib = d["x"].reshape(len(d["x"]), -1)
    flat = ds.x.reshape(50, -1)
    assert all(np.abs(calib - row).max(axis=1).min() < 1e-6 for row in flat)


def test_mean_std_and_resize():
    spec = Preprocess(resize=(8, 8), color_mode="rgb", scale=1 / 255, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    ds = data.load(DataConfig(path=str(DATA / "mnist_images"), preprocess=spec))
    assert ds.x.shape == (50, 8, 8, 3)
    assert ds.x.min() >= -2.0 - 1e-6 and ds.x.max() <= 2.0 + 1e-6


def test_cli_records_preprocessing_for_image_folders(run_cli, tmp_path):
    out = tmp_path / "m.tflite"
    r = run_cli("--json", "quantize", ROOT / "models/mnist_cnn.keras", "--data", DATA / "mnist_images", "-o", out)
    assert r.exit_code == 0, r.stderr
    side = json.loads((tmp_path / "m.tflite.edgeq.json").read_text())
    pre = side["calibration"]["preprocessing"]
    assert pre["resize"] == [28, 28] and pre["color_mode"] == "grayscale" and pre["scale"] == pytest.approx(1 / 255)
    assert r.json["result"]["warnings"] == []


def test_image_folder_without_scale_warns_when_model_wants_0_1(run_cli, tmp_path):
    r = run_cli(
        "quantize",
        ROOT / "models/mnist_cnn.keras",
        "--data",
        DATA / "mnist_images",
        "--scale",
        "1",
        "-o",
        tmp_path / "m.tflite",
    )
    assert r.exit_code == 0
    assert "WARNING" in r.stderr and "0.00392157" in r.stderr


def test_samples_and_seed():
    a = data.load(DataConfig(path=str(DATA / "digits_eval.npz"), samples=30, seed=1))
    b = data.load(DataConfig(path=str(DATA / "digits_eval.npz"), samples=30, seed=1))
    assert np.array_equal(a.indices, b.indices) and np.array_equal(a.x, b.x) and len(a.indices) == 30


def test_npz_without_x(tmp_path):
    np.savez(tmp_path / "d.npz", images=np.zeros((3, 8, 8, 1)))
    with pytest.raises(BadInput, match="no 'x'"):
        data.load(DataConfig(path=str(tmp_path / "d.npz")))


def test_one_hot_labels_become_indices(tmp_path):
    y = np.eye(10)[[3, 1, 4]]
    np.savez(tmp_path / "d.npz", x=np.zeros((3, 8, 8, 1)), y=y)
    assert data.load(DataConfig(path=str(tmp_path / "d.npz"))).y.tolist() == [3, 1, 4]


def test_preprocess_validates_itself():
    with pytest.raises(UsageError, match="--mean and --std"):
        Preprocess(mean=(0.5,))
    with pytest.raises(UsageError, match="resize"):
        Preprocess(resize=(0, 4))


def test_validate_missing_channel_axis_hint():
    ds = data.load(DataConfig(path=str(DATA / "digits_eval.npz")))
    with pytest.raises(BadInput, match="expects") as exc:
        data.validate(ds, (8, 8, 1, 1), None)
    assert "channel axis" in exc.value.hint
