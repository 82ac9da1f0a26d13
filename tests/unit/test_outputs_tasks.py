"""Outputs paired by name, per-output fidelity, task-aware metrics, degenerate outputs (pure numpy)."""

from __future__ import annotations

import numpy as np
import pytest

from edgeq.bench import fidelity, tasks
from edgeq.errors import BadInput
from edgeq.outputs import pair, paired

rng = np.random.default_rng(0)


def softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def test_outputs_pair_by_name_not_position():
    ref = {"boxes": np.zeros((2, 4)), "probs": np.zeros((2, 3))}
    test = {"probs": np.ones((2, 3)), "boxes": np.ones((2, 4))}  # LiteRT's order is not the model's
    assert pair(ref, test, "ref", "int8") == {"boxes": "boxes", "probs": "probs"}
    r, t, _ = paired(ref, test, "ref", "int8")
    assert list(r) == ["boxes", "probs"] and t["boxes"].shape == (2, 4)


def test_names_match_up_to_a_tensor_suffix_and_case():
    ref = {"Regressors": np.zeros((1, 4)), "classificators": np.zeros((1, 2))}
    test = {"regressors:0": np.zeros((1, 4)), "classificators": np.zeros((1, 2))}
    assert pair(ref, test, "a", "b") == {"Regressors": "regressors:0", "classificators": "classificators"}


def test_a_single_output_pairs_whatever_its_name():
    assert pair({"dense_3": np.zeros((2, 10))}, {"output_0": np.zeros((2, 10))}, "a", "b") == {"dense_3": "output_0"}


def test_unmatched_names_name_both_sides():
    ref = {"boxes": np.zeros((2, 4)), "probs": np.zeros((2, 3))}
    test = {"output_0": np.zeros((2, 4)), "output_1": np.zeros((2, 3))}
    with pytest.raises(BadInput) as e:
        pair(ref, test, "model.keras", "model.tflite")
    msg = e.value.message
    assert "'boxes'" in msg and "'probs'" in msg and "output_0, output_1" in msg and "boxes, probs" in msg


def test_a_different_output_count_or_shape_is_bad_input():
    with pytest.raises(BadInput, match="has 2 output"):
        pair({"a": np.zeros((1, 2)), "b": np.zeros((1, 2))}, {"a": np.zeros((1, 2))}, "r", "t")
    with pytest.raises(BadInput, match="'a' has shape"):
        pair({"a": np.zeros((1, 2)), "b": np.zeros((1, 3))}, {"a": np.zeros((1, 4)), "b": np.zeros((1, 3))}, "r", "t")


def three_outputs(n=200):
    """MTCNN ONet-like outputs: box regression (4), landmarks (10), face probability (softmax 2)."""
    boxes = rng.normal(size=(n, 4))
    marks = rng.normal(size=(n, 10))
    probs = softmax(rng.normal(size=(n, 2)) * 3)
    return {"bbox": boxes, "landmarks": marks, "prob": probs}


def test_model_summary_is_the_worst_output_and_each_output_has_its_own_figures():
    ref = three_outputs()
    test = {k: v.copy() for k, v in ref.items()}
    test["bbox"] = ref["bbox"] + rng.normal(scale=0.01, size=ref["bbox"].shape)  # ~40 dB
    test["landmarks"] = ref["landmarks"] + rng.normal(scale=0.3, size=ref["landmarks"].shape)  # ~10 dB, second
    test["prob"] = ref["prob"] + rng.normal(scale=0.001, size=ref["prob"].shape)
    r = fidelity.compare(ref, test, None)
    rows = {o["name"]: o for o in r["outputs"]}
    assert r["worst_output"] == "landmarks" and r["sqnr_db"] == rows["landmarks"]["sqnr_db"]
    assert rows["landmarks"]["sqnr_db"] == pytest.approx(10.5, abs=1.0)
    assert rows["bbox"]["sqnr_db"] == pytest.approx(40, abs=1.5)
    assert rows["bbox"]["shape"] == [4] and rows["landmarks"]["shape"] == [10]
    # top-1 agreement only where it fits: the class scores, never the 4-wide box regression
    assert rows["prob"]["role"] == tasks.CLASS and "agreement" in rows["prob"]
    assert rows["bbox"]["role"] == tasks.REGRESSION and "agreement" not in rows["bbox"]
    assert r["agreement"] == rows["prob"]["agreement"] and r["class_output"] == "prob"


