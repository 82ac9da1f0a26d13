"""The TFLM export's own gaps (issue 15, item 6): resource variables in main.cc, output-less ops in the
Ethos-U split, a TFLM abort's message, and float16 weights on a microcontroller.

The streaming model is pymicro-wakeword's okay_nabu (tests/data/third_party/pymicro_wakeword/SOURCE.md);
the float16 one is MediaPipe's face_detection_short_range (tests/data/third_party/SOURCE.md).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

from edgeq.errors import BadInput
from edgeq.targets import registry
from edgeq.targets.mcu import export, tflm
from edgeq.tflite import read_file

DATA = Path(__file__).resolve().parents[1] / "data" / "third_party"
WAKEWORD = DATA / "pymicro_wakeword" / "okay_nabu.tflite"
FP16 = DATA / "face_detection_short_range.tflite"
STUBS = Path(__file__).resolve().parent / "tflm_stubs"
PROVENANCE = {"edgeq": "test", "model_name": "m.tflite", "model_sha256": "0" * 64, "model_bytes": 1}


def _exported(model: Path, folder: Path) -> dict[str, str | bytes]:
    data = model.read_bytes()
    files = export.render(model, data, read_file(model), 30_000, PROVENANCE)
    folder.mkdir()
    for name, text in files.items():
        (folder / name).write_bytes(text.encode() if isinstance(text, str) else text)
    return files


def test_main_creates_the_resource_variables_a_streaming_model_needs(tmp_path):
    files = _exported(WAKEWORD, tmp_path / "fw")
    main = files["main.cc"]
    assert tflm.resource_variables(WAKEWORD.read_bytes()) == 6
    assert "constexpr int kNumResourceVariables = 6;" in main
    assert "tflite::MicroResourceVariables::Create(allocator, kNumResourceVariables)" in main
    assert "MicroInterpreter interpreter(model, resolver, allocator, variables)" in main
    gxx = shutil.which("g++")
    if gxx is None:
        pytest.skip("no g++ on PATH")
    cmd = [gxx, "-std=c++17", "-Wall", "-Wextra", "-Werror", "-fsyntax-only", "-I", str(STUBS), "-I"]
    proc = subprocess.run(
        [*cmd, str(tmp_path / "fw"), str(tmp_path / "fw" / "main.cc")], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr


def test_main_without_variables_keeps_the_plain_interpreter():
    main = export.main_cc([], [], PROVENANCE)
    assert "MicroResourceVariables" not in main and "tensor_arena, kTensorArenaSize);" in main


def test_allocation_failure_does_not_blame_the_arena():
    """AllocateTensors fails for a kernel's Prepare as often as for the arena: the log says which."""
    main = export.main_cc([], [], PROVENANCE, num_variables=2)
    assert "raise kTensorArenaSize" not in main and "AllocateTensors failed" in main
    assert "raise kTensorArenaSize" not in export.main_cc([], [], PROVENANCE)


def _model(ops: list[tuple[str, list[int]]], tensors: list[str]):
    return SimpleNamespace(
        ops=[SimpleNamespace(index=i, name=n, outputs=o) for i, (n, o) in enumerate(ops)],
        tensors=[SimpleNamespace(name=t) for t in tensors],
    )


def test_output_less_ops_stay_on_the_cpu_in_the_ethos_u_split():
    from edgeq.targets.ethos_u import placement

    original = _model([("CALL_ONCE", []), ("CONV_2D", [0]), ("ASSIGN_VARIABLE", []), ("ADD", [1])], ["c", "a"])
    compiled = _model([("CALL_ONCE", []), ("ethos-u", [0]), ("ASSIGN_VARIABLE", []), ("ethos-u", [1])], ["c", "a"])
    on = {r["op"]: r["on_npu"] for r in placement(original, compiled)["ops"]}
    assert on == {"CALL_ONCE": False, "CONV_2D": True, "ASSIGN_VARIABLE": False, "ADD": True}
    # an output-less op Vela did put into the NPU's custom op is on the NPU
    absorbed = _model([("ethos-u", [0]), ("ethos-u", [1])], ["c", "a"])
    assert all(r["on_npu"] for r in placement(original, absorbed)["ops"])


@pytest.mark.slow
def test_vela_split_of_the_wake_word_model():
    from edgeq.targets.ethos_u import vela

    if not vela.available():
        pytest.skip("vela is not installed")
    report = registry.get("ethos-u").check(str(WAKEWORD))
    status = {r["op"]: r["status"] for r in report.ops}
    assert status["CALL_ONCE"] == "cpu" and status["ASSIGN_VARIABLE"] == "cpu"


def test_a_crash_names_the_op_from_the_kernel_source_in_the_log():
    lines = ["tensorflow/lite/micro/kernels/softmax_common.cc:87 scale > 0 was not true."]
    assert tflm.suspect_op(lines, ["CONV_2D", "SOFTMAX"]) == "SOFTMAX"
    assert tflm.suspect_op(["kernels/depthwise_conv.cc:12 x"], ["CONV_2D", "DEPTHWISE_CONV_2D"]) == "DEPTHWISE_CONV_2D"
    assert tflm.suspect_op(["Node FULLY_CONNECTED (number 4f) failed"], []) == "FULLY_CONNECTED"
    assert tflm.suspect_op(["something else"], ["CONV_2D"]) is None
    failure = {"stage": "construct", "crash": "SIGABRT", "log": lines, "suspect_op": "SOFTMAX"}
    message, _ = tflm.describe_failure(failure, "m.tflite")
    assert "at op SOFTMAX" in message and "softmax_common.cc:87" in message


def test_a_crash_with_an_empty_log_says_so():
    failure = {"stage": "construct", "crash": "SIGABRT", "log": [], "suspect_op": None}
    message, hint = tflm.describe_failure(failure, "m.tflite")
    assert "log was empty" in message
    assert "details" not in hint  # there is nothing in them to read


def test_float16_weights_are_refused_with_an_edgeq_error():
    mcu = registry.get("mcu")
    with pytest.raises(BadInput) as e:
        mcu.check(str(FP16), {"board": "stm32h7a3"})  # a board with an FPU: float compute itself is allowed
    assert "float16" in e.value.message and "DEQUANTIZE" in e.value.message and "was not true" not in e.value.message
    assert e.value.exit_code == 3 and e.value.details["preflight"][0]["rule"] == "float16-weights"


def test_float16_weights_cli_exit_code(run_cli):
    r = run_cli("check", str(FP16), "--target", "mcu", "--board", "stm32h7a3")
    assert r.exit_code == 3 and "float16" in r.stderr
