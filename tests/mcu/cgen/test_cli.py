"""edgeq compile --target mcu --runtime c: the project, its proof, the errors, and nothing half-written."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from edgeq.targets.mcu import cgen
from edgeq.targets.mcu.cgen import toolchain

ARM_TOOLS = ("arm-none-eabi-gcc", "arm-none-eabi-size", "qemu-system-arm")
needs_gcc = pytest.mark.skipif(shutil.which("gcc") is None, reason="no gcc on PATH")


def test_help_names_the_runtime_option(run_cli):
    r = run_cli("compile", "--help")
    assert r.exit_code == 0
    assert "--runtime [tflm|c]" in r.stdout and "--proof-samples" in r.stdout


@pytest.mark.slow
@needs_gcc
def test_runtime_c_writes_a_proven_project(run_cli, mcu_models, tmp_path):
    r = run_cli("--json", "compile", mcu_models["bundled_int8"], "--target", "mcu", "--runtime", "c",
                "--board", "nrf52840", "--proof-samples", "4", "-o", tmp_path)  # fmt: skip
    assert r.exit_code == 0, r.stdout + r.stderr
    doc = r.json["result"]
    folder = tmp_path / "mnist_int8_c"
    for name in ("model.h", "model.c", "eq_kernels.c", "main_qemu.c", "startup.c", "memory_plan.txt", "Makefile"):
        assert (folder / name).is_file()
    assert "int model_invoke(const int8_t* in, int8_t* out);" in (folder / "model.h").read_text()
    assert {p.name for p in folder.glob("link_*.ld")} == {f"link_{c}.ld" for c in cgen.CORES}
    assert doc["proof"]["host"]["bit_exact"] == 4
    assert doc["tflm"]["arena_bytes"] > 0 and doc["tflm"]["flash_bytes_estimate"] > 0
    m4 = doc["proof"]["qemu"]["cortex-m4"]  # nrf52840 is a Cortex-M4
    if any(shutil.which(t) is None for t in ARM_TOOLS):
        assert m4["proven"] is False and "not installed" in m4["reason"]
        assert any("cortex-m4 under QEMU" in n for n in doc["proof"]["not_proven"])
    else:
        assert m4["bit_exact"] == 4 and m4["machine"] == "mps2-an386"
        assert doc["ram_bytes"] == m4["static_ram_bytes"] + m4["stack_bytes"]
        # the goal of the issue: less RAM than TFLM's arena
        assert doc["ram_bytes"] < doc["tflm"]["arena_bytes"]
        assert str(folder) in m4["elf"]  # paths point into the final folder, not the staging one
    human = run_cli("compile", mcu_models["bundled_int8"], "--target", "mcu", "--runtime", "c", "--board",
                    "nrf52840", "--proof-samples", "2", "-o", tmp_path, "--force")  # fmt: skip
    assert human.exit_code == 0
    assert "2/2 with TFLM reference kernels, 2/2 with LiteRT BUILTIN_REF" in human.stdout
    assert "QEMU instruction count, not board cycles" in human.stdout or "not proven" in human.stdout


@pytest.mark.slow
@needs_gcc
def test_without_the_arm_toolchain_the_project_is_written_and_says_what_was_not_proven(
    run_cli, mcu_models, tmp_path, monkeypatch
):
    monkeypatch.setattr(toolchain, "missing", lambda tools: [t for t in tools if t != "gcc"])
    r = run_cli("compile", mcu_models["ds_cnn"], "--target", "mcu", "--runtime", "c", "--proof-samples", "2",
                "-o", tmp_path)  # fmt: skip
    assert r.exit_code == 0, r.stderr
    assert "not proven: cortex-m7 under QEMU: arm-none-eabi-gcc, arm-none-eabi-size, qemu-system-arm not installed" in (
        r.stdout
    )
    assert (tmp_path / "ds_cnn_c" / "model.c").is_file()


@pytest.mark.slow
@needs_gcc
def test_a_proof_that_fails_exits_4_and_leaves_nothing(run_cli, mcu_models, tmp_path, monkeypatch):
    # both references one step off: a proof passes when the engine matches either (each is reported)
    real, real_tflm = cgen.reference_outputs, cgen.tflm_outputs
    monkeypatch.setattr(cgen, "reference_outputs", lambda data, x: np.clip(real(data, x).astype(int) + 1, -128, 127))
    monkeypatch.setattr(
        cgen, "tflm_outputs", lambda data, x, t: np.clip(real_tflm(data, x, t).astype(int) + 1, -128, 127)
    )
    monkeypatch.setattr(toolchain, "missing", lambda tools: [t for t in tools if t != "gcc"])
    r = run_cli("compile", mcu_models["ds_cnn"], "--target", "mcu", "--runtime", "c", "--proof-samples", "2",
                "-o", tmp_path)  # fmt: skip
    assert r.exit_code == 4, r.stderr
    assert "differs from TFLM reference kernels (host: 0/2 bit-exact)" in r.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_unsupported_ops_are_named_with_the_tflm_hint(run_cli, mcu_models, tmp_path):
    r = run_cli("compile", mcu_models["three_missing"], "--target", "mcu", "--runtime", "c", "-o", tmp_path)
    assert r.exit_code == 3
    line = r.stderr.strip().splitlines()[-1]
    for op in ("TILE", "SIGN", "TOPK_V2"):
        assert op in line
    assert "--runtime tflm" in line
    assert list(tmp_path.iterdir()) == []


def test_zero_proof_samples_is_refused(run_cli, mcu_models, tmp_path):
    r = run_cli("compile", mcu_models["ds_cnn"], "--target", "mcu", "--runtime", "c", "--proof-samples", "0",
                "-o", tmp_path)  # fmt: skip
    assert r.exit_code == 2
    assert "--proof-samples must be between 1 and 10000, got 0" in r.stderr
    assert list(tmp_path.iterdir()) == []


def test_proof_samples_needs_the_c_runtime(run_cli, tmp_path):
    r = run_cli("compile", tmp_path / "missing.tflite", "--target", "mcu", "--proof-samples", "3", "-o", tmp_path)
    assert r.exit_code == 2
    assert "--proof-samples applies to --runtime c" in r.stderr


def test_runtime_is_refused_by_other_targets(run_cli, tmp_path):
    r = run_cli("compile", tmp_path / "m.tflite", "--target", "coral", "--runtime", "c", "-o", tmp_path)
    assert r.exit_code == 2
    assert "--runtime does not apply to target coral" in r.stderr


@pytest.mark.slow
@needs_gcc
def test_relative_output_folder(run_cli, mcu_models, tmp_path, monkeypatch):
    """gcc runs inside the build folder: a relative -o must still find the sources."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(toolchain, "missing", lambda tools: [t for t in tools if t != "gcc"])
    r = run_cli("compile", mcu_models["bundled_int8"], "--target", "mcu", "--runtime", "c", "--proof-samples", "2",
                "-o", "rel/out")  # fmt: skip
    assert r.exit_code == 0, r.stderr
    assert (tmp_path / "rel" / "out" / "mnist_int8_c" / "model.c").is_file()