def test_a_lone_regression_output_gets_no_agreement():
    ref = {"depth": rng.normal(size=(50, 8, 8))}
    r = fidelity.compare(ref, {"depth": ref["depth"] * 1.01}, None)
    assert r["task"] == "regression" and r["agreement"] is None


def test_labels_go_to_the_class_output_and_need_one():
    ref = three_outputs()
    labels = ref["prob"].argmax(-1)
    r = fidelity.compare(ref, ref, labels)
    assert r["quantized"]["accuracy"] == 1.0 and r["accuracy_drop_points"] == 0
    no_class = {"bbox": ref["bbox"], "landmarks": ref["landmarks"]}
    with pytest.raises(BadInput, match="no class-score output"):
        fidelity.compare(no_class, no_class, labels)


def test_task_detection_on_a_classifier_is_a_clear_error():
    ref = {"probs": softmax(rng.normal(size=(20, 10)))}
    with pytest.raises(BadInput) as e:
        fidelity.compare(ref, ref, None, task="detection")
    assert "--task detection" in e.value.message and "probs (10,)" in e.value.message


def test_task_override_regression_and_embedding():
    ref = {"probs": softmax(rng.normal(size=(20, 10)))}
    assert fidelity.compare(ref, ref, None, task="regression")["agreement"] is None
    r = fidelity.compare(ref, ref, None, task="embedding")
    assert r["task"] == "embedding" and r["outputs"][0]["role"] == tasks.EMBEDDING


def blazeface(n=6, anchors=896):
    """A MediaPipe face-detector head: regressors (N, 896, 16) and logit classificators (N, 896, 1)."""
    reg = rng.normal(scale=2, size=(n, anchors, 16))
    reg[..., 2:4] = np.abs(reg[..., 2:4]) + 10  # box width and height in pixels
    cls = rng.normal(loc=-6, size=(n, anchors, 1))
    cls[:, :5, 0] = 6  # five confident anchors per image
    return {"regressors": reg, "classificators": cls}


def test_detection_head_is_inferred_and_measured_by_iou_and_score_agreement():
    ref = blazeface()
    assert tasks.detection_pair(ref) == ("regressors", "classificators", "center_size")
    same = fidelity.compare(ref, ref, None)
    assert same["task"] == "detection" and same["agreement"] is None
    d = same["detection"]
    assert d["score_agreement"] == 1.0 and d["box_iou_mean"] == pytest.approx(1.0) and d["reference_detections"] == 30
    shifted = {k: v.copy() for k, v in ref.items()}
    shifted["regressors"][..., 0] += 5  # boxes ~10-12 px wide moved by 5 px: IoU about 1/3
    shifted["classificators"][:, :2, 0] = -6  # two of five detections lost
    d = fidelity.compare(ref, shifted, None)["detection"]
    assert d["score_agreement"] == pytest.approx(18 / 30)
    assert 0.2 < d["box_iou_mean"] < 0.5 and d["box_agreement"] == 0.0


def test_post_processed_detections_are_matched_by_iou_not_row():
    # TFLite_Detection_PostProcess: boxes (corners), classes, scores, count; rows are sorted by score,
    # so int8 may list the same detections in another order
    boxes = np.array([[[0.1, 0.1, 0.3, 0.3], [0.5, 0.5, 0.9, 0.9], [0, 0, 0, 0]]])
    scores = np.array([[0.9, 0.8, 0.1]])
    ref = {
        "TFLite_Detection_PostProcess": boxes,
        "TFLite_Detection_PostProcess:1": np.zeros((1, 3)),
        "TFLite_Detection_PostProcess:2": scores,
        "TFLite_Detection_PostProcess:3": np.array([2.0]),
    }
    test = dict(ref)
    test["TFLite_Detection_PostProcess"] = boxes[:, [1, 0, 2]]
    test["TFLite_Detection_PostProcess:2"] = np.array([[0.85, 0.8, 0.1]])
    r = fidelity.compare(ref, test, None)
    assert r["task"] == "detection" and r["detection"]["box_format"] == "corners"
    assert r["detection"]["score_agreement"] == 1.0 and r["detection"]["box_iou_mean"] == pytest.approx(1.0)


