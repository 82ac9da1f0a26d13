"""Representative and evaluation data: .npz/.npy arrays and image folders.

A data set is read, preprocessed by an explicit :class:`~edgeq.config.Preprocess` spec,
sampled reproducibly (``samples``, ``seed``) and validated against the model's input before
anything is calibrated on it. The sampled indices are recorded in provenance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO

import numpy as np

from edgeq.artifacts import sha256_file
from edgeq.config import DataConfig, Preprocess
from edgeq.errors import BadInput
from edgeq.paths import shown

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
NPZ_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # a zip archive (the second: one with no members)
NPY_MAGIC = b"\x93NUMPY"
DEFAULT_IMAGE_SCALE = 1.0 / 255.0
# What one stored array may declare: its header is read first, so a 20-byte .npy (or a zip bomb in a
# .npz) claiming terabytes is refused before anything is allocated. Far above calibration and
# evaluation sets, which edgeq holds in memory whole.
MAX_ARRAY_BYTES = 4 << 30


@dataclass(frozen=True)
class Dataset:
    x: np.ndarray
    y: np.ndarray | None
    indices: np.ndarray  # positions in the source that were sampled, sorted
    source: str
    sha256: str
    preprocess: Preprocess
    class_names: tuple[str, ...] = ()
    warnings: tuple[str, ...] = field(default_factory=tuple)
    from_images: bool = False  # an image folder (resized by --resize), not stored arrays

    @property
    def num_samples(self) -> int:
        return int(len(self.x))

    @property
    def labeled(self) -> bool:
        return self.y is not None

    def value_range(self) -> tuple[float, float]:
        return float(self.x.min()), float(self.x.max())

    def provenance(self, seed: int) -> dict:
        lo, hi = self.value_range()
        return {
            "path": self.source,
            "sha256": self.sha256,
            "num_samples": self.num_samples,
            "labeled": self.labeled,
            "seed": seed,
            "indices": [int(i) for i in self.indices],
            "preprocessing": self.preprocess.to_dict(),
            "value_range": [lo, hi],
        }


def load(cfg: DataConfig, input_shape: tuple[int | None, ...] | None = None) -> Dataset:
    """Read, preprocess and sample a data set.

    Args:
        cfg: path, sampling and preprocessing.
        input_shape: the model's input shape without batch (used for image folders to pick
            the size and color mode when the spec leaves them open).

    Raises:
        BadInput: missing path, unreadable or empty data, unknown layout.
    """
    path = Path(cfg.path)
    if not path.exists():
        raise BadInput(f"data not found: {shown(path)}", "check the --data path")
    y: np.ndarray | None
    if path.is_dir():
        x, y, class_names, spec = _read_image_folder(path, cfg.preprocess, input_shape)
    elif path.suffix.lower() in (".npz", ".npy"):
        x, y = _read_arrays(path)
        class_names, spec = (), cfg.preprocess
        x = _apply_numeric(x.astype(np.float32, copy=False), spec)
    else:
        raise BadInput(
            f"unknown data format: {shown(path)}", "pass a .npz (x, y), a .npy (x) or a folder of class subfolders"
        )
    if len(x) == 0:
        raise BadInput(f"data set is empty: {shown(path)}", "give a file or folder with at least one sample")
    if y is not None and len(y) != len(x):
        raise BadInput(f"{shown(path)} has {len(x)} samples but {len(y)} labels", "x and y must have the same length")
    indices = np.arange(len(x))
    if cfg.samples is not None and cfg.samples < len(x):
        rng = np.random.default_rng(cfg.seed)
        indices = np.sort(rng.choice(len(x), size=cfg.samples, replace=False))
        x = x[indices]
        y = y[indices] if y is not None else None
    return Dataset(
        x=np.ascontiguousarray(x, dtype=np.float32),
        y=y,
        indices=indices,
        source=str(path),
        sha256=sha256_file(path),
        preprocess=spec,
        class_names=class_names,
        from_images=path.is_dir(),
    )


def _read_arrays(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """x (and y) from a .npz or .npy file, recognised by content; never unpickles."""
    name = shown(path)
    try:
        with open(path, "rb") as fh:
            magic = fh.read(6)
    except OSError as exc:
        raise BadInput(f"cannot read {name} ({exc.strerror})", "check the file and its permissions") from exc
    if magic.startswith(NPY_MAGIC):
        with open(path, "rb") as fh:
            x, y = _load_array(fh, name, "x"), None
    elif magic.startswith(NPZ_MAGIC):
        x, y = _read_npz(path, name)
    else:
        kind = "npy" if path.suffix.lower() == ".npy" else "npz"
        raise BadInput(
            f"not a NumPy .{kind} file: {name}",
            "save the inputs with np.savez(f, x=x, y=y) (or np.save(f, x) for a .npy)",
        )
    _check_numeric(x, "x", name)
    if y is not None:
        y = _labels(y, name)
    return x, y


def _read_npz(path: Path, name: str) -> tuple[np.ndarray, np.ndarray | None]:
    import zipfile

    try:
        with zipfile.ZipFile(path) as zf:
            keys = [m[: -len(".npy")] for m in zf.namelist() if m.endswith(".npy")]
            if "x" not in keys:
                raise BadInput(
                    f"{name} has arrays {keys} but no 'x'", "save inputs as x (and labels as y): np.savez(f, x=x, y=y)"
                )
            with zf.open("x.npy") as fh:
                x = _load_array(fh, name, "x")
            y = None
            if "y" in keys:
                with zf.open("y.npy") as fh:
                    y = _load_array(fh, name, "y")
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise BadInput(
            f"{name} is truncated or corrupt (not a readable .npz archive)", "re-save it with np.savez"
        ) from exc
    return x, y


def _load_array(fh: IO[bytes], name: str, key: str) -> np.ndarray:
    """One stored .npy array from a seekable stream.

    Object arrays are pickles, which run code when read: they are refused from the header,
    before anything is unpickled.
    """
    fmt = np.lib.format
    try:
        version = fmt.read_magic(fh)
        read_header = {(1, 0): fmt.read_array_header_1_0, (2, 0): fmt.read_array_header_2_0}.get(version)
        if read_header is not None:
            shape, _, dtype = read_header(fh)
            if dtype.hasobject:
                raise BadInput(
                    f"array '{key}' in {name} holds Python objects (dtype object), which edgeq does not unpickle",
                    f"store '{key}' as a numeric array, e.g. np.savez(f, x=np.asarray(x, np.float32), y=y)",
                )
            nbytes = math.prod(int(d) for d in shape) * dtype.itemsize
            if nbytes > MAX_ARRAY_BYTES:
                raise BadInput(
                    f"array '{key}' in {name} declares shape {list(shape)} of {dtype}: {nbytes:,} bytes, more than "
                    f"edgeq's budget of {MAX_ARRAY_BYTES >> 30} GiB per array",
                    "use fewer samples (save a subset), or smaller ones",
                    details={"shape": list(shape), "bytes": nbytes, "cap_bytes": MAX_ARRAY_BYTES},
                )
        fh.seek(0)
        return fmt.read_array(fh, allow_pickle=False)
    except BadInput:
        raise
    except (ValueError, OSError, EOFError) as exc:
        raise BadInput(
            f"array '{key}' in {name} is truncated or corrupt ({exc})", "re-save it with np.savez / np.save"
        ) from exc


def _check_numeric(x: np.ndarray, key: str, name: str) -> None:
    if np.iscomplexobj(x):
        raise BadInput(
            f"complex-valued data in {name} (array '{key}' is {x.dtype}); models take real inputs",
            "store real features, e.g. np.stack([x.real, x.imag], axis=-1) or np.abs(x)",
        )
    if not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)):
        raise BadInput(f"{name}: {key} has dtype {x.dtype}, not numbers", f"store {key} as a numeric array")


def _labels(y: np.ndarray, name: str) -> np.ndarray:
    """Class indices from integer (or boolean) labels or one-hot rows."""
    if y.dtype != np.bool_:
        _check_numeric(y, "y", name)
    if y.ndim == 2 and y.shape[1] > 1:  # one-hot labels
        y = y.argmax(axis=1)
    y = y.reshape(-1)
    if np.issubdtype(y.dtype, np.floating) and not (np.isfinite(y).all() and (y == np.round(y)).all()):
        raise BadInput(f"{name}: labels y are not whole numbers", "store y as class indices (integers) or one-hot rows")
    return y.astype(np.int64)


def _read_image_folder(
    path: Path, spec: Preprocess, input_shape: tuple[int | None, ...] | None
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...], Preprocess]:
    from PIL import Image

    classes = sorted(d.name for d in path.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not classes:
        raise BadInput(f"image folder {shown(path)} has no class subfolders", "lay it out as DIR/<class>/<image>.png")
    # Fill what the spec leaves open from the model's input, and record it.
    if input_shape is not None and len(input_shape) == 3:
        h, w, c = input_shape
        if spec.resize is None and h and w:
            spec = replace(spec, resize=(int(h), int(w)))
        if spec.color_mode is None and c:
            spec = replace(spec, color_mode="grayscale" if c == 1 else "rgb")
    if spec.scale is None and spec.mean is None:
        spec = replace(spec, scale=DEFAULT_IMAGE_SCALE)
    if spec.color_mode is None:
        spec = replace(spec, color_mode="rgb")
    images, labels = [], []
    for label, name in enumerate(classes):
        for f in sorted((path / name).iterdir()):
            if f.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            try:
                with Image.open(f) as opened:
                    im = opened.convert("L" if spec.color_mode == "grayscale" else "RGB")
                    if spec.resize is not None:
                        im = im.resize((spec.resize[1], spec.resize[0]), Image.Resampling.BILINEAR)
                    arr = np.asarray(im, dtype=np.float32)
            except Exception as exc:
                raise BadInput(f"cannot read image {shown(f)} ({exc})", "remove or replace the file") from exc
            images.append(arr[..., None] if arr.ndim == 2 else arr)
            labels.append(label)
    if not images:
        raise BadInput(
            f"image folder {shown(path)} has no images", f"add {', '.join(IMAGE_SUFFIXES)} files under DIR/<class>/"
        )
    shapes = {im.shape for im in images}
    if len(shapes) > 1:
        raise BadInput(f"images in {shown(path)} have different sizes {sorted(shapes)[:3]}", "pass --resize HxW")
    x = _apply_numeric(np.stack(images), spec)
    return x, np.asarray(labels, dtype=np.int64), tuple(classes), spec


def _apply_numeric(x: np.ndarray, spec: Preprocess) -> np.ndarray:
    if spec.scale is not None:
        x = x * np.float32(spec.scale)
    if spec.mean is not None and spec.std is not None:
        x = (x - np.asarray(spec.mean, np.float32)) / np.asarray(spec.std, np.float32)
    return x.astype(np.float32, copy=False)


def validate(
    ds: Dataset,
    input_shape: tuple[int | None, ...],
    expected_range: tuple[float, float] | None,
    what: str = "data",
) -> list[str]:
    """Check data against a model input; return loud warnings for suspicious value ranges.

    Args:
        ds: the loaded data.
        input_shape: the model input shape without the batch axis (None = any size).
        expected_range: the value range the model expects, where it can be known.

    Raises:
        BadInput: wrong shape, NaN or Inf values.
    """
    got = tuple(ds.x.shape[1:])
    want = tuple(input_shape)
    if len(got) != len(want) or any(w is not None and w != g for g, w in zip(got, want, strict=False)):
        raise BadInput(
            f"{what} {shown(ds.source)} has sample shape {got} but the model expects {want}",
            _shape_hint(ds, got, want),
        )
    finite = np.isfinite(ds.x)
    if not finite.all():
        bad = np.argwhere(~finite.reshape(len(ds.x), -1).all(axis=1)).ravel()
        raise BadInput(
            f"{what} {shown(ds.source)} has NaN or Inf values in {len(bad)} samples (first at index {int(ds.indices[bad[0]])})",
            "clean or drop those samples",
        )
    return range_warnings(ds, expected_range, what)


def _shape_hint(ds: Dataset, got: tuple, want: tuple) -> str:
    """The fix that works for this kind of data: --resize and --color-mode act on image folders only."""
    if ds.from_images and len(got) == 3 and len(want) == 3:
        fixes = []
        if got[:2] != want[:2] and None not in want[:2]:
            fixes.append(f"--resize {want[0]}x{want[1]}")
        if want[2] is not None and got[2] != want[2]:
            fixes.append(f"--color-mode {'grayscale' if want[2] == 1 else 'rgb'}")
        if fixes:
            return "pass " + " ".join(fixes)
    if got + (1,) == want:
        return "add a channel axis to the arrays: x[..., None]"
    if len(got) == 3 and got[1:] + got[:1] == want:  # NCHW data for an NHWC model (an ONNX model's own layout)
        return "the arrays are channels-first; the model takes channels last: save x.transpose(0, 2, 3, 1)"
    dims = ", ".join("any" if w is None else str(w) for w in want)
    return f"reshape the arrays to (N, {dims}) before saving (--resize applies to image folders only)"


def range_warnings(ds: Dataset, expected: tuple[float, float] | None, what: str) -> list[str]:
    """Warn when the data's value range is far from what the model expects.

    Calibrating on data preprocessed differently from training is the most common silent
    failure: the converter succeeds and the model is quietly wrong.
    """
    lo, hi = ds.value_range()
    if expected is None:
        return []
    elo, ehi = expected
    span, espan = hi - lo, ehi - elo
    far = espan > 0 and (span > 4 * espan or span < espan / 4 or lo > ehi or hi < elo)
    if not far:
        return []
    hint = ""
    if 100 < hi <= 255.5 and ehi <= 1.5:
        hint = " (pixels in 0..255 but the model wants 0..1: pass --scale 0.00392157)"
    elif hi <= 1.5 and ehi > 100:
        hint = " (data already scaled to 0..1 but the model wants 0..255: drop --scale)"
    return [
        f"{what} {shown(ds.source)} spans [{lo:.4g}, {hi:.4g}] but the model expects about "
        f"[{elo:.4g}, {ehi:.4g}]: was it preprocessed like the training data?{hint}"
    ]
