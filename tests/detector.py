"""A detection task on real photos: crops of scikit-image's sample photographs with MNIST digits pasted at
random places and scales, every box and class known. Made deterministically (seeded) at test time, so no
image set is committed; `scripts/make_yolo_detector.py` trains tests/data/detector/yolo_digits.onnx on it.

Images are 192x192 RGB in 0..1 (float32); `make_set` returns them NCHW as the ONNX model takes them,
`nhwc` turns them into the layout edgeq reads for an ONNX model (onnx2tf's). Boxes are (cx, cy, w, h) in
pixels, classes 0..9 (the digit).

The photos of the training split and of the held-out splits (calibration, evaluation) are disjoint, and so
are the digits (representative_data/mnist_train.npz for training, mnist_calib.npz and mnist_eval.npz)."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "tests" / "data" / "detector" / "yolo_digits.onnx"
SIDE = 192  # input pixels: boxes span about 0..200 px, as a YOLO export's span its input side
CLASSES = 10
STRIDES = (8, 16)  # two scales: 24x24 + 12x12 = 720 anchors
ANCHORS = sum((SIDE // s) ** 2 for s in STRIDES)
PHOTO_SHORT_SIDE = 384  # photos are scaled down to this short side once, before cropping
THRESHOLD = 0.25  # the score threshold YOLO exports are run with

# scikit-image's sample photographs (skimage.data; no download): the held-out photos are never trained on
TRAIN_PHOTOS = ("astronaut", "camera", "hubble_deep_field", "immunohistochemistry", "brick", "grass", "coins",
                "moon", "clock", "logo", "cell", "page")  # fmt: skip
HELD_OUT_PHOTOS = ("coffee", "chelsea", "rocket", "gravel")
DIGITS = {"train": "mnist_train.npz", "calib": "mnist_calib.npz", "eval": "mnist_eval.npz"}
SEEDS = {"train": 0, "calib": 1, "eval": 2}


@dataclass(frozen=True)
class DetectionSet:
    """Images (N, 3, SIDE, SIDE) float32 in 0..1, and per image its boxes (k, 4: cx, cy, w, h pixels) and classes."""

    x: np.ndarray
    boxes: tuple[np.ndarray, ...]
    classes: tuple[np.ndarray, ...]


@functools.lru_cache(maxsize=4)
def _photos(names: tuple[str, ...]) -> tuple[np.ndarray, ...]:
    """The photos as float RGB in 0..1 (grayscale ones repeated over 3 channels, an alpha channel dropped)."""
    import skimage.data
    from skimage.transform import resize

    out = []
    for name in names:
        im = np.asarray(getattr(skimage.data, name)())
        im = im.astype(np.float32) / (255.0 if im.dtype == np.uint8 else max(float(im.max()), 1.0))
        if im.ndim == 2:
            im = np.repeat(im[..., None], 3, axis=-1)
        im = im[..., :3]
        short = min(im.shape[:2])
        if short > PHOTO_SHORT_SIDE:  # crops are 192 px: a smaller photo crops alike, faster
            h, w = (round(d * PHOTO_SHORT_SIDE / short) for d in im.shape[:2])
            im = resize(im, (h, w), order=1, anti_aliasing=True)
        out.append(np.ascontiguousarray(im, dtype=np.float32))
    return tuple(out)


@functools.lru_cache(maxsize=4)
def _digits(split: str) -> tuple[np.ndarray, np.ndarray]:
    with np.load(ROOT / "representative_data" / DIGITS[split]) as z:
        return z["x"][..., 0].astype(np.float32), z["y"].astype(np.int64)


def _crop(photo: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random square crop (35%..100% of the short side), resized to SIDE x SIDE."""
    from skimage.transform import resize

    h, w = photo.shape[:2]
    side = int(rng.integers(int(0.35 * min(h, w)), min(h, w) + 1))
    top, left = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
    crop = photo[top : top + side, left : left + side]
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    return resize(crop, (SIDE, SIDE), order=1, anti_aliasing=True).astype(np.float32)


def _paste(image: np.ndarray, digit: np.ndarray, rng: np.random.Generator, taken: list) -> np.ndarray | None:
    """Paste one digit (its 28x28 canvas scaled to 28..72 px) where it overlaps no earlier one; its tight box, or None."""
    from skimage.transform import resize

    size = int(rng.integers(28, 73))
    alpha = np.clip(resize(digit, (size, size), order=1, anti_aliasing=False), 0, 1)
    for _ in range(20):
        top, left = (int(v) for v in rng.integers(0, SIDE - size + 1, 2))
        rows, cols = np.nonzero(alpha > 0.2)
        box = np.array([left + cols.min(), top + rows.min(), left + cols.max() + 1, top + rows.max() + 1], float)
        if all(box[2] <= t[0] or t[2] <= box[0] or box[3] <= t[1] or t[3] <= box[1] for t in taken):
            break
    else:
        return None
    region = image[top : top + size, left : left + size]
    # ink that stands out from what is under it: light on a dark place, dark on a light one, a random tint
    base = 0.9 if float(region.mean()) < 0.5 else 0.1
    color = np.clip(base + rng.uniform(-0.1, 0.1, 3), 0, 1).astype(np.float32)
    region[:] = region * (1 - alpha[..., None]) + color * alpha[..., None]
    taken.append(box)
    return box


