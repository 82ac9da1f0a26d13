"""Issue 14's crashes, each a clean error or a working path."""

from __future__ import annotations


def test_inspect_a_saved_model(run_cli, saved_model_dir):
    """Was: internal error KeyError 'num_layers' (a SavedModel has no Keras layers)."""
    r = run_cli("--json", "inspect", saved_model_dir)
    assert r.exit_code == 0, r.stderr
    doc = r.json["result"]
    assert doc["format"] == "saved_model"
    assert doc["signatures"] == ["serving_default"]
    assert doc["num_parameters"] == 3 * 3 * 3 * 8 + 8 + 6 * 4 + 4  # conv + dense of the fixture
    r = run_cli("inspect", saved_model_dir)
    assert r.exit_code == 0, r.stderr
    assert "signatures: serving_default" in r.stdout


def test_build_with_missing_data_is_bad_input(run_cli, tmp_path, keras3_hardswish):
    out = tmp_path / "build"
    r = run_cli("--json", "build", keras3_hardswish, "--target", "cpu", "--data", tmp_path / "missing.npz", "-o", out)
    assert r.exit_code == 3, r.stderr
    assert r.json["error"]["type"] == "bad_input"
    assert "missing.npz" in r.json["error"]["message"]
    assert not out.exists()


def test_debug_with_a_lambda_model_names_the_option_debug_takes(run_cli, tmp_path, image_data):
    """The safe-mode hint names --trust-model; debug (like every loading command) accepts it."""
    from edgeq.tfimport import tensorflow

    tensorflow()
    import tf_keras

    inputs = tf_keras.Input((16, 16, 3))
    x = tf_keras.layers.Lambda(lambda t: t * 1.0, name="same")(inputs)
    x = tf_keras.layers.GlobalAveragePooling2D()(tf_keras.layers.Conv2D(4, 3)(x))
    path = tmp_path / "lambda.keras"
    tf_keras.Model(inputs, tf_keras.layers.Dense(4, activation="softmax")(x)).save(path)
    r = run_cli("debug", path, "--data", image_data, "-o", tmp_path / "dbg")
    assert r.exit_code == 3 and "--trust-model" in r.stderr, r.stderr
    r = run_cli("debug", path, "--data", image_data, "-o", tmp_path / "dbg", "--trust-model")
    assert r.exit_code == 0, r.stderr
