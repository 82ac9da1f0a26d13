"""Training and fine-tuning: tf.data input, tf.distribute, checkpoints that survive Ctrl-C.

``fit`` is shared by ``edgeq train`` and by the fine-tuning inside QAT. Every epoch writes
``last.h5`` (weights and optimizer state) and ``state.json`` atomically into the
checkpoint folder, so an interrupted run resumes where it stopped with ``resume=True``.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from edgeq.artifacts import clean_stale, write_json_atomic
from edgeq.config import LrSchedule, Strategy, TrainConfig
from edgeq.data import Dataset
from edgeq.errors import BadInput, UsageError
from edgeq.tfimport import tensorflow

STATE = "state.json"
# Checkpoints are full-model HDF5 files: they keep the optimizer state for --resume, and TF-MOT's
# QAT wrappers reload from HDF5 but not from the Keras v3 format ("quantize_layer expected 5
# variables, but received 3").
LAST = "last.h5"
BEST = "best.h5"
Progress = Callable[[dict], None]


@dataclass(frozen=True)
class Task:
    """What the model is trained to do, decided from its output and the data."""

    loss: str
    classification: bool
    from_logits: bool = False
    num_classes: int | None = None
    targets_are_inputs: bool = False  # autoencoders: reconstruct x

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def resolve_task(model: Any, train: Dataset, loss: str | None) -> Task:
    """Pick the loss: cross-entropy for classifiers with labels, else the user's ``--loss``.

    Raises:
        BadInput: labels that do not fit the outputs; a non-classifier without ``--loss``.
    """
    out_shape = tuple(model.outputs[0].shape[1:])
    is_class_vector = len(out_shape) == 1 and (out_shape[0] or 0) > 1
    last = model.layers[-1]
    softmax = (
        type(last).__name__ == "Softmax" or getattr(getattr(last, "activation", None), "__name__", "") == "softmax"
    )
    if loss is None or loss == "sparse_categorical_crossentropy":
        if not (is_class_vector and train.labeled):
            what = (
                "the data has no labels (y)"
                if is_class_vector
                else f"the model output {out_shape} is not a class vector"
            )
            raise BadInput(
                f"cannot pick a loss: {what} and no --loss was given", "pass --loss mse (or another Keras loss name)"
            )
        num_classes = int(out_shape[0])
        assert train.y is not None
        if train.y.min() < 0 or train.y.max() >= num_classes:
            raise BadInput(
                f"labels in {train.source} span {int(train.y.min())}..{int(train.y.max())} but the model has {num_classes} outputs",
                "use labels 0..N-1 that match the model's output size",
            )
        return Task("sparse_categorical_crossentropy", True, from_logits=not softmax, num_classes=num_classes)
    if train.labeled:
        return Task(loss, False)
    if tuple(train.x.shape[1:]) != out_shape:
        raise BadInput(
            f"the data has no labels and the model output {out_shape} differs from its input {tuple(train.x.shape[1:])}",
            "give labels (y), or use an autoencoder whose output matches its input",
        )
    return Task(loss, False, targets_are_inputs=True)


def configure_cpu_devices(count: int) -> None:
    """Split the host CPU into ``count`` logical devices (to run MirroredStrategy without GPUs).

    Must run before TensorFlow initializes its devices.
    """
    tf = tensorflow()
    cpus = tf.config.list_physical_devices("CPU")
    try:
        tf.config.set_logical_device_configuration(cpus[0], [tf.config.LogicalDeviceConfiguration()] * count)
    except RuntimeError as exc:
        raise UsageError(
            "--cpu-devices must be set before TensorFlow starts", "pass it on a fresh edgeq process"
        ) from exc


def make_strategy(strategy: Strategy):
    """The tf.distribute strategy for ``strategy``.

    mirrored: every GPU of this machine, or every logical CPU device when there is no GPU.
    multi-worker: machines described by the TF_CONFIG environment variable.

    Raises:
        UsageError: multi-worker without TF_CONFIG.
    """
    tf = tensorflow()
    if strategy == Strategy.DEFAULT:
        return tf.distribute.get_strategy()
    if strategy == Strategy.MIRRORED:
        devices = [d.name for d in tf.config.list_logical_devices("GPU")] or [
            d.name for d in tf.config.list_logical_devices("CPU")
        ]
        return tf.distribute.MirroredStrategy(devices=devices)
    if "TF_CONFIG" not in os.environ:
        raise UsageError(
            "--strategy multi-worker needs the TF_CONFIG environment variable",
            'set TF_CONFIG=\'{"cluster": {"worker": ["host1:port", "host2:port"]}, "task": {"type": "worker", "index": 0}}\' on each machine',
        )
    return tf.distribute.MultiWorkerMirroredStrategy()


def _is_chief(strategy) -> bool:
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not getattr(resolver, "task_type", None):
        return True
    return resolver.task_type in ("chief", None) or (resolver.task_type == "worker" and resolver.task_id == 0)


def split(ds: Dataset, fraction: float, seed: int) -> tuple[Dataset, Dataset | None]:
    """A seeded random split of ``ds`` into train and validation parts."""
    if fraction <= 0:
        return ds, None
    n_val = max(1, int(round(len(ds.x) * fraction)))
    if n_val >= len(ds.x):
        raise BadInput(
            f"{ds.source} has {len(ds.x)} samples, too few to hold out validation", "give more data or --val-split 0"
        )
    order = np.random.default_rng(seed).permutation(len(ds.x))
    val_idx, train_idx = np.sort(order[:n_val]), np.sort(order[n_val:])

    def part(idx: np.ndarray) -> Dataset:
        return replace(ds, x=ds.x[idx], y=None if ds.y is None else ds.y[idx], indices=ds.indices[idx])

    return part(train_idx), part(val_idx)


def input_pipeline(ds: Dataset, task: Task, batch_size: int, training: bool, seed: int, augment: bool):
    """tf.data: shuffle (training), batch, optional image augmentation, prefetch."""
    tf = tensorflow()
    y = ds.x if task.targets_are_inputs else ds.y
    pipe = tf.data.Dataset.from_tensor_slices((ds.x, y))
    if training:
        pipe = pipe.shuffle(len(ds.x), seed=seed, reshuffle_each_iteration=True)
    pipe = pipe.batch(batch_size)
    if training and augment:
        if ds.x.ndim != 4:
            raise UsageError("--augment is for images (N, H, W, C)", f"{ds.source} has shape {ds.x.shape}")
        import tf_keras

        aug = tf_keras.Sequential(
            [
                tf_keras.layers.RandomTranslation(0.1, 0.1, fill_mode="constant", seed=seed),
                tf_keras.layers.RandomRotation(0.03, fill_mode="constant", seed=seed + 1),
            ]
        )
        pipe = pipe.map(lambda a, b: (aug(a, training=True), b), num_parallel_calls=tf.data.AUTOTUNE)
    return pipe.prefetch(tf.data.AUTOTUNE)


def compile_model(model: Any, task: Task, cfg: TrainConfig, steps_per_epoch: int) -> None:
    import tf_keras

    lr: Any = cfg.learning_rate
    if cfg.lr_schedule == LrSchedule.COSINE:
        lr = tf_keras.optimizers.schedules.CosineDecay(
            cfg.learning_rate, decay_steps=max(1, cfg.epochs * steps_per_epoch)
        )
    if task.classification:
        loss = tf_keras.losses.SparseCategoricalCrossentropy(from_logits=task.from_logits)
        metrics = ["accuracy"]
    else:
        loss, metrics = task.loss, []
    model.compile(optimizer=tf_keras.optimizers.Adam(lr), loss=loss, metrics=metrics)


@dataclass(frozen=True)
class TrainResult:
    history: dict[str, list[float]]
    epochs_run: int
    best_epoch: int | None
    best_val_accuracy: float | None
    best_val_loss: float | None
    stopped_early: bool
    resumed_from_epoch: int | None
    task: Task
    num_train_samples: int
    num_val_samples: int
    strategy: str
    num_replicas: int

    def to_dict(self) -> dict:
        d = dict(self.__dict__)
        d["task"] = self.task.to_dict()
        return d


def save_model_atomic(model: Any, path: Path) -> None:
    """Save a Keras model (format by suffix: .keras or .h5) through a temp file and a rename."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem[:80]}.tmp{os.getpid()}-", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        with warnings.catch_warnings():  # HDF5 is chosen on purpose (see LAST)
            warnings.simplefilter("ignore", UserWarning)
            model.save(tmp, overwrite=True)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _link_atomic(src: Path, dst: Path) -> None:
    tmp = dst.with_name(f".{dst.name}.tmp{os.getpid()}")
    if tmp.exists():
        tmp.unlink()
    try:
        os.link(src, tmp)
    except OSError:  # file systems without hard links
        shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


