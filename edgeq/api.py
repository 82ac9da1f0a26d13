"""The public API: one function per pipeline stage.

Each takes explicit inputs and frozen configs and returns a frozen result; nothing here
prints or exits. Heavy imports (TensorFlow, LiteRT) happen inside the functions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from edgeq.artifacts import check_output, provenance, write_artifact, write_json_atomic
from edgeq.config import DataConfig, LoadConfig, Mode, QuantizeConfig
from edgeq.errors import BadInput, OutputExists, UsageError
from edgeq.modelio import Format, LoadedModel, detect_format, keras_summary
from edgeq.modelio import load_model as _load_keras

__all__ = ["load_model", "quantize", "inspect", "evaluate", "bench", "build"]


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


def _load_data(cfg: DataConfig, input_shape: tuple, expected: tuple[float, float] | None, what: str):
    from edgeq import data

    ds = data.load(cfg, input_shape)
    warnings = data.validate(ds, input_shape, expected, what)
    return ds, warnings


@dataclass(frozen=True)
class QuantizeResult:
    output: str
    sidecar: str
    mode: str
    size_bytes: int
    reference_size_bytes: int
    float_ops: list[str]
    inputs: list[dict]
    outputs: list[dict]
    ops: dict[str, int]
    num_calibration_samples: int
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        d = dict(self.__dict__)
        d["size_ratio"] = round(self.size_bytes / self.reference_size_bytes, 4) if self.reference_size_bytes else None
        return d


def quantize(
    model_path: str,
    output: str,
    cfg: QuantizeConfig,
    data_cfg: DataConfig | None = None,
    load_cfg: LoadConfig = LoadConfig(),
    force: bool = False,
    reference_size_bytes: int | None = None,
) -> QuantizeResult:
    """Convert a Keras/SavedModel model to .tflite per ``cfg`` and verify what came out.

    Args:
        model_path: the float model.
        output: the .tflite to write (a ``.edgeq.json`` sidecar goes beside it).
        cfg: mode, I/O type, batch, whether float ops are allowed.
        data_cfg: calibration data, required for int8 and int16x8.
        force: overwrite an existing output.
        reference_size_bytes: the float .tflite's size when the caller already has it;
            otherwise a float conversion is made to measure it.

    Returns:
        Sizes, the ops still computing in float, and the I/O tensors with their quantization.

    Raises:
        UsageError: int8/int16x8 without data.
        BadInput: model or data problems; the output already exists.
        ConversionFailed: the converter failed, or its output is not what was asked.
    """
    out = check_output(output, force)
    _require_data(cfg, data_cfg)
    model = load_model(model_path, load_cfg)
    calib, warnings = _calibration(model, cfg, data_cfg)
    data, log, extra = _convert(model, cfg, calib, {})
    return _verify_and_write(
        model, out, cfg, data, log, calib, data_cfg, warnings, reference_size_bytes, "quantize", extra
    )


def _require_data(cfg: QuantizeConfig, data_cfg: DataConfig | None) -> None:
    if cfg.mode.needs_data and data_cfg is None:
        raise UsageError(
            f"{cfg.mode.value} quantization needs calibration data",
            "pass --data PATH (e.g. representative_data/mnist_calib.npz)",
        )


def _calibration(model: LoadedModel, cfg: QuantizeConfig, data_cfg: DataConfig | None):
    from edgeq.quantize import ptq

    shape = ptq.static_input_shape(model, cfg.batch)
    if data_cfg is None or not cfg.mode.needs_data:
        return None, []
    calib, warnings = _load_data(data_cfg, shape[1:], expected_input_range(model), "calibration data")
    if calib.num_samples < cfg.batch:
        raise BadInput(
            f"calibration data has {calib.num_samples} samples, fewer than --batch {cfg.batch}", "give more samples"
        )
    return calib, warnings


def _convert(model: LoadedModel, cfg: QuantizeConfig, calib, extra: dict) -> tuple[bytes, str, dict]:
    """The converted bytes, the converter's log, and provenance extras (selective adds its denylist)."""
    from edgeq.quantize import ptq

    if cfg.selective:
        return _selective(model, cfg, calib, extra)
    data, log = ptq.convert(model, cfg, calib)
    return data, log, extra


