"""Every numeric option is finite and bounded (exit 2 naming the option and its range), on the
command line, in edgeq.toml and in target option declarations; refused before any model is read."""

from __future__ import annotations

import click
import pytest

from edgeq.config import BuildConfig, DataConfig, Preprocess
from edgeq.errors import UsageError

# (arguments, the flag the message names). The model does not exist: the old code got past the option
# and failed on the model (exit 3), or ran on with a NaN budget / a 584 GiB sample count.
CASES = [
    (["quantize", "m.keras", "-o", "q.tflite", "--eval-data", "e.npz", "--min-sqnr", "nan"], "--min-sqnr"),
    (["quantize", "m.keras", "-o", "q.tflite", "--eval-data", "e.npz", "--max-drop", "inf"], "--max-drop"),
    (["quantize", "m.keras", "-o", "q.tflite", "--eval-data", "e.npz", "--max-class-drop", "-inf"], "--max-class-drop"),
    (["quantize", "m.keras", "-o", "q.tflite", "--data", "d.npz", "--scale", "nan"], "--scale"),
    (["quantize", "m.keras", "-o", "q.tflite", "--data", "d.npz", "--scale", "1e400"], "--scale"),
    (["quantize", "m.keras", "-o", "q.tflite", "--data", "d.npz", "--resize", "100000x100000"], "--resize"),
    (["quantize", "m.keras", "-o", "q.tflite", "--data", "d.npz", "--mean", "nan", "--std", "1"], "--mean"),
    (["quantize", "m.keras", "-o", "q.tflite", "--data", "d.npz", "--std", "inf", "--mean", "0"], "--std"),
    (["quantize", "m.keras", "-o", "q.tflite", "--data", "d.npz", "--samples", "1000000000"], "--samples"),
    (["quantize", "m.keras", "-o", "q.tflite", "--data", "d.npz", "--seed", "-1"], "--seed"),
    (["quantize", "m.keras", "-o", "q.tflite", "--batch", "100000"], "--batch"),
    (["quantize", "m.keras", "-o", "q.tflite", "--qat", "--train-data", "t.npz", "--lr", "nan"], "--lr"),
    (["quantize", "m.keras", "-o", "q.tflite", "--qat", "--train-data", "t.npz", "--epochs", "1000000000"], "--epochs"),
    (["train", "m.keras", "--data", "d.npz", "-o", "t.keras", "--val-split", "nan"], "--val-split"),
    (["bench", "m.tflite", "--runs", "100000000"], "--runs"),
    (["bench", "m.tflite", "--warmup", "100000000"], "--warmup"),
    (["bench", "m.tflite", "--host", "u@b", "--timeout-s", "nan"], "--timeout-s"),
    (["bench", "m.tflite", "--host", "u@b", "--port", "70000"], "--port"),
    (["bench", "m.tflite", "--target", "android", "--adb-timeout-s", "inf"], "--adb-timeout-s"),
    (["check", "m.tflite", "--target", "mcu", "--timeout-s", "nan"], "--timeout-s"),
    (["check", "m.tflite", "--target", "mcu", "--timeout-s", "-5"], "--timeout-s"),
    (["check", "m.tflite", "--target", "mcu", "--parity-samples", "100000000"], "--parity-samples"),
    (["compile", "m.tflite", "--target", "mcu", "--runtime", "c", "--proof-samples", "100000000"], "--proof-samples"),
    (["compile", "m.tflite", "--target", "ethos-u", "--timeout-s", "inf"], "--timeout-s"),
    (["compile", "m.tflite", "--target", "coral", "--num-segments", "1000000"], "--num-segments"),
    (["build", "m.keras", "--target", "cpu", "--max-drop", "nan"], "--max-drop"),
    (["build", "m.keras", "--target", "cpu", "--runs", "100000000"], "--runs"),
    (["targets", "--supported-ops", "coral", "--runtime-version", "-1"], "--runtime-version"),
]


