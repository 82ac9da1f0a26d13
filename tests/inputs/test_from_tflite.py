"""A float .tflite (what people download) to a full-int8 model: quantize, verify, check for coral.

The model is MediaPipe's float face detector (tests/data/third_party/SOURCE.md): fp16 weights behind
DEQUANTIZE ops and operator codes from before TFLite schema v3a, two outputs (box regressions and
scores). Calibration and evaluation images are crops of the two photos scikit-learn ships (real
natural images, not faces: the figures below are for those).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.conftest import THIRD_PARTY

FACE_DETECTION = THIRD_PARTY / "face_detection_short_range.tflite"
HAND_RECROP = THIRD_PARTY / "hand_recrop.tflite"


def _crops(n: int, seed: int, size: int = 128) -> np.ndarray:
    """``n`` random square crops of scikit-learn's sample photos, resized, scaled to [-1, 1]."""
    pytest.importorskip("sklearn.datasets", reason="scikit-learn (extra `data`) ships the sample photos")
    from tests.photos import sample_crops

    return sample_crops(n, seed, size)


def _outputs_by_name(path, x: np.ndarray) -> dict[str, np.ndarray]:
    """Float values of every output, keyed by tensor name (never by position: the int8 model may reorder)."""
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(path))
    interp.allocate_tensors()
    inp = interp.get_input_details()[0]
    got: dict[str, list[np.ndarray]] = {d["name"]: [] for d in interp.get_output_details()}
    for sample in x:
        v = sample[None]
        if inp["dtype"] != np.float32:
            scale, zero = inp["quantization"]
            v = np.clip(np.round(v / scale + zero), -128, 127).astype(inp["dtype"])
        interp.set_tensor(inp["index"], v)
        interp.invoke()
        for d in interp.get_output_details():
            y = interp.get_tensor(d["index"]).astype(np.float64)
            if d["dtype"] != np.float32:
                scale, zero = d["quantization"]
                y = (y - zero) * scale
            got[d["name"]].append(y)
    return {k: np.concatenate(v) for k, v in got.items()}


def _sqnr_db(ref: np.ndarray, test: np.ndarray) -> float:
    return float(10 * np.log10(np.sum(ref**2) / np.sum((ref - test) ** 2)))


@pytest.fixture(scope="module")
def face_int8(tmp_path_factory):
    """The face detector quantized through the CLI's library path, with its calibration file."""
    from edgeq.config import DataConfig, Mode, QuantizeConfig
    from edgeq.stages.quantize import quantize

    d = tmp_path_factory.mktemp("face")
    np.savez(d / "calib.npz", x=_crops(32, seed=0))
    out = d / "face_int8.tflite"
    result = quantize(
        str(FACE_DETECTION), str(out), QuantizeConfig(mode=Mode.INT8), DataConfig(path=str(d / "calib.npz"))
    )
    return result, out, d


def test_float_face_detector_to_full_int8(face_int8):
    result, out, _ = face_int8
    assert result.float_ops == []
    assert {t["name"]: t["dtype"] for t in result.inputs + result.outputs} == {
        "input": "int8",
        "regressors": "int8",
        "classificators": "int8",
    }
    assert "DEQUANTIZE" not in result.ops and result.ops["CONV_2D"] == 21
    # int8 weights where there were fp16 ones: smaller than the float file despite int32 biases
    assert result.size_bytes < 0.9 * FACE_DETECTION.stat().st_size
    side = json.loads(open(result.sidecar).read())
    route = side["route"]
    assert route["tool"] == "litert-quantizer" and route["recipe"] == "static_wi8_ai8"
    assert "min_max_update" in route["calibration"] and "moving_average_update" in route["calibration"]
    # which calibration was kept, with both candidates' worst-output SQNR on the calibration crops
    chosen = side["converter_log"].splitlines()[-1]
    assert chosen.startswith("edgeq: calibration global min/max (worst-output SQNR on 32 calibration samples: ")
    assert "moving average" in chosen
    assert route["folded_fp16_constants"] == 74 and route["added_signature"] == "serving_default"
    assert side["model_format"] == "tflite" and side["calibration"]["num_samples"] == 32