def _selective(model: LoadedModel, cfg: QuantizeConfig, calib, extra: dict) -> tuple[bytes, str, dict]:
    """int8 with the denylisted tensors and op types kept in float (via the quantization debugger)."""
    from edgeq.debug import debugger

    session = debugger.calibrate(model, calib)
    nodes = session.resolve(list(cfg.denylist))
    data = session.quantized_model(nodes, list(cfg.denylist_ops), cfg.io_type)
    return (
        data,
        session.log,
        extra | {"selective": {"denylisted_nodes": nodes, "denylisted_ops": list(cfg.denylist_ops)}},
    )


def _chosen_float(cfg: QuantizeConfig, extra: dict) -> bool:
    """Whether float ops were chosen on purpose (selective quantization, directly or by the planner)."""
    return cfg.selective or "selective" in extra or (extra.get("plan") or {}).get("chosen", "").startswith("selective")


def _verify_and_write(
    model: LoadedModel,
    out: Path,
    cfg: QuantizeConfig,
    data: bytes,
    log: str,
    calib,
    data_cfg: DataConfig | None,
    warnings: list[str],
    reference_size_bytes: int | None,
    command: str,
    extra: dict,
) -> QuantizeResult:
    """Read back and verify converted bytes, then write the .tflite and its sidecar."""
    from edgeq import flatbuffer
    from edgeq.quantize import ptq, verify

    info = flatbuffer.read_bytes(data, origin="converted model")
    check = verify.verify(info, cfg)
    verify.require(check, cfg)
    if cfg.mode == Mode.FLOAT:
        reference_size = len(data)
    elif reference_size_bytes is not None:
        reference_size = reference_size_bytes
    else:
        reference_size = len(ptq.convert(model, QuantizeConfig(mode=Mode.FLOAT, batch=cfg.batch), None)[0])
    # float ops that selective quantization asked for are the point, not a warning
    warnings = warnings + [p for p in check.problems if not _chosen_float(cfg, extra) or "compute in float" not in p]
    doc = provenance(
        command,
        cfg.to_dict(),
        {"model": model.path},
        calibration=calib.provenance(data_cfg.seed) if calib is not None and data_cfg is not None else None,
        verification={"float_ops": list(check.float_ops), "problems": list(check.problems)},
        converter_log=log[-8000:],
        warnings=warnings,
        model_format=model.format.value,
        **extra,
    )
    written, side = write_artifact(out, data, doc)
    return QuantizeResult(
        output=str(written),
        sidecar=str(side),
        mode=cfg.mode.value,
        size_bytes=len(data),
        reference_size_bytes=reference_size,
        float_ops=list(check.float_ops),
        inputs=[t.to_dict() for t in info.inputs],
        outputs=[t.to_dict() for t in info.outputs],
        ops=info.op_histogram(),
        num_calibration_samples=calib.num_samples if calib is not None else 0,
        warnings=warnings,
    )


def inspect(model_path: str, load_cfg: LoadConfig = LoadConfig()) -> dict:
    """Describe a model: I/O, op histogram, float vs integer ops, size, parameters, MACs.

    Raises:
        BadInput: missing, corrupt or unreadable model.
    """
    fmt = detect_format(model_path)
    if fmt == Format.TFLITE:
        from edgeq import flatbuffer

        info = flatbuffer.read_file(model_path)
        return {
            "path": model_path,
            "format": fmt.value,
            "size_bytes": info.size_bytes,
            "num_subgraphs": info.num_subgraphs,
            "inputs": [t.to_dict() for t in info.inputs],
            "outputs": [t.to_dict() for t in info.outputs],
            "num_ops": len(info.ops),
            "ops": info.op_histogram(),
            "compute": info.compute_histogram(),
            "float_ops": sorted(set(info.float_ops)),
            "num_float_ops": len(info.float_ops),
            "custom_ops": info.custom_ops,
            "num_parameters": info.num_parameters,
            "weight_dtypes": info.weight_dtypes,
            "macs": info.macs,
            "description": info.description,
        }
    model = load_model(model_path, load_cfg)
    summary = keras_summary(model)
    return {
        "path": model_path,
        "format": fmt.value,
        "size_bytes": int(sum(f.stat().st_size for f in Path(model_path).rglob("*") if f.is_file()))
        if Path(model_path).is_dir()
        else Path(model_path).stat().st_size,
        "inputs": [s.to_dict() for s in model.inputs],
        "outputs": [s.to_dict() for s in model.outputs],
        "expected_input_range": expected_input_range(model),
        **summary,
    }


