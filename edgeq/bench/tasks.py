"""What each output of a model is, and the metrics that fit it. Pure numpy.

An output is class scores (top-1 agreement and accuracy fit), a regression (SQNR and errors: box
offsets, landmarks, audio frames), an embedding (cosine), or part of a detection head: boxes with
their scores, raw per-anchor (a MediaPipe/BlazeFace head) or after ``TFLite_Detection_PostProcess``
(boxes, classes, scores, count). The role comes from ``--task`` where given, else from the output's
name, shape and the reference's values. No metric is computed on an output it does not fit.
"""

from __future__ import annotations

import re

import numpy as np

from edgeq.errors import BadInput

TASKS = ("classification", "regression", "detection", "embedding")
# Roles of single outputs; "boxes" and "scores" exist only as a detection pair.
CLASS, REGRESSION, EMBEDDING, BOXES, SCORES = "class_scores", "regression", "embedding", "boxes", "scores"
# A YOLOv5/v8 export's single output: per anchor 4 box coordinates (centre x, y, width, height) then C
# class scores, as rows [N, 4+C, anchors] ("rows") or transposed [N, anchors, 4+C] ("columns").
YOLO = "yolo_head"
YOLO_THRESHOLD = 0.25  # the score threshold YOLO exports are run with
YOLO_MIN_ANCHORS = 4  # anchors per box-and-score row, at least: 8400 against 84 in a YOLOv8 export

SCORE_THRESHOLD = 0.5
IOU_MATCH = 0.5  # a box whose IoU with its reference is at least this counts as the same detection

_BOX_NAMES = re.compile(r"box|regress|loc|coord", re.I)
_SCORE_NAMES = re.compile(r"score|prob|conf|class|logit|cls", re.I)
_EMBED_NAMES = re.compile(r"embed|feature|vector", re.I)
POSTPROCESS = re.compile(r"TFLite_Detection_PostProcess(?::(\d+))?$")


def _is_distribution(r: np.ndarray) -> bool:
    """Rows that are a probability distribution: softmax class scores."""
    return bool(np.all(r >= -1e-6) and np.allclose(r.sum(axis=-1), 1.0, atol=1e-3))


def _class_shaped(r: np.ndarray) -> bool:
    """(N, classes), or per-position class scores (N, ..., classes) that are softmax outputs."""
    return r.ndim >= 2 and r.shape[-1] > 1 and (r.ndim == 2 or _is_distribution(r))


def detection_pair(reference: dict[str, np.ndarray]) -> tuple[str, str, str] | None:
    """(boxes, scores, box format) of a detection head among the outputs, or None.

    ``TFLite_Detection_PostProcess`` outputs are known by the op's output order (boxes, classes,
    scores, count) carried in their tensor names; raw heads by a (N, anchors, >=4) box output and
    a score output over the same anchors, told apart by name where the shapes allow both.
    """
    post = {}
    for name in reference:
        m = POSTPROCESS.search(name)
        if m:
            post[int(m.group(1) or 0)] = name
    if 0 in post and 2 in post:
        return post[0], post[2], "corners"
    boxes = [n for n, r in reference.items() if r.ndim == 3 and r.shape[-1] >= 4]
    for b in sorted(boxes, key=lambda n: not _BOX_NAMES.search(n)):
        anchors = reference[b].shape[1]
        scores = [
            n
            for n, r in reference.items()
            if n != b
            and r.ndim in (2, 3)
            and r.shape[1] == anchors
            # one score per anchor by shape; several (per class) only where both names say so
            and (r.ndim == 2 or r.shape[-1] == 1 or (_SCORE_NAMES.search(n) and _BOX_NAMES.search(b)))
        ]
        scores.sort(key=lambda n: not _SCORE_NAMES.search(n))
        if scores and (len(scores) == 1 or _SCORE_NAMES.search(scores[0])):
            return b, scores[0], "center_size"
    return None