def test_face_detector_fidelity_per_output(face_int8):
    """Per output, by name, on crops the calibration never saw. Measured: regressors 17.1 dB,
    classificators 11.1 dB (200 crops); the quantizer's default moving-average calibration gave
    19.7 and 9.2 dB."""
    _, out, _ = face_int8
    x = _crops(48, seed=1)
    ref, test = _outputs_by_name(FACE_DETECTION, x), _outputs_by_name(out, x)
    assert set(ref) == set(test) == {"regressors", "classificators"}
    sqnr = {name: _sqnr_db(ref[name], test[name]) for name in ref}
    assert sqnr["regressors"] > 14, sqnr
    assert sqnr["classificators"] > 8, sqnr
    # scores: the same anchors are above a 0.5 detection threshold in most cases
    ref_hit, test_hit = ref["classificators"] > 0, test["classificators"] > 0
    assert np.mean(ref_hit == test_hit) > 0.97


def test_weights_are_per_channel_symmetric(face_int8):
    """The quantizer read only builtin_code: CONV_2D in an old model looked like ADD and its weights got
    an activation's per-tensor asymmetric parameters, which LiteRT refuses (zero_point != 0)."""
    from edgeq.quantize import tflite_edit

    _, out, _ = face_int8
    model = tflite_edit.unpack(out.read_bytes())
    sg = model.subgraphs[0]
    convs = [op for op in sg.operators if tflite_edit.op_name(model, op) in ("CONV_2D", "DEPTHWISE_CONV_2D")]
    assert len(convs) == 37
    for op in convs:
        q = sg.tensors[op.inputs[1]].quantization
        assert len(q.scale) > 1 and not np.any(q.zeroPoint), tflite_edit.tensor_name(sg.tensors[op.inputs[1]])


def test_check_coral_on_float_tflite_names_the_command_then_passes(run_cli, face_int8):
    r = run_cli("check", "--target", "coral", FACE_DETECTION)
    assert r.exit_code == 3
    assert f"edgeq quantize {FACE_DETECTION} --mode int8 --data" in r.stderr
    _, out, _ = face_int8
    r = run_cli("--json", "check", "--target", "coral", out)
    assert r.exit_code == 0, r.stderr
    res = r.json["result"]
    placement = res["findings"]["placement"]  # every op predicted on the Edge TPU
    assert res["ok"] and (placement["on"], placement["off"], placement["basis"]) == (94, 0, "predicted")


def test_prepare_keeps_the_float_model_exact():
    """Folding fp16 constants and filling operator codes change no output."""
    import tempfile
    from pathlib import Path

    from edgeq.quantize import from_tflite, tflite_edit

    ready = from_tflite.prepare(FACE_DETECTION.read_bytes(), "face")
    model = tflite_edit.unpack(ready.data)
    assert not [op for op in model.subgraphs[0].operators if tflite_edit.op_name(model, op) == "DEQUANTIZE"]
    assert all(c.builtinCode for c in model.operatorCodes if c.deprecatedBuiltinCode)
    x = _crops(4, seed=2)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ready.tflite"
        path.write_bytes(ready.data)
        before, after = _outputs_by_name(FACE_DETECTION, x), _outputs_by_name(path, x)
    for name in before:
        np.testing.assert_allclose(after[name], before[name], rtol=1e-5, atol=1e-4)


def test_calibration_keeps_the_global_range(tmp_path):
    """One wide sample among narrow ones: the input's int8 range must cover it (a moving average of
    per-sample ranges would not)."""
    from edgeq.config import DataConfig, Mode, QuantizeConfig
    from edgeq.stages.quantize import quantize

    rng = np.random.default_rng(0)
    x = rng.uniform(-0.1, 0.1, size=(6, 256, 256, 3)).astype(np.float32)
    x[0] = rng.uniform(-4.0, 4.0, size=(256, 256, 3))
    np.savez(tmp_path / "calib.npz", x=x)
    # ai-edge-quantizer has no int8 PRELU: those stay float, allowed here (the next test refuses them)
    cfg = QuantizeConfig(mode=Mode.INT8, allow_float_ops=True)
    r = quantize(str(HAND_RECROP), str(tmp_path / "hand.tflite"), cfg, DataConfig(path=str(tmp_path / "calib.npz")))
    assert set(r.float_ops) == {"PRELU"}
    scale = r.inputs[0]["scale"]
    assert scale * 255 >= 0.99 * (float(x.max()) - float(x.min()))