def test_an_all_zero_int8_output_is_named_not_hidden():
    ref = three_outputs()
    test = {k: v.copy() for k, v in ref.items()}
    test["landmarks"] = np.zeros_like(ref["landmarks"])
    r = fidelity.compare(ref, test, None)
    assert r["degenerate"] == [{"output": "landmarks", "why": "all zeros"}]
    assert any("'landmarks'" in w and "all zeros" in w for w in r["warnings"])


def test_constant_and_saturated_outputs():
    ref = {"probs": softmax(rng.normal(size=(100, 4)))}
    const = fidelity.compare(ref, {"probs": np.full_like(ref["probs"], 0.25)}, None)
    assert const["degenerate"][0]["why"].startswith("constant")
    # int8 limits of a softmax output 0..0.996: a reference near 0 is at the lower limit, which is no fault
    limits = {"probs": (0.0, 255 / 256)}
    assert fidelity.compare(ref, ref, None, limits=limits)["degenerate"] == []
    reg = {"y": rng.normal(size=(100, 6))}
    sat = np.clip(reg["y"] * 50, -1.0, 1.0)
    r = fidelity.compare(reg, {"y": sat}, None, limits={"y": (-1.0, 1.0)})
    assert r["degenerate"] and r["degenerate"][0]["why"].startswith("saturated")


def test_a_bare_array_is_one_output():
    x = softmax(rng.normal(size=(10, 5)))
    r = fidelity.compare(x, x, None)
    assert r["num_outputs"] == 1 and r["agreement"] == 1.0 and r["sqnr_db"] == float("inf")


def test_per_position_softmax_scores_are_class_scores():
    # MTCNN PNet: a (1, 1, 2) face/not-face softmax per position beside a (1, 1, 4) box regression
    ref = {"conv4-1": rng.normal(size=(30, 1, 1, 4)), "conv4-2": softmax(rng.normal(size=(30, 1, 1, 2)))}
    r = fidelity.compare(ref, ref, None)
    roles = {o["name"]: o["role"] for o in r["outputs"]}
    assert roles == {"conv4-1": tasks.REGRESSION, "conv4-2": tasks.CLASS} and r["agreement"] == 1.0


def test_one_array_is_refused_for_a_model_with_several_outputs():
    from edgeq.outputs import require_single

    require_single(["logits"], "m.keras")  # one output: nothing to confuse
    with pytest.raises(BadInput, match=r"m.keras has 2 outputs \(boxes, scores\) where one is needed"):
        require_single(["boxes", "scores"], "m.keras")


def yolo_head(n=8, classes=3, anchors=64, seed=1):
    """A YOLOv8 export's one output [N, 4+C, anchors]: boxes in pixels (0..320), class scores in 0..1."""
    g = np.random.default_rng(seed)
    boxes = np.concatenate([g.uniform(0, 320, (n, 2, anchors)), g.uniform(10, 80, (n, 2, anchors))], axis=1)
    scores = g.uniform(0, 0.2, (n, classes, anchors))
    for i in range(n):  # six anchors per image detect one class each, most of them at 0.3..0.6 as YOLO does
        scores[i, g.integers(0, classes, 6), np.arange(6)] = g.uniform(0.3, 0.7, 6)
    return np.concatenate([boxes, scores], axis=1)


def quantize(x, lo, hi):
    scale = (hi - lo) / 255
    zp = np.round(-128 - lo / scale)
    return (np.clip(np.round(x / scale) + zp, -128, 127) - zp) * scale


