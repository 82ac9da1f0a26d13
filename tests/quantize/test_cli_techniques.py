"""The all-integer techniques on the command line: options, the automatic default, the sidecar record,
bad input, and the same keys in edgeq.toml."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgeq.config import PLAIN, BuildConfig, DataConfig, QuantizeConfig, TechniqueConfig
from edgeq.errors import UsageError
from tests.conftest import DATA, ROOT, listing

MNIST = ROOT / "models" / "mnist_cnn.keras"
CALIB = DATA / "mnist_calib.npz"


def test_technique_config():
    assert TechniqueConfig.given() == PLAIN and PLAIN.plain and PLAIN.label == "minmax"
    t = TechniqueConfig.given(ranges="Percentile:99.990", bias_correction=True)
    assert not t.plain and t.label == "percentile:99.99+bias"
    assert QuantizeConfig().techniques == PLAIN  # the default is the plain converter
    with pytest.raises(UsageError, match="int8 quantization, not fp16"):
        QuantizeConfig(mode="fp16", techniques=TechniqueConfig.given(cle=True))
    with pytest.raises(UsageError, match="--denylist"):
        QuantizeConfig(denylist=("conv1",), techniques=TechniqueConfig.given(ranges="mse"))


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--ranges", "percentile:150"], "--ranges percentile:150 is out of range"),
        (["--ranges", "percentile:0"], "out of range"),
        (["--ranges", "percentile"], "has no percentile number"),
        (["--ranges", "kl"], "unknown range method 'kl'"),
        (["--ranges", "mse:3"], "mse takes no argument"),
        (["--adaround", "--adaround-steps", "0"], "--adaround-steps must be between 1 and 100000, got 0"),
        (["--cle", "--mode", "dynamic"], "int8 quantization, not dynamic"),
        (["--allow-cpu-fallback"], "--allow-cpu-fallback goes with a planner budget"),
        (["--adaround-steps", "10"], "--adaround-steps tunes --adaround"),
    ],
)
def test_bad_technique_options_exit_2_before_any_work(run_cli, tmp_path, flags, message):
    r = run_cli("quantize", MNIST, "--data", CALIB, "-o", tmp_path / "q.tflite", *flags)
    assert r.exit_code == 2, r.stderr
    assert message in r.stderr and "Traceback" not in r.stderr
    assert listing(tmp_path) == []


def test_budget_and_named_techniques_conflict(run_cli, tmp_path):
    r = run_cli(
        "quantize", MNIST, "--data", CALIB, "--eval-data", CALIB, "--max-drop", "1", "--cle", "-o", tmp_path / "q"
    )
    assert r.exit_code == 2 and "the planner tries them in turn" in r.stderr


@pytest.mark.slow
def test_the_default_is_the_plain_converter_byte_for_byte(run_cli, tmp_path):
    from edgeq.data import load
    from edgeq.modelio import load_model
    from edgeq.quantize import ptq

    plain, _ = ptq.convert(load_model(str(MNIST)), QuantizeConfig(techniques=PLAIN), load(DataConfig(str(CALIB))))
    for flags in ([], ["--ranges", "minmax"]):
        r = run_cli("--json", "quantize", MNIST, "--data", CALIB, *flags, "-o", tmp_path / "q.tflite", "--force")
        assert r.exit_code == 0, r.stderr
        assert (tmp_path / "q.tflite").read_bytes() == plain
        assert json.loads(r.stdout)["result"]["techniques"] is None


@pytest.mark.slow
def test_techniques_together_are_verified_and_recorded(run_cli, tmp_path):
    out = tmp_path / "q.tflite"
    r = run_cli(
        "quantize", MNIST, "--data", CALIB, "--ranges", "mse", "--cle", "--bias-correction", "-o", out, "--io", "uint8"
    )
    assert r.exit_code == 0, r.stderr
    assert "techniques: cle+mse+bias" in r.stdout and "every op is integer" in r.stdout
    side = json.loads((tmp_path / "q.tflite.edgeq.json").read_text())
    assert side["config"]["techniques"] == {
        "ranges": "mse",
        "cle": True,
        "bias_correction": True,
        "adaround": False,
        "adaround_steps": 500,
    }
    t = side["techniques"]
    assert t["applied"] == "cle+mse+bias" and t["cle"]["pairs"] and t["ranges"]["edited"]
    assert t["bias_correction"]["corrected"]
    from edgeq import tflite

    info = tflite.read_file(out)
    assert not info.float_ops and info.inputs[0].dtype == "uint8"


def _no_pair_model(tmp_path):
    """One Dense layer: nothing for cross-layer equalization to pair."""
    import tf_keras

    from edgeq.tfimport import tensorflow

    tensorflow()
    inp = tf_keras.Input((8, 8, 1))
    x = tf_keras.layers.Flatten()(inp)
    model = tf_keras.Model(inp, tf_keras.layers.Dense(10, activation="softmax")(x))
    model.save(tmp_path / "one.keras")
    np.savez(tmp_path / "d.npz", x=np.random.default_rng(0).random((32, 8, 8, 1), dtype=np.float32))
    return tmp_path / "one.keras", tmp_path / "d.npz"


@pytest.mark.slow
def test_cle_with_no_equalizable_pair_is_a_note_not_a_failure(run_cli, tmp_path):
    model, data = _no_pair_model(tmp_path)
    r = run_cli("quantize", model, "--data", data, "--cle", "-o", tmp_path / "q.tflite")
    assert r.exit_code == 0, r.stderr
    assert "techniques: cle" in r.stdout and "equaliz" in r.stdout.lower()
    assert (tmp_path / "q.tflite").exists()


@pytest.mark.slow
def test_the_planner_skips_cle_with_its_reason_and_names_steps_by_what_they_do(run_cli, tmp_path):
    model, data = _no_pair_model(tmp_path)
    args = ["--json", "quantize", model, "--data", data, "--eval-data", data, "--min-sqnr", "200"]
    r = run_cli(*args, "--adaround-steps", "2", "--target", "mcu", "-o", tmp_path / "p.tflite")
    assert r.exit_code == 6
    steps = r.json["error"]["details"]["steps"]
    assert [s["name"] for s in steps[:4]] == ["int8 PTQ", "int8 cle", "int8 mse+bias", "int8 mse+adaround+bias"]
    assert "no layer pair to equalize" in steps[1]["skipped"]
    assert "best all-integer plan" in r.json["error"]["message"]


def test_edgeq_toml_technique_keys(tmp_path):
    from edgeq.config import load_toml

    (tmp_path / "edgeq.toml").write_text('target = "coral"\nranges = "mse"\ncle = true\nbias-correction = true\n')
    cfg = BuildConfig(**load_toml(str(tmp_path / "edgeq.toml")))
    assert cfg.techniques.label == "cle+mse+bias"
    (tmp_path / "bad.toml").write_text('target = "coral"\ncle = "yes"\n')
    from edgeq.errors import BadInput

    with pytest.raises(BadInput, match="cle"):
        load_toml(str(tmp_path / "bad.toml"))
    (tmp_path / "p.toml").write_text('target = "coral"\nranges = "percentile:150"\n')
    with pytest.raises(UsageError, match="out of range"):
        BuildConfig(**load_toml(str(tmp_path / "p.toml")))
    with pytest.raises(UsageError, match="--allow-cpu-fallback goes with --method auto"):
        BuildConfig(targets=("coral",), method="ptq", allow_cpu_fallback=True)