def _reference_outputs(reference_path: str, x, load_cfg: LoadConfig):
    if detect_format(reference_path) == Format.TFLITE:
        from edgeq.runtime import open_session

        return open_session(reference_path, batch=1, origin=reference_path).predict(x)
    return load_model(reference_path, load_cfg).predict(x)


def evaluate(model_path: str, reference_path: str, data_cfg: DataConfig, load_cfg: LoadConfig = LoadConfig()) -> dict:
    """Accuracy of a .tflite and its float reference, agreement and output fidelity.

    Returns:
        ``reference.accuracy`` and ``quantized.accuracy`` (None without labels),
        ``agreement``, ``sqnr_db``, ``cosine_similarity``, mean/max absolute error.

    Raises:
        BadInput: bad model or data, labels that do not fit the outputs.
    """
    from edgeq.bench import fidelity
    from edgeq.runtime import open_session

    if detect_format(model_path) != Format.TFLITE:
        raise BadInput(
            f"{model_path} is not a .tflite model", "pass the converted .tflite first and --reference the float model"
        )
    session = open_session(model_path, batch=1, origin=model_path)
    shape = tuple(int(d) for d in session.input["shape"][1:])
    ds, warnings = _load_data(data_cfg, shape, session.input_range(), "evaluation data")
    test = session.predict(ds.x)
    ref = _reference_outputs(reference_path, ds.x, load_cfg)
    if ref.shape != test.shape:
        raise BadInput(
            f"reference outputs {ref.shape[1:]} and model outputs {test.shape[1:]} differ",
            "compare a model with its own float reference",
        )
    if ds.y is not None:
        fidelity.check_labels(ref, ds.y, ds.source)
    result = fidelity.compare(ref, test, ds.y)
    result.update({"model": model_path, "reference_model": reference_path, "data": ds.source, "warnings": warnings})
    return result


# check, compile and bench are the deployment stages (docstrings there); the API re-exports them.
from edgeq.stages.deploy import bench as bench  # noqa: E402
from edgeq.stages.deploy import check as check  # noqa: E402
from edgeq.stages.deploy import compile as compile  # noqa: E402


def build(cfg, force: bool = False, say=None, progress=None):
    """Keras model to deployable models for every target in ``cfg.targets``, with a report.

    Quantize (per ``cfg.method``: PTQ, QAT or the accuracy-budget planner), debug, check,
    compile, benchmark and report, each stage cached by the content hash of its inputs (see
    :mod:`edgeq.pipeline`). With no model and data, builds the bundled MNIST CNN.

    Args:
        cfg: an :class:`edgeq.config.BuildConfig`.
        force: write into an -o folder that is not an earlier edgeq build.
        say: called with a line per stage (progress for people).

    Returns:
        A :class:`edgeq.pipeline.BuildResult`.

    Raises:
        UsageError: unknown target or conflicting options.
        BadInput, ConversionFailed: as the stages raise.
        QualityGateFailed: the budget is missed (the report is written first).
    """
    from edgeq import pipeline

    return pipeline.run(cfg, force=force, say=say, progress=progress)


def report(run_dir: str) -> list[str]:
    """Re-render report.html and report.md of a build folder from its manifests."""
    from edgeq.report import render

    return [str(p) for p in render.write(Path(run_dir))]