def read_state(checkpoint_dir: Path) -> dict | None:
    try:
        return json.loads((checkpoint_dir / STATE).read_text())
    except (OSError, ValueError):
        return None


def fit(
    build: Callable[[], Any],
    train: Dataset,
    val: Dataset | None,
    task: Task,
    cfg: TrainConfig,
    checkpoint_dir: Path | None,
    resume: bool = False,
    progress: Progress | None = None,
    scope: Callable[[], AbstractContextManager] = nullcontext,
) -> tuple[Any, TrainResult]:
    """Fit the model made by ``build()`` (called inside the distribution strategy's scope).

    Args:
        build: returns an uncompiled tf_keras model.
        train, val: data; ``val`` may be None (no early stopping, no best model).
        task: loss and targets from :func:`resolve_task`.
        cfg: epochs, batch size, learning rate and schedule, patience, augmentation, strategy.
        checkpoint_dir: where ``last.h5``, ``best.h5`` and ``state.json`` go; None keeps the
            best weights in memory and writes nothing (no resume).
        resume: continue from ``checkpoint_dir`` instead of starting over.
        progress: called with a dict per batch and per epoch (the CLI draws a bar).
        scope: a context needed to deserialize the model (TF-MOT's quantize_scope for QAT).

    Returns:
        The trained model (best validation weights when there is validation data) and a summary.

    Raises:
        BadInput: ``resume`` with nothing to resume from.
    """
    import tf_keras

    tensorflow()
    strategy = make_strategy(cfg.strategy)
    ckpt = _checkpoint_folder(checkpoint_dir, _is_chief(strategy), resume)
    tf_keras.utils.set_random_seed(cfg.seed)
    steps = math.ceil(len(train.x) / cfg.batch_size)
    state = _resumed(ckpt) if resume and ckpt is not None else None
    with strategy.scope(), scope():
        if state is not None and ckpt is not None:
            model = tf_keras.models.load_model(ckpt / LAST, compile=True)
        else:
            model = build()
            compile_model(model, task, cfg, steps)
    run = _Run.of(state)
    train_pipe = input_pipeline(train, task, cfg.batch_size, True, cfg.seed, cfg.augment)
    val_pipe = input_pipeline(val, task, cfg.batch_size, False, cfg.seed, False) if val is not None else None
    if run.initial_epoch < cfg.epochs and not run.stopped_early:
        model.fit(
            train_pipe,
            validation_data=val_pipe,
            epochs=cfg.epochs,
            initial_epoch=run.initial_epoch,
            verbose=0,
            callbacks=_callbacks(run, cfg, ckpt, progress, steps),
        )
    if run.best_weights is not None:
        model.set_weights(run.best_weights)
    elif val is not None and run.best_epoch is not None and ckpt is not None and (ckpt / BEST).exists():
        with strategy.scope(), scope():
            best = tf_keras.models.load_model(ckpt / BEST, compile=False)
        model.set_weights(best.get_weights())
    best_acc = None
    if run.best_epoch is not None and "val_accuracy" in run.history:
        best_acc = run.history["val_accuracy"][run.best_epoch - 1]
    return model, TrainResult(
        history=run.history,
        epochs_run=len(next(iter(run.history.values()), [])),
        best_epoch=run.best_epoch,
        best_val_accuracy=best_acc,
        best_val_loss=run.best_loss,
        stopped_early=run.stopped_early,
        resumed_from_epoch=run.initial_epoch if state is not None else None,
        task=task,
        num_train_samples=len(train.x),
        num_val_samples=0 if val is None else len(val.x),
        strategy=cfg.strategy.value,
        num_replicas=int(strategy.num_replicas_in_sync),
    )


