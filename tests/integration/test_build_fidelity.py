"""A build's verdict says whether the model still works: on an untrained network (its float output the same
for every input) it says nothing was judged, and why, and with unlabeled data it names the default budget."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.conftest import DATA


@pytest.fixture(scope="module")
def untrained(tmp_path_factory):
    """A classifier whose last layer is all zeros (an untrained head): softmax 0.1 for every class, every
    input; and unlabeled data (x only)."""
    from edgeq.tfimport import tensorflow

    tensorflow()
    import tf_keras

    tf_keras.utils.set_random_seed(0)
    inputs = tf_keras.Input((8, 8, 1), name="image")
    x = tf_keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inputs)
    x = tf_keras.layers.GlobalAveragePooling2D()(x)
    outputs = tf_keras.layers.Dense(10, activation="softmax", kernel_initializer="zeros", name="probs")(x)
    folder = tmp_path_factory.mktemp("untrained")
    tf_keras.Model(inputs, outputs).save(folder / "zero.keras")
    with np.load(DATA / "digits_calib.npz") as d:
        np.save(folder / "x.npy", d["x"][:64])
    return folder


@pytest.mark.slow
def test_an_untrained_network_is_not_judged_and_the_build_says_why(run_cli, untrained):
    folder = untrained
    r = run_cli(
        "build", folder / "zero.keras", "--target", "cpu", "--data", folder / "x.npy",
        "--eval-data", folder / "x.npy", "-o", folder / "b", "--runs", "2", "--warmup", "0",
    )  # fmt: skip
    assert r.exit_code == 0, r.stderr
    verdict = r.stdout.splitlines()[1]
    assert verdict.startswith("  cpu: NOT JUDGED: the float reference's output "), verdict
    assert "is constant over the evaluation data; all ops on the CPU" in verdict
    assert "the float reference is constant (0.1) over the evaluation data" in r.stderr  # a WARNING, on stderr
    manifest = json.loads((folder / "b" / "cpu" / "build.json").read_text())
    budget = manifest["budget"]  # unlabeled data: the default budget was applied, and is said
    assert budget["max_drop"] is None and budget["min_sqnr"] > 0 and "unlabeled evaluation data" in budget["why"]
    assert f"note: budget: {budget['text']}" in r.stdout
    assert "meets the budget on paper only: the float reference's output 'probs' is constant" in r.stdout
    report = (folder / "b" / "report.md").read_text()
    assert "- cpu: NOT JUDGED: the float reference's output" in report
