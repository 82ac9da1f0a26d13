"""``train``: a zoo model trained, or a model file fine-tuned (optionally quantization-aware), with checkpoints."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgeq.artifacts import Outputs, check_output, provenance, refuse_overwriting_inputs, sidecar_path
from edgeq.config import DataConfig, LoadConfig
from edgeq.errors import BadInput, OutputExists, UsageError
from edgeq.modelio import Format, detect_format
from edgeq.stages.common import input_paths, load_model

if TYPE_CHECKING:
    from edgeq.config import TrainConfig
    from edgeq.data import Dataset
    from edgeq.quantize.qat import LayerPlan


def trainable_model(
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
        kind = (
            "an ONNX model (run as the TensorFlow graph onnx2tf converts it to)"
            if detect_format(model_ref) == Format.ONNX
            else "a SavedModel"
        )
        raise BadInput(
            f"{model_ref} is {kind}; training (train, --qat) needs a Keras model",
            "pass the .keras or .h5 file, or quantize without --qat (PTQ works on it)",
        )
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


def train_data(
    data_cfg: DataConfig, val_cfg: DataConfig | None, cfg, input_shape
) -> tuple[Dataset, Dataset | None, list[str]]:
    """Training data and its validation part: ``val_cfg``'s data, else a seeded split of
    ``cfg.val_split`` (None when that is 0); and the data's warnings."""
    from edgeq import data
    from edgeq import train as training

    train_ds = data.load(data_cfg, input_shape)
    warnings = data.validate(train_ds, input_shape, None, "training data")
    val_ds: Dataset | None
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
    cfg: TrainConfig,
    val_cfg: DataConfig | None = None,
    qat: bool = False,
    weights: str | None = None,
    checkpoint_dir: str | None = None,
    resume: bool = False,
    load_cfg: LoadConfig = LoadConfig(),
    force: bool = False,
    progress: Callable[[dict], None] | None = None,
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

    out, ckpt = _outputs(model_ref, data_cfg, output, val_cfg, qat, weights, checkpoint_dir, resume, force)
    probe = data.load(data_cfg)
    num_labels = int(probe.y.max()) + 1 if probe.y is not None else None
    model, described, notes = trainable_model(model_ref, tuple(probe.x.shape[1:]), num_labels, load_cfg, zoo_args)
    if weights:
        _load_weights(model, weights, described)
    input_shape = tuple(model.inputs[0].shape[1:])
    train_ds, val_ds, warnings = train_data(data_cfg, val_cfg, cfg, input_shape)
    task = training.resolve_task(model, train_ds, cfg.loss)
    build, plans, fold_notes = builder(model, qat)
    notes = notes + fold_notes
    scope = qat_mod.scope if qat else None
    trained, result = training.fit(
        build, train_ds, val_ds, task, cfg, ckpt, resume, progress, **({"scope": scope} if scope else {})
    )
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
        checkpoint_dir=str(ckpt.resolve()),
    )
    _save(out, trained, doc)
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


def _outputs(
    model_ref: str,
    data_cfg: DataConfig,
    output: str,
    val_cfg: DataConfig | None,
    qat: bool,
    weights: str | None,
    checkpoint_dir: str | None,
    resume: bool,
    force: bool,
) -> tuple[Path, Path]:
    """The output file and the checkpoint folder, checked before anything is loaded."""
    from edgeq import train as training

    suffix = Path(output).suffix
    if qat and suffix != ".h5":
        raise UsageError(
            f"a QAT model must be saved as .h5, got {output}",
            "use -o model_qat.h5 (TF-MOT's wrappers do not reload from the .keras format)",
        )
    if suffix not in (".keras", ".h5"):
        raise UsageError(f"training output must be a .keras or .h5 file, got {output}", "e.g. -o model.keras")
    ckpt = Path(checkpoint_dir or f"{output}.ckpt")
    inputs = input_paths(model_ref if Path(model_ref).exists() else None, weights, data_cfg, val_cfg)
    if resume and not force and not own_output(Path(output), ckpt):
        raise OutputExists(
            f"{output} exists and is not the output of the run checkpointed in {ckpt}",
            "--resume replaces only its own run's output; choose another -o, or pass --force to replace it",
        )
    out = check_output(output, force or resume, inputs)
    for src in inputs:
        refuse_overwriting_inputs(ckpt / training.LAST, [src])
    return out, ckpt


def _load_weights(model: Any, weights: str, described: str) -> None:
    try:
        model.load_weights(weights)
    except Exception as exc:
        raise BadInput(
            f"cannot load weights {weights} into {described} ({str(exc).splitlines()[0][:200]})",
            "pass weights saved from the same architecture",
        ) from exc


def builder(model: Any, qat: bool) -> tuple[Callable[[], Any], list[LayerPlan], list[str]]:
    """What :func:`edgeq.train.fit` builds its model with: fresh copies of ``model`` (QAT-wrapped with ``qat``,
    after folding what QAT cannot handle), QAT's per-layer plan and the notes of the folding."""
    from edgeq.quantize import qat as qat_mod

    notes: list[str] = []
    if qat:
        model, notes = qat_mod.prepare(model)
    plans = qat_mod.plan(model) if qat else []
    weights = model.get_weights()

    def build() -> Any:
        import tf_keras

        fresh = tf_keras.models.clone_model(model, clone_function=qat_mod.clone_layer)
        fresh.set_weights(weights)
        return qat_mod.apply(fresh, plans) if qat else fresh

    return build, plans, notes


def _save(out: Path, trained: Any, doc: dict) -> None:
    """The model and its sidecar together, or neither."""
    from edgeq import train as training
    from edgeq.artifacts import sha256_file

    with Outputs(out.parent) as staged:
        side = staged.path(sidecar_path(out).name)
        staged_model = staged.path(out.name)
        training.save_model_atomic(trained, staged_model)
        size = staged_model.stat().st_size
        doc["output"] = {"path": str(out), "sha256": sha256_file(staged_model), "size_bytes": size}
        staged.write_json(side.name, doc)


def own_output(out: Path, ckpt: Path) -> bool:
    """Whether ``out`` is what an earlier run with checkpoints in ``ckpt`` wrote (so --resume may replace it):
    its sidecar names that checkpoint folder and the file is still the one the sidecar describes."""
    from edgeq.artifacts import read_sidecar, sha256_file

    if not out.exists() and not sidecar_path(out).exists():
        return True
    doc = read_sidecar(out) or {}
    try:
        return (
            doc.get("command") == "train"
            and doc.get("checkpoint_dir") == str(ckpt.resolve())
            and out.is_file()
            and doc["output"]["sha256"] == sha256_file(out)
        )
    except (KeyError, TypeError, OSError):
        return False
