"""Train the bundled MNIST CNN and write models/mnist_cnn.keras + sidecar JSON.

Usage (from the repository root, after ``python representative_data/make_data.py``
if the npz files are missing)::

    python models/train_mnist_cnn.py

Recipe: Adam (cosine-decayed learning rate from 3e-3), sparse categorical
cross-entropy, 15 epochs, batch 64, the last 10% of mnist_train.npz held out
for validation (same rows Keras' ``validation_split=0.1`` would take), light
on-the-fly augmentation (random shift up to 10%, rotation up to ~11 degrees)
applied in the input pipeline only - it is NOT part of the saved model.

Deterministic setup (``tf_keras.utils.set_random_seed(0)`` plus TF op
determinism); takes well under a minute on 2 CPU cores.
"""

from __future__ import annotations

import json
import os
import zipfile

os.environ["TF_USE_LEGACY_KERAS"] = "1"

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf_keras  # noqa: E402

from edgeq.zoo.mnist_cnn import MODEL_CARD, build_mnist_cnn, count_macs  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SEED = 0
EPOCHS = 15
BATCH_SIZE = 64
VALIDATION_SPLIT = 0.1
INITIAL_LEARNING_RATE = 3e-3  # cosine-decayed to 0 over all training steps
AUG_TRANSLATION = 0.1  # fraction of height/width
AUG_ROTATION = 0.03  # fraction of a full turn (~11 degrees)

TRAIN_NPZ = "representative_data/mnist_train.npz"
EVAL_NPZ = "representative_data/mnist_eval.npz"
OUT_MODEL = "models/mnist_cnn.keras"
OUT_SIDECAR = OUT_MODEL + ".edgeq.json"


def load(rel_path: str) -> tuple[np.ndarray, np.ndarray]:
    with np.load(os.path.join(ROOT, rel_path)) as d:
        return d["x"].astype(np.float32), d["y"].astype(np.int64)


def compile_model(model: tf_keras.Model, learning_rate=1e-3) -> None:
    model.compile(
        optimizer=tf_keras.optimizers.Adam(learning_rate=learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )


def training_dataset(x: np.ndarray, y: np.ndarray) -> tf.data.Dataset:
    layers = tf_keras.layers
    augment = tf_keras.Sequential(
        [
            layers.RandomTranslation(AUG_TRANSLATION, AUG_TRANSLATION, fill_mode="constant", seed=SEED),
            layers.RandomRotation(AUG_ROTATION, fill_mode="constant", seed=SEED + 1),
        ],
        name="augment",
    )
    ds = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(y), seed=SEED).batch(BATCH_SIZE)
    return ds.map(lambda xb, yb: (augment(xb, training=True), yb))


def _deflate_zip(path: str) -> None:
    """Re-pack the .keras archive with deflate: Keras writes it uncompressed, and the
    HDF5 container's ~50 KB of mostly empty structure shrinks to a few KB. Keras reads
    deflated archives as they are."""
    tmp = path + ".tmp"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as dst:
        for info in src.infolist():
            dst.writestr(info, src.read(info.filename), compress_type=zipfile.ZIP_DEFLATED)
    os.replace(tmp, path)


def main() -> None:
    tf_keras.utils.set_random_seed(SEED)
    tf.config.experimental.enable_op_determinism()

    x_train, y_train = load(TRAIN_NPZ)
    x_eval, y_eval = load(EVAL_NPZ)

    # Hold out the last 10% for validation (what validation_split=0.1 does;
    # done by hand because validation_split does not work with tf.data input).
    n_val = int(len(y_train) * VALIDATION_SPLIT)
    x_fit, y_fit = x_train[:-n_val], y_train[:-n_val]
    x_val, y_val = x_train[-n_val:], y_train[-n_val:]

    steps = EPOCHS * int(np.ceil(len(y_fit) / BATCH_SIZE))
    model = build_mnist_cnn()
    compile_model(model, tf_keras.optimizers.schedules.CosineDecay(INITIAL_LEARNING_RATE, steps))
    model.fit(training_dataset(x_fit, y_fit), validation_data=(x_val, y_val), epochs=EPOCHS, verbose=2)
    _, val_acc = model.evaluate(x_val, y_val, batch_size=256, verbose=0)
    _, eval_acc = model.evaluate(x_eval, y_eval, batch_size=256, verbose=0)
    print(f"eval accuracy on {EVAL_NPZ}: {eval_acc:.4f} ({len(y_eval)} samples)")

    # Save a copy compiled with a fresh, never-used optimizer: the loaded model
    # can still .evaluate()/.fit(), but the file carries no Adam slot variables
    # (which would roughly triple its size).
    export = build_mnist_cnn()
    export.set_weights(model.get_weights())
    compile_model(export)
    out_path = os.path.join(ROOT, OUT_MODEL)
    export.save(out_path)
    _deflate_zip(out_path)

    params = int(export.count_params())
    macs = count_macs(export)
    if (params, macs) != (MODEL_CARD["parameters"], MODEL_CARD["macs"]):
        print(f"NOTE: update MODEL_CARD in edgeq/zoo/mnist_cnn.py: parameters={params}, macs={macs}")

    sidecar = {
        "schema_version": 1,
        "command": "models/train_mnist_cnn.py",
        "config": {
            "epochs": EPOCHS,
            "batch_size": BATCH_SIZE,
            "seed": SEED,
            "optimizer": "adam",
            "learning_rate": {"schedule": "cosine_decay", "initial": INITIAL_LEARNING_RATE, "decay_steps": steps},
            "loss": "sparse_categorical_crossentropy",
            "validation_split": VALIDATION_SPLIT,
            "augmentation": {"random_translation": AUG_TRANSLATION, "random_rotation": AUG_ROTATION},
        },
        "data": {
            "train": TRAIN_NPZ,
            "eval": EVAL_NPZ,
            "value_range": [0.0, 1.0],
            "preprocessing": {"scale": 1 / 255, "color_mode": "grayscale", "resize": [28, 28]},
        },
        "model": {"parameters": params, "macs": macs},
        "metrics": {
            "eval_accuracy": round(float(eval_acc), 4),
            "num_eval_samples": int(len(y_eval)),
            "val_accuracy": round(float(val_acc), 4),
        },
        "tool_versions": {"tensorflow": tf.__version__, "tf_keras": tf_keras.__version__},
    }
    with open(os.path.join(ROOT, OUT_SIDECAR), "w") as f:
        json.dump(sidecar, f, indent=2)
        f.write("\n")
    print(f"wrote {OUT_MODEL} ({os.path.getsize(out_path)} bytes) and {OUT_SIDECAR}")


if __name__ == "__main__":
    main()