def test_ops_the_quantizer_leaves_in_float_fail_verification(run_cli, tmp_path):
    np.savez(tmp_path / "calib.npz", x=np.random.default_rng(0).uniform(-1, 1, (2, 256, 256, 3)).astype(np.float32))
    r = run_cli("quantize", HAND_RECROP, "--data", tmp_path / "calib.npz", "-o", tmp_path / "hand.tflite")
    assert r.exit_code == 4, r.stderr
    assert "13 ops still compute in float: PRELU" in r.stderr and "--allow-float-ops" in r.stderr
    assert not (tmp_path / "hand.tflite").exists()


@pytest.mark.parametrize(
    "args, code, message",
    [
        (("--mode", "dynamic"), 2, "can be quantized to int8, int16x8 or fp16 only"),
        (("--io", "uint8"), 2, "has int8 or float I/O, not uint8"),
        (("--denylist", "conv2d"), 2, "need a Keras model or SavedModel"),
        (("--cle",), 2, "needs the Keras model a .tflite is made from; this model is a .tflite"),
        (("--ranges", "mse"), 2, "needs the Keras model, SavedModel or ONNX file a .tflite is made from"),
        (("--batch", "4"), 2, "batch fixed at 1"),
    ],
)
def test_what_this_route_cannot_make_is_refused(run_cli, tmp_path, face_int8, args, code, message):
    _, _, d = face_int8
    r = run_cli("quantize", FACE_DETECTION, "--data", d / "calib.npz", "-o", tmp_path / "x.tflite", *args)
    assert r.exit_code == code, r.stderr
    assert message in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "x.tflite").exists()


def test_bad_tflite_inputs(run_cli, tmp_path, face_int8):
    _, out, d = face_int8
    r = run_cli("quantize", out, "--data", d / "calib.npz", "-o", tmp_path / "again.tflite")
    assert r.exit_code == 3 and "already quantized" in r.stderr
    np.savez(tmp_path / "small.npz", x=np.zeros((4, 32, 32, 3), np.float32))
    r = run_cli("quantize", FACE_DETECTION, "--data", tmp_path / "small.npz", "-o", tmp_path / "x.tflite")
    assert r.exit_code == 3, r.stderr
    r = run_cli("quantize", FACE_DETECTION, "-o", tmp_path / "x.tflite")
    assert r.exit_code == 2 and "--data" in r.stderr
    assert not (tmp_path / "x.tflite").exists() and not (tmp_path / "again.tflite").exists()


def test_fp16_flavour_of_a_float32_tflite(tmp_path):
    """Android's GPU flavour: float16 constants behind DEQUANTIZE, float I/O, outputs within fp16 error."""
    from edgeq.config import Mode, QuantizeConfig
    from edgeq.stages.quantize import quantize

    r = quantize(str(HAND_RECROP), str(tmp_path / "hand_fp16.tflite"), QuantizeConfig(mode=Mode.FP16))
    assert r.ops["DEQUANTIZE"] > 30 and r.size_bytes < 0.7 * HAND_RECROP.stat().st_size
    assert {t["dtype"] for t in r.inputs + r.outputs} == {"float32"}
    x = np.random.default_rng(0).uniform(-1, 1, (2, 256, 256, 3)).astype(np.float32)
    ref, test = _outputs_by_name(HAND_RECROP, x), _outputs_by_name(tmp_path / "hand_fp16.tflite", x)
    assert _sqnr_db(ref["output_crop"], test["output_crop"]) > 40


