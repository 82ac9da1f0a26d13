"""--custom-objects module:attr loads user layers; a bad spec is a clear error."""

from __future__ import annotations

import zipfile

from tests.conftest import listing


def _save_custom_model(path):
    from edgeq.tfimport import tensorflow

    tensorflow()
    import tf_keras

    from tests.integration.custom_layers import Scale

    inputs = tf_keras.Input((8, 8, 1))
    x = Scale(0.5)(inputs)
    x = tf_keras.layers.Flatten()(x)
    tf_keras.Model(inputs, tf_keras.layers.Dense(10)(x)).save(path)
    # the saved config names the custom class; a fresh process needs --custom-objects to load it
    with zipfile.ZipFile(path) as zf:
        assert b"Scale" in zf.read("config.json")


def test_custom_objects_module_attr(run_cli, tmp_path, digits_calib):
    path = tmp_path / "custom.keras"
    _save_custom_model(path)
    r = run_cli("--json", "quantize", path, "--data", digits_calib, "-o", tmp_path / "m.tflite")
    assert r.exit_code == 3 and "Scale" in r.json["error"]["message"], "loaded without --custom-objects"
    r = run_cli(
        "--json",
        "quantize",
        path,
        "--data",
        digits_calib,
        "-o",
        tmp_path / "m.tflite",
        "--custom-objects",
        "tests.integration.custom_layers:CUSTOM_OBJECTS",
    )
    assert r.exit_code == 0, r.stderr
    assert r.json["result"]["float_ops"] == []


def test_custom_objects_bad_spec(run_cli, tmp_path, digits_calib):
    path = tmp_path / "custom.keras"
    _save_custom_model(path)
    out = tmp_path / "o"
    out.mkdir()
    r = run_cli(
        "quantize", path, "--data", digits_calib, "-o", out / "m.tflite", "--custom-objects", "no_such_module:X"
    )
    assert r.exit_code == 3 and "cannot import custom objects 'no_such_module:X'" in r.stderr
    r = run_cli("quantize", path, "--data", digits_calib, "-o", out / "m.tflite", "--custom-objects", "nocolon")
    assert r.exit_code == 2 and "module:attr" in r.stderr
    assert listing(out) == []
