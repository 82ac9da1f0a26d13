"""Fixtures for the accuracy techniques: the bundled MNIST CNN, its data and its plain int8 model."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import DATA, ROOT


@dataclass
class Bundled:
    model: object  # LoadedModel
    calib: object  # Dataset
    eval_x: np.ndarray
    eval_y: np.ndarray
    reference: np.ndarray  # float outputs on eval_x
    plain: bytes  # the plain converter's int8 model


@pytest.fixture(scope="session")
def bundled() -> Bundled:
    from edgeq.config import DataConfig, QuantizeConfig
    from edgeq.data import load
    from edgeq.modelio import load_model
    from edgeq.quantize import ptq

    model = load_model(str(ROOT / "models" / "mnist_cnn.keras"))
    calib = load(DataConfig(str(DATA / "mnist_calib.npz")))
    ev = load(DataConfig(str(DATA / "mnist_eval.npz"), samples=600, seed=1))
    plain, _ = ptq.convert(model, QuantizeConfig(), calib)
    assert ev.y is not None
    return Bundled(model, calib, ev.x, ev.y, model.predict(ev.x), plain)


@pytest.fixture(scope="session")
def hostile_path(tmp_path_factory) -> Path:
    """tests/hostile.py's CNN: two conv1 channels scaled 1000x, conv2's matching inputs 1/1000."""
    from tests.hostile import make_hostile_model

    return make_hostile_model(tmp_path_factory.mktemp("hostile") / "hostile.keras")


def predict_tflite(data: bytes, x: np.ndarray) -> np.ndarray:
    from edgeq.runtime import open_session

    return open_session(data).predict(x)