def _checkpoint_folder(checkpoint_dir: Path | None, chief: bool, resume: bool) -> Path | None:
    """Where this worker keeps checkpoints: the given folder on the chief, a temporary one on other workers."""
    ckpt = checkpoint_dir if chief or checkpoint_dir is None else Path(tempfile.mkdtemp(prefix="edgeq-worker-ckpt-"))
    if ckpt is not None:
        ckpt.mkdir(parents=True, exist_ok=True)
        clean_stale(ckpt)  # temp files of a run that was killed
    if resume and ckpt is None:
        raise UsageError("--resume needs a checkpoint folder", "pass --checkpoint-dir")
    return ckpt


def _resumed(ckpt: Path) -> dict:
    state = read_state(ckpt)
    if state is None or not (ckpt / LAST).exists():
        raise BadInput(f"nothing to resume in {ckpt} (no {STATE} and {LAST})", "run once without --resume")
    return state


@dataclass
class _Run:
    """How far a fit has come: early stopping's counters and the history (``state.json`` between runs)."""

    history: dict[str, list[float]]
    best_loss: float | None
    best_epoch: int | None
    wait: int
    initial_epoch: int
    stopped_early: bool
    best_weights: list | None = None  # in memory when there is no checkpoint folder

    @classmethod
    def of(cls, state: dict | None) -> _Run:
        state = state or {}
        return cls(
            history={k: list(v) for k, v in state.get("history", {}).items()},
            best_loss=state.get("best_val_loss"),
            best_epoch=state.get("best_epoch"),
            wait=state.get("wait", 0),
            initial_epoch=state.get("epoch", 0),
            stopped_early=bool(state.get("stopped_early", False)),
        )

    def record(self, epoch: int, logs: dict[str, float], patience: int | None) -> bool:
        """Add one epoch's logs; True when its validation loss is the best yet. Sets ``stopped_early``
        when ``patience`` epochs went by without one."""
        for k, v in logs.items():
            self.history.setdefault(k, []).append(v)
        val_loss = logs.get("val_loss")
        improved = val_loss is not None and (self.best_loss is None or val_loss < self.best_loss)
        if improved:
            self.best_loss, self.best_epoch, self.wait = val_loss, epoch + 1, 0
        elif val_loss is not None:
            self.wait += 1
            if patience is not None and self.wait >= patience:
                self.stopped_early = True
        return improved

    def state(self, epoch: int, cfg: TrainConfig) -> dict:
        return {
            "epoch": epoch + 1,
            "epochs": cfg.epochs,
            "history": self.history,
            "best_val_loss": self.best_loss,
            "best_epoch": self.best_epoch,
            "wait": self.wait,
            "stopped_early": self.stopped_early,
            "config": cfg.to_dict(),
        }