def _trainable_model(
    model_ref: str, data_shape: tuple, num_labels: int | None, load_cfg: LoadConfig, zoo_args: dict | None = None
):
    """A tf_keras model to train: a zoo name built for the data, or a model file (Keras 3
    files are moved to tf_keras). Returns the model, a description, and migration notes."""
    from edgeq import zoo

    if model_ref in zoo.names():
        card = zoo.card(model_ref)
        kwargs: dict = {"input_shape": data_shape}
        if card.get("kind") == "autoencoder":
            kwargs = {"input_dim": int(data_shape[0])} if len(data_shape) == 1 else kwargs
        elif num_labels is not None:
            kwargs["num_classes"] = num_labels
        kwargs.update(zoo_args or {})
        return zoo.build(model_ref, **kwargs), f"zoo:{model_ref}", []
    if zoo_args:
        raise UsageError("--zoo-arg is for zoo models", f"{model_ref} is a model file")
    loaded = load_model(model_ref, load_cfg)
    if not loaded.is_keras:
        raise BadInput(f"{model_ref} is a SavedModel; training needs a Keras model", "pass the .keras or .h5 file")
    if loaded.format == Format.KERAS3:
        from edgeq.keras_migrate import to_tf_keras

        obj, dropped = to_tf_keras(loaded.obj)
        return (
            obj,
            model_ref,
            [f"moved from Keras 3 to tf_keras; dropped Keras 3-only settings: {', '.join(dropped)}"]
            if dropped
            else ["moved from Keras 3 to tf_keras"],
        )
    return loaded.obj, model_ref, []


def _train_data(data_cfg: DataConfig, val_cfg: DataConfig | None, cfg, input_shape):
    from edgeq import data
    from edgeq import train as training

    train_ds = data.load(data_cfg, input_shape)
    warnings = data.validate(train_ds, input_shape, None, "training data")
    if val_cfg is not None:
        val_ds = data.load(val_cfg, input_shape)
        warnings += data.validate(val_ds, input_shape, None, "validation data")
    else:
        train_ds, val_ds = training.split(train_ds, cfg.val_split, cfg.seed)
    return train_ds, val_ds, warnings


@dataclass(frozen=True)
class TrainSummary:
    output: str
    sidecar: str
    model: str
    checkpoint_dir: str
    training: dict
    qat_layers: list[dict]
    notes: list[str]
    warnings: list[str]

    def to_dict(self) -> dict:
        d = dict(self.__dict__)
        d["history"] = self.training["history"]
        d["best_val_accuracy"] = self.training["best_val_accuracy"]
        return d


def train(
    model_ref: str,
    data_cfg: DataConfig,
    output: str,
    cfg,
    val_cfg: DataConfig | None = None,
    qat: bool = False,
    weights: str | None = None,
    checkpoint_dir: str | None = None,
    resume: bool = False,
    load_cfg: LoadConfig = LoadConfig(),
    force: bool = False,
    progress=None,
    zoo_args: dict | None = None,
) -> TrainSummary:
    """Train a zoo model or fine-tune a model file; with ``qat``, quantization-aware.

    Args:
        model_ref: a zoo name (``edgeq.zoo.names()``) or a .keras/.h5 file.
        data_cfg: labeled training data (x only for autoencoders with ``cfg.loss``).
        output: the .keras to write; checkpoints go to ``checkpoint_dir`` (default OUTPUT.ckpt).
        cfg: a :class:`edgeq.config.TrainConfig`.
        val_cfg: validation data; default: ``cfg.val_split`` of the training data.
        qat: wrap the model for quantization-aware training (TF-MOT) first.
        weights: initial weights to load (a .weights.h5 or .h5 file).
        resume: continue an interrupted run from its checkpoints.
        zoo_args: factory options for a zoo model (e.g. ``{"alpha": 0.35}``).

    Returns:
        The output path, the history and best validation accuracy, QAT's per-layer plan.

    Raises:
        UsageError: output not a .keras file.
        BadInput: bad model, data, labels or weights; nothing to resume.
    """
    from edgeq import data
    from edgeq import train as training
    from edgeq.quantize import qat as qat_mod

    suffix = Path(output).suffix
    if qat and suffix != ".h5":
        raise UsageError(
            f"a QAT model must be saved as .h5, got {output}",
            "use -o model_qat.h5 (TF-MOT's wrappers do not reload from the .keras format)",
        )
    if suffix not in (".keras", ".h5"):
        raise UsageError(f"training output must be a .keras or .h5 file, got {output}", "e.g. -o model.keras")
    out = check_output(output, force or resume)
    probe = data.load(data_cfg)
    num_labels = int(probe.y.max()) + 1 if probe.y is not None else None
    model, described, notes = _trainable_model(model_ref, tuple(probe.x.shape[1:]), num_labels, load_cfg, zoo_args)
    if weights:
        try:
            model.load_weights(weights)
        except Exception as exc:
            raise BadInput(
                f"cannot load weights {weights} into {described} ({str(exc).splitlines()[0][:200]})",
                "pass weights saved from the same architecture",
            ) from exc
    input_shape = tuple(model.inputs[0].shape[1:])
    train_ds, val_ds, warnings = _train_data(data_cfg, val_cfg, cfg, input_shape)
    task = training.resolve_task(model, train_ds, cfg.loss)
    if qat:
        model, fold_notes = qat_mod.prepare(model)
        notes = notes + fold_notes
    plans = qat_mod.plan(model) if qat else []
    base_weights = model.get_weights()

    def build():
        import tf_keras

        fresh = tf_keras.models.clone_model(model, clone_function=qat_mod.clone_layer)
        fresh.set_weights(base_weights)
        return qat_mod.apply(fresh, plans) if qat else fresh

    ckpt = Path(checkpoint_dir or f"{out}.ckpt")
    scope = qat_mod.scope if qat else None
    trained, result = training.fit(
        build, train_ds, val_ds, task, cfg, ckpt, resume, progress, **({"scope": scope} if scope else {})
    )
    training.save_model_atomic(trained, out)
    lo, hi = train_ds.value_range()
    doc = provenance(
        "train",
        cfg.to_dict(),
        {"data": data_cfg.path} | ({"model": model_ref} if Path(model_ref).exists() else {}),
        model=described,
        qat=qat,
        qat_layers=[p.to_dict() for p in plans],
        data={"train": train_ds.provenance(data_cfg.seed) | {"indices": None}, "value_range": [lo, hi]},
        training=result.to_dict(),
        notes=notes,
    )
    from edgeq.artifacts import sha256_bytes, sidecar_path

    doc["output"] = {"path": str(out), "sha256": sha256_bytes(out.read_bytes()), "size_bytes": out.stat().st_size}
    write_json_atomic(sidecar_path(out), doc)
    notes = notes + (qat_mod.target_impact(plans) if qat else [])
    return TrainSummary(
        output=str(out),
        sidecar=str(sidecar_path(out)),
        model=described,
        checkpoint_dir=str(ckpt),
        training=result.to_dict(),
        qat_layers=[p.to_dict() for p in plans],
        notes=notes,
        warnings=warnings,
    )