def yolo_layout(r: np.ndarray, by_values: bool = True) -> str | None:
    """``"rows"`` for a YOLO head [N, 4+C, anchors], ``"columns"`` for [N, anchors, 4+C], else None.

    By shape: C >= 1 and many more anchors than rows. ``by_values`` (guessing without ``--task
    detection``) also wants the score rows in 0..1 (after the export's sigmoid), boxes in pixels (beyond
    0..1; an export with normalized boxes needs ``--task detection``) and no softmax over each anchor (a
    segmentation map [N, pixels, classes] is not a YOLO head)."""
    if r.ndim != 3:
        return None
    a, b = r.shape[1], r.shape[2]
    layout = (
        "rows" if a >= 5 and b >= YOLO_MIN_ANCHORS * a else "columns" if b >= 5 and a >= YOLO_MIN_ANCHORS * b else None
    )
    if layout is None or not by_values:
        return layout
    boxes, scores = yolo_split(r, layout)
    in_unit = bool(scores.size and float(scores.min()) >= 0 and float(scores.max()) <= 1)
    in_pixels = bool(np.ptp(boxes) > 0 and float(np.abs(boxes).max()) > 1)
    ok = in_unit and in_pixels and not _is_distribution(np.swapaxes(r, 1, 2) if layout == "rows" else r)
    return layout if ok else None


def yolo_split(r: np.ndarray, layout: str) -> tuple[np.ndarray, np.ndarray]:
    """A YOLO head as boxes (N, anchors, 4) and class scores (N, anchors, C)."""
    per_anchor = np.swapaxes(r, 1, 2) if layout == "rows" else r
    return per_anchor[..., :4], per_anchor[..., 4:]


def yolo_metrics(reference: np.ndarray, test: np.ndarray, layout: str, threshold: float = YOLO_THRESHOLD) -> dict:
    """Agreement of two YOLO heads on the anchors whose float top class score is above ``threshold``.

    :func:`detection_metrics`: box IoU of those anchors, detections above the threshold in float and
    int8, score agreement and class agreement."""
    rb, rs = yolo_split(reference, layout)
    tb, ts = yolo_split(test, layout)
    return detection_metrics((rb, tb), (rs, ts), "center_size", threshold, logits=False) | {"layout": layout}


def roles(reference: dict[str, np.ndarray], task: str | None, labeled: bool) -> dict[str, str]:
    """The role of every output, by name.

    Raises:
        BadInput: ``task`` does not fit the outputs (detection without boxes and scores,
            classification without a class-score output), or labels with no class-score output.
    """
    if task is not None and task not in TASKS:
        raise BadInput(f"unknown task {task!r}", f"use one of {', '.join(TASKS)}")
    shapes = ", ".join(f"{n} {tuple(r.shape[1:])}" for n, r in reference.items())
    if task == "regression":
        return dict.fromkeys(reference, REGRESSION)
    if task == "embedding":
        return dict.fromkeys(reference, EMBEDDING)
    out: dict[str, str] = {}
    det = detection_pair(reference)
    if det is None and task in (None, "detection"):
        # a YOLO export's one output: by shape under --task detection, by shape and values otherwise
        out = {n: YOLO for n, r in reference.items() if yolo_layout(r, by_values=task is None)}
    if task == "detection":
        if det is None and not out:
            raise BadInput(
                f"--task detection needs a boxes output (N, anchors, 4+) and a scores output over the same "
                f"anchors, or a YOLO head [N, 4+C, anchors] or [N, anchors, 4+C], and this model's outputs are: {shapes}",
                "pass the task that fits the model (classification, regression or embedding), or none to infer it",
            )
    if det is not None and task in (None, "detection"):
        out[det[0]], out[det[1]] = BOXES, SCORES
    single = len(reference) == 1
    for name, r in reference.items():
        if name in out:
            continue
        if _class_shaped(r) and (
            single or _SCORE_NAMES.search(name) or _is_distribution(r) or task == "classification"
        ):
            out[name] = CLASS
        elif _EMBED_NAMES.search(name) and r.ndim == 2:
            out[name] = EMBEDDING
        else:
            out[name] = REGRESSION
    classes = [n for n, role in out.items() if role == CLASS]
    if task == "classification" and not classes:
        raise BadInput(
            f"--task classification needs a class-score output (N, classes), and this model's outputs are: {shapes}",
            "pass the task that fits the model (regression, detection or embedding), or none to infer it",
        )
    if labeled and len(classes) != 1:
        what = "no class-score output" if not classes else f"{len(classes)} class-score outputs ({', '.join(classes)})"
        raise BadInput(
            f"the evaluation data has labels, but the model has {what} (outputs: {shapes})",
            "evaluate without labels (fidelity metrics per output), or label data for a single classifier output",
        )
    return out


