"""edgeq check --target mcu: the real TFLM Python interpreter on real converted models."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from edgeq.errors import BAD_INPUT, QUALITY_GATE, BadInput, QualityGateFailed, UnsupportedOp
from edgeq.targets import registry
from edgeq.targets.mcu import parity, tflm
from edgeq.tflite import read_file
from tests.mcu.conftest import MLPERF_TINY

ALLOCATE = """
import sys
from tflite_micro import runtime
try:
    runtime.Interpreter.from_file(sys.argv[1], arena_size=int(sys.argv[2]))
except RuntimeError:
    sys.exit(3)
"""


def allocates(model, arena: int) -> bool:
    """Whether tflite_micro (called directly, not through edgeq) allocates ``model`` in ``arena`` bytes.

    Just short of what it needs, TFLM can crash instead of failing (SIGSEGV after "All temp buffers must be
    freed before calling ResetTempAllocations()", seen with fc_autoencoder); that counts as not allocating."""
    proc = subprocess.run([sys.executable, "-c", ALLOCATE, str(model), str(arena)], capture_output=True, timeout=120)
    err = proc.stderr.decode(errors="replace")
    if proc.returncode < 0:
        assert any(m in err for m in ("failed to prepare", "Failed to allocate", "temp buffers")), err[-2000:]
        return False
    assert proc.returncode in (0, 3), err[-2000:]
    return proc.returncode == 0


@pytest.fixture(scope="module")
def mcu():
    return registry.get("mcu")


@pytest.fixture(scope="module")
def reports(mcu_models, mcu):
    """One check per model (default board), shared by the tests that read it."""
    return {name: mcu.check(str(mcu_models[name])) for name in (*MLPERF_TINY, "bundled_int8")}


@pytest.mark.parametrize("name", [*MLPERF_TINY, "bundled_int8"])
def test_reference_models_pass_check(reports, name):
    r = reports[name]
    doc = r.to_dict()
    assert r.ok and doc["fits"] is True and doc["unsupported_ops"] == []
    assert doc["arena_bytes"] > 0 and doc["flash_bytes"] > 0
    assert all(row["status"] == "supported" and row["resolver"] for row in doc["ops"])
    assert doc["details"]["board"]["name"] == "stm32h7a3"
    json.dumps(doc)  # the --json result is plain data


@pytest.mark.parametrize("name", [*MLPERF_TINY, "bundled_int8"])
def test_reported_arena_is_what_tflm_allocates(reports, mcu_models, name):
    """Independently of edgeq: TFLM allocates with exactly arena_bytes and fails with 16 bytes less
    (each in a process of its own: a failed TFLM allocation can crash a later one)."""
    arena = reports[name].to_dict()["arena_bytes"]
    assert allocates(mcu_models[name], arena) is True
    assert allocates(mcu_models[name], arena - 16) is False
    details = reports[name].details["arena"]
    assert details["allocates_at_arena_bytes"] is True and details["allocates_16_bytes_below_arena_bytes"] is False
    assert details["total_bytes"] == details["head_bytes"] + details["tail_bytes"] == details["report_total_bytes"]
    assert details["breakdown"] and all(b["used_bytes"] >= b["requested_bytes"] for b in details["breakdown"])
    if details["allocates_at_report_total"]:
        assert arena == details["report_total_bytes"]  # the allocation report's own figure
    else:
        assert arena > details["report_total_bytes"]  # prepare-time temporaries need more than the total


def test_report_total_can_fall_short_and_then_the_floor_is_searched(reports):
    """fc_autoencoder: per-channel FULLY_CONNECTED layers prepare with temporaries the total leaves out."""
    a = reports["fc_autoencoder"].details["arena"]
    assert a["allocates_at_report_total"] is False
    assert reports["fc_autoencoder"].details["arena_bytes"] > a["report_total_bytes"]
    assert any("smallest TFLM accepts" in m for m in reports["fc_autoencoder"].messages)
    assert reports["ds_cnn"].details["arena"]["allocates_at_report_total"] is True


def test_flash_is_model_plus_runtime_estimate(reports, mcu_models):
    d = reports["ds_cnn"].details
    assert d["flash"]["model_bytes"] == mcu_models["ds_cnn"].stat().st_size
    assert d["flash_bytes"] == d["flash"]["model_bytes"] + d["flash"]["runtime_estimate_bytes"]
    assert d["flash"]["distinct_ops"] == 5 and "estimate" in d["flash"]["basis"]
    assert d["arena_bytes_with_margin"] > d["arena_bytes"]


@pytest.mark.parametrize("name", ["ds_cnn", "mobilenet_v1_025", "bundled_int8"])
def test_parity_bit_exact_with_litert_reference_kernels(reports, name):
    p = reports[name].details["parity"]
    assert p["bit_exact"] is True and p["num_samples"] == parity.DEFAULT_SAMPLES
    ref = p["against"]["litert_reference_kernels"]
    assert ref["num_different"] == 0 and ref["max_abs_diff"] == 0


@pytest.mark.parametrize("name", [*MLPERF_TINY, "bundled_int8"])
def test_parity_differences_are_reported_with_their_size(reports, mcu_models, name):
    """Whatever differs is counted and sized; recomputed here from both interpreters' outputs."""
    p = reports[name].details["parity"]
    info = read_file(mcu_models[name])
    x = parity.make_inputs(info, parity.DEFAULT_SAMPLES, parity.DEFAULT_SEED)
    probe = tflm.probe(mcu_models[name], info, x)
    for label, ref_kernels in (("litert_reference_kernels", True), ("litert_optimized_kernels", False)):
        lite = parity.litert_outputs(str(mcu_models[name]), x, ref_kernels)
        diff = np.abs(probe.outputs[0].astype(int).reshape(lite[0].shape) - lite[0].astype(int))
        got = p["against"][label]
        assert got["num_different"] == int(np.count_nonzero(diff))
        assert got["outputs"][0]["max_abs_diff_steps"] == int(diff.max())
    # TFLM and LiteRT run the same integer arithmetic: differences are rounding steps, not errors
    assert p["against"]["litert_reference_kernels"]["outputs"][0]["max_abs_diff_steps"] <= 4
    assert "parity: " in " ".join(reports[name].messages)


def test_op_tflm_lacks_is_named(mcu, mcu_models):
    with pytest.raises(UnsupportedOp) as e:
        mcu.check(str(mcu_models["tile"]))
    assert "TILE" in e.value.message and e.value.exit_code == BAD_INPUT
    assert e.value.details["unsupported_ops"][0]["op"] == "TILE"
    assert "TILE" in e.value.hint  # the alternative


def test_every_missing_op_is_named_not_just_the_first(mcu, mcu_models):
    with pytest.raises(UnsupportedOp) as e:
        mcu.check(str(mcu_models["three_missing"]))
    named = {m["op"] for m in e.value.details["unsupported_ops"]}
    assert named == {"TILE", "SIGN", "TOPK_V2"}
    for op in named:
        assert op in e.value.message
    table = {r["op"]: r["status"] for r in e.value.details["ops"]}
    assert table["ADD"] == "supported" and table["TILE"] == "unsupported"


def test_too_large_arena_exits_6_with_the_numbers(mcu, mcu_models):
    with pytest.raises(QualityGateFailed) as e:
        mcu.check(str(mcu_models["big_activations"]), {"board": "nrf52840"})
    err = e.value
    assert err.exit_code == QUALITY_GATE
    d = err.details
    assert d["fits"] is False and d["fit"]["ram"]["fits"] is False and d["fit"]["flash"]["fits"] is True
    assert d["arena_bytes"] > d["board"]["arena_ram_bytes"] == 256 * 1024
    assert f"{d['arena_bytes']:,}" in err.message and f"{256 * 1024:,}" in err.message
    assert "stm32l4r5" in err.hint  # boards it does fit
    # the hint says where --board goes (build takes it too) and the default board
    assert "--board NAME on check, compile, bench and build; default stm32h7a3" in err.hint
    # and on a board with the RAM it passes
    assert mcu.check(str(mcu_models["big_activations"]), {"board": "stm32l4r5"}).to_dict()["fits"] is True


def test_too_large_flash_exits_6_with_the_numbers(mcu, mcu_models):
    with pytest.raises(QualityGateFailed) as e:
        mcu.check(str(mcu_models["big_weights"]), {"board": "nrf52840"})
    d = e.value.details
    assert d["fit"]["flash"]["fits"] is False and d["flash_bytes"] > 1024 * 1024
    assert "flash" in e.value.message and f"{d['flash_bytes']:,}" in e.value.message


def test_float_model_on_integer_only_board_is_refused(mcu, mcu_models):
    with pytest.raises(BadInput) as e:
        mcu.check(str(mcu_models["bundled_float"]), {"board": "rp2040"})
    assert "integer-only" in e.value.message and "float" in e.value.message
    assert "int8" in e.value.hint and e.value.exit_code == BAD_INPUT
    assert not isinstance(e.value, UnsupportedOp)


def test_float_model_runs_on_a_board_with_an_fpu(mcu, mcu_models):
    r = mcu.check(str(mcu_models["bundled_float"]), {"board": "stm32h7a3"})
    assert r.ok and any("compute in float" in m for m in r.messages)
    assert r.details["latency_estimate"]["latency_ms"] is None  # int8-calibrated factors


def test_model_tflm_would_abort_on_is_refused_before_it_runs(mcu, mcu_models):
    with pytest.raises(BadInput) as e:
        mcu.check(str(mcu_models["degenerate_softmax"]))
    assert "SOFTMAX" in e.value.message and "2^-26" in e.value.message
    assert e.value.details["preflight"][0]["rule"] == "softmax-input-scale"


def test_a_tflm_abort_is_caught_in_the_child_process(mcu_models):
    """Without the pre-flight, TFLM really aborts; edgeq's process survives and names the signal."""
    info = read_file(mcu_models["degenerate_softmax"])
    result = tflm.probe(mcu_models["degenerate_softmax"], info, parity.make_inputs(info, 1))
    assert not result.ok
    assert result.failure["crash"] == "SIGABRT" and result.failure["stage"] == "construct"
    with pytest.raises(BadInput, match="SIGABRT"):
        tflm.require_ok(result, "degenerate_softmax.tflite")


def test_not_a_model_and_unknown_board(mcu, tmp_path, mcu_models):
    bad = tmp_path / "x.tflite"
    bad.write_bytes(b"not a model at all")
    with pytest.raises(BadInput):
        mcu.check(str(bad))
    from edgeq.errors import UsageError

    with pytest.raises(UsageError):
        mcu.check(str(mcu_models["bundled_int8"]), {"board": "nope"})


def test_estimate_is_in_the_check_and_labelled(reports):
    est = reports["resnet8"].details["latency_estimate"]
    assert est["kind"] == "estimate" and est["latency_ms"] > 0
    assert est["calibration_error"]["method"].startswith("leave-one-out")
