"""Fuzz the data reader (edgeq.data.load): .npy, .npz and image folders.

    EDGEQ_FUZZ_SECONDS=600 python fuzz/fuzz_data.py

The first input byte picks the layout (.npy, .npz, or one image in a class folder), the rest is the
file. Anything but a BadInput (or UsageError) is a finding.
"""

from __future__ import annotations

import io
import sys
import tempfile
from pathlib import Path

import atheris
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

with atheris.instrument_imports(include=["edgeq"]):
    from edgeq import data
    from edgeq.config import DataConfig

from common import main  # noqa: E402

TMP = Path(tempfile.mkdtemp(prefix="edgeq-fuzz-data-"))
LAYOUTS = ("npy", "npz", "png")


def target(raw: bytes) -> None:
    if not raw:
        return
    layout = LAYOUTS[raw[0] % len(LAYOUTS)]
    body = raw[1:]
    if layout == "png":
        folder = TMP / "images"
        (folder / "a").mkdir(parents=True, exist_ok=True)
        (folder / "a" / "x.png").write_bytes(body)
        path = folder
    else:
        path = TMP / f"d.{layout}"
        path.write_bytes(body)
    data.load(DataConfig(path=str(path), samples=4), input_shape=(8, 8, 1))


def seeds() -> list[bytes]:
    out = []
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    np.save(buf, rng.random((3, 4, 4, 1), dtype=np.float32))
    out.append(bytes([0]) + buf.getvalue())
    for y in (np.arange(3), np.eye(3)):
        buf = io.BytesIO()
        np.savez(buf, x=rng.integers(0, 255, (3, 4, 4, 1), dtype=np.uint8), y=y)
        out.append(bytes([1]) + buf.getvalue())
    from PIL import Image

    for mode in ("L", "RGB", "RGBA", "P"):
        buf = io.BytesIO()
        Image.new(mode, (5, 3)).save(buf, format="PNG")
        out.append(bytes([2]) + buf.getvalue())
    return out


if __name__ == "__main__":
    main("data", target, seeds(), [])
