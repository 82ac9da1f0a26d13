"""A YOLOv8-style detector, ONNX, one [1, 4+C, N] head (issue #21, must-show 1), trained here on real photos:
tests/data/detector/yolo_digits.onnx (made by scripts/make_yolo_detector.py; SOURCE.md beside it) finds MNIST
digits pasted on crops of scikit-image's sample photographs. Its output ``output0`` [batch, 14, 720] holds
4 rows of boxes in pixels (about -10..200) and 10 rows of class scores (0..1), as a YOLOv8 export's does.

The float model detects (a check that can fail); the plain int8 converter, given the dynamic batch pinned
with --input-shape, loses the scores under the one int8 scale that the boxes set, and `eval --task detection`
measures it and names the output's mixed ranges; `eval` without --task takes the layout for a YOLO head;
`edgeq build --target coral` runs end to end on the unlabeled photos.

The evaluation and calibration photos are made at test time (tests/detector.py), held out from training:
other photos, other digits."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from tests import detector as det
from tests.inputs.test_onnx import needs_extra

pytestmark = needs_extra
SHAPE = f"1x3x{det.SIDE}x{det.SIDE}"  # the ONNX model's own layout (NCHW), its batch pinned to 1
EVAL, CALIB = 96, 128  # held-out images for evaluation and calibration (>= 30 are needed to judge a budget)


def _run(*args: object) -> int:
    """edgeq ARGS in this process (module fixtures cannot use run_cli's capture); its exit code."""
    from edgeq.cli.app import run
    from edgeq.cli.main import cli

    return run(cli, [str(a) for a in args])


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """The held-out sets as edgeq reads data for an ONNX model (NHWC .npy), the plain int8 model, and a
    conversion cache of this module's own."""
    from edgeq.errors import Unavailable
    from edgeq.onnx_import import require_onnx2tf

    try:
        require_onnx2tf()
    except Unavailable as exc:
        pytest.skip(exc.one_line())
    d = tmp_path_factory.mktemp("yolo_onnx")
    mp = pytest.MonkeyPatch()
    mp.setenv("EDGEQ_CACHE_DIR", str(d / "cache"))
    np.save(d / "calib.npy", det.nhwc(det.make_set("calib", CALIB).x))
    np.save(d / "eval.npy", det.nhwc(det.make_set("eval", EVAL).x))
    assert _run("quantize", det.MODEL, "--input-shape", SHAPE, "--data", d / "calib.npy", "-o", d / "plain.tflite") == 0
    yield d
    mp.undo()


def test_the_model_is_a_yolov8_style_export():
    """NCHW input with a symbolic batch; the graph ends as a YOLOv8 export does: boxes [batch, 4, N] and
    scores [batch, C, N] concatenated on axis 1 into one output."""
    import onnx

    assert det.MODEL.stat().st_size < 300_000
    model = onnx.shape_inference.infer_shapes(onnx.load(str(det.MODEL)))
    g = model.graph

    def dims(v) -> list:  # noqa: ANN001
        return [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]

    assert [(i.name, dims(i)) for i in g.input] == [("images", ["batch", 3, det.SIDE, det.SIDE])]
    assert [(o.name, dims(o)) for o in g.output] == [("output0", ["batch", 4 + det.CLASSES, det.ANCHORS])]
    last = g.node[-1]
    assert last.op_type == "Concat" and last.output == ["output0"]
    assert [a.i for a in last.attribute if a.name == "axis"] == [1]
    shapes = {v.name: dims(v) for v in g.value_info}
    assert [shapes[n][1:] for n in last.input] == [[4, det.ANCHORS], [det.CLASSES, det.ANCHORS]]


def test_the_photo_sets_are_deterministic_and_held_out():
    a, b = det.make_set("eval", 4), det.make_set("eval", 4)
    assert a.x.shape == (4, 3, det.SIDE, det.SIDE) and a.x.dtype == np.float32
    assert np.array_equal(a.x, b.x) and all(np.array_equal(p, q) for p, q in zip(a.boxes, b.boxes, strict=True))
    assert not np.array_equal(a.x, det.make_set("calib", 4).x)
    assert not set(det.TRAIN_PHOTOS) & set(det.HELD_OUT_PHOTOS)
    assert 0.0 <= float(a.x.min()) and float(a.x.max()) <= 1.0


def test_the_float_model_detects_the_digits():
    """On held-out photos and digits, most anchors above 0.25 lie on a pasted digit and name it."""
    data = det.make_set("eval", 128)
    q = det.quality(det.run_onnx(det.MODEL, data.x), data)
    # measured (128 held-out images, 259 digits): 444 anchors above 0.25, 85% of them on a digit (IoU >= 0.3),
    # 73% of those name it, box IoU 0.69, recall 51% (IoU >= 0.5 and the right class); labels shifted: 4%
    assert q["anchors"] > 2 * len(data.x)
    assert q["near"] > 0.7 and q["class_correct"] > 0.6 and q["box_iou"] > 0.6
    assert q["recall"] > 0.5
    # a check that can fail: the same figures with the labels shifted by one are chance
    shifted = det.DetectionSet(data.x, data.boxes, tuple((c + 1) % det.CLASSES for c in data.classes))
    assert det.quality(det.run_onnx(det.MODEL, data.x), shifted)["class_correct"] < 0.2


def _plain_scores(path, x: np.ndarray) -> np.ndarray:  # noqa: ANN001
    """The int8 model's output, dequantized, on NHWC images: [N, 4+C, anchors]."""
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(path))
    interp.allocate_tensors()
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    (si, zi), (so, zo) = inp["quantization"], out["quantization"]
    got = []
    for sample in x:
        interp.set_tensor(inp["index"], np.clip(np.round(sample[None] / si + zi), -128, 127).astype(np.int8))
        interp.invoke()
        got.append((interp.get_tensor(out["index"]).astype(np.float64) - zo) * so)
    return np.concatenate(got)


