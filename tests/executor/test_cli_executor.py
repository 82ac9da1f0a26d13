"""--executor, --jobs and --ray-address on the planner's commands: declared, checked, and Ray's absence is
exit 5 naming the extra."""

from __future__ import annotations

import sys

import pytest

from edgeq.config import BuildConfig
from edgeq.errors import UsageError
from edgeq.executor import ExecutorConfig, Kind
from tests.conftest import DATA

PLAN = ("quantize", "m.keras", "-o", "o.tflite", "--data", DATA / "mnist_calib.npz", "--min-sqnr", "20")


@pytest.mark.parametrize("command", ["build", "quantize"])
def test_the_options_are_on_the_planners_commands(run_cli, command: str) -> None:
    r = run_cli(command, "--help")
    assert r.exit_code == 0
    assert all(flag in r.stdout for flag in ("--executor [local|ray]", "--jobs N", "--ray-address"))


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("--jobs", "0"), "--jobs"),
        (("--executor", "slurm"), "--executor"),
        (("--executor", "ray", "--jobs", "2"), "--jobs is for --executor local"),
        (("--executor", "local", "--ray-address", "h:1"), "needs the ray executor"),
    ],
)
def test_bad_executor_options_are_usage_errors(run_cli, args: tuple, says: str) -> None:
    r = run_cli("--json", *PLAN, *args)
    assert r.exit_code == 2, r.stdout + r.stderr
    assert says in r.stdout


def test_an_executor_without_the_planner_is_refused(run_cli) -> None:
    r = run_cli("quantize", "m.keras", "-o", "o.tflite", "--jobs", "2")
    assert r.exit_code == 2 and "--max-drop or --min-sqnr" in r.stderr


def test_ray_not_installed_is_exit_5_naming_the_install(run_cli, tf_keras_model, tmp_path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)
    args = ("--json", "quantize", tf_keras_model, "-o", tmp_path / "o.tflite", "--data", DATA / "mnist_calib.npz")
    r = run_cli(*args, "--eval-data", DATA / "mnist_eval.npz", "--min-sqnr", "99", "--executor", "ray")  # fails first
    assert r.exit_code == 5, r.stdout + r.stderr
    assert "pip install edgeq[ray]" in r.json["error"]["hint"]
    assert not (tmp_path / "o.tflite").exists()


def test_build_config_carries_the_executor_from_edgeq_toml_keys() -> None:
    cfg = BuildConfig(executor="ray", ray_address="ray://head:10001")
    assert cfg.executor_config == ExecutorConfig(Kind.RAY, None, "ray://head:10001")
    assert BuildConfig(jobs=3).executor_config.workers == 3
    with pytest.raises(UsageError):
        BuildConfig(jobs=0)


def test_a_build_asking_for_ray_without_it_is_exit_5_before_any_work(run_cli, tmp_path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)
    r = run_cli("--json", "build", "--target", "cpu", "--executor", "ray", "-o", tmp_path / "out")
    assert r.exit_code == 5, r.stdout + r.stderr
    assert "pip install edgeq[ray]" in r.json["error"]["hint"]
    assert not (tmp_path / "out").exists()