def make_set(split: str, num: int, seed: int | None = None) -> DetectionSet:
    """``num`` images of a split ("train", "calib" or "eval"), 1 to 3 digits each; the same for the same
    arguments. Training uses TRAIN_PHOTOS, the other splits HELD_OUT_PHOTOS; each split its own digits."""
    rng = np.random.default_rng(SEEDS[split] if seed is None else seed)
    photos = _photos(TRAIN_PHOTOS if split == "train" else HELD_OUT_PHOTOS)
    digits, labels = _digits(split)
    xs, boxes, classes = [], [], []
    for _ in range(num):
        image = _crop(photos[int(rng.integers(len(photos)))], rng)
        taken: list = []
        kept: list[int] = []
        for _ in range(int(rng.integers(1, 4))):
            i = int(rng.integers(len(digits)))
            if _paste(image, digits[i], rng, taken) is not None:
                kept.append(int(labels[i]))
        corners = np.array(taken, np.float64).reshape(-1, 4)
        boxes.append(np.concatenate([(corners[:, :2] + corners[:, 2:]) / 2, corners[:, 2:] - corners[:, :2]], 1))
        classes.append(np.array(kept, np.int64))
        xs.append(image.transpose(2, 0, 1))
    return DetectionSet(np.stack(xs).astype(np.float32), tuple(boxes), tuple(classes))


def nhwc(x: np.ndarray) -> np.ndarray:
    """NCHW images as NHWC: the layout edgeq reads data in for an ONNX model (onnx2tf converts it to NHWC)."""
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1))


def run_onnx(path: Path | str, x: np.ndarray) -> np.ndarray:
    """The model's one output [N, 4+C, anchors] on NCHW images, by onnxruntime."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return np.concatenate([session.run(None, {name: x[i : i + 32]})[0] for i in range(0, len(x), 32)])


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of (cx, cy, w, h) boxes a (n, 4) against b (m, 4): (n, m)."""
    a0, a1 = a[:, None, :2] - a[:, None, 2:] / 2, a[:, None, :2] + a[:, None, 2:] / 2
    b0, b1 = b[None, :, :2] - b[None, :, 2:] / 2, b[None, :, :2] + b[None, :, 2:] / 2
    inter = np.prod(np.clip(np.minimum(a1, b1) - np.maximum(a0, b0), 0, None), axis=-1)
    union = np.prod(a[:, None, 2:], -1) + np.prod(b[None, :, 2:], -1) - inter
    return inter / np.maximum(union, 1e-9)


def quality(head: np.ndarray, data: DetectionSet, threshold: float = THRESHOLD) -> dict:
    """How well a head [N, 4+C, anchors] detects the pasted digits.

    ``anchors``: anchors whose top score is above ``threshold``; ``near``: the fraction of them whose box
    overlaps a true box (IoU >= 0.3); ``class_correct``: of those near ones, the fraction whose top class is
    that digit's; ``box_iou``: their mean IoU; ``recall``: the fraction of true digits found by at least one
    anchor above the threshold with IoU >= 0.5 and the right class (a detector's recall at that threshold)."""
    near = correct = found = total = 0
    ious: list[float] = []
    for i in range(len(head)):
        boxes, scores = head[i, :4].T, head[i, 4:].T
        on = scores.max(axis=1) > threshold
        truth, labels = data.boxes[i], data.classes[i]
        total += len(labels)
        if not on.any() or not len(labels):
            continue
        m = _iou(boxes[on], truth)
        best = m.argmax(axis=1)
        hit = m.max(axis=1) >= 0.3
        top = scores[on].argmax(axis=1)
        near += int(hit.sum())
        correct += int(np.sum(hit & (top == labels[best])))
        ious.extend(m.max(axis=1)[hit].tolist())
        good = (m >= 0.5) & (top[:, None] == labels[None, :])
        found += int(good.any(axis=0).sum())
    anchors = int(np.sum(head[:, 4:].max(axis=1) > threshold))
    return {
        "anchors": anchors,
        "near": near / anchors if anchors else 0.0,
        "class_correct": correct / near if near else 0.0,
        "box_iou": float(np.mean(ious)) if ious else 0.0,
        "recall": found / total if total else 0.0,
        "digits": total,
    }
