"""The generated C's RAM and flash beside TFLM's, as compile --target mcu (TFLM) and build show them:
sized from the memory plan and the Arm objects, or the reason they cannot be."""

from __future__ import annotations

import shutil

import pytest

from edgeq.targets.mcu import boards
from edgeq.targets.mcu.cgen import compile as cgen_compile
from edgeq.targets.mcu.cgen import toolchain

pytestmark = pytest.mark.slow


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="no arm-none-eabi-gcc on PATH")
def test_sized_for_the_boards_core(mcu_models):
    data = mcu_models["bundled_int8"].read_bytes()
    m0 = cgen_compile.footprint(data, "m", boards.get("rp2040"))  # no QEMU machine, but gcc builds for it
    m7 = cgen_compile.footprint(data, "m", boards.get("stm32h7a3"))
    assert m0["mcpu"] == "cortex-m0plus" and m7["mcpu"] == "cortex-m7"
    assert m0["arena_bytes"] == m7["arena_bytes"] <= m7["static_ram_bytes"]
    assert m0["flash_bytes"] > 0 and m7["flash_bytes"] > 0 and m0["flash_bytes"] != m7["flash_bytes"]
    line = cgen_compile.footprint_line(m7, 20_000, 90_000)
    assert (
        f"flash {m7['flash_bytes'] / 1024:,.1f} KiB" in line
        and "TFLM: arena 19.5 KiB, flash ~87.9 KiB (estimate)" in line
    )


def test_says_why_not_without_the_toolchain_or_for_another_core(mcu_models, monkeypatch):
    data = mcu_models["bundled_int8"].read_bytes()
    xtensa = cgen_compile.footprint(data, "m", boards.get("esp32s3"))
    assert xtensa["flash_bytes"] is None and "xtensa-lx7" in xtensa["reason"] and xtensa["arena_bytes"] > 0
    monkeypatch.setattr(toolchain, "missing", lambda tools: list(tools))
    gone = cgen_compile.footprint(data, "m", boards.get("stm32h7a3"))
    assert gone["flash_bytes"] is None and "not installed" in gone["reason"] and toolchain.INSTALL in gone["reason"]
    assert "flash not measured" in cgen_compile.footprint_line(gone, 1, 1)


def test_a_model_the_engine_cannot_run_is_named():
    from pathlib import Path

    from edgeq.tflite import edit

    wake = Path(__file__).resolve().parents[2] / "data" / "third_party" / "pymicro_wakeword" / "okay_nabu.tflite"
    m = edit.unpack(wake.read_bytes())  # the engine runs okay_nabu: its LOGISTIC becomes SQRT, which it lacks
    m.operatorCodes.append(edit.new_operator_code("SQRT"))
    for op in m.subgraphs[0].operators:
        if edit.op_name(m, op) == "LOGISTIC":
            op.opcodeIndex = len(m.operatorCodes) - 1
    doc = cgen_compile.footprint(edit.pack(m), "okay_nabu", boards.get("stm32h7a3"))
    assert not doc["available"] and "SQRT" in doc["reason"]
    assert cgen_compile.footprint_line(doc, 1, 1).startswith("generated C (--runtime c): not sized")
