"""QAT time per epoch: edgeq's fine-tuning loop, two ways, vs the same fit written directly with TF-MOT.

A section of run.py (``run.py --only qat`` runs it alone); see benchmarks/README.md.

A (edgeq quantize --qat): ``edgeq.train.fit`` called the way ``edgeq.api.quantize_aware`` calls
it (the same helpers up to that call, the same build function, ``checkpoint_dir=None``: no
files, the best weights kept in memory), epoch ends taken from its ``progress`` events.

C (edgeq train): the same call with a checkpoint folder, as ``edgeq train`` makes it: every epoch
fit saves last.h5, hard-links best.h5 to it when val_loss improves, and writes state.json.
Shims on ``edgeq.train.save_model_atomic``, ``_link_atomic`` and ``write_json_atomic`` time
those writes (on A they count that there are none).

B (TF-MOT direct): ``tfmot.quantization.keras.quantize_model`` on the same tf_keras model, the
same Adam with cosine decay, batch size, seed, train/validation arrays and tf.data pipeline
(shuffle, batch, prefetch), ``model.fit`` with one epoch-end timing callback, no checkpoints.

An epoch's time is the wall time between consecutive epoch ends: its training steps, its
validation pass and, for C, its checkpoint writes (for A, its in-memory copy of the best
weights). Epoch 1 also traces the tf.functions and is reported apart, timed from "QAT model
built" (so it includes compile()) to its end.
"""

from __future__ import annotations

import contextlib
import gc
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

MODEL = "models/mnist_cnn.keras"
TRAIN = "representative_data/mnist_train.npz"
LEARNING_RATE = 1e-4  # the fine-tuning rate of the QAT example in the README
# edgeq.train's per-epoch checkpoint writers (last.h5; the best.h5 link; state.json)
WRITERS = ("save_model_atomic", "_link_atomic", "write_json_atomic")
SIDES = ("edgeq", "edgeq_train", "tfmot")  # A: quantize --qat, C: edgeq train, B: TF-MOT direct
# Run orders, cycled: every order once in 6 runs, so each side is first, middle and last alike.
ORDERS = (
    ("edgeq", "edgeq_train", "tfmot"),
    ("tfmot", "edgeq_train", "edgeq"),
    ("edgeq_train", "tfmot", "edgeq"),
    ("edgeq", "tfmot", "edgeq_train"),
    ("tfmot", "edgeq", "edgeq_train"),
    ("edgeq_train", "edgeq", "tfmot"),
)


def _ms(seconds: float) -> float:
    return round(1000 * seconds, 1)


def summary_ms(samples_s: list[float]) -> dict:
    return {
        "median_ms": _ms(statistics.median(samples_s)),
        "min_ms": _ms(min(samples_s)),
        "max_ms": _ms(max(samples_s)),
        "samples_ms": [_ms(s) for s in samples_s],
    }


def _clock() -> tuple[float, float]:
    """Wall time, and this process's CPU time (all threads): the second is less sensitive to
    other processes on the machine, so it is a cross-check on a loaded run."""
    return time.perf_counter(), time.process_time()


def _durations(marks: list[tuple[float, float]]) -> tuple[list[float], list[float]]:
    pairs = list(zip(marks, marks[1:], strict=False))
    return [b[0] - a[0] for a, b in pairs], [b[1] - a[1] for a, b in pairs]


