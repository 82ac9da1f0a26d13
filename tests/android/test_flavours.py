"""compile --target android: the float32, fp16 and int8 flavours, converted by the real TFLite converter
and read back; and the .tflite the build pipeline passes."""

from __future__ import annotations

import json

import pytest

from edgeq import tflite
from edgeq.errors import OutputExists, UsageError
from edgeq.targets import registry
from edgeq.targets.android import flavours


@pytest.fixture(scope="module")
def built(tmp_path_factory, tf_keras_model, digits_calib):
    out = tmp_path_factory.mktemp("android")
    result = registry.get("android").compile([str(tf_keras_model)], str(out), {"data_path": str(digits_calib)})
    return out, result


@pytest.mark.slow
def test_three_flavours_written_and_reported(built, tf_keras_model):
    out, result = built
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        "tiny_tfkeras.android.json",
        "tiny_tfkeras_float32.tflite",
        "tiny_tfkeras_float32.tflite.edgeq.json",
        "tiny_tfkeras_fp16.tflite",
        "tiny_tfkeras_fp16.tflite.edgeq.json",
        "tiny_tfkeras_int8.tflite",
        "tiny_tfkeras_int8.tflite.edgeq.json",
    ]
    assert result.output == str(out / "tiny_tfkeras_int8.tflite") and not result.skipped
    report = json.loads((out / "tiny_tfkeras.android.json").read_text())
    assert report["kind"] == "converted" and report["model"]["path"] == str(tf_keras_model)
    assert [f["flavour"] for f in report["flavours"]] == ["float32", "fp16", "int8"]
    assert all(f["verified"] for f in report["flavours"])
    assert report["flavours"][2]["delegates"][0] == "nnapi" and report["flavours"][1]["delegates"][0] == "gpu"


@pytest.mark.slow
def test_int8_flavour_is_full_integer_with_quant_params_in_sidecar(built):
    out, _ = built
    path = out / "tiny_tfkeras_int8.tflite"
    info = tflite.read_file(path)
    assert info.float_ops == []
    assert [t.dtype for t in info.inputs + info.outputs] == ["int8", "int8"]
    assert flavours.classify(info) == "int8"
    side = json.loads((out / "tiny_tfkeras_int8.tflite.edgeq.json").read_text())
    android = side["android"]
    assert android["flavour"] == "int8" and android["verification"] == {"ok": True, "problems": [], "float_ops": []}
    (inp,) = android["inputs"]
    assert inp["name"] == info.inputs[0].name and inp["shape"] == [1, 8, 8, 1] and inp["dtype"] == "int8"
    assert (
        inp["scale"] == pytest.approx(info.inputs[0].scales[0]) and inp["zero_point"] == info.inputs[0].zero_points[0]
    )
    (outp,) = android["outputs"]
    assert outp["shape"] == [1, 10] and outp["scale"] == pytest.approx(1 / 256) and outp["zero_point"] == -128
    # the sidecar api.quantize wrote is kept, with the android section added
    assert side["command"] == "quantize" and side["output"]["path"] == str(path)


@pytest.mark.slow
def test_fp16_flavour_has_float16_weights_and_float_io(built):
    out, _ = built
    info = tflite.read_file(out / "tiny_tfkeras_fp16.tflite")
    assert info.weight_dtypes.get("float16", 0) > 0
    assert [t.dtype for t in info.inputs + info.outputs] == ["float32", "float32"]
    assert "DEQUANTIZE" in info.op_histogram()  # float16 weights widened to float32 at run time
    assert flavours.classify(info) == "fp16" and flavours.verify(info, "fp16") == []
    side = json.loads((out / "tiny_tfkeras_fp16.tflite.edgeq.json").read_text())
    assert side["android"]["inputs"][0]["scale"] is None and side["android"]["delegates"] == ["gpu", "xnnpack"]


@pytest.mark.slow
def test_float32_flavour(built):
    out, _ = built
    info = tflite.read_file(out / "tiny_tfkeras_float32.tflite")
    assert "float16" not in info.weight_dtypes and flavours.classify(info) == "float32"
    assert flavours.verify(info, "float32") == []


@pytest.mark.slow
def test_verify_catches_the_wrong_flavour(built):
    out, _ = built
    f32 = tflite.read_file(out / "tiny_tfkeras_float32.tflite")
    int8 = tflite.read_file(out / "tiny_tfkeras_int8.tflite")
    fp16 = tflite.read_file(out / "tiny_tfkeras_fp16.tflite")
    assert any("not fully integer" in p for p in flavours.verify(f32, "int8"))
    assert any("I/O is not int8" in p for p in flavours.verify(f32, "int8"))
    allowed = flavours.verify(f32, "int8", allow_float_ops=True)  # --allow-float-ops: float ops are the point
    assert not any("not fully integer" in p for p in allowed) and any("I/O is not int8" in p for p in allowed)
    assert any("no float16 weights" in p for p in flavours.verify(f32, "fp16"))
    assert any("float16 weights in a float32 model" in p for p in flavours.verify(fp16, "float32"))
    assert any("I/O is not float32" in p for p in flavours.verify(int8, "fp16"))


@pytest.mark.slow
def test_refuses_to_overwrite_before_converting(built, tf_keras_model, digits_calib):
    out, _ = built
    before = (out / "tiny_tfkeras_float32.tflite").stat().st_mtime_ns
    with pytest.raises(OutputExists):
        registry.get("android").compile([str(tf_keras_model)], str(out), {"data_path": str(digits_calib)})
    assert (out / "tiny_tfkeras_float32.tflite").stat().st_mtime_ns == before


def test_int8_needs_data(tf_keras_model, tmp_path):
    with pytest.raises(UsageError) as err:
        registry.get("android").compile([str(tf_keras_model)], str(tmp_path))
    assert "calibration data" in err.value.message and "--flavours float32,fp16" in err.value.hint
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_one_flavour_without_data(tf_keras_model, tmp_path):
    result = registry.get("android").compile([str(tf_keras_model)], str(tmp_path), {"flavours": "fp16"})
    assert result.output == str(tmp_path / "tiny_tfkeras_fp16.tflite")
    assert [f["flavour"] for f in result.details["flavours"]] == ["fp16"]


def test_build_pipeline_passes_a_tflite(tiny_int8, tmp_path):
    result = registry.get("android").compile([str(tiny_int8)], str(tmp_path))
    assert result.output == str(tiny_int8) and not result.skipped and result.details["kind"] == "verified"
    (entry,) = result.details["flavours"]
    assert entry["flavour"] == "int8" and entry["verified"] and entry["inputs"][0]["dtype"] == "int8"
    assert json.loads((tmp_path / "tiny_int8.android.json").read_text())["flavours"][0]["flavour"] == "int8"
    # run again (edgeq build re-runs): the derived report is replaced
    assert registry.get("android").compile([str(tiny_int8)], str(tmp_path)).details["kind"] == "verified"
    with pytest.raises(UsageError, match="already a .tflite"):
        registry.get("android").compile([str(tiny_int8)], str(tmp_path), {"flavours": "fp16"})


def test_flavour_names():
    assert flavours.parse_flavours("int8,float,fp16") == ("float32", "fp16", "int8")
    with pytest.raises(UsageError, match="unknown flavour 'bf16'"):
        flavours.parse_flavours("bf16")
