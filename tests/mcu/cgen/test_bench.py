"""edgeq bench --target mcu --runtime c: instructions per inference under QEMU (labelled as such, never a
latency), flash and RAM from the linked ELF, every inference bit-exact with LiteRT's reference kernels."""

from __future__ import annotations

import shutil

import pytest

from edgeq.config import BenchConfig
from edgeq.errors import Unavailable
from edgeq.targets import registry
from edgeq.targets.mcu.cgen.bench import ARM_TOOLS, McuCBenchResult

needs_arm = pytest.mark.skipif(
    any(shutil.which(t) is None for t in ARM_TOOLS), reason="gcc, arm-none-eabi-gcc or qemu-system-arm missing"
)


def test_bench_help_names_the_runtime_option(run_cli):
    r = run_cli("bench", "--help")
    assert r.exit_code == 0 and "--runtime [tflm|c]" in r.stdout


def test_a_board_qemu_cannot_emulate_is_unavailable_with_the_reason():
    runner = registry.get("mcu").runner(None, {"board": "esp32s3", "runtime": "c"})
    available = runner.availability()
    assert not available.available and "xtensa-lx7" in available.reason
    with pytest.raises(Unavailable):
        runner.benchmark("unused.tflite", BenchConfig(num_runs=1, warmup_runs=0))


def test_cli_exit_code_for_an_unemulated_core(run_cli, tmp_path):
    r = run_cli("bench", str(tmp_path / "m.tflite"), "--target", "mcu", "--runtime", "c", "--board", "rp2040")
    assert r.exit_code in (3, 5)  # a missing file (3) is found first or the core (5); never a traceback
    assert "Traceback" not in r.stderr


@pytest.mark.slow
@needs_arm
def test_bench_counts_instructions_on_the_boards_core(mcu_models):
    runner = registry.get("mcu").runner(None, {"board": "corstone-300", "runtime": "c"})
    r = runner.benchmark(str(mcu_models["bundled_int8"]), BenchConfig(num_runs=3, warmup_runs=0))
    assert isinstance(r, McuCBenchResult)
    doc = r.to_dict()
    assert doc["timing_kind"] == "instructions (QEMU)" and doc["latency_ms"] is None
    ins = doc["instructions"]
    assert ins["provenance"] == "QEMU instruction count, not board cycles"
    assert ins["machine"] == "mps3-an547" and ins["core"] == "cortex-m55" and ins["num_inferences"] == 3
    # M55's Helium kernels do up to 16 MACs per instruction (VMLADAVA); fewer would mean not everything ran
    assert ins["macs"] // 16 < ins["min"] <= ins["per_inference_p50"] <= ins["max"] < 40 * ins["macs"]
    mem = doc["memory"]
    assert mem["ram_bytes"] == mem["static_ram_bytes"] + mem["stack_bytes"] and mem["flash_bytes"] > 0
    assert doc["proof"]["qemu"]["cortex-m55"]["bit_exact"] == 3 and doc["proof"]["host"]["bit_exact"] == 3
    # compared with TFLM's reference kernels (what the counts follow) and with LiteRT's, each op kind credited
    m55 = doc["proof"]["qemu"]["cortex-m55"]
    assert m55["against"] == "TFLM reference kernels"
    assert {k: r["bit_exact"] for k, r in m55["references"].items()} == {
        "TFLM reference kernels": 3,
        "LiteRT BUILTIN_REF": 3,
    }
    agree = doc["proof"]["ops_references_agree"]
    assert set(agree) == set(doc["proof"]["ops_matched"]) and all(a["num_samples"] == 3 for a in agree.values())
    per_op = doc["proof"]["ops_matched"]
    assert "FULLY_CONNECTED" in per_op and all(
        v == ["TFLM reference kernels", "LiteRT BUILTIN_REF"] for v in per_op.values()
    )


@pytest.mark.slow
@needs_arm
def test_bench_cli_renders_instructions_not_latency(run_cli, mcu_models):
    r = run_cli("bench", mcu_models["bundled_int8"], "--target", "mcu", "--runtime", "c", "--runs", "2")
    assert r.exit_code == 0, r.stderr
    assert "instructions per inference" in r.stdout and "QEMU instruction count, not board cycles" in r.stdout
    assert "latency ms p50" not in r.stdout and "bit-exact 2/2 with TFLM reference kernels" in r.stdout
    assert "references matched per op kind: " in r.stdout and "FULLY_CONNECTED: TFLM" in r.stdout
    j = run_cli("--json", "bench", mcu_models["bundled_int8"], "--target", "mcu", "--runtime", "c", "--runs", "1")
    assert j.json["ok"] and j.json["result"]["instructions"]["num_inferences"] == 1
