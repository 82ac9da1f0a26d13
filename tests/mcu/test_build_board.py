"""edgeq build --target mcu --board nrf52840 --runtime c: the generated C engine built, proven and measured for
that board, in the findings; then another board from edgeq.toml redoes the mcu steps and nothing else."""

from __future__ import annotations

import json
import shutil

import pytest

from edgeq import bundled
from edgeq.findings import Basis, Findings

pytestmark = pytest.mark.skipif(
    not all(shutil.which(t) for t in ("arm-none-eabi-gcc", "qemu-system-arm")),
    reason="arm-none-eabi-gcc and qemu-system-arm are needed (apt-get install gcc-arm-none-eabi qemu-system-arm)",
)


def _stages(out) -> dict[str, bool]:
    return {s["name"]: s["cached"] for s in json.loads((out / "build.json").read_text())["stages"]}


@pytest.mark.slow
def test_build_for_a_board_with_the_generated_c_then_another_board_from_edgeq_toml(run_cli, tmp_path):
    out = tmp_path / "out"
    model = bundled.require(bundled.MODEL)  # named by its path, it takes the bundled data, as by default
    common = ["--method", "ptq", "-o", str(out), "--runs", "20"]
    r = run_cli("build", model, "--target", "mcu", "--board", "nrf52840", "--runtime", "c", *common)
    assert r.exit_code == 0, r.stderr

    mcu = json.loads((out / "mcu" / "build.json").read_text())
    assert mcu["options"]["compile"] == {"board": "nrf52840", "runtime": "c"}
    assert json.loads((out / "build.json").read_text())["config"]["options"] == {"board": "nrf52840", "runtime": "c"}
    assert not {"verdict", "info", "warnings"} & set(mcu)
    found = Findings.from_dict(mcu["findings"])
    assert found.board is not None and found.board.name == "nrf52840" and found.board.core == "Cortex-M4"
    assert found.placement is None and "Cortex-M4" in found.no_accelerator
    # flash and RAM of the generated engine, from the linked ELF: measured, and far under TFLM's figures
    fit = found.fit
    int8 = mcu["variants"][-1]
    check = Findings.from_dict(int8["check"]["findings"])
    assert fit is not None and check.fit is not None and fit.ok
    assert fit.ram.basis == fit.flash.basis == Basis.MEASURED
    assert fit.ram_limit_bytes == 256 * 1024 and fit.flash_limit_bytes == 1024 * 1024
    assert 0 < fit.flash.value < check.fit.flash.value and 0 < fit.ram.value < check.fit.ram.value
    assert fit.ram_what == "RAM (static + stack)"  # the C engine has no arena
    assert mcu["options"]["compile"]["runtime"] == "c"
    # instructions per inference under QEMU on the board's core: measured, instructions not cycles, bit-exact
    ins, proof = found.instructions, found.proof
    assert ins is not None and ins.basis == Basis.MEASURED and "not board cycles" in ins.how
    assert "Cortex-M4" in ins.where and 1e6 < ins.value < 1e9 and ins.low is not None and ins.high is not None
    assert proof is not None and proof.ok and proof.total == 20
    assert "mnist_cnn_int8_c/" in mcu["artifacts"]
    for text in (r.stdout, (out / "report.md").read_text()):
        line = next(ln for ln in text.splitlines() if "mcu: " in ln and "instructions per inference" in ln)
        assert "nrf52840 (Cortex-M4): fits:" in line and "(measured)" in line
        assert f"{ins.value:,} instructions per inference, measured on QEMU" in line
        assert "not board cycles" in line and "bit-exact 20/20" in line

    # another board from edgeq.toml: the mcu check, compile and bench run again; the rest is cached
    (tmp_path / "edgeq.toml").write_text('[targets.mcu]\nboard = "stm32l4r5"\nruntime = "c"\n')
    r = run_cli("build", model, "--target", "mcu", "--config", str(tmp_path / "edgeq.toml"), *common)
    assert r.exit_code == 0, r.stderr
    redone = sorted(name for name, cached in _stages(out).items() if not cached)
    assert redone == ["bench [mnist_cnn_int8 on mcu]", "check [mcu]", "compile [mcu]"], redone
    board = Findings.from_dict(json.loads((out / "mcu" / "build.json").read_text())["findings"]).board
    assert board is not None and board.name == "stm32l4r5"
