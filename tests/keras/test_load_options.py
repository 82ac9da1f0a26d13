"""--trust-model and --custom-objects on every command that loads a model, and in edgeq.toml."""

from __future__ import annotations

import pytest

from edgeq.config import BuildConfig, load_toml
from edgeq.errors import BadInput

# Every command that deserializes a Keras model or SavedModel (check, compile and bench read .tflite only).
LOADING_COMMANDS = ("quantize", "build", "eval", "debug", "inspect", "train")


@pytest.mark.parametrize("command", LOADING_COMMANDS)
def test_every_loading_command_takes_the_load_options(run_cli, command):
    r = run_cli(command, "--help")
    assert r.exit_code == 0, r.stderr
    assert "--trust-model" in r.stdout and "--custom-objects" in r.stdout


@pytest.mark.parametrize("command", ("check", "compile", "bench"))
def test_tflite_only_commands_refuse_a_keras_model_without_a_trust_hint(run_cli, command, keras3_hardswish, tmp_path):
    # compile for cpu has nothing to do and skips; mcu reads the model
    args = ["--target", "mcu", "-o", tmp_path / "out"] if command == "compile" else ["--target", "cpu"]
    r = run_cli(command, keras3_hardswish, *args)
    assert r.exit_code == 3, r.stderr
    assert ".tflite" in r.stderr and "--trust-model" not in r.stderr


def test_toml_takes_the_load_keys(tmp_path):
    path = tmp_path / "edgeq.toml"
    path.write_text(
        '[build]\ntarget = "cpu"\ntrust-model = true\ncustom-objects = ["mylayers:OBJECTS", "more:Layer"]\n'
    )
    cfg = BuildConfig(**load_toml(str(path)))
    assert cfg.trust_model is True
    assert cfg.custom_objects == ("mylayers:OBJECTS", "more:Layer")
    assert cfg.load.safe_mode is False


def test_toml_single_custom_objects_string_is_one_spec(tmp_path):
    path = tmp_path / "edgeq.toml"
    path.write_text('target = "cpu"\ncustom_objects = "mylayers:OBJECTS"\n')
    assert BuildConfig(**load_toml(str(path))).custom_objects == ("mylayers:OBJECTS",)


def test_toml_load_keys_are_typed(tmp_path):
    path = tmp_path / "edgeq.toml"
    path.write_text('target = "cpu"\ntrust-model = "yes"\n')
    with pytest.raises(BadInput) as err:
        load_toml(str(path))
    assert "`trust-model` must be true or false" in err.value.message


@pytest.fixture
def lambda_classifier(tmp_path):
    """A 16x16x3 classifier whose first layer is a Lambda (Python bytecode in the file)."""
    from edgeq.tfimport import tensorflow

    tensorflow()
    import tf_keras

    tf_keras.utils.set_random_seed(0)
    inputs = tf_keras.Input((16, 16, 3))
    x = tf_keras.layers.Lambda(lambda t: t * 2.0 - 1.0, name="to_signed")(inputs)
    x = tf_keras.layers.Conv2D(4, 3, activation="relu")(x)
    x = tf_keras.layers.GlobalAveragePooling2D()(x)
    path = tmp_path / "lambda.keras"
    tf_keras.Model(inputs, tf_keras.layers.Dense(4, activation="softmax")(x)).save(path)
    return path


def test_build_refuses_code_before_making_its_folder(run_cli, tmp_path, lambda_classifier, image_data):
    out = tmp_path / "build"
    r = run_cli("build", lambda_classifier, "--target", "cpu", "--data", image_data, "-o", out)
    assert r.exit_code == 3, r.stderr
    assert "Lambda layer 'to_signed'" in r.stderr and "--trust-model" in r.stderr
    assert not out.exists()


def test_build_inputs_pass_the_safe_mode_check_when_trusted(tmp_path, lambda_classifier, image_data):
    from edgeq.build.inputs import resolve_inputs

    base = {"model": str(lambda_classifier), "data": str(image_data), "targets": ("cpu",)}
    with pytest.raises(BadInput):
        resolve_inputs(BuildConfig(**base))
    assert resolve_inputs(BuildConfig(**base, trust_model=True))["model"] == str(lambda_classifier)


def test_build_with_trust_model_in_toml(run_cli, tmp_path, lambda_classifier, image_data, monkeypatch):
    (tmp_path / "edgeq.toml").write_text(
        f'model = "{lambda_classifier}"\ntarget = "cpu"\ndata = "{image_data}"\nmethod = "ptq"\n'
        'trust-model = true\nruns = 3\nwarmup = 1\nout-dir = "build"\n'
    )
    monkeypatch.chdir(tmp_path)
    r = run_cli("build")
    assert r.exit_code == 0, r.stderr
    assert (tmp_path / "build" / "cpu").is_dir()