class Setup:
    """What both sides share, prepared once and untimed: the tf_keras model, the data split, the config."""

    def __init__(self, root: Path, tmp: Path, epochs: int) -> None:
        from edgeq import train as training
        from edgeq.config import DataConfig, LoadConfig, TrainConfig
        from edgeq.quantize import qat as qat_mod
        from edgeq.stages.train import train_data, trainable_model

        self.cfg = TrainConfig(epochs=epochs, learning_rate=LEARNING_RATE)
        # The steps of edgeq.stages.quantize_aware up to its call of training.fit (the stage's own
        # helpers: a benchmark may follow the implementation it measures).
        model, _, _ = trainable_model(str(root / MODEL), (), None, LoadConfig())
        input_shape = tuple(model.inputs[0].shape[1:])
        self.train, self.val, _ = train_data(DataConfig(path=str(root / TRAIN)), None, self.cfg, input_shape)
        self.task = training.resolve_task(model, self.train, self.cfg.loss)
        self.model, _ = qat_mod.prepare(model)
        self.plans = qat_mod.plan(self.model)
        self.weights = self.model.get_weights()
        # B starts from a file tf_keras loads, as a user writing TF-MOT by hand would. The bundled
        # model is a Keras 3 file, which tf_keras cannot read, so this is edgeq's tf_keras copy.
        self.h5_path = tmp / "mnist_cnn_tf_keras.h5"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "HDF5 is legacy": chosen on purpose
            model.save(self.h5_path)
        self.steps_per_epoch = -(-len(self.train.x) // self.cfg.batch_size)

    def layer_statuses(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for p in self.plans:
            counts[p.status.value] = counts.get(p.status.value, 0) + 1
        return counts


def _new_epoch() -> dict:
    return {key: 0 for name in (*WRITERS, "get_weights") for key in (f"{name}_s", f"{name}_calls")}


@contextlib.contextmanager
def timed_checkpoints(epochs: list[dict]) -> Iterator[None]:
    """Patch edgeq.train's checkpoint writers so each call adds its count and wall time to ``epochs[-1]``.

    fit() looks both names up in its module when it calls them, so patching the module
    attributes reaches every checkpoint write it makes.
    """
    from edgeq import train as training

    originals = {name: getattr(training, name) for name in WRITERS}

    def shim(name: str, fn: Callable) -> Callable:
        def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                epochs[-1][f"{name}_s"] += time.perf_counter() - t0
                epochs[-1][f"{name}_calls"] += 1

        return timed

    for name, fn in originals.items():
        setattr(training, name, shim(name, fn))
    try:
        yield
    finally:
        for name, fn in originals.items():
            setattr(training, name, fn)


def run_edgeq(s: Setup, epochs: int, checkpoints: bool = False) -> dict:
    """A (``checkpoints=False``): edgeq.train.fit as api.quantize_aware calls it, no checkpoint
    folder. C (``checkpoints=True``): the same with a checkpoint folder, as ``edgeq train`` calls it.
    Epoch ends come from fit's progress events."""
    import tf_keras

    from edgeq import train as training
    from edgeq.quantize import qat as qat_mod

    marks: list[tuple[float, float]] = []
    writes = [_new_epoch()]  # one per epoch; the shims add to the last one

    def build():  # api.quantize_aware's build()
        fresh = tf_keras.models.clone_model(s.model)
        fresh.set_weights(s.weights)
        qat = qat_mod.apply(fresh, s.plans)
        if not checkpoints:
            # Without a folder fit keeps the best weights with model.get_weights() in the epochs
            # where val_loss improves: time that copy, A's counterpart of C's checkpoint writes.
            get_weights = qat.get_weights

            def timed_get_weights() -> list:
                t0 = time.perf_counter()
                try:
                    return get_weights()
                finally:
                    writes[-1]["get_weights_s"] += time.perf_counter() - t0
                    writes[-1]["get_weights_calls"] += 1

            qat.get_weights = timed_get_weights
        marks.append(_clock())  # "QAT model built": epoch 1 starts here
        return qat

    def progress(event: dict) -> None:
        if event["event"] == "epoch":  # sent after that epoch's checkpoint writes
            marks.append(_clock())
            writes.append(_new_epoch())

    with contextlib.ExitStack() as stack:
        stack.enter_context(timed_checkpoints(writes))  # on A they count that nothing is written
        ckpt = None  # api.quantize_aware passes None
        if checkpoints:  # edgeq train passes its --checkpoint-dir
            ckpt = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="edgeq-qat-bench-")))
        model, result = training.fit(
            build,
            s.train,
            s.val,
            s.task,
            replace(s.cfg, epochs=epochs),
            ckpt,
            progress=progress,
            scope=qat_mod.scope,
        )
    wall, cpu = _durations(marks)
    return {
        "epoch_s": wall,
        "epoch_cpu_s": cpu,
        "writes": writes[:-1],
        "val_accuracy": result.history.get("val_accuracy", []),
        "num_params": model.count_params(),
    }


