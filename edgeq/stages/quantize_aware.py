"""``quantize_aware``: QAT fine-tuning with TF-MOT, then a full-integer conversion verified like every output."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from edgeq.artifacts import check_output, write_artifact
from edgeq.config import DataConfig, LoadConfig, Mode, QuantizeConfig
from edgeq.errors import BadInput, UsageError
from edgeq.modelio import Format
from edgeq.stages.common import calibration, expected_input_range, input_paths, load_model
from edgeq.stages.quantize import convert, verified
from edgeq.stages.train import train_data, trainable_model

if TYPE_CHECKING:
    import numpy as np

    from edgeq.data import Dataset


def accuracy_of(tflite: bytes, x: np.ndarray, labels: np.ndarray) -> float:
    from edgeq.bench import fidelity
    from edgeq.runtime import open_session

    return fidelity.top1_accuracy(open_session(tflite, batch=1).predict(x), labels)


def quantize_aware(
    model_path: str,
    output: str,
    cfg: QuantizeConfig,
    train_data_cfg: DataConfig,
    train_cfg,
    data_cfg: DataConfig | None = None,
    eval_cfg: DataConfig | None = None,
    load_cfg: LoadConfig = LoadConfig(),
    force: bool = False,
    progress=None,
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
    labeled: tuple[Dataset, np.ndarray] | None = None  # the evaluation data and its labels
    if eval_cfg is not None:  # before the training: an unusable evaluation set must not cost an epoch
        ev = data.load(eval_cfg, input_shape)
        if ev.y is None:
            raise BadInput(f"evaluation data {ev.source} has no labels", "give --eval-data with y labels")
        labeled = ev, ev.y
    train_ds, val_ds, warnings = train_data(train_data_cfg, None, train_cfg, input_shape)
    task = training.resolve_task(model, train_ds, train_cfg.loss)
    model, fold_notes = qat_mod.prepare(model)
    notes = notes + fold_notes
    plans = qat_mod.plan(model)
    weights = model.get_weights()

    def build() -> Any:
        import tf_keras

        fresh = tf_keras.models.clone_model(model, clone_function=qat_mod.clone_layer)
        fresh.set_weights(weights)
        return qat_mod.apply(fresh, plans)

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
    res, sidecar = verified(
        qat_loaded,
        out,
        cfg,
        tflite,
        log,
        calib,
        calib_cfg,
        warnings + cal_warnings,
        float_size,
        "quantize --qat",
        extra,
    )
    doc = res.to_dict() | {"qat": qat_info, "accuracy": None}
    if labeled is not None:
        ev, labels = labeled
        doc["warnings"] = doc["warnings"] + data.validate(
            ev, input_shape, expected_input_range(float_model), "evaluation data"
        )
        from edgeq.bench import fidelity

        ptq_bytes, _ = ptq.convert(float_model, cfg, calib)
        doc["accuracy"] = {
            "num_samples": ev.num_samples,
            "float": fidelity.top1_accuracy(float_model.predict(ev.x), labels),
            "ptq": accuracy_of(ptq_bytes, ev.x, labels),
            "qat": accuracy_of(tflite, ev.x, labels),
        }
    write_artifact(out, tflite, sidecar)  # last: whatever failed above left no file behind
    return doc