@pytest.mark.parametrize(("args", "flag"), CASES, ids=[f"{a[0]} {flag}={a[a.index(flag) + 1]}" for a, flag in CASES])
def test_out_of_range_option_is_usage_error(run_cli, tmp_path, monkeypatch, args, flag):
    monkeypatch.chdir(tmp_path)
    r = run_cli("--json", *args)
    assert r.exit_code == 2, r.stdout + r.stderr
    err = r.json["error"]
    assert err["type"] == "usage" and err["message"].startswith(f"{flag} must be "), err
    assert any(w in err["message"] for w in ("between", "above", "below"))
    assert list(tmp_path.iterdir()) == []  # refused before any work


def test_every_numeric_option_of_every_command_is_bounded():
    """A new int/float option without a bound fails here: no unbounded count, no NaN budget."""
    from edgeq.cli.main import cli
    from edgeq.cli.options import Bounded

    unbounded = []
    for name, cmd in cli.commands.items():
        for p in cmd.params:
            if isinstance(p.type, (click.types.IntParamType, click.types.FloatParamType)) and not isinstance(
                p.type, Bounded
            ):
                unbounded.append(f"{name} {p.opts[-1]}")
            if isinstance(p.type, Bounded):
                assert "Range:" in (p.help or "") or "each side" in (p.help or ""), f"{name} {p.opts}: no range in help"
    assert unbounded == []


def test_target_option_declares_a_bound_for_numbers():
    from edgeq.config import SAMPLES
    from edgeq.targets.base import option

    with pytest.raises(ValueError, match="declares its bound"):
        option("n", "--n", "bench", "A count.", type=int)
    assert option("n", "--n", "bench", "A count.", type=int, bound=SAMPLES).bound == SAMPLES


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -1.0, 101.0])
def test_build_config_refuses_non_finite_budget(value):
    with pytest.raises(UsageError, match="--max-drop must be between 0 and 100"):
        BuildConfig(targets=("cpu",), max_drop=value)


def test_library_configs_share_the_bounds():
    from edgeq.config import Bound

    with pytest.raises(UsageError, match="--scale must be above 0"):
        Preprocess(scale=float("nan"))
    with pytest.raises(UsageError, match="--resize must be between 1 and 4096, got 100000"):
        Preprocess(resize=(100000, 28))
    with pytest.raises(UsageError, match="--samples must be between 1 and 1000000"):
        DataConfig(path="d.npz", samples=10**9)
    assert Bound(0, 1, high_open=True).text() == "at least 0 and below 1"


TOML_CASES = [
    ("max-drop = 1000.0", "--max-drop"),
    ("min-sqnr = -1000.0", "--min-sqnr"),
    ("runs = 100000000", "--runs"),
    ("warmup = 100000000", "--warmup"),
    ("adaround-steps = 1000000000", "--adaround-steps"),
]


@pytest.mark.parametrize(("line", "flag"), TOML_CASES)
def test_toml_value_out_of_range_is_usage_error(run_cli, tmp_path, line, flag):
    cfg = tmp_path / "edgeq.toml"
    cfg.write_text(f'target = "cpu"\nmodel = "missing.keras"\n{line}\n')
    r = run_cli("build", "--config", cfg, "-o", tmp_path / "out")
    assert r.exit_code == 2, r.stderr
    assert f"{flag} must be between" in r.stderr
    assert not (tmp_path / "out").exists()


def test_memory_error_has_a_reason(run_cli, monkeypatch):
    """str(MemoryError()) is empty: the CLI says out of memory and what to try (exit 3, not 1)."""
    import edgeq.cli.cmd_targets as cmd_targets

    def boom(*a, **k):
        raise MemoryError()

    monkeypatch.setattr(cmd_targets, "table", boom)
    r = run_cli("--json", "targets")
    assert r.exit_code == 3
    err = r.json["error"]
    assert err["message"].startswith("out of memory while running edgeq targets") and "--samples" in err["hint"]