def run_edgeq_train(s: Setup, epochs: int) -> dict:
    return run_edgeq(s, epochs, checkpoints=True)


def run_tfmot(s: Setup, epochs: int) -> dict:
    """B: the same fine-tuning written directly with TF-MOT, no checkpoints."""
    import tensorflow as tf
    import tensorflow_model_optimization as tfmot
    import tf_keras

    cfg = s.cfg
    tf_keras.utils.set_random_seed(cfg.seed)  # as fit() does before building
    model = tfmot.quantization.keras.quantize_model(tf_keras.models.load_model(s.h5_path))
    marks = [_clock()]

    class EpochEnds(tf_keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            marks.append(_clock())

    lr = tf_keras.optimizers.schedules.CosineDecay(cfg.learning_rate, decay_steps=epochs * s.steps_per_epoch)
    model.compile(
        optimizer=tf_keras.optimizers.Adam(lr),
        loss=tf_keras.losses.SparseCategoricalCrossentropy(),
        metrics=["accuracy"],
    )
    train = (
        tf.data.Dataset.from_tensor_slices((s.train.x, s.train.y))
        .shuffle(len(s.train.x), seed=cfg.seed, reshuffle_each_iteration=True)
        .batch(cfg.batch_size)
        .prefetch(tf.data.AUTOTUNE)
    )
    val = tf.data.Dataset.from_tensor_slices((s.val.x, s.val.y)).batch(cfg.batch_size).prefetch(tf.data.AUTOTUNE)
    hist = model.fit(train, validation_data=val, epochs=epochs, verbose=0, callbacks=[EpochEnds()])
    wall, cpu = _durations(marks)
    return {
        "epoch_s": wall,
        "epoch_cpu_s": cpu,
        "val_accuracy": [float(v) for v in hist.history.get("val_accuracy", [])],
        "num_params": model.count_params(),
    }


def _fresh() -> None:
    """Untimed, before every run of either side: drop the previous run's models and graphs."""
    import tf_keras

    tf_keras.backend.clear_session()
    gc.collect()


def qat_epoch_time(
    root: Path,
    tmp: Path,
    epochs: int,
    repeats: int,
    log: Callable[[str], None],
    quiet: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
) -> dict:
    """Set up, warm up each side with one 1-epoch run, then ``repeats`` rounds of one run per
    side in the rotating ORDERS; medians over epochs 2..N of every run.

    ``quiet`` wraps the set-up and warm-ups (TensorFlow's start-up chatter).
    """
    if epochs < 2:
        raise ValueError("the QAT section needs at least 2 epochs (epoch 1 is reported apart)")
    sides: dict[str, Callable[[Setup, int], dict]] = {
        "edgeq": run_edgeq,
        "edgeq_train": run_edgeq_train,
        "tfmot": run_tfmot,
    }
    with quiet():
        s = Setup(root, tmp, epochs)
        for run in sides.values():  # first TF-MOT build and tf.function tracing in this process
            _fresh()
            run(s, 1)
    runs: dict[str, list[dict]] = {name: [] for name in sides}
    for i in range(repeats):
        # Rotating orders: a drift in background load spreads over the sides instead of favouring one.
        for name in ORDERS[i % len(ORDERS)]:
            _fresh()
            runs[name].append(sides[name](s, epochs))
        log(
            f"  {i + 1}/{repeats}: epochs 2..{epochs} "
            + ", ".join(f"{name} {' '.join(f'{t:.2f}' for t in runs[name][-1]['epoch_s'][1:])} s" for name in SIDES)
        )

    def steady(name: str, key: str) -> list:  # epochs 2..N of every run, pooled
        return [v for r in runs[name] for v in r[key][1:]]

    med = statistics.median
    wall = {name: steady(name, "epoch_s") for name in SIDES}
    cpu = {name: steady(name, "epoch_cpu_s") for name in SIDES}
    first = {name: [r["epoch_s"][0] for r in runs[name]] for name in SIDES}
    b_wall, b_cpu, b_first = wall["tfmot"], cpu["tfmot"], first["tfmot"]

    def side(name: str) -> dict:
        return {
            "epoch_ms": summary_ms(wall[name]),
            "epoch_cpu_ms": summary_ms(cpu[name]),
            "first_epoch_ms": summary_ms(first[name]),
            "num_params": runs[name][0]["num_params"],
            "final_val_accuracy": [round(r["val_accuracy"][-1], 4) for r in runs[name]],
            "ratio_median": round(med(wall[name]) / med(b_wall), 3),
            "ratio_min": round(min(wall[name]) / min(b_wall), 3),
            "ratio_cpu_median": round(med(cpu[name]) / med(b_cpu), 3),
            "ratio_first_epoch": round(med(first[name]) / med(b_first), 3),
        }

    # A: no checkpoint folder. It must write nothing; its in-memory copy of the best weights is timed.
    a_writes = steady("edgeq", "writes")
    a_calls = sum(w[f"{name}_calls"] for w in a_writes for name in WRITERS)
    copies = [w for w in a_writes if w["get_weights_calls"]]
    a = side("edgeq") | {
        "checkpoint_writes": a_calls,
        "best_weights_copies": f"{len(copies)} of {len(a_writes)} epochs",
        "best_weights_copy_ms": summary_ms([w["get_weights_s"] for w in copies]) if copies else None,
    }
    # C: a checkpoint folder. Each epoch minus its own writes (paired, not a difference of two medians).
    c_writes = steady("edgeq_train", "writes")
    ckpt = [sum(w[f"{name}_s"] for name in WRITERS) for w in c_writes]
    c_no_ckpt = [t - c for t, c in zip(wall["edgeq_train"], ckpt, strict=True)]
    h5_calls = [w["save_model_atomic_calls"] for w in c_writes]
    links = [w for w in c_writes if w["_link_atomic_calls"]]
    c = side("edgeq_train") | {
        "checkpoint_ms": summary_ms(ckpt),
        "h5_save_ms": summary_ms([w["save_model_atomic_s"] / max(1, w["save_model_atomic_calls"]) for w in c_writes]),
        "h5_saves_per_epoch": {str(n): h5_calls.count(n) for n in sorted(set(h5_calls))},
        "best_links": f"{len(links)} of {len(c_writes)} epochs",
        "best_link_ms": summary_ms([w["_link_atomic_s"] for w in links]) if links else None,
        "state_json_ms": summary_ms([w["write_json_atomic_s"] for w in c_writes]),
        "epoch_without_checkpoint_ms": summary_ms(c_no_ckpt),
        "ratio_median_without_checkpoint": round(med(c_no_ckpt) / med(b_wall), 3),
        "checkpoint_share_of_epoch": round(med(ckpt) / med(wall["edgeq_train"]), 3),
        "ratio_median_over_edgeq": round(med(wall["edgeq_train"]) / med(wall["edgeq"]), 3),
    }
    b = side("tfmot")
    for key in ("ratio_median", "ratio_min", "ratio_cpu_median", "ratio_first_epoch"):
        del b[key]  # 1 by definition
    return {
        "model": MODEL,
        "train_data": TRAIN,
        "num_train_samples": len(s.train.x),
        "num_val_samples": len(s.val.x),
        "batch_size": s.cfg.batch_size,
        "steps_per_epoch": s.steps_per_epoch,
        "learning_rate": s.cfg.learning_rate,
        "lr_schedule": s.cfg.lr_schedule.value,
        "epochs": epochs,
        "repeats": repeats,
        "qat_layers": s.layer_statuses(),
        "edgeq": a,
        "edgeq_train": c,
        "tfmot": b,
        # the headline: quantize --qat's loop against TF-MOT written directly (goal: at most 1.1)
        "ratio_median": a["ratio_median"],
        "ratio_min": a["ratio_min"],
    }