def test_a_yolo_head_is_one_detection_output_in_either_layout():
    ref = yolo_head()
    assert tasks.yolo_layout(ref) == "rows" and tasks.yolo_layout(np.swapaxes(ref, 1, 2)) == "columns"
    for r in (ref, np.swapaxes(ref, 1, 2)):
        same = fidelity.compare({"output0": r}, {"output0": r}, None)
        assert same["task"] == "detection" and same["outputs"][0]["role"] == tasks.YOLO
        d = same["detection"]
        assert d["class_agreement"] == 1.0 and d["box_iou_mean"] == pytest.approx(1.0)
        assert d["reference_detections"] == d["quantized_detections"] == 8 * 6
    # a regression output of that shape whose "scores" leave 0..1 is guessed a regression, but --task says
    wide = ref * 5
    assert fidelity.compare({"o": wide}, {"o": wide}, None)["task"] == "regression"
    assert fidelity.compare({"o": wide}, {"o": wide}, None, task="detection")["task"] == "detection"
    segmentation = softmax(rng.normal(size=(4, 256, 6)))  # per-pixel classes: not guessed a YOLO head
    assert tasks.yolo_layout(segmentation) is None and tasks.yolo_layout(segmentation, by_values=False) == "columns"


def test_one_int8_scale_over_boxes_and_scores_is_named_and_the_collapse_measured():
    ref = yolo_head()
    lo, hi = float(ref.min()), float(ref.max())
    test = quantize(ref, lo, hi)  # what the plain converter does: one scale, about 1.26 for 0..320
    r = fidelity.compare({"output0": ref}, {"output0": test}, None, limits={"output0": (lo, hi)})
    mixed = r["outputs"][0]["mixed_ranges"]
    assert [(g["first"], g["last"], g["narrow"]) for g in mixed["groups"]] == [(0, 3, False), (4, 6, True)]
    text = "\n".join(r["warnings"])
    assert "output 'output0': rows 0-3 span" in text and "rows 4-6 span" in text and "split the head" in text
    d = r["detection"]
    assert d["quantized_detections"] < d["reference_detections"] / 2 and d["class_agreement"] < 0.7
    # scores with their own scale (a split head) keep them, and say nothing
    boxes, scores = ref[:, :4], ref[:, 4:]
    split_ref = {"boxes": boxes, "scores": scores}
    split = {"boxes": quantize(boxes, lo, hi), "scores": quantize(scores, 0.0, 1.0)}
    limits = {"boxes": (lo, hi), "scores": (0.0, 1.0)}
    s = fidelity.compare(split_ref, split, None, task="regression", limits=limits)
    assert not any("int8 scale" in w for w in s["warnings"])
    assert all(o["mixed_ranges"] is None for o in s["outputs"])
    # the transposed export [N, anchors, 4+C] (YOLOv5) is the same head, its groups along the last axis
    cols = tasks.mixed_ranges(np.swapaxes(ref, 1, 2), (hi - lo) / 255)
    assert cols is not None and cols["axis"] == "channels"
    assert [(g["first"], g["last"]) for g in cols["groups"]] == [(0, 3), (4, 6)]


def test_softmax_and_even_outputs_are_never_mixed():
    probs = softmax(rng.normal(scale=4, size=(50, 10)))
    assert tasks.mixed_ranges(probs, 1 / 255) is None
    even = rng.uniform(0, 320, (50, 8))
    assert tasks.mixed_ranges(even, 320 / 255) is None
    interleaved = np.concatenate([rng.uniform(0, 320, (50, 1)), rng.uniform(0, 1, (50, 1))] * 4, axis=1)
    assert tasks.mixed_ranges(interleaved, 320 / 255) is None  # 8 alternating groups: not a concatenation


def test_the_build_puts_the_mixed_ranges_warning_into_the_targets_findings():
    from edgeq.build.target import evaluation_messages
    from edgeq.findings import Level

    ref = yolo_head(n=40)
    lo, hi = float(ref.min()), float(ref.max())
    ev = fidelity.compare({"output0": ref}, {"output0": quantize(ref, lo, hi)}, None, limits={"output0": (lo, hi)})
    warns = [m.text for m in evaluation_messages(ev, None) if m.level == Level.WARNING]
    assert len(warns) == 1 and warns[0].startswith("output 'output0': rows 0-3 span") and "split the head" in warns[0]