def model_task(output_roles: dict[str, str]) -> str:
    """The model's task as one word: detection if it has a detection head, else the first class-score,
    embedding or regression output decides, in that order."""
    found = set(output_roles.values())
    if BOXES in found or YOLO in found:
        return "detection"
    for role, task in ((CLASS, "classification"), (EMBEDDING, "embedding")):
        if role in found:
            return task
    return "regression"


def _probabilities(s: np.ndarray, logits: bool | None = None) -> np.ndarray:
    """Per-anchor score in 0..1 (several classes: the best one); logits go through a sigmoid (``None``:
    scores outside 0..1 are taken for logits)."""
    s = s.astype(np.float64)
    if s.ndim == 3:
        s = s.max(axis=-1)
    if logits or (logits is None and (s.min() < 0 or s.max() > 1)):
        s = 1 / (1 + np.exp(-np.clip(s, -60, 60)))
    return s


def _corners(b: np.ndarray, fmt: str) -> np.ndarray:
    """(..., 4) boxes as (lo0, lo1, hi0, hi1)."""
    b = b[..., :4].astype(np.float64)
    if fmt == "corners":
        return np.stack([np.minimum(b[..., 0], b[..., 2]), np.minimum(b[..., 1], b[..., 3]),
                         np.maximum(b[..., 0], b[..., 2]), np.maximum(b[..., 1], b[..., 3])], axis=-1)  # fmt: skip
    half = np.abs(b[..., 2:4]) / 2
    return np.concatenate([b[..., 0:2] - half, b[..., 0:2] + half], axis=-1)


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Elementwise IoU of corner boxes (..., 4); 0 where both are empty."""
    lo = np.maximum(a[..., :2], b[..., :2])
    hi = np.minimum(a[..., 2:], b[..., 2:])
    inter = np.prod(np.clip(hi - lo, 0, None), axis=-1)
    area = np.prod(a[..., 2:] - a[..., :2], axis=-1) + np.prod(b[..., 2:] - b[..., :2], axis=-1) - inter
    return np.where(area > 0, inter / np.where(area > 0, area, 1), 0.0)


def detection_metrics(
    boxes: tuple[np.ndarray, np.ndarray],
    scores: tuple[np.ndarray, np.ndarray],
    box_format: str,
    threshold: float = SCORE_THRESHOLD,
    logits: bool | None = None,
) -> dict:
    """Agreement of two detection heads (reference, test) on the detections above ``threshold``.

    ``score_agreement``: detections above the threshold in both, over those above it in either (per
    anchor for raw heads; matched by IoU >= 0.5 after post-processing, whose rows are sorted by score).
    ``box_iou_mean`` and ``box_agreement``: IoU of each reference detection with its int8 counterpart, and
    the fraction at IoU >= 0.5. None where the reference detects nothing above the threshold. A raw head
    with several classes per anchor also gets ``class_agreement`` (:func:`_class_agreement`).
    ``logits``: whether the scores are logits (None: inferred from the float reference's values, and
    the int8 side is read alike; a score above 1 out of an int8 head is still a score).
    """
    rb, tb = _corners(boxes[0], box_format), _corners(boxes[1], box_format)
    ref_scores = scores[0].max(axis=-1) if scores[0].ndim == 3 else scores[0]
    if logits is None:
        logits = bool(ref_scores.min() < 0 or ref_scores.max() > 1)
    rs, ts = _probabilities(scores[0], logits), _probabilities(scores[1], logits)
    ref_on, test_on = rs > threshold, ts > threshold
    if box_format == "center_size":  # raw head: anchor i is anchor i on both sides
        best = iou(rb, tb)[ref_on]
        both, either = int(np.sum(ref_on & test_on)), int(np.sum(ref_on | test_on))
    else:
        best_list: list = []
        both, either = 0, 0
        for i in range(len(rb)):
            r, t = rb[i][ref_on[i]], tb[i][test_on[i]]
            m = iou(r[:, None, :], t[None, :, :]) if len(r) and len(t) else np.zeros((len(r), len(t)))
            per_ref = m.max(axis=1) if m.shape[1] else np.zeros(len(r))
            best_list.extend(per_ref.tolist())
            matched = int(np.sum(per_ref >= IOU_MATCH))
            both += matched
            either += len(r) + len(t) - matched
        best = np.asarray(best_list)
    return {
        "score_threshold": threshold,
        "box_format": box_format,
        "reference_detections": int(ref_on.sum()),
        "quantized_detections": int(test_on.sum()),
        "score_agreement": round(both / either, 6) if either else None,
        "box_iou_mean": round(float(best.mean()), 6) if len(best) else None,
        "box_agreement": round(float(np.mean(best >= IOU_MATCH)), 6) if len(best) else None,
    } | _class_agreement(scores, ref_on, box_format)


def _class_agreement(scores: tuple[np.ndarray, np.ndarray], ref_on: np.ndarray, box_format: str) -> dict:
    """Raw heads with several classes per anchor (N, anchors, C): how many of the anchors the float
    detects (``ref_on``) keep their top class in int8 (None where it detects nothing)."""
    ref, test = scores
    if box_format != "center_size" or ref.ndim != 3 or ref.shape[-1] < 2:
        return {}
    same = ref.argmax(axis=-1)[ref_on] == test.argmax(axis=-1)[ref_on]
    return {"classes": int(ref.shape[-1]), "class_agreement": round(float(same.mean()), 6) if same.size else None}


def constant(reference: np.ndarray) -> float | None:
    """The value of a float reference output that is the same for every sample and position, else None.

    Against a constant reference, SQNR, cosine, errors and agreement say nothing about the quantized
    model: any model that outputs that constant scores perfectly, and no input exercised the output."""
    if reference.size == 0 or len(reference) < 2 or np.ptp(reference) != 0:
        return None
    return float(reference.flat[0])


def constant_warning(name: str, value: float) -> str:
    """The warning for an output whose float reference is ``value`` on every sample (:func:`constant`)."""
    return (
        f"output {name!r}: the float reference is constant ({value:.4g}) over the evaluation data, so its fidelity"
        " figures carry no information; evaluate on data that makes the output vary"
    )


# a channel group spanning fewer int8 steps than this keeps at most 3 bits of its signal (YOLO scores under a
# pixel box scale keep 0.4 to 3 steps; a classifier's quietest logit, 14 steps, is not mixed: 4 bits still rank)
FEW_STEPS = 8
WIDE_STEPS = 64  # a group spanning at least this many steps is what set the output's scale
MAX_GROUPS = 4  # box | scores, or box | objectness | classes, or a few concatenated slices


def _runs(flags: list[bool]) -> list[tuple[int, int, bool]]:
    """Contiguous runs of equal flags as (first, last, flag)."""
    runs: list[tuple[int, int, bool]] = []
    for i, f in enumerate(flags):
        if runs and runs[-1][2] == f:
            runs[-1] = (runs[-1][0], i, f)
        else:
            runs.append((i, i, f))
    return runs


def group_axis(shape: tuple[int | None, ...]) -> int | None:
    """The axis :func:`mixed_ranges` groups channels along (batch first): axis 1 of a 3-D output with fewer
    rows than columns (a YOLO head [N, 4+C, anchors]), else the last; None for fewer than 2 axes."""
    if len(shape) < 2:
        return None
    rows, cols = (shape[1], shape[2]) if len(shape) == 3 else (None, None)
    return 1 if rows is not None and cols is not None and rows < cols else len(shape) - 1


def mixed_ranges(reference: np.ndarray, scale: float) -> dict | None:
    """Channel groups of one output whose ranges one int8 ``scale`` cannot hold together, or None.

    Channels are rows along axis 1 of a 3-D output with fewer rows than columns (a YOLO head [N, 4+C,
    anchors]), else the last axis. Over the float reference on the evaluation data each channel spans
    some number of int8 steps; the output is mixed when its channels fall into at most
    :data:`MAX_GROUPS` contiguous groups, one spans at least :data:`WIDE_STEPS` steps (it set the scale)
    and another, which varies, fewer than :data:`FEW_STEPS` (quantization leaves it a handful of levels:
    YOLO scores 0..1 under a 0..320 box scale become 0 or 1 step). Softmax outputs are one quantity and
    never mixed. Returns the axis word and per group its rows, range and span in steps."""
    if scale <= 0 or reference.ndim < 2 or reference.size == 0 or _is_distribution(reference):
        return None
    axis = group_axis(reference.shape)
    assert axis is not None
    per = np.moveaxis(reference.astype(np.float64), axis, -1).reshape(-1, reference.shape[axis])
    lo, hi = per.min(axis=0), per.max(axis=0)
    steps = (hi - lo) / scale
    runs = _runs([bool(s < FEW_STEPS) for s in steps])
    if not 2 <= len(runs) <= MAX_GROUPS or steps.max() < WIDE_STEPS:
        return None
    groups = []
    for first, last, narrow in runs:
        g_lo, g_hi = float(lo[first : last + 1].min()), float(hi[first : last + 1].max())
        groups.append(
            {"first": first, "last": last, "min": g_lo, "max": g_hi, "steps": (g_hi - g_lo) / scale, "narrow": narrow}
        )
    if not any(g["narrow"] and g["max"] > g["min"] for g in groups):
        return None
    return {"axis": "rows" if axis == 1 and reference.ndim == 3 else "channels", "scale": scale, "groups": groups}


def mixed_warning(name: str, mixed: dict) -> str:
    """The warning for an output whose channel groups one int8 scale cannot hold (:func:`mixed_ranges`)."""
    word = mixed["axis"]

    def rows(g: dict) -> str:
        return f"{word} {g['first']}" if g["first"] == g["last"] else f"{word} {g['first']}-{g['last']}"

    spans = " and ".join(f"{rows(g)} span {g['min']:.4g}..{g['max']:.4g}" for g in mixed["groups"])
    lost = ", ".join(f"{rows(g)} span only {g['steps']:.2g} steps" for g in mixed["groups"] if g["narrow"])
    return (
        f"output {name!r}: {spans}: under one int8 scale ({mixed['scale']:.4g}) {lost}, so int8 keeps"
        " a few levels of them at most, whatever the output's SQNR says; split the head into separate outputs"
        " (e.g. boxes and scores) so each gets its own scale"
    )


def degenerate(reference: np.ndarray, test: np.ndarray, limits: tuple[float, float] | None) -> str | None:
    """Why the quantized output carries no signal, or None: all zeros, constant, or saturated at its
    integer limits (``limits``: the float values of the int8 extremes) where the reference is not."""
    if test.size == 0 or np.ptp(reference) == 0:
        return None  # a constant reference: nothing to lose
    if np.all(test == 0):
        return "all zeros"
    if np.ptp(test) == 0:
        return f"constant ({float(test.flat[0]):.4g})"
    if limits is not None:
        lo, hi = limits
        half_step = (hi - lo) / 510
        at_test = float(np.mean((test <= lo + half_step) | (test >= hi - half_step)))
        at_ref = float(np.mean((reference <= lo + half_step) | (reference >= hi - half_step)))
        if at_test >= 0.5 and at_test - at_ref >= 0.25:
            return f"saturated ({at_test:.0%} of values at the int8 limits {lo:.4g}..{hi:.4g}; reference {at_ref:.0%})"
    return None