@pytest.mark.slow
def test_the_plain_converter_loses_the_scores(run_cli, work):
    """`edgeq quantize model.onnx --input-shape 1x3x192x192` (plain int8): one scale for the whole head, set
    by the boxes' ~210 px span, leaves each class score a level or two; `eval --task detection` against the
    ONNX model measures far fewer anchors above 0.25 and poor class agreement, and names the mixed ranges."""
    r = run_cli("--json", "eval", work / "plain.tflite", "--reference", det.MODEL, "--data", work / "eval.npy",
                "--task", "detection")  # fmt: skip
    assert r.exit_code == 0, r.stderr
    res = r.json["result"]
    d = res["detection"]
    assert d["layout"] == "rows" and d["classes"] == det.CLASSES and d["score_threshold"] == 0.25
    # measured (96 held-out images): 328 float / 161 int8 anchors above 0.25, score agreement 49%, class
    # agreement 55%, box IoU 0.93, SQNR 41.7 dB; one scale 0.823 for rows 0-3 (-10.9..198.9 px) and rows
    # 4-13 (0..0.999, 1.2 steps): a score under 0.41 becomes 0, any other 0.82
    assert d["reference_detections"] > 2 * EVAL
    assert d["quantized_detections"] < 0.7 * d["reference_detections"]
    assert d["class_agreement"] < 0.75 and d["score_agreement"] < 0.7
    assert d["box_iou_mean"] > 0.8  # the boxes themselves survive: their span set the scale
    [out] = res["outputs"]
    mixed = out["mixed_ranges"]
    assert [(g["first"], g["last"], g["narrow"]) for g in mixed["groups"]] == [(0, 3, False), (4, 13, True)]
    assert mixed["groups"][1]["steps"] < 2 and mixed["groups"][0]["max"] > 150
    text = "\n".join(res["warnings"])
    assert f"output {out['name']!r}: rows 0-3 span" in text and "rows 4-13 span" in text, text
    # the int8 model itself: every class score is one of a few levels (0, one or two steps of the scale)
    head = _plain_scores(work / "plain.tflite", np.load(work / "eval.npy")[:24])
    assert len(np.unique(np.round(head[:, 4:], 6))) <= 3


@pytest.mark.slow
def test_eval_without_task_takes_the_yolo_layout(run_cli, work):
    r = run_cli("--json", "eval", work / "plain.tflite", "--reference", det.MODEL, "--data", work / "eval.npy")
    assert r.exit_code == 0, r.stderr
    res = r.json["result"]
    assert res["task"] == "detection" and res["outputs"][0]["role"] == "yolo_head"
    assert res["detection"]["layout"] == "rows"


