"""The mcu target's typed findings (board, fit and each figure's basis, the latency estimate, the QEMU
instruction count and proof, messages with their level), its human text, and a compile that takes the
check's analysis instead of running TFLM again."""

from __future__ import annotations

import shutil

import pytest

from edgeq.config import BenchConfig
from edgeq.findings import Basis, Board, Findings, Level
from edgeq.targets import registry
from edgeq.targets.mcu import boards, estimate, tflm

ARM_TOOLS = ("gcc", "arm-none-eabi-gcc", "arm-none-eabi-size", "qemu-system-arm")
needs_arm = pytest.mark.skipif(any(shutil.which(t) is None for t in ARM_TOOLS), reason="an Arm tool or QEMU missing")


@pytest.fixture(scope="module")
def mcu():
    return registry.get("mcu")


@pytest.fixture(scope="module")
def l4(mcu, mcu_models):
    """The bundled model's check on the Cortex-M4 board the estimate is calibrated on."""
    return mcu.check(str(mcu_models["bundled_int8"]), {"board": "stm32l4r5"})


def test_check_findings_board_fit_and_estimate(l4):
    f = l4.findings
    brd = boards.get("stm32l4r5")
    assert f.board == Board("stm32l4r5", "Cortex-M4", brd.title)
    assert f.placement is None and f.no_accelerator == "all ops on the Cortex-M4"
    assert f.fit is not None and f.fit.ok and f.fit.ram_what == "arena"
    ram, flash = f.fit.ram, f.fit.flash
    assert ram.value == l4.details["arena_bytes"] and ram.basis == Basis.MEASURED and ram.where == "TFLM on the host"
    assert flash.value == l4.details["flash_bytes"] and flash.basis == Basis.ESTIMATED and flash.error
    assert (f.fit.ram_limit_bytes, f.fit.flash_limit_bytes) == (brd.arena_ram_bytes, brd.flash_bytes)
    est = l4.details["latency_estimate"]
    lat = f.latency
    assert lat is not None and lat.basis == Basis.ESTIMATED and lat.unit == "ms" and lat.where == "stm32l4r5"
    assert lat.value == est["latency_ms"] and lat.how == estimate.basis(est)
    assert lat.error.startswith("leave-one-out error on this board: mean ")
    assert f.memory["kTensorArenaSize"].value == l4.details["arena_bytes_with_margin"]
    assert f.memory["kTensorArenaSize"].basis == Basis.PREDICTED
    # a model that fits and is bit-exact: every message a neutral fact
    assert f.messages and all(m.level == Level.INFO for m in f.messages)
    assert Findings.from_dict(f.to_dict()) == f
    assert l4.to_dict()["findings"] == f.to_dict()


def test_check_levels_and_an_uncalibrated_board(mcu, mcu_models):
    r = mcu.check(str(mcu_models["bundled_float"]), {"board": "stm32h7a3"})
    f = r.findings
    assert f.board is not None and f.board.core == "Cortex-M7" and f.no_accelerator == "all ops on the Cortex-M7"
    floats = [m for m in f.messages if "compute in float" in m.text]
    assert len(floats) == 1 and floats[0].level == Level.WARNING
    assert f.latency is None  # the factors are calibrated on int8 kernels: no estimate made up
    # a board of a calibrated core but not itself calibrated: its error is said to be unknown
    nrf = mcu.check(str(mcu_models["bundled_int8"]), {"board": "nrf52840"}).findings.latency
    assert nrf is not None and "error on this board unknown" in nrf.how and "unknown" in nrf.error


def test_check_describes_as_before(l4):
    lines = l4.describe("m.tflite")
    assert lines[0] == "m.tflite on mcu"
    assert "op" in lines[1] and "resolver" not in lines[1]  # the op table's columns
    assert lines[2:] == list(l4.messages)


def test_tflm_compile_takes_the_check_and_does_not_probe_again(mcu, mcu_models, l4, tmp_path, monkeypatch):
    model = str(mcu_models["bundled_int8"])
    with monkeypatch.context() as m:
        m.setattr(tflm, "probe", _refuse)
        r = mcu.compile([model], str(tmp_path / "a"), {"board": "stm32l4r5"}, checked=(l4,))
        assert r.details["check"] == l4.to_dict() and r.details["arena_bytes"] == l4.details["arena_bytes"]
        # the check of another board (or another model) is not this compile's: TFLM would run
        with pytest.raises(AssertionError, match="TFLM ran again"):
            mcu.compile([model], str(tmp_path / "b"), {"board": "nrf52840"}, checked=(l4,))
        with pytest.raises(AssertionError, match="TFLM ran again"):
            mcu.compile([str(mcu_models["ds_cnn"])], str(tmp_path / "c"), {"board": "stm32l4r5"}, checked=(l4,))
    alone = mcu.compile([model], str(tmp_path / "d"), {"board": "stm32l4r5"})  # without: checks by itself
    assert alone.details["arena_bytes"] == r.details["arena_bytes"]
    f = r.findings
    assert f.board == l4.findings.board and f.no_accelerator == "all ops on the Cortex-M4"
    assert f.memory["kTensorArenaSize"].value == r.details["tensor_arena_size_constant"]
    assert f.fit == l4.findings.fit and f.latency == l4.findings.latency  # the check's, carried
    assert f.messages[: len(l4.findings.messages)] == l4.findings.messages
    assert f.messages[-1].level == Level.INFO and f.messages[-1].text.startswith("generated C (--runtime c)")
    lines = r.describe()
    assert lines[0] == f"compiled for mcu: {r.output}" and "board: stm32l4r5" in lines
    assert f"arena_bytes: {r.details['arena_bytes']:,}" in lines and lines[-1].startswith("generated C (--runtime c)")


