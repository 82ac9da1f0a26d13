"""The mcu and ethos-u targets through the CLI (check, compile, bench options)."""

from __future__ import annotations

import json
import subprocess
import sys


def test_cli_check_compile_bench_mcu(run_cli, tiny_int8, tmp_path):
    r = run_cli("--json", "check", tiny_int8, "--target", "mcu", "--board", "stm32l4r5")
    assert r.exit_code == 0, r.stderr
    res = r.json["result"]
    assert res["arena_bytes"] > 0 and res["flash_bytes"] > tiny_int8.stat().st_size and res["fits"] is True
    assert res["unsupported_ops"] == []
    r = run_cli("--json", "compile", tiny_int8, "--target", "mcu", "-o", tmp_path)
    assert r.exit_code == 0, r.stderr
    assert any(str(f).endswith("model_data.cc") for f in r.json["artifacts"])
    r = run_cli("compile", tiny_int8, "--target", "mcu", "-o", tmp_path)
    assert r.exit_code == 3 and "--force" in r.stderr  # no silent overwrite of an export
    r = run_cli("bench", tiny_int8, "--target", "mcu", "--board", "stm32h7a3", "--runs", "5", "--warmup", "1")
    assert r.exit_code == 0 and "host timing" in r.stdout and "estimate" in r.stdout
    r = run_cli("check", tiny_int8, "--target", "mcu", "--board", "abacus")
    assert r.exit_code == 2 and "abacus" in r.stderr
    r = run_cli("check", tiny_int8, "--target", "cpu", "--board", "stm32l4r5")
    assert r.exit_code == 2 and "--board does not apply to target cpu" in r.stderr


def test_cli_compile_ethos_u(run_cli, tiny_int8, tmp_path):
    r = run_cli("--json", "compile", tiny_int8, "--target", "ethos-u", "--accelerator", "ethos-u55-256", "-o", tmp_path)
    assert r.exit_code == 0, r.stderr
    res = r.json["result"]
    assert res["output"].endswith("_vela.tflite") and res["summary"]["inferences_per_second"] > 0
    assert (
        "compiled for ethos-u" in run_cli("compile", tiny_int8, "--target", "ethos-u", "-o", tmp_path, "--force").stdout
    )


def test_build_mcu_ethos_u_android_with_no_other_arguments(tmp_path):
    """As a new user runs them (one folder: the targets share one int8 model)."""
    for target in ("mcu", "ethos-u", "android"):
        p = subprocess.run(
            [sys.executable, "-m", "edgeq", "--json", "build", "--target", target, "--runs", "10"],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            timeout=600,
        )
        assert p.returncode == 0, (target, p.stderr, p.stdout[-2000:])
        variants = json.loads(p.stdout)["result"]["targets"][target]["variants"]
        int8 = next(v for v in variants if v["variant"] == "int8")  # android also has fp16
        assert int8["check"]["ok"] and int8["float_ops"] == 0
    assert (tmp_path / "edgeq-out" / "report.html").is_file()
