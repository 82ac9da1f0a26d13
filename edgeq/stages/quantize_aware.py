"""``quantize_aware``: QAT fine-tuning with TF-MOT, then a full-integer conversion verified like every output."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from edgeq.artifacts import check_output, write_artifact
from edgeq.config import DataConfig, LoadConfig, Mode, QuantizeConfig
from edgeq.errors import BadInput, UsageError
from edgeq.modelio import Format
from edgeq.stages.common import calibration, expected_input_range, input_paths, load_model
from edgeq.stages.quantize import convert, verified
from edgeq.stages.train import builder, train_data, trainable_model

if TYPE_CHECKING:
    import numpy as np

    from edgeq.config import TrainConfig
    from edgeq.data import Dataset
    from edgeq.modelio import LoadedModel


def accuracy_of(tflite: bytes, x: np.ndarray, labels: np.ndarray) -> float:
    from edgeq.bench import fidelity
    from edgeq.runtime import open_session

    return fidelity.top1_accuracy(open_session(tflite, batch=1).predict(x), labels)


def _labeled(eval_cfg: DataConfig, input_shape: tuple) -> tuple[Dataset, np.ndarray]:
    """The evaluation data and its labels."""
    from edgeq import data

    ev = data.load(eval_cfg, input_shape)
    if ev.y is None:
        raise BadInput(f"evaluation data {ev.source} has no labels", "give --eval-data with y labels")
    return ev, ev.y


def _side_by_side(
    float_model: LoadedModel, cfg: QuantizeConfig, calib: Any, tflite: bytes, ev: Dataset, labels: np.ndarray
) -> dict:
    """Top-1 accuracy of the float model, its plain PTQ conversion and the QAT model on ``ev``."""
    from edgeq.bench import fidelity
    from edgeq.quantize import ptq

    ptq_bytes, _ = ptq.convert(float_model, cfg, calib)
    return {
        "num_samples": ev.num_samples,
        "float": fidelity.top1_accuracy(float_model.predict(ev.x), labels),
        "ptq": accuracy_of(ptq_bytes, ev.x, labels),
        "qat": accuracy_of(tflite, ev.x, labels),
    }


def quantize_aware(
    model_path: str,
    output: str,
    cfg: QuantizeConfig,
    train_data_cfg: DataConfig,
    train_cfg: TrainConfig,
    data_cfg: DataConfig | None = None,
    eval_cfg: DataConfig | None = None,
    load_cfg: LoadConfig = LoadConfig(),
    force: bool = False,
    progress: Callable[[dict], None] | None = None,
) -> dict:
    """QAT fine-tuning with TF-MOT, then full-integer conversion, verified like every output.

    Args:
        model_path: the float Keras model (Keras 3 files are moved to tf_keras).
        output: the .tflite to write.
        cfg: the conversion (int8; I/O type).
        train_data_cfg: labeled data for fine-tuning.
        train_cfg: epochs, learning rate, ... (a :class:`edgeq.config.TrainConfig`).
        data_cfg: calibration data for layers trained without fake quantization;
            default: 200 seeded samples of the training data.
        eval_cfg: labeled data to report float, PTQ and QAT accuracy side by side.

    Returns:
        The quantize result fields plus ``qat`` (per-layer plan, training summary) and,
        with ``eval_cfg``, ``accuracy`` {float, ptq, qat}.

    Raises:
        UsageError: a mode other than int8.
        BadInput, ConversionFailed: as the stages raise.
    """
    from edgeq import data
    from edgeq import train as training
    from edgeq.modelio import from_keras
    from edgeq.quantize import ptq
    from edgeq.quantize import qat as qat_mod

    if cfg.mode != Mode.INT8:
        raise UsageError(f"--qat makes int8 models, not {cfg.mode.value}", "use --mode int8 with --qat")
    out = check_output(output, force, input_paths(model_path, train_data_cfg, data_cfg, eval_cfg))
    float_model = load_model(model_path, load_cfg)
    model, _, notes = trainable_model(model_path, (), None, load_cfg)
    input_shape = tuple(model.inputs[0].shape[1:])
    # before the training: an unusable evaluation set must not cost an epoch
    labeled = _labeled(eval_cfg, input_shape) if eval_cfg is not None else None
    train_ds, val_ds, warnings = train_data(train_data_cfg, None, train_cfg, input_shape)
    task = training.resolve_task(model, train_ds, train_cfg.loss)
    build, plans, fold_notes = builder(model, qat=True)
    notes = notes + fold_notes
    # no checkpoint files: quantize --qat has no --resume, so the best weights stay in memory
    qat_model, result = training.fit(
        build, train_ds, val_ds, task, train_cfg, None, progress=progress, scope=qat_mod.scope
    )
    calib_cfg = data_cfg or DataConfig(
        path=train_data_cfg.path, samples=200, seed=train_data_cfg.seed, preprocess=train_data_cfg.preprocess
    )
    calib, cal_warnings = calibration(float_model, cfg, calib_cfg)
    qat_loaded = from_keras(qat_model, model_path, Format.TF_KERAS, float_model.value_range)
    float_size = len(ptq.convert(float_model, QuantizeConfig(mode=Mode.FLOAT, batch=cfg.batch), None)[0])
    qat_info = {
        "layers": [p.to_dict() for p in plans],
        "training": result.to_dict(),
        "target_impact": qat_mod.target_impact(plans),
        "notes": notes,
    }
    tflite, log, extra = convert(qat_loaded, cfg, calib, {"qat": qat_info})
    warnings = warnings + cal_warnings
    res, sidecar = verified(
        qat_loaded, out, cfg, tflite, log, calib, calib_cfg, warnings, float_size, "quantize --qat", extra
    )
    doc = res.to_dict() | {"qat": qat_info, "accuracy": None}
    if labeled is not None:
        ev, labels = labeled
        doc["warnings"] = doc["warnings"] + data.validate(
            ev, input_shape, expected_input_range(float_model), "evaluation data"
        )
        doc["accuracy"] = _side_by_side(float_model, cfg, calib, tflite, ev, labels)
    write_artifact(out, tflite, sidecar)  # last: whatever failed above left no file behind
    return doc