def _callbacks(run: _Run, cfg: TrainConfig, ckpt: Path | None, progress: Progress | None, steps: int) -> list[Any]:
    """Keras callbacks: per epoch, record ``run`` and checkpoint; per step, progress (when shown)."""
    import tf_keras

    class _Batches(tf_keras.callbacks.Callback):
        """Per-step progress; only installed when someone shows it (Keras converts every
        step's logs to numpy for a callback that defines this hook)."""

        _epoch = 0

        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            self._epoch = epoch

        def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
            assert progress is not None
            event = {
                "event": "batch",
                "epoch": self._epoch + 1,
                "epochs": cfg.epochs,
                "step": batch + 1,
                "steps": steps,
            }
            progress(event | {"logs": logs or {}})

    class _Epochs(tf_keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            floats = {k: float(v) for k, v in (logs or {}).items()}
            improved = run.record(epoch, floats, cfg.patience)
            if run.stopped_early:
                self.model.stop_training = True
            if ckpt is None:
                if improved:
                    run.best_weights = self.model.get_weights()
            else:
                # one save per epoch; the best model is the same file, linked (a rename later
                # replaces last.h5 and leaves the link pointing at this epoch's file)
                save_model_atomic(self.model, ckpt / LAST)
                if improved:
                    _link_atomic(ckpt / LAST, ckpt / BEST)
                write_json_atomic(ckpt / STATE, run.state(epoch, cfg))
            if progress:
                progress({"event": "epoch", "epoch": epoch + 1, "epochs": cfg.epochs, "logs": floats})

    return [_Epochs(), _Batches()] if progress else [_Epochs()]