@pytest.mark.slow
def test_build_on_a_float_tflite(run_cli, tmp_path, face_int8):
    """build: the float .tflite is its own float reference; one int8 model for coral and cpu; no debugger
    chart (it needs the Keras model), said as a note. (The face detector's worst output is about 13 dB:
    under the unlabeled detection default of 25 dB, which the next test shows failing the gate.)"""
    _, _, d = face_int8
    np.savez(tmp_path / "eval.npz", x=_crops(32, seed=3))
    out = tmp_path / "out"
    r = run_cli(
        "--json", "build", FACE_DETECTION, "--data", d / "calib.npz", "--eval-data", tmp_path / "eval.npz",
        "--target", "coral,cpu", "-o", out, "--min-sqnr", "10",
    )  # fmt: skip
    assert r.exit_code == 0, r.json["error"]["message"]
    doc = r.json["result"]
    assert any("no per-layer debugger chart" in w for w in doc["warnings"])
    int8 = out / "coral" / "face_detection_short_range_int8.tflite"
    assert int8.exists() and (out / "coral" / "face_detection_short_range_float.tflite").read_bytes() == (
        FACE_DETECTION.read_bytes()
    )
    from edgeq import tflite

    info = tflite.read_file(int8)
    assert not info.float_ops and {t.dtype for t in info.inputs + info.outputs} == {"int8"}


def test_a_model_with_its_own_signature(tmp_path, face_int8):
    """A signature may name its input apart from the tensor (``image`` for ``serving_default_image:0``):
    calibration feeds the signature's name, under the signature's key."""
    from edgeq.config import DataConfig, Mode, QuantizeConfig
    from edgeq.stages.quantize import quantize
    from edgeq.tflite import edit

    model = edit.unpack(FACE_DETECTION.read_bytes())
    sg = model.subgraphs[0]
    sig = edit.new_signature(
        "detect", 0, [(b"pixels", sg.inputs[0])], [(b"boxes", sg.outputs[0]), (b"scores", sg.outputs[1])]
    )
    model.signatureDefs = [sig]
    (tmp_path / "signed.tflite").write_bytes(edit.pack(model))
    _, _, d = face_int8
    r = quantize(
        str(tmp_path / "signed.tflite"), str(tmp_path / "q.tflite"), QuantizeConfig(mode=Mode.INT8),
        DataConfig(path=str(d / "calib.npz")),
    )  # fmt: skip
    assert r.float_ops == [] and r.inputs[0]["dtype"] == "int8"
    from ai_edge_litert.interpreter import Interpreter

    assert list(Interpreter(model_path=r.output).get_signature_list()) == ["detect"]


def test_float_io_around_the_int8_body(tmp_path, face_int8):
    """--io float: the quantizer's int8 body with a QUANTIZE in front and a DEQUANTIZE after each output
    (what an audio app feeding float frames wants). Read back: float32 I/O under the same names, every
    other op int8; outputs as close to the float model as the int8-I/O model's. Measured on 48 crops:
    regressors 17.0 dB (int8 I/O 17.1), classificators 12.5 dB (int8 I/O 12.0)."""
    from edgeq.config import DataConfig, IOType, Mode, QuantizeConfig
    from edgeq.stages.quantize import quantize

    int8_result, int8_out, d = face_int8
    out = tmp_path / "face_float_io.tflite"
    cfg = QuantizeConfig(mode=Mode.INT8, io=IOType.FLOAT)
    r = quantize(str(FACE_DETECTION), str(out), cfg, DataConfig(path=str(d / "calib.npz")))
    assert r.float_ops == []
    assert {t["name"]: t["dtype"] for t in r.inputs + r.outputs} == {
        "input": "float32",
        "regressors": "float32",
        "classificators": "float32",
    }
    # the int8 body unchanged (its own requantizing QUANTIZE ops too), one QUANTIZE in, one DEQUANTIZE per output
    added = {**int8_result.ops, "QUANTIZE": int8_result.ops.get("QUANTIZE", 0) + 1, "DEQUANTIZE": 2}
    assert r.ops == added
    side = json.loads(open(r.sidecar).read())
    assert side["route"]["io"].startswith("float32")
    x = _crops(48, seed=1)
    ref, q8, qf = _outputs_by_name(FACE_DETECTION, x), _outputs_by_name(int8_out, x), _outputs_by_name(out, x)
    for name in ref:
        assert abs(_sqnr_db(ref[name], qf[name]) - _sqnr_db(ref[name], q8[name])) < 1.5, name
    from ai_edge_litert.interpreter import Interpreter

    assert list(Interpreter(model_path=str(out)).get_signature_list()) == ["serving_default"]


