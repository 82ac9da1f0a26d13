"""The android target through the CLI: compile flavours, bench with delegates side by side."""

from __future__ import annotations

from tests.android.conftest import recorded
from tests.conftest import DATA, ROOT


def test_cli_compile_makes_three_verified_flavours(run_cli, tmp_path):
    r = run_cli(
        "--json",
        "compile",
        ROOT / "models/mnist_cnn.keras",
        "--target",
        "android",
        "--data",
        DATA / "mnist_calib.npz",
        "-o",
        tmp_path,
    )
    assert r.exit_code == 0, r.stderr
    flavours = {f["flavour"]: f for f in r.json["result"]["flavours"]}
    assert set(flavours) == {"float32", "fp16", "int8"} and all(f["verified"] for f in flavours.values())
    assert flavours["int8"]["inputs"][0]["dtype"] == "int8" and flavours["fp16"]["inputs"][0]["dtype"] == "float32"
    r = run_cli("compile", ROOT / "models/mnist_cnn.keras", "--target", "android", "-o", tmp_path / "x")
    assert r.exit_code == 2 and "--data" in r.stderr


def test_cli_bench_delegates_side_by_side(run_cli, standin, fake_binary, tiny_int8):
    adb, _ = standin(
        benchmark={
            "cpu": str(recorded("lp6m_mi11_cpu_int8.txt")),
            "nnapi": str(recorded("lp6m_mi11_nnapi_qti_dsp_failed.txt")),
        }
    )
    r = run_cli(
        "--json",
        "bench",
        tiny_int8,
        "--target",
        "android",
        "--delegate",
        "cpu,nnapi",
        "--adb",
        adb,
        "--benchmark-binary",
        fake_binary,
        "--runs",
        "50",
        "--warmup",
        "1",
    )
    assert r.exit_code == 0, r.stderr
    rows = {d["delegate"]: d for d in r.json["result"]["delegates"]}
    assert rows["cpu"]["status"] == "ok" and rows["nnapi"]["status"] == "failed"
    r = run_cli(
        "bench", tiny_int8, "--target", "android", "--delegate", "cpu", "--adb", adb, "--benchmark-binary", fake_binary
    )
    assert r.exit_code == 0 and "delegate" in r.stdout and "cpu" in r.stdout
    r = run_cli("bench", tiny_int8, "--target", "cpu", "--delegate", "gpu")
    assert r.exit_code == 2 and "--delegate does not apply to target cpu for bench; drop --delegate" in r.stderr
