"""The build's inputs: the model and data given, or the bundled ones; each checked before any folder is made."""

from __future__ import annotations

import os
from pathlib import Path

from edgeq import bundled
from edgeq.artifacts import sha256_file
from edgeq.config import BuildConfig, Method
from edgeq.errors import BadInput


def resolve_inputs(cfg: BuildConfig) -> dict[str, str | None]:
    # the bundled model, by default or by its path (edgeq build models/mnist_cnn.keras), takes the bundled data
    bundled_model = cfg.model is None or _is_bundled_model(cfg.model)
    model = cfg.model or bundled.require(bundled.MODEL)
    data = cfg.data or (bundled.require(bundled.CALIB) if bundled_model else None)
    if data is None:
        raise BadInput("no calibration data", "pass --data PATH (or data = ... in edgeq.toml)")
    eval_data = cfg.eval_data or (bundled.require(bundled.EVAL) if bundled_model else None)
    train = cfg.train_data or (bundled.require(bundled.TRAIN) if bundled_model and cfg.method == Method.QAT else None)
    if cfg.method == Method.QAT and train is None:
        raise BadInput("--method qat needs training data", "pass --train-data PATH")
    io = {"model": model, "data": data, "eval_data": eval_data, "train_data": train}
    _check_inputs(io)
    from edgeq.modelio import check_safe

    check_safe(model, cfg.load)  # a model safe mode refuses fails here, not after the first stages
    return io


def _is_bundled_model(path: str) -> bool:
    try:
        return Path(path).resolve() == bundled.MODEL.resolve()
    except (OSError, RuntimeError, ValueError):  # an unresolvable path is not the bundled model
        return False


def _check_inputs(io: dict[str, str | None]) -> None:
    """Every input exists and is readable, before any folder is made."""
    from edgeq.modelio import detect_format

    for what, path in io.items():
        if path is None:
            continue
        label = "model file" if what == "model" else "data file"
        if not Path(path).exists():
            raise BadInput(f"{label} not found: {path}", "check the path")
        try:
            if Path(path).is_file():
                with open(path, "rb") as fh:
                    fh.read(1)
            else:
                os.listdir(path)
        except OSError as exc:
            raise BadInput(f"cannot read {label} {path} ({exc.strerror})", "check its permissions") from exc
    detect_format(str(io["model"]))  # a corrupt or unknown model fails here too, not inside a stage


def sha_of(path: str | None) -> str | None:
    return sha256_file(path) if path else None
