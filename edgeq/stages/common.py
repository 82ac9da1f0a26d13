"""What several stages share: loading the float model, its expected input range, data, inputs."""

from __future__ import annotations

from edgeq.config import DataConfig, LoadConfig, QuantizeConfig
from edgeq.errors import BadInput, UsageError
from edgeq.modelio import LoadedModel
from edgeq.modelio import load_model as _load_keras


def load_model(path: str, cfg: LoadConfig = LoadConfig()) -> LoadedModel:
    """Load a Keras (3 or tf_keras), .h5 or SavedModel model as the float reference.

    Raises:
        BadInput: missing, corrupt, or refused in safe mode.
    """
    return _load_keras(path, cfg)


def expected_input_range(model: LoadedModel) -> tuple[float, float] | None:
    """The value range the model was trained on, as far as it can be known.

    From the model's sidecar (edgeq records the training data range), or a leading
    Rescaling(1/255) or Rescaling(1/127.5) layer, which means the model takes raw 0..255 pixels.
    """
    if model.value_range is not None:
        return model.value_range
    if model.is_keras:
        for layer in model.obj.layers:
            name = type(layer).__name__
            if name == "InputLayer":
                continue
            if name == "Rescaling" and any(abs(layer.scale * d - 1) < 0.01 for d in (255.0, 127.5)):
                return (0.0, 255.0)  # Rescaling(1/255) or (1/127.5): the model takes raw pixels
            break
    return None


def load_data(cfg: DataConfig, input_shape: tuple, expected: tuple[float, float] | None, what: str):
    from edgeq import data

    ds = data.load(cfg, input_shape)
    warnings = data.validate(ds, input_shape, expected, what)
    return ds, warnings


def input_paths(*inputs: str | DataConfig | None) -> list[str]:
    """The files a command reads, which its outputs must never replace."""
    return [i.path if isinstance(i, DataConfig) else i for i in inputs if i is not None]


def require_data(cfg: QuantizeConfig, data_cfg: DataConfig | None) -> None:
    if cfg.mode.needs_data and data_cfg is None:
        raise UsageError(
            f"{cfg.mode.value} quantization needs calibration data",
            "pass --data PATH (e.g. representative_data/mnist_calib.npz)",
        )


def calibration(model: LoadedModel, cfg: QuantizeConfig, data_cfg: DataConfig | None):
    from edgeq.quantize import ptq

    shape = ptq.static_input_shape(model, cfg.batch)
    if data_cfg is None or not cfg.mode.needs_data:
        return None, []
    calib, warnings = load_data(data_cfg, shape[1:], expected_input_range(model), "calibration data")
    if calib.num_samples < cfg.batch:
        raise BadInput(
            f"calibration data has {calib.num_samples} samples, fewer than --batch {cfg.batch}", "give more samples"
        )
    return calib, warnings
