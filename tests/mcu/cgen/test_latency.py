"""The board latency estimated from the engine's instruction count (cgen/latency.py): derived from published
MLPerf Tiny results kept in tests/data, with its error, and nothing for a core it has no calibration for."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from edgeq.targets.mcu.boards import BOARDS
from edgeq.targets.mcu.cgen import latency
from edgeq.targets.mcu.cgen.bench import ARM_TOOLS

DATA = Path(__file__).resolve().parents[2] / "data" / "mcu" / "mlperf_tiny_published.json"


def test_calibrations_carry_the_published_numbers_kept_in_tests_data():
    published = {(r["board"], r["stack"]): r for r in json.loads(DATA.read_text())["results"]}
    for cal in latency.CALIBRATIONS.values():
        row = published[(cal.board, cal.stack)]
        assert row["inferences_per_s"] == cal.inferences_per_s and row["clock_hz"] == cal.clock_hz
        assert row["core"] == cal.board_core
    assert (DATA.parent / "mlperf_tiny_published.SOURCE.md").exists()


def test_factors_are_plausible_and_their_error_is_stated():
    m4, m55 = latency.CALIBRATIONS["cortex-m4"], latency.CALIBRATIONS["cortex-m55"]
    assert 1.0 < m4.cycles_per_instruction() < 3.0  # an in-order M4 with flash wait states: over one cycle each
    assert 0.5 < m55.cycles_per_instruction() < m4.cycles_per_instruction()
    for cal in (m4, m55):
        loo = cal.leave_one_out()
        assert set(loo) == {"ds_cnn", "resnet8", "mobilenet_v1_025"} and cal.error() == max(map(abs, loo.values()))
        assert cal.error() < 0.25
    rows = latency.validation_rows()
    kws = next(r for r in rows if r["board"] == "EK-RA8D1" and r["model"] == "ds_cnn")
    assert kws["published_ms"] == pytest.approx(3.46, abs=0.01)  # issue #22's Cortex-M85 keyword spotting


def test_estimate_scales_with_instructions_and_clock():
    l4, nrf = BOARDS["stm32l4r5"], BOARDS["nrf52840"]
    a, b = latency.estimate(1_000_000, l4), latency.estimate(2_000_000, l4)
    assert a["kind"] == "estimated" and b["latency_ms"] == pytest.approx(2 * a["latency_ms"], rel=1e-3)
    assert latency.estimate(1_000_000, nrf)["latency_ms"] == pytest.approx(a["latency_ms"] * 120 / 64, rel=1e-3)
    k = latency.CALIBRATIONS["cortex-m4"].cycles_per_instruction()
    assert a["latency_ms"] == pytest.approx(1_000_000 * k / 120e6 * 1000, rel=1e-3)
    assert "NUCLEO-L4R5ZI" in a["basis"] and a["error"] > 0 and "published" in latency.describe(a, "stm32l4r5")
    m55 = latency.estimate(1_000_000, BOARDS["corstone-300"])
    assert "cortex-m85 board standing in for cortex-m55" in m55["basis"]


def test_no_estimate_without_a_calibration_for_the_core():
    for name in ("stm32h7a3", "rp2040", "esp32s3"):
        est = latency.estimate(1_000_000, BOARDS[name])
        assert est["latency_ms"] is None and BOARDS[name].core in est["reason"]
        assert latency.describe(est, name).startswith(f"no latency estimate for {name}")


@pytest.mark.slow
@pytest.mark.skipif(any(shutil.which(t) is None for t in ARM_TOOLS), reason="Arm toolchain or QEMU missing")
def test_bench_carries_the_engines_estimated_latency(run_cli, mcu_models):
    r = run_cli(
        "--json",
        "bench",
        mcu_models["bundled_int8"],
        "--target",
        "mcu",
        "--runtime",
        "c",
        "--board",
        "stm32l4r5",
        "--runs",
        "1",
    )
    assert r.json["ok"], r.stderr
    res = r.json["result"]
    est, ins = res["latency_estimate"], res["instructions"]["per_inference_p50"]
    assert res["latency_ms"] is None and est["kind"] == "estimated" and est["error"] > 0
    assert est["latency_ms"] == pytest.approx(ins * est["cycles_per_instruction"] / 120e6 * 1000, rel=1e-3)
    assert any(n.startswith("estimated latency of this engine on stm32l4r5") for n in res["notes"])
    figure = res["findings"]["latency"]  # the typed figure the build and the report read
    assert figure["basis"] == "estimated" and figure["value"] == est["latency_ms"] and "%" in figure["error"]
