"""Boards, the op table, the latency estimator and Vela's summary parser: data and pure functions."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgeq.errors import UsageError
from edgeq.targets.ethos_u import summary, vela
from edgeq.targets.mcu import boards, estimate, ops

VELA_DATA = Path(__file__).resolve().parent.parent / "data" / "mcu" / "vela"


def recorded(name: str) -> str:
    return (VELA_DATA / name).read_text()


# --- boards --------------------------------------------------------------------------------------------


def test_default_board_and_the_issue_boards_are_profiled():
    assert boards.get(None).name == boards.DEFAULT_BOARD == "stm32h7a3"
    for name in ("stm32l4r5", "stm32h7a3", "nrf52840", "esp32s3", "corstone-300"):
        b = boards.get(name)
        assert b.ram_bytes >= b.arena_ram_bytes > 0 and b.flash_bytes > 0 and b.clock_hz > 0 and b.sources
    assert boards.get("STM32L4R5").core == "cortex-m4"
    assert boards.get("stm32h7a3").core == "cortex-m7"


def test_unknown_board_lists_the_known_ones():
    with pytest.raises(UsageError) as e:
        boards.get("arduino-uno")
    assert "stm32h7a3" in e.value.hint and "rp2040" in e.value.hint


def test_integer_only_boards_say_why():
    for b in boards.BOARDS.values():
        assert bool(b.integer_only_reason) == b.integer_only
    assert boards.get("rp2040").integer_only and boards.get("rp2040").fpu is None


def test_corstone_npu_options_are_ones_vela_accepts():
    npu = boards.get("corstone-300").ethos_u
    assert npu["accelerator"] in vela.accelerators()
    assert npu["system_config"] in vela.system_configs()
    assert npu["memory_mode"] in vela.memory_modes()


# --- ops -----------------------------------------------------------------------------------------------


def test_resolver_method_names_that_are_not_camel_case():
    assert ops.resolver_method("BATCH_MATMUL") == "AddBatchMatMul"
    assert ops.resolver_method("CUMSUM") == "AddCumSum"
    assert ops.resolver_method("PADV2") == "AddPadV2"
    assert ops.resolver_method("PRELU") == "AddPrelu"
    assert ops.resolver_method("L2_POOL_2D") == "AddL2Pool2D"
    assert ops.resolver_method("UNIDIRECTIONAL_SEQUENCE_LSTM") == "AddUnidirectionalSequenceLSTM"
    assert ops.resolver_method("TFLite_Detection_PostProcess") == "AddDetectionPostprocess"
    assert ops.resolver_method("TILE") is None


def test_arena_margin_and_runtime_flash_estimate():
    assert ops.arena_with_margin(19_072) == 22_016  # 19072 * 1.1 + 1024 = 22003.2 -> 16-byte multiple
    assert ops.arena_with_margin(0) == 1024
    assert all(ops.arena_with_margin(n) % 16 == 0 and ops.arena_with_margin(n) > n for n in (1, 999, 123_457))
    assert ops.runtime_flash_bytes(5) == 56 * 1024  # keyword_benchmark: 5 kernels, 56,860 bytes of text


def test_supported_ops_table_rows():
    rows = ops.table()
    assert {"op", "name", "since_runtime", "limitations", "confirmed", "source"} <= set(rows[0])
    by_op = {r["op"]: r for r in rows}
    assert by_op["CONV_2D"]["limitations"] and not by_op["RESHAPE"]["limitations"]
    assert "TILE" not in by_op


# --- estimator -----------------------------------------------------------------------------------------


def test_fit_is_close_to_every_published_point():
    rows = [r for r in estimate.calibration_table() if r["fitted"]]
    assert len(rows) == 8
    assert max(abs(r["error_pct"]) for r in rows) < 10
    assert max(abs(r["loo_error_pct"]) for r in rows) < 15
    f = estimate.factors()
    # an M7 retires a convolution MAC in fewer cycles than an M4; depthwise costs more per MAC than conv
    assert f.core_cycles_per_mac["cortex-m7"] < f.core_cycles_per_mac["cortex-m4"]
    assert f.r_depthwise > 1


def test_calibration_table_shows_the_other_stack_unfitted():
    other = [r for r in estimate.calibration_table() if not r["fitted"]]
    assert {r["model"] for r in other} == set(estimate.REFERENCE_WORK)
    assert all(r["stack"] == "microTVM + CMSIS-NN" and "loo_error_pct" not in r for r in other)
    # microTVM + CMSIS-NN is slower than X-CUBE-AI on every reference model
    assert all(r["error_pct"] < 0 for r in other)


def test_published_numbers_are_the_krai_v1_1_figures():
    l4 = next(r for r in estimate.PUBLISHED if r["board"] == "stm32l4r5" and r["fitted"])
    assert 1000 / l4["inferences_per_s"]["ds_cnn"] == pytest.approx(72.68, abs=0.01)
    h7 = next(r for r in estimate.PUBLISHED if r["board"] == "stm32h7a3")
    assert 1000 / h7["inferences_per_s"]["mobilenet_v1_025"] == pytest.approx(50.33, abs=0.01)


class _Op:
    def __init__(self, name, macs, compute="int8", outputs=(0,)):
        self.name, self.macs, self.compute, self.outputs = name, macs, compute, outputs


class _Tensor:
    num_elements = 10


class _Info:
    def __init__(self, ops_):
        self.ops = ops_
        self.tensors = [_Tensor()]


def test_estimate_for_an_uncalibrated_core_says_so():
    info = _Info([_Op("CONV_2D", 1_000_000)])
    doc = estimate.estimate(info, boards.get("esp32s3"))
    assert doc["latency_ms"] is None and "xtensa-lx7" in doc["reason"]
    doc = estimate.estimate(info, boards.get("nrf52840"))  # same core as the calibrated L4R5, slower clock
    l4 = estimate.estimate(info, boards.get("stm32l4r5"))
    assert doc["latency_ms"] == pytest.approx(l4["latency_ms"] * 120 / 64, rel=1e-3)
    assert doc["kind"] == "estimate" and l4["calibration_error"]["num_points"] == 4 and l4["board_calibrated"]
    # the L4R5 fit's error is the L4R5's: on the nRF52840 it is an extrapolation with an unknown error
    assert doc["board_calibrated"] is False and doc["calibration_error"] is None
    assert doc["calibrated_boards"] == ["stm32l4r5"] and "64 MHz" in doc["extrapolation"]
    assert estimate.basis(doc).endswith("error on this board unknown")
    assert "calibrated on this board" in estimate.basis(l4)


def test_estimate_refuses_float_models():
    doc = estimate.estimate(_Info([_Op("CONV_2D", 1000, compute="float")]), boards.get("stm32h7a3"))
    assert doc["latency_ms"] is None and "float" in doc["reason"]


# --- Vela summary parser (real Vela 5.2.0 outputs, tests/data/mcu/vela/SOURCE.md) ----------------------


def test_parse_real_vela_csv():
    s = summary.parse_csv(recorded("mnist_int8_u55-128_summary.csv"))
    assert s["accelerator"] == "Ethos_U55_128"
    assert s["system_config"] == "Ethos_U55_High_End_Embedded" and s["memory_mode"] == "Shared_Sram"
    assert s["core_clock_hz"] == 500e6
    assert s["sram_used_bytes"] == round(18.09375 * 1024)
    assert s["off_chip_flash_used_bytes"] > 0 and s["dram_used_bytes"] == 0
    assert s["cycles"]["total"] > s["cycles"]["npu"] > 0
    assert s["inference_time_ms"] == pytest.approx(1000 / s["inferences_per_second"], rel=1e-6)
    assert s["inference_time_ms"] == pytest.approx(s["cycles"]["total"] / 500e6 * 1000, rel=1e-6)
    assert s["macs"] == 1_718_324


def test_parse_real_vela_console_counts_and_time():
    c = summary.parse_console(recorded("mnist_int8_u55-128.console.txt"))
    assert c["operators"] == {"cpu": {"count": 0, "percent": 0.0}, "npu": {"count": 39, "percent": 100.0}}
    assert c["memory_used_bytes"]["SRAM"] == round(18.09 * 1024)
    assert c["inference_time_ms"] == pytest.approx(0.10, abs=0.01)
    assert c["cycles"]["Total"] > 0 and not c["fallbacks"]


def test_console_and_csv_agree():
    s = summary.summarize(recorded("mnist_int8_u55-128_summary.csv"), recorded("mnist_int8_u55-128.console.txt"))
    c = summary.parse_console(recorded("mnist_int8_u55-128.console.txt"))
    assert s["cycles"]["total"] == c["cycles"]["Total"]
    assert s["inference_time_ms"] == pytest.approx(c["inference_time_ms"], abs=0.005)
    assert s["vela_operators"] == {"cpu": 0, "npu": 39}


def test_parse_float_model_all_on_cpu_with_reasons():
    s = summary.summarize(recorded("mnist_float_u55-128_summary.csv"), recorded("mnist_float_u55-128.console.txt"))
    assert s["vela_operators"] == {"cpu": 9, "npu": 0}
    assert s["inferences_per_second"] is None  # Vela writes nan
    assert len(s["fallbacks"]) == 9
    assert all("Float32" in f["reason"] for f in s["fallbacks"])
    assert s["fallbacks"][0]["op"] == "SOFTMAX" and s["fallbacks"][0]["ofm"] == "StatefulPartitionedCall:0"


def test_parse_unsupported_op_reason():
    s = summary.summarize(recorded("op_topk_u55-128_summary.csv"), recorded("op_topk_u55-128.console.txt"))
    assert s["fallbacks"] == [{"op": "TOPK_V2", "ofm": "Identity", "reason": "Unsupported opType"}]


def test_console_only_fallback_and_garbage_csv():
    s = summary.summarize(None, recorded("mnist_int8_u55-128.console.txt"))
    assert s["source"].startswith("console only") and s["sram_used_bytes"] == round(18.09 * 1024)
    with pytest.raises(ValueError):
        summary.parse_csv("a,b\n1,2\n")


def test_vela_config_defaults_and_validation():
    cfg = vela.VelaConfig()
    assert (cfg.accelerator, cfg.system_config, cfg.memory_mode) == (
        "ethos-u55-128",
        "Ethos_U55_High_End_Embedded",
        "Shared_Sram",
    )
    u65 = vela.VelaConfig("ethos-u65-256")
    assert u65.system_config.startswith("Ethos_U65") and u65.memory_mode == "Dedicated_Sram"
    with pytest.raises(UsageError, match="accelerator"):
        vela.VelaConfig("ethos-u99-1")
    with pytest.raises(UsageError, match="system config"):
        vela.VelaConfig(system_config="Nope")
    with pytest.raises(UsageError, match="memory mode"):
        vela.VelaConfig(memory_mode="Nope")