def test_int16_io_conversion_runs_and_keeps_the_range(tmp_path, face_int8):
    """The edit under --io float also makes int16 I/O (a requantizing QUANTIZE each side), which LiteRT's
    CPU kernels run: symmetric int16 over the int8 range, outputs as close to the float model as the int8
    model's. Measured on 8 crops: regressors 17.1 dB (int8 I/O 17.1), classificators 11.5 dB (12.0)."""
    from ai_edge_litert.interpreter import Interpreter

    from edgeq.tflite import edit

    _, int8_out, _ = face_int8
    path = tmp_path / "face_int16_io.tflite"
    path.write_bytes(edit.io_conversion(int8_out.read_bytes(), "int16"))
    interp = Interpreter(model_path=str(path))
    interp.allocate_tensors()
    inp = interp.get_input_details()[0]
    assert inp["dtype"] == np.int16 and inp["quantization"][1] == 0
    x = _crops(8, seed=1)
    got: dict[str, list[np.ndarray]] = {o["name"]: [] for o in interp.get_output_details()}
    for sample in x:
        v = np.clip(np.round(sample[None] / inp["quantization"][0]), -32768, 32767).astype(np.int16)
        interp.set_tensor(inp["index"], v)
        interp.invoke()
        for o in interp.get_output_details():
            assert o["dtype"] == np.int16 and o["quantization"][1] == 0
            got[o["name"]].append(interp.get_tensor(o["index"]).astype(np.float64) * o["quantization"][0])
    ref, q8 = _outputs_by_name(FACE_DETECTION, x), _outputs_by_name(int8_out, x)
    for name in ref:
        assert _sqnr_db(ref[name], np.concatenate(got[name])) > _sqnr_db(ref[name], q8[name]) - 1.5, name


@pytest.mark.parametrize("io", ["float", "int16"])
def test_int16x8_of_a_float_tflite(tmp_path, face_int8, io):
    """--mode int16x8: ai-edge-quantizer's static_wi8_ai16 recipe (int8 weights, int16 activations, int16
    I/O); --io float (the int16x8 default) wraps it like int8. Read back: no float op, the I/O asked for;
    closer to the float model than int8. Measured on 8 crops: regressors 24.7 dB (int8 17.1), classificators
    15.2 dB (int8 12.0)."""
    from edgeq.config import DataConfig, IOType, Mode, QuantizeConfig
    from edgeq.stages.quantize import quantize

    _, int8_out, d = face_int8
    out = tmp_path / f"face_16x8_{io}.tflite"
    cfg = QuantizeConfig(mode=Mode.INT16X8, io=IOType(io))
    r = quantize(str(FACE_DETECTION), str(out), cfg, DataConfig(path=str(d / "calib.npz")))
    assert r.float_ops == []
    assert {t["dtype"] for t in r.inputs + r.outputs} == {"float32" if io == "float" else "int16"}
    side = json.loads(open(r.sidecar).read())
    assert side["route"]["recipe"] == "static_wi8_ai16"
    if io == "float":
        x = _crops(8, seed=1)
        ref, q8, q16 = _outputs_by_name(FACE_DETECTION, x), _outputs_by_name(int8_out, x), _outputs_by_name(out, x)
        for name in ref:
            assert _sqnr_db(ref[name], q16[name]) > _sqnr_db(ref[name], q8[name]) + 1, name


@pytest.mark.slow
def test_build_on_a_float_tflite_that_misses_the_default_budget(run_cli, tmp_path, face_int8):
    """The default budget (unlabeled detection output: worst-output SQNR >= 25 dB) is missed, and the planner
    cannot run on a .tflite (its candidates need the model it came from): everything is written, the gate
    fails (exit 6) saying why, and no target fails."""
    _, _, d = face_int8
    np.savez(tmp_path / "eval.npz", x=_crops(32, seed=3))
    out = tmp_path / "out"
    r = run_cli(
        "--json", "build", FACE_DETECTION, "--data", d / "calib.npz", "--eval-data", tmp_path / "eval.npz",
        "--target", "cpu", "-o", out,
    )  # fmt: skip
    assert r.exit_code == 6, r.json["error"]
    assert "a .tflite input gets plain int8 only" in r.json["error"]["message"] + str(r.json["error"]["details"])
    assert (out / "cpu" / "face_detection_short_range_int8.tflite").exists() and (out / "report.html").exists()
