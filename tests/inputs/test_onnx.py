"""ONNX input (the `onnx` extra): a small ONNX model built here with onnx's helper API, converted by
onnx2tf to a SavedModel, then quantized and built like any other model."""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest

HAVE_EXTRA = all(importlib.util.find_spec(m) is not None for m in ("onnx", "onnx2tf"))
needs_extra = pytest.mark.skipif(not HAVE_EXTRA, reason="the onnx extra is not installed (pip install edgeq[onnx])")


def _tiny_onnx(
    path,
    channels: int = 3,
    filters: int = 8,
    classes: int = 4,
    side: int = 16,
    batch: int | str = 1,
    std: float = 0.3,
    name: str = "tiny",
) -> None:
    """Conv 3x3 (channels->filters) -> Relu -> GlobalAveragePool -> Flatten -> Gemm (filters->classes), NCHW
    input [batch, channels, side, side] (by default [1, 3, 16, 16]); ``batch`` a string makes it dynamic."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    weights = {
        "W": rng.normal(0, std, (filters, channels, 3, 3)),
        "B": rng.normal(0, 0.1, (filters,)),
        "G": rng.normal(0, std, (classes, filters)),
        "C": rng.normal(0, 0.1, (classes,)),
    }
    nodes = [
        helper.make_node("Conv", ["image", "W", "B"], ["conv"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["conv"], ["relu"]),
        helper.make_node("GlobalAveragePool", ["relu"], ["pool"]),
        helper.make_node("Flatten", ["pool"], ["flat"]),
        helper.make_node("Gemm", ["flat", "G", "C"], ["logits"], transB=1),
    ]
    graph = helper.make_graph(
        nodes,
        name,
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [batch, channels, side, side])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [batch, classes])],
        [numpy_helper.from_array(v.astype(np.float32), k) for k, v in weights.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


@pytest.fixture
def onnx_cache(tmp_path_factory, monkeypatch):
    cache = tmp_path_factory.getbasetemp() / "edgeq-onnx-cache"
    monkeypatch.setenv("EDGEQ_CACHE_DIR", str(cache))
    return cache


@needs_extra
@pytest.mark.slow
def test_onnx_to_full_int8_matches_onnxruntime(run_cli, tmp_path, onnx_cache):
    _tiny_onnx(tmp_path / "tiny.onnx")
    x = np.random.default_rng(1).uniform(0, 1, (64, 16, 16, 3)).astype(np.float32)  # NHWC: onnx2tf's layout
    np.savez(tmp_path / "calib.npz", x=x)
    r = run_cli(
        "--json", "quantize", tmp_path / "tiny.onnx", "--data", tmp_path / "calib.npz", "-o", tmp_path / "tiny.tflite"
    )
    assert r.exit_code == 0, r.stderr
    res = r.json["result"]
    assert res["float_ops"] == [] and {t["dtype"] for t in res["inputs"] + res["outputs"]} == {"int8"}
    assert res["inputs"][0]["shape"] == [1, 16, 16, 3]
    assert len(list((onnx_cache / "onnx").iterdir())) == 1  # converted once, kept

    # the int8 model against the ONNX model itself (onnxruntime, NCHW), not against the conversion
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime (in the onnx extra) runs the ONNX reference")
    from ai_edge_litert.interpreter import Interpreter

    session = ort.InferenceSession(str(tmp_path / "tiny.onnx"), providers=["CPUExecutionProvider"])
    interp = Interpreter(model_path=str(tmp_path / "tiny.tflite"))
    interp.allocate_tensors()
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    ref, test = [], []
    for sample in x[:32]:
        ref.append(session.run(None, {"image": sample.transpose(2, 0, 1)[None]})[0])
        s, z = inp["quantization"]
        interp.set_tensor(inp["index"], np.clip(np.round(sample[None] / s + z), -128, 127).astype(np.int8))
        interp.invoke()
        s, z = out["quantization"]
        test.append((interp.get_tensor(out["index"]).astype(np.float64) - z) * s)
    ref, test = np.concatenate(ref), np.concatenate(test)
    sqnr = 10 * np.log10(np.sum(ref**2) / np.sum((ref - test) ** 2))
    assert sqnr > 25, sqnr
    assert np.mean(ref.argmax(1) == test.argmax(1)) > 0.9

    # the sidecar has the .onnx file's hash, and the SavedModel it was converted to (named by that hash)
    import json

    from edgeq.artifacts import sha256_file

    model = json.loads(open(res["sidecar"]).read())["inputs"]["model"]
    sha = sha256_file(tmp_path / "tiny.onnx")
    assert model["sha256"] == sha and f"{sha[:32]}-onnx2tf-" in model["path"]


@needs_extra
@pytest.mark.slow
def test_build_on_onnx(run_cli, tmp_path, onnx_cache):
    _tiny_onnx(tmp_path / "tiny.onnx")
    np.savez(tmp_path / "calib.npz", x=np.random.default_rng(1).uniform(0, 1, (32, 16, 16, 3)).astype(np.float32))
    r = run_cli(
        "--json", "build", tmp_path / "tiny.onnx", "--data", tmp_path / "calib.npz",
        "--target", "coral,cpu", "-o", tmp_path / "out",
    )  # fmt: skip
    assert r.exit_code == 0, r.stderr
    assert (tmp_path / "out" / "coral" / "tiny_int8.tflite").exists()


@needs_extra
def test_not_an_onnx_model(run_cli, tmp_path, onnx_cache):
    (tmp_path / "bad.onnx").write_bytes(b"\x08\x07garbage that is not a ModelProto")
    np.savez(tmp_path / "calib.npz", x=np.zeros((4, 16, 16, 3), np.float32))
    r = run_cli("quantize", tmp_path / "bad.onnx", "--data", tmp_path / "calib.npz", "-o", tmp_path / "x.tflite")
    assert r.exit_code == 3 and "is not a valid ONNX model" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "x.tflite").exists()


def test_without_the_extra_onnx_is_unavailable(run_cli, tmp_path, monkeypatch, onnx_cache):
    """Runs with or without the extra: its absence is simulated by making the imports fail."""
    monkeypatch.setitem(sys.modules, "onnx2tf", None)
    (tmp_path / "m.onnx").write_bytes(b"\x08\x08 any ONNX bytes")
    np.savez(tmp_path / "calib.npz", x=np.zeros((4, 16, 16, 3), np.float32))
    r = run_cli("quantize", tmp_path / "m.onnx", "--data", tmp_path / "calib.npz", "-o", tmp_path / "x.tflite")
    assert r.exit_code == 5, r.stderr
    assert "ONNX input needs `pip install edgeq[onnx]`" in r.stderr
    assert not (tmp_path / "x.tflite").exists()