@pytest.mark.slow
def test_the_dynamic_batch_pinned_with_input_shape(run_cli, work, tmp_path):
    """The ONNX model's batch is symbolic ("batch"); --input-shape 1x3x192x192 pins it (the NHWC int8 model is
    static all the way through, from a conversion cached apart). Without it this model converts too: onnx2tf
    keeps the batch dynamic and the quantizer takes it as 1, with the same int8 model."""
    from edgeq import tflite

    info = tflite.read_file(str(work / "plain.tflite"))
    assert list(info.inputs[0].shape_signature) == [1, det.SIDE, det.SIDE, 3]
    assert list(info.outputs[0].shape_signature) == [1, 4 + det.CLASSES, det.ANCHORS]
    assert not any(t.is_dynamic for t in info.tensors)
    entries = [p.name for p in (work / "cache" / "onnx").iterdir() if not p.name.startswith(".")]
    assert any("-shape" in e for e in entries), entries
    r = run_cli("quantize", det.MODEL, "--data", work / "calib.npy", "-o", tmp_path / "q.tflite")
    assert r.exit_code == 0, r.stderr
    assert list(tflite.read_file(str(tmp_path / "q.tflite")).inputs[0].shape_signature) == [1, det.SIDE, det.SIDE, 3]


@pytest.mark.slow
def test_build_for_coral_splits_the_head_and_keeps_the_scores(run_cli, work):
    """Issue 21's must-show: `edgeq build model.onnx --target coral` on unlabeled held-out photos. The shared
    plain int8 model mixes ranges in its one head (a budget miss), the planner splits the head into boxes and
    scores with one int8 scale each (all on the Edge TPU), and the coral model keeps at least 90% of float's
    top-class agreement on the anchors above 0.25 with their count within 30%; the verdict leads with the
    detection figures, the manifest and report.html record the changed interface, and `eval --task
    detection` of the built model against the ONNX (merging its outputs as its sidecar says) reports it."""
    out = work / "build"
    r = run_cli("build", det.MODEL, "--target", "coral", "--input-shape", SHAPE, "--data", work / "calib.npy",
                "--eval-data", work / "eval.npy", "-o", out)  # fmt: skip
    # measured: plain int8 328 -> 161 anchors above 0.25, class agreement 55%; the split head 328 of 328, class
    # agreement 99.7%, box IoU 0.93, 42 of 42 ops on the Edge TPU (predicted)
    assert r.exit_code == 0, r.stderr
    assert "Traceback" not in r.stderr
    verdict = next(ln for ln in r.stdout.splitlines() if ln.startswith("  coral: "))
    assert re.search(
        r"\d+ of float's \d+ detections above 0.25, class agreement \d+(\.\d+)?%", verdict.split("ops on")[0]
    )
    manifest = json.loads((out / "coral" / "build.json").read_text())
    assert manifest["plan"]["chosen"] == "split head", manifest["plan"]
    assert "unlabeled" in manifest["budget"]["why"]
    parts = manifest["interface"]["split"]["parts"]
    assert [p["size"] for p in parts] == [4, det.CLASSES]
    int8 = next(v for v in manifest["variants"] if v["variant"] == "int8")["detection"]
    assert int8["class_agreement"] >= 0.9 and int8["reference_detections"] > 2 * EVAL
    assert abs(int8["quantized_detections"] - int8["reference_detections"]) <= 0.3 * int8["reference_detections"]
    assert "Changed interface" in (out / "report.html").read_text()
    e = run_cli("--json", "eval", out / "coral" / "yolo_digits_int8.tflite", "--reference", det.MODEL,
                "--input-shape", SHAPE, "--data", work / "eval.npy", "--task", "detection")  # fmt: skip
    assert e.exit_code == 0, e.stderr
    ev = e.json["result"]["detection"]
    assert ev["class_agreement"] >= 0.9, ev
    assert abs(ev["quantized_detections"] - ev["reference_detections"]) <= 0.3 * ev["reference_detections"]


@pytest.mark.slow
def test_channels_first_data_is_refused_with_the_transpose(run_cli, work, tmp_path):
    """Data saved NCHW, as the ONNX model itself takes it: one line that says to transpose (not reshape)."""
    np.save(tmp_path / "nchw.npy", det.make_set("calib", 8).x)
    r = run_cli("quantize", det.MODEL, "--input-shape", SHAPE, "--data", tmp_path / "nchw.npy", "-o", tmp_path / "q")
    assert r.exit_code == 3 and "save x.transpose(0, 2, 3, 1)" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