def _accuracy_of(tflite: bytes, ds) -> float:
    from edgeq.bench import fidelity
    from edgeq.runtime import open_session

    return fidelity.top1_accuracy(open_session(tflite, batch=1).predict(ds.x), ds.y)


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
    out = check_output(output, force)
    float_model = load_model(model_path, load_cfg)
    model, _, notes = _trainable_model(model_path, (), None, load_cfg)
    input_shape = tuple(model.inputs[0].shape[1:])
    train_ds, val_ds, warnings = _train_data(train_data_cfg, None, train_cfg, input_shape)
    task = training.resolve_task(model, train_ds, train_cfg.loss)
    model, fold_notes = qat_mod.prepare(model)
    notes = notes + fold_notes
    plans = qat_mod.plan(model)
    weights = model.get_weights()

    def build():
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
    calib, cal_warnings = _calibration(float_model, cfg, calib_cfg)
    qat_loaded = from_keras(qat_model, model_path, Format.TF_KERAS, float_model.value_range)
    float_size = len(ptq.convert(float_model, QuantizeConfig(mode=Mode.FLOAT, batch=cfg.batch), None)[0])
    qat_info = {
        "layers": [p.to_dict() for p in plans],
        "training": result.to_dict(),
        "target_impact": qat_mod.target_impact(plans),
        "notes": notes,
    }
    tflite, log, extra = _convert(qat_loaded, cfg, calib, {"qat": qat_info})
    res = _verify_and_write(
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
    if eval_cfg is not None:
        ev = data.load(eval_cfg, input_shape)
        doc["warnings"] = doc["warnings"] + data.validate(
            ev, input_shape, expected_input_range(float_model), "evaluation data"
        )
        if ev.y is None:
            raise BadInput(f"evaluation data {ev.source} has no labels", "give --eval-data with y labels")
        from edgeq.bench import fidelity

        ptq_bytes, _ = ptq.convert(float_model, cfg, calib)
        doc["accuracy"] = {
            "num_samples": ev.num_samples,
            "float": fidelity.top1_accuracy(float_model.predict(ev.x), ev.y),
            "ptq": _accuracy_of(ptq_bytes, ev),
            "qat": _accuracy_of(out.read_bytes(), ev),
        }
    return doc


DEBUG_FILES = ("layers.csv", "layers.json", "rmse_over_scale.png")


def debug(
    model_path: str,
    data_cfg: DataConfig,
    out_dir: str,
    eval_cfg: DataConfig | None = None,
    load_cfg: LoadConfig = LoadConfig(),
    force: bool = False,
) -> dict:
    """Run TFLite's Quantization Debugger and write the per-layer table (CSV, JSON) and chart.

    Args:
        model_path: the float Keras or SavedModel model.
        data_cfg: calibration data (also the debug samples when no ``eval_cfg``).
        out_dir: gets layers.csv, layers.json and rmse_over_scale.png.
        eval_cfg: data for the model-level metrics (and per-class accuracy when labeled).

    Returns:
        Layers, the worst ones, model-level metrics (SQNR, agreement, accuracies, per class).

    Raises:
        OutputExists: earlier debug files in ``out_dir`` without ``force``.
    """
    import csv
    import io

    from edgeq.bench import fidelity
    from edgeq.debug import debugger, metrics, plot
    from edgeq.runtime import open_session

    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise BadInput(f"{out} is a file", "give a folder with -o")
    existing = [f for f in DEBUG_FILES if (out / f).exists()]
    if existing and not force:
        raise OutputExists(f"{out} already holds {', '.join(existing)}", "pass --force or choose another -o")
    model = load_model(model_path, load_cfg)
    calib, warnings = _calibration(model, QuantizeConfig(), data_cfg)
    session = debugger.calibrate(model, calib)
    ev = calib
    if eval_cfg is not None:
        ev, more = _load_data(eval_cfg, tuple(calib.x.shape[1:]), expected_input_range(model), "evaluation data")
        warnings += more
    quantized = open_session(session.quantized_model(), batch=1).predict(ev.x)
    reference = model.predict(ev.x)
    if ev.y is not None:
        fidelity.check_labels(reference, ev.y, ev.source)
    model_metrics = fidelity.compare(reference, quantized, ev.y)
    layers = [s.to_dict() for s in session.layers]
    worst = [s.to_dict() for s in metrics.worst(session.layers)]
    doc = {
        "model": model_path,
        "num_layers": len(layers),
        "layers": layers,
        "worst_layers": worst,
        "healthy_rmse_over_scale": metrics.HEALTHY_RMSE_OVER_SCALE,
        "suspect_layers": [s["tensor_name"] for s in layers if s["rmse_over_scale"] > metrics.SUSPECT_RMSE_OVER_SCALE],
        "model_metrics": model_metrics,
        "classes_that_lost_most": (model_metrics.get("per_class") or [])[:5],
        "calibration": calib.provenance(data_cfg.seed),
        "eval_data": ev.source,
        "warnings": warnings,
    }
    out.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    fields = list(layers[0]) if layers else ["index"]
    writer = csv.DictWriter(buf, fieldnames=fields)
    writer.writeheader()
    writer.writerows(layers)
    from edgeq.artifacts import write_bytes_atomic

    write_bytes_atomic(out / "layers.csv", buf.getvalue().encode())
    write_json_atomic(out / "layers.json", provenance("debug", {}, {"model": model_path}, **doc))
    plot.write(out / "rmse_over_scale.png", session.layers, f"{Path(model_path).name}: int8 error per layer")
    doc["artifacts"] = [str(out / f) for f in DEBUG_FILES]
    return doc


def plan(
    model_path: str,
    output: str,
    target: str,
    budget,
    data_cfg: DataConfig,
    eval_cfg: DataConfig | None,
    io=None,
    train_data_cfg: DataConfig | None = None,
    train_cfg=None,
    load_cfg: LoadConfig = LoadConfig(),
    force: bool = False,
    progress=None,
) -> dict:
    """Find the cheapest quantization of ``model_path`` that meets ``budget`` on ``target``.

    Args:
        budget: an :class:`edgeq.quantize.planner.Budget` (max drop in points, min SQNR,
            max per-class drop).
        data_cfg: calibration data. eval_cfg: evaluation data (labeled for --max-drop).
        io: I/O type of the result (int8 by default; float leaves the I/O in float).
        train_data_cfg, train_cfg: enable the QAT candidate.

    Returns:
        The chosen plan and its output, and every step tried with accuracy, size, float-op
        count and ops that leave the accelerator.

    Raises:
        UsageError: --max-drop without evaluation data.
        BadInput: unlabeled evaluation data without --min-sqnr.
        QualityGateFailed: no candidate meets the budget (details carry every step).
    """
    import tempfile

    from edgeq.config import IOType, TrainConfig
    from edgeq.debug import debugger
    from edgeq.errors import QualityGateFailed
    from edgeq.quantize import planner, ptq
    from edgeq.targets import registry

    io = IOType(io) if io else IOType.INT8
    if eval_cfg is None:
        raise UsageError("the planner needs evaluation data", "pass --eval-data PATH (labeled for --max-drop)")
    tgt = registry.get(target)
    out = check_output(output, force)
    model = load_model(model_path, load_cfg)
    calib, warnings = _calibration(model, QuantizeConfig(), data_cfg)
    ev, more = _load_data(eval_cfg, tuple(calib.x.shape[1:]), expected_input_range(model), "evaluation data")
    warnings += more
    if ev.y is None and budget.max_drop is not None:
        raise BadInput(
            f"evaluation data {ev.source} has no labels, so --max-drop cannot be measured",
            "give labels (y), or use --min-sqnr DB",
        )
    if ev.y is None and budget.max_class_drop is not None:
        raise BadInput(f"evaluation data {ev.source} has no labels for --max-class-drop", "give labels (y)")
    reference = model.predict(ev.x)
    if ev.y is not None:
        from edgeq.bench import fidelity

        fidelity.check_labels(reference, ev.y, ev.source)
    p = planner.Planner(reference, ev.x, ev.y, budget, planner.Profile.of(tgt))
    session_holder: dict = {}

    def session():
        if "s" not in session_holder:
            session_holder["s"] = debugger.calibrate(model, calib)
        return session_holder["s"]

    def build_qat() -> bytes:
        with tempfile.TemporaryDirectory(prefix="edgeq-plan-") as tmp:
            doc = quantize_aware(
                model_path,
                f"{tmp}/qat.tflite",
                QuantizeConfig(io=io),
                train_data_cfg,
                train_cfg or TrainConfig(epochs=2, learning_rate=1e-4),
                data_cfg,
                None,
                load_cfg,
                progress=progress,
            )
            session_holder["qat"] = doc["qat"]
            return Path(doc["output"]).read_bytes()

    result = planner.run(
        p,
        ptq=lambda: ptq.convert(model, QuantizeConfig(io=io), calib)[0],
        selective=lambda nodes: session().quantized_model(nodes, [], io),
        sensitivity=lambda: debugger.sensitivity_groups(session()),
        int16=lambda: ptq.convert(
            model, QuantizeConfig(mode=Mode.INT16X8, io=IOType.FLOAT if io != IOType.FLOAT else io), calib
        )[0],
        qat=build_qat if train_data_cfg is not None else None,
    )
    summary = result.to_dict() | {
        "target": target,
        "budget": budget.to_dict(),
        "profile": planner.Profile.of(tgt).__dict__,
    }
    if result.chosen is None:
        best = result.best
        raise QualityGateFailed(
            f"no quantization of {model_path} meets the budget on {target}"
            + (f"; best: {best.name} ({'; '.join(best.misses)})" if best else ""),
            "raise the budget, give --train-data for QAT, or see the steps with --json",
            details=summary,
        )
    chosen = result.chosen
    cfg = QuantizeConfig(
        mode=Mode.INT16X8 if chosen.method == "int16x8" else Mode.INT8,
        io=IOType.FLOAT if chosen.method == "int16x8" and io != IOType.FLOAT else io,
        allow_float_ops=chosen.method == "selective",
    )
    extra = {"plan": summary}
    if "qat" in session_holder and chosen.method == "qat":
        extra["qat"] = session_holder["qat"]
    assert chosen.data is not None
    res = _verify_and_write(
        model, out, cfg, chosen.data, "", calib, data_cfg, warnings, None, "quantize --max-drop", extra
    )
    return res.to_dict() | {"plan": summary}
