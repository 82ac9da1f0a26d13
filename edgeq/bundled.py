"""Where the bundled default model and data live (a source checkout's models/ and representative_data/)."""

from __future__ import annotations

from pathlib import Path

from edgeq.errors import Unavailable

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "models" / "mnist_cnn.keras"
CALIB = ROOT / "representative_data" / "mnist_calib.npz"
EVAL = ROOT / "representative_data" / "mnist_eval.npz"
TRAIN = ROOT / "representative_data" / "mnist_train.npz"


def require(path: Path) -> str:
    if not path.exists():
        raise Unavailable(
            f"bundled file {path.name} not found at {path}",
            "run from a source checkout of edgeq, or pass the model and --data yourself",
        )
    return str(path)
