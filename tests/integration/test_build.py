"""edgeq build --target cpu on the bundled default, with no other arguments."""

from __future__ import annotations

import json
import os

import pytest

from tests.conftest import listing


@pytest.fixture(scope="module")
def cpu_build(tmp_path_factory):
    from edgeq.cli.app import run
    from edgeq.cli.main import cli

    work = tmp_path_factory.mktemp("build")
    cwd = os.getcwd()
    os.chdir(work)
    try:
        code = run(cli, ["build", "--target", "cpu", "--runs", "20", "--warmup", "2"])
    finally:
        os.chdir(cwd)
    return code, work


def test_build_cpu_with_no_other_arguments(cpu_build):
    code, work = cpu_build
    assert code == 0
    out = work / "edgeq-out" / "cpu"
    assert listing(out) == [
        "build.json",
        "mnist_cnn_float.tflite",
        "mnist_cnn_float.tflite.edgeq.json",
        "mnist_cnn_int8.tflite",
        "mnist_cnn_int8.tflite.edgeq.json",
    ]
    manifest = json.loads((out / "build.json").read_text())
    float_row, int8_row = manifest["variants"]
    assert float_row["variant"] == "float" and int8_row["variant"] == "int8"
    assert int8_row["float_ops"] == 0 and int8_row["inputs"][0]["dtype"] == "int8"
    assert int8_row["num_eval_samples"] == 2000
    assert abs(float_row["accuracy"] - int8_row["accuracy"]) <= 0.005
    assert int8_row["size_bytes"] <= 0.32 * float_row["size_bytes"]
    for row in (float_row, int8_row):
        assert row["latency_ms"]["p50"] > 0 and row["first_invoke_ms"] > 0


def test_build_rebuilds_its_own_folder_but_not_a_foreign_one(run_cli, cpu_build, tmp_path):
    _, work = cpu_build
    foreign = tmp_path / "mine"
    (foreign / "cpu").mkdir(parents=True)
    (foreign / "cpu" / "notes.txt").write_text("keep")
    r = run_cli("build", "--target", "cpu", "-o", foreign, "--runs", "5", "--warmup", "0")
    assert r.exit_code == 3 and "not an edgeq build folder" in r.stderr
    assert listing(foreign / "cpu") == ["notes.txt"]


def test_build_prints_a_table(run_cli, tmp_path):
    r = run_cli("build", "--target", "cpu", "-o", tmp_path / "b", "--runs", "5", "--warmup", "0")
    assert r.exit_code == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "Verdict per target:" and lines[1].startswith("  cpu: ")  # the verdict first
    assert "latency" in lines[1] and "measured on host" in lines[1]
    head = lines.index(next(ln for ln in lines if ln.startswith("variant")))
    assert lines[head].split() == [
        "variant",
        "size_bytes",
        "accuracy",
        "agreement",
        "sqnr_db",
        "p50_ms",
        "p99_ms",
        "mean_ms",
        "latency",
        "on",
    ]
    assert lines[head + 2].startswith("float") and lines[head + 3].startswith("int8")
    assert "measured" in lines[head + 3]


def test_build_unknown_target(run_cli, tmp_path):
    r = run_cli("build", "--target", "toaster", "-o", tmp_path / "b")
    assert r.exit_code == 2 and "unknown target 'toaster'" in r.stderr and "cpu" in r.stderr
    assert not (tmp_path / "b").exists()