def _refuse(*args, **kwargs):
    raise AssertionError("TFLM ran again in compile")


def test_host_bench_findings(mcu, mcu_models):
    r = mcu.runner(None, {"board": "stm32l4r5"}).benchmark(
        str(mcu_models["bundled_int8"]), BenchConfig(num_runs=3, warmup_runs=1, num_threads=2)
    )
    f = r.findings
    assert f.latency is not None and f.latency.basis == Basis.ESTIMATED and f.latency.value == r.estimate["latency_ms"]
    assert f.board is not None and f.board.core == "Cortex-M4"
    assert [m.text for m in f.messages] == list(r.notes) == r.describe("m.tflite")[-len(r.notes) :]
    threads = [m for m in f.messages if "single-threaded" in m.text]
    assert len(threads) == 1 and threads[0].level == Level.WARNING


@pytest.mark.slow
@needs_arm
def test_c_compile_takes_the_check_and_measures_the_firmware(mcu, mcu_models, l4, tmp_path, monkeypatch):
    monkeypatch.setattr(tflm, "probe", _refuse)
    opts = {"board": "stm32l4r5", "runtime": "c", "proof_samples": 2}
    r = mcu.compile([str(mcu_models["bundled_int8"])], str(tmp_path), opts, checked=(l4,))
    assert r.details["tflm"]["arena_bytes"] == l4.details["arena_bytes"]
    f = r.findings
    run = r.details["proof"]["qemu"]["cortex-m4"]
    assert f.board is not None and f.board.core == "Cortex-M4" and f.no_accelerator == "all ops on the Cortex-M4"
    assert f.fit is not None and f.fit.ram_what == "RAM (static + stack)"
    for fig, value in ((f.fit.ram, run["ram_bytes"]), (f.fit.flash, run["flash_bytes"])):
        assert fig.value == value and fig.basis == Basis.MEASURED and fig.where == "arm-none-eabi-size / QEMU stack"
    ins = f.instructions
    assert ins is not None and ins.basis == Basis.MEASURED and ins.where == "QEMU mps2-an386 (Cortex-M4)"
    assert ins.how == "QEMU instruction count, not board cycles" and ins.low <= ins.value <= ins.high
    assert f.proof is not None and f.proof.ok and (f.proof.exact, f.proof.total) == (2, 2)
    assert f.proof.where == "QEMU mps2-an386 (Cortex-M4)" and "reference kernels" in f.proof.reference
    assert all(m.level == Level.INFO for m in f.messages)
    text = r.describe()
    assert text[0].startswith("generated C for stm32l4r5 (cortex-m4): ")
    assert any("bit-exact 2/2 with TFLM reference kernels, 2/2 with LiteRT BUILTIN_REF" in line for line in text)


@pytest.mark.slow
@needs_arm
def test_c_bench_findings(mcu, mcu_models):
    r = mcu.runner(None, {"board": "stm32l4r5", "runtime": "c"}).benchmark(
        str(mcu_models["bundled_int8"]), BenchConfig(num_runs=2, warmup_runs=0)
    )
    f = r.findings
    where = "QEMU mps2-an386 (Cortex-M4)"
    assert f.instructions is not None and f.instructions.where == where and f.instructions.unit == "instructions"
    assert f.instructions.value == r.instructions["per_inference_p50"]
    assert (f.instructions.low, f.instructions.high) == (r.instructions["min"], r.instructions["max"])
    assert f.proof is not None and (f.proof.exact, f.proof.total, f.proof.where) == (2, 2, where)
    assert f.fit is not None and f.fit.ram.value == r.memory["ram_bytes"] and f.fit.ram.basis == Basis.MEASURED
    est = r.latency_estimate  # nothing here was timed: the latency is estimated from the instructions
    assert f.latency is not None and f.latency.basis == Basis.ESTIMATED and f.latency.value == est["latency_ms"]
    assert [m.text for m in f.messages] == list(r.notes)
    text = r.describe("m.tflite")
    assert text[0] == f"m.tflite on {r.device}: 2 inference(s)" and "instructions per inference" in text[1]


def test_c_compile_without_qemu_labels_what_it_knows(mcu, mcu_models, tmp_path, monkeypatch):
    """Without the Arm tools: the memory plan's arena and the constants, COMPILED, and the host proof;
    what was not proven is a warning."""
    if shutil.which("gcc") is None:
        pytest.skip("no gcc on PATH")
    from edgeq.targets.mcu.cgen import toolchain

    monkeypatch.setattr(toolchain, "missing", lambda tools: [t for t in tools if t != "gcc"])
    opts = {"board": "stm32l4r5", "runtime": "c", "proof_samples": 2}
    r = mcu.compile([str(mcu_models["bundled_int8"])], str(tmp_path), opts)
    f = r.findings
    assert f.fit is not None and f.fit.ram.basis == f.fit.flash.basis == Basis.COMPILED and f.fit.ram_what == "arena"
    assert f.fit.ram.value == r.details["arena_bytes"] and f.fit.flash.value == r.details["constant_bytes"]
    assert f.instructions is None and f.proof is not None and f.proof.where == "host (gcc)" and f.proof.ok
    not_proven = [m for m in f.messages if m.text.startswith("not proven: ")]
    assert not_proven and all(m.level == Level.WARNING for m in not_proven)
