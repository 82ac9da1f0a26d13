"""Quantization modes and model formats, each output read back and verified."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from edgeq import api, tflite
from edgeq.config import DataConfig, IOType, Mode, QuantizeConfig
from edgeq.errors import ConversionFailed
from tests.conftest import DATA, ROOT
from tests.spies import count_sha256_of


@pytest.fixture(scope="module")
def bundled_int8(tmp_path_factory):
    out = tmp_path_factory.mktemp("bundled") / "mnist_int8.tflite"
    r = api.quantize(
        str(ROOT / "models/mnist_cnn.keras"),
        str(out),
        QuantizeConfig(),
        DataConfig(path=str(DATA / "mnist_calib.npz")),
        size_ratio=True,
    )
    return r


def test_bundled_int8_is_fully_integer_and_small(bundled_int8):
    r = bundled_int8
    assert r.float_ops == []
    assert [t["dtype"] for t in r.inputs + r.outputs] == ["int8", "int8"]
    assert r.inputs[0]["shape"] == [1, 28, 28, 1]
    # int8 weights are a quarter of float32; per-channel scales and graph overhead add the rest.
    assert r.size_bytes <= 0.32 * r.reference_size_bytes
    info = tflite.read_file(r.output)
    assert set(info.compute_histogram()) <= {"int8", "other"}
    assert info.inputs[0].scales[0] == pytest.approx(1 / 255, rel=0.05)


def test_bundled_int8_accuracy_within_half_a_point(bundled_int8):
    res = api.evaluate(
        bundled_int8.output, str(ROOT / "models/mnist_cnn.keras"), DataConfig(path=str(DATA / "mnist_eval.npz"))
    )
    assert res["num_samples"] >= 1000
    assert res["reference"]["accuracy"] > 0.96
    assert abs(res["reference"]["accuracy"] - res["quantized"]["accuracy"]) <= 0.005
    assert res["agreement"] > 0.98
    assert res["sqnr_db"] > 15


def test_sidecar_records_provenance(bundled_int8):
    side = json.loads(open(bundled_int8.sidecar).read())
    assert side["command"] == "quantize"
    assert side["config"]["mode"] == "int8" and side["config"]["io"] == "int8"
    assert len(side["inputs"]["model"]["sha256"]) == 64
    cal = side["calibration"]
    assert cal["num_samples"] == 200 and cal["seed"] == 0 and cal["indices"] == list(range(200))
    assert cal["preprocessing"]["scale"] is None
    assert side["output"]["size_bytes"] == bundled_int8.size_bytes
    assert "tensorflow" in side["tool_versions"] and "ai-edge-litert" in side["tool_versions"]


@pytest.mark.parametrize(
    ("mode", "io", "expect_float", "weights"),
    [
        ("float", None, True, "float32"),
        ("dynamic", None, True, "int8"),
        ("fp16", None, True, "float16"),
        ("int8", "uint8", False, "int8"),
        ("int8", "float", False, "int8"),
        ("int16x8", None, False, "int8"),
    ],
)
def test_modes_read_back(tmp_path, tf_keras_model, digits_calib, mode, io, expect_float, weights):
    cfg = QuantizeConfig(mode=Mode(mode), io=IOType(io) if io else None)
    data = DataConfig(path=str(digits_calib)) if cfg.mode.needs_data else None
    r = api.quantize(str(tf_keras_model), str(tmp_path / "m.tflite"), cfg, data)
    info = tflite.read_file(r.output)
    assert bool(r.float_ops) == expect_float
    assert weights in info.weight_dtypes
    want_io = {"uint8": "uint8", "float": "float32", None: "float32"}[io] if mode != "int8" or io else "int8"
    assert r.inputs[0]["dtype"] == want_io and r.outputs[0]["dtype"] == want_io
    if mode == "dynamic":
        assert "hybrid" in info.compute_histogram()
    if mode == "int16x8":
        assert "int16" in info.compute_histogram()
    if io == "float":  # float I/O puts QUANTIZE/DEQUANTIZE at the edges, which are not float compute
        assert {"QUANTIZE", "DEQUANTIZE"} <= set(info.op_histogram())


@pytest.mark.parametrize("fmt", ["keras3", "h5", "saved_model"])
def test_formats_convert_to_the_same_int8_graph(tmp_path, keras3_model, tf_keras_model, digits_calib, fmt):
    if fmt == "keras3":
        src = keras3_model
    elif fmt == "h5":
        import tf_keras

        src = tmp_path / "m.h5"
        tf_keras.models.load_model(tf_keras_model).save(src)
    else:
        import tf_keras

        src = tmp_path / "saved"
        tf_keras.models.load_model(tf_keras_model).export(str(src))
    r = api.quantize(str(src), str(tmp_path / "m.tflite"), QuantizeConfig(), DataConfig(path=str(digits_calib)))
    assert r.float_ops == []
    assert r.inputs[0]["shape"] == [1, 8, 8, 1]
    ops = tflite.read_file(r.output).op_histogram()
    assert ops.get("CONV_2D") == 2 and ops.get("FULLY_CONNECTED") == 1
    ev = api.evaluate(r.output, str(src), DataConfig(path=str(DATA / "digits_eval.npz")))
    assert ev["agreement"] > 0.9


def test_float_islands_fail_unless_allowed(tmp_path, digits_calib):
    import tf_keras

    # COS has no integer kernel in TFLite: with integer-only ops the conversion must fail,
    # with float ops allowed it becomes a float island that verification names.
    inputs = tf_keras.Input((8, 8, 1))
    x = tf_keras.layers.Flatten()(inputs)
    x = tf_keras.layers.Dense(16)(x)
    x = tf_keras.layers.Lambda(lambda t: __import__("tensorflow").math.cos(t))(x)
    model = tf_keras.Model(inputs, tf_keras.layers.Dense(10)(x))
    path = tmp_path / "cos.keras"
    model.save(path)
    from edgeq.config import LoadConfig

    trust = LoadConfig(trust_model=True)
    with pytest.raises(ConversionFailed) as exc:
        api.quantize(str(path), str(tmp_path / "a.tflite"), QuantizeConfig(), DataConfig(path=str(digits_calib)), trust)
    assert "COS" in str(exc.value.one_line()).upper()
    assert not (tmp_path / "a.tflite").exists()
    r = api.quantize(
        str(path),
        str(tmp_path / "b.tflite"),
        QuantizeConfig(allow_float_ops=True, io=IOType.FLOAT),
        DataConfig(path=str(digits_calib)),
        trust,
    )
    assert "COS" in r.float_ops


def test_sampling_is_reproducible(tmp_path, tf_keras_model, digits_calib):
    a = api.quantize(
        str(tf_keras_model),
        str(tmp_path / "a.tflite"),
        QuantizeConfig(),
        DataConfig(path=str(digits_calib), samples=50, seed=7),
    )
    b = api.quantize(
        str(tf_keras_model),
        str(tmp_path / "b.tflite"),
        QuantizeConfig(),
        DataConfig(path=str(digits_calib), samples=50, seed=7),
    )
    ia = json.loads(open(a.sidecar).read())["calibration"]["indices"]
    ib = json.loads(open(b.sidecar).read())["calibration"]["indices"]
    assert ia == ib and len(ia) == 50 and ia == sorted(ia)
    assert (tmp_path / "a.tflite").read_bytes() == (tmp_path / "b.tflite").read_bytes()
    c = api.quantize(
        str(tf_keras_model),
        str(tmp_path / "c.tflite"),
        QuantizeConfig(),
        DataConfig(path=str(digits_calib), samples=50, seed=8),
    )
    assert json.loads(open(c.sidecar).read())["calibration"]["indices"] != ia


def test_force_overwrites_atomically(tmp_path, tf_keras_model, digits_calib):
    out = tmp_path / "m.tflite"
    out.write_bytes(b"old")
    api.quantize(str(tf_keras_model), str(out), QuantizeConfig(), DataConfig(path=str(digits_calib)), force=True)
    assert out.read_bytes()[4:8] == b"TFL3"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.tflite", "m.tflite.edgeq.json"]
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's 0600


def test_range_warning_for_unscaled_data(tmp_path, digits_calib):
    """The bundled model was trained on 0..1; calibrating on raw 0..255 pixels must warn loudly."""
    with np.load(DATA / "mnist_calib.npz") as d:
        np.savez(tmp_path / "raw.npz", x=d["x"][:40] * 255.0)
    r = api.quantize(
        str(ROOT / "models/mnist_cnn.keras"),
        str(tmp_path / "m.tflite"),
        QuantizeConfig(),
        DataConfig(path=str(tmp_path / "raw.npz")),
    )
    assert any("--scale 0.00392157" in w for w in r.warnings)
    ok = api.quantize(
        str(ROOT / "models/mnist_cnn.keras"),
        str(tmp_path / "n.tflite"),
        QuantizeConfig(),
        DataConfig(path=str(DATA / "mnist_calib.npz")),
    )
    assert ok.warnings == []


def test_float_conversion_only_when_the_size_ratio_is_asked_for(tmp_path, tf_keras_model, digits_calib, monkeypatch):
    from edgeq.quantize import ptq

    modes: list[str] = []
    real = ptq.convert
    monkeypatch.setattr(
        ptq, "convert", lambda model, cfg, calib: modes.append(cfg.mode.value) or real(model, cfg, calib)
    )
    data = DataConfig(path=str(digits_calib))
    r = api.quantize(str(tf_keras_model), str(tmp_path / "a.tflite"), QuantizeConfig(), data)
    assert modes == ["int8"]
    assert r.reference_size_bytes is None and r.to_dict()["size_ratio"] is None
    modes.clear()
    r = api.quantize(str(tf_keras_model), str(tmp_path / "b.tflite"), QuantizeConfig(), data, size_ratio=True)
    assert modes == ["int8", "float"]
    assert 0 < r.to_dict()["size_ratio"] < 1  # int8 weights: smaller than float (a tiny model: graph overhead)
    modes.clear()
    r = api.quantize(str(tf_keras_model), str(tmp_path / "c.tflite"), QuantizeConfig(), data, reference_size_bytes=1000)
    assert modes == ["int8"] and r.reference_size_bytes == 1000


def test_model_is_hashed_once_and_the_sidecar_has_its_hash(tmp_path, tf_keras_model, digits_calib, monkeypatch):
    from edgeq.artifacts import sha256_file

    model_sha = sha256_file(tf_keras_model)
    # every sha256 of the model's bytes, by whatever module and name: a from-import cannot hide one
    hashes = count_sha256_of(monkeypatch, model_sha)
    r = api.quantize(
        str(tf_keras_model), str(tmp_path / "m.tflite"), QuantizeConfig(), DataConfig(path=str(digits_calib))
    )
    assert len(hashes) == 1
    side = json.loads(open(r.sidecar).read())
    assert side["inputs"]["model"]["sha256"] == model_sha


def test_converter_saves_the_variables_not_the_keras_model(tf_keras_model):
    # The converter writes its trackable object as a SavedModel; with the Keras model attached,
    # Keras traces every layer into it and the conversion takes about three times as long.
    import tf_keras

    from edgeq.quantize import ptq

    converter = ptq.make_converter(api.load_model(str(tf_keras_model)), 1)
    held = converter._trackable_obj
    assert held.variables_, "the variables must stay tracked for the converter to freeze them"
    assert not any(isinstance(m, tf_keras.Model) for m in held._flatten(predicate=lambda o: True))


def test_cli_reports_the_size_ratio_only_with_the_flag(run_cli, tmp_path, tf_keras_model, digits_calib):
    args = ("quantize", tf_keras_model, "--data", digits_calib, "--force")
    r = run_cli(*args, "-o", tmp_path / "a.tflite")
    assert r.exit_code == 0, r.stderr
    assert "--size-ratio compares it with the float .tflite" in r.stdout + r.stderr
    r = run_cli("--json", *args, "-o", tmp_path / "b.tflite", "--size-ratio")
    assert r.exit_code == 0, r.stderr
    result = json.loads(r.stdout)["result"]
    assert result["size_ratio"] == round(result["size_bytes"] / result["reference_size_bytes"], 4)
