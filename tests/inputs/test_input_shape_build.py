"""`edgeq build --input-shape` on models with a dynamic batch (issue #21, must-show: "a dynamic-batch float
.tflite and an ONNX model with a dynamic batch quantized and built with --input-shape").

test_input_shape.py quantizes both; here both are BUILT: a float .tflite converted from a tf.function whose
input_signature is [None, 8, 8, 1] (no quantization) for coral and cpu, and an ONNX model whose batch is the
symbolic "N" for cpu (refused without the option, with advice naming it). Every model the build writes,
float and int8, is read back: static [1, 8, 8, 1] all the way through, and the coral pre-flight judges it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import DATA
from tests.inputs.test_input_shape import _dynamic_onnx, _dynamic_tflite

RUN = ("--data", DATA / "digits_calib.npz", "--eval-data", DATA / "digits_eval.npz", "--runs", "5", "--warmup", "1")


def _static(path: Path, dtype: str | None = None) -> None:
    """The model at ``path`` takes [1, 8, 8, 1] and has no dynamic tensor; its I/O is ``dtype`` if given."""
    from edgeq import tflite

    info = tflite.read_file(str(path))
    assert [list(i.shape_signature) for i in info.inputs] == [[1, 8, 8, 1]], path
    assert not any(t.is_dynamic for t in info.tensors), path
    if dtype is not None:
        assert {t.dtype for t in (*info.inputs, *info.outputs)} == {dtype}, path


def _target(out: Path, name: str) -> dict:
    return json.loads((out / name / "build.json").read_text())


def test_dynamic_batch_tflite_built_for_coral_and_cpu_with_input_shape(run_cli, tmp_path):
    model = tmp_path / "dyn.tflite"
    _dynamic_tflite(model)
    from edgeq import tflite

    assert list(tflite.read_file(str(model)).inputs[0].shape_signature) == [-1, 8, 8, 1]  # dynamic, as given
    out = tmp_path / "out"
    r = run_cli("build", model, "--target", "coral,cpu", "--input-shape", "1x8x8x1", *RUN, "-o", out)
    assert r.exit_code == 0, r.stderr
    assert json.loads((out / "build.json").read_text())["config"]["input_shape"] == ["1x8x8x1"]
    for name in ("coral", "cpu"):
        t = _target(out, name)
        assert t["status"] == "ok" and [v["variant"] for v in t["variants"]] == ["float", "int8"]
        _static(out / name / "dyn_float.tflite", "float32")
        _static(out / name / "dyn_int8.tflite", "int8")
        int8 = t["variants"][-1]
        # the pinned int8 model computes what the float one does (measured: 39.5 dB, same top-1 on 1,597 digits)
        assert int8["sqnr_db"] > 30 and int8["agreement"] > 0.99, int8
    placement = _target(out, "coral")["findings"]["placement"]
    assert placement["off"] == 0 and placement["on"] > 0, placement  # the Edge TPU pre-flight took the pinned model
    assert (out / "coral" / "dyn_int8.coral-check.json").is_file()
    assert "  coral: top-1 drop " in r.stdout and "ops on the Edge TPU" in r.stdout, r.stdout


@pytest.fixture
def onnx_cache(tmp_path, monkeypatch) -> Path:
    """A conversion cache of this test's own (the other ONNX tests count their entries)."""
    cache = tmp_path / "onnx-cache"
    monkeypatch.setenv("EDGEQ_CACHE_DIR", str(cache))
    return cache


@pytest.mark.slow
def test_dynamic_batch_onnx_built_with_input_shape(run_cli, tmp_path, onnx_cache):
    """Measured: 14 s here for both conversions (onnx2tf in this process); 48 s as a fresh `edgeq build`."""
    from edgeq.errors import Unavailable
    from edgeq.onnx_import import require_onnx2tf

    try:
        require_onnx2tf()
    except Unavailable as exc:
        pytest.skip(exc.one_line())
    model = tmp_path / "dyn.onnx"
    _dynamic_onnx(model)  # input "image" [N, 1, 8, 8]
    refused = run_cli("build", model, "--target", "cpu", *RUN, "-o", tmp_path / "unpinned")
    assert refused.exit_code == 4 and "pin them with --input-shape 1x1x8x8" in refused.stderr, refused.stderr
    assert "Traceback" not in refused.stderr
    out = tmp_path / "out"
    r = run_cli("build", model, "--target", "cpu", "--input-shape", "image:1x1x8x8", *RUN, "-o", out)
    assert r.exit_code == 0, r.stderr
    t = _target(out, "cpu")
    assert t["status"] == "ok"
    _static(out / "cpu" / "dyn_float.tflite", "float32")  # ONNX's NCHW pinned, converted to NHWC
    _static(out / "cpu" / "dyn_int8.tflite", "int8")
    assert t["variants"][-1]["sqnr_db"] > 30, t["variants"][-1]  # measured: 44.6 dB
    assert any("-shape" in p.name for p in (onnx_cache / "onnx").iterdir()), "the pinned conversion has its own entry"
