"""The console/.log parser on real edgetpu_compiler outputs (tests/data/edgetpu, sources in SOURCE.md)."""

from __future__ import annotations

import pytest

from edgeq.targets.coral import logparse, rules
from tests.coral.conftest import EDGETPU_DATA, recorded

MiB, KiB = 2**20, 2**10


def console(name: str) -> logparse.ConsoleReport:
    return logparse.parse_console(recorded(name).read_text())


def rows(report_ops) -> dict[tuple[str, str], int]:
    return {(r.op, r.status): r.count for r in report_ops}


def test_every_recorded_output_parses_and_uses_known_statuses():
    files = sorted(p for p in EDGETPU_DATA.iterdir() if p.suffix in (".txt", ".log"))
    assert len(files) >= 20
    for path in files:
        text = path.read_text()
        ops = [r for rep in logparse.parse_log(text) for r in rep.ops] if path.suffix == ".log" else []
        ops += [r for m in logparse.parse_console(text).models for r in m.ops]
        for r in ops:
            assert r.status in rules.STATUSES, (path.name, r)


def test_full_console_with_memory_lines_and_table():
    rep = console("edgetpu-yolo_yolov5s-int8-224.console.txt")
    assert rep.version == "16.0.384591198"
    assert rep.compile_ms == 3173
    assert rep.succeeded is True and rep.failure is None
    (m,) = rep.models
    assert m.input_model == "yolov5s-int8-224.tflite"
    assert m.output_model == "yolov5s-int8-224_edgetpu.tflite"
    assert m.input_size_bytes == round(7.37 * MiB)
    assert m.on_chip_cached_bytes == round(6.08 * MiB)
    assert m.on_chip_remaining_bytes == 0
    assert m.off_chip_streamed_bytes == round(1.70 * MiB)
    assert (m.num_subgraphs, m.total_ops, m.tpu_ops, m.cpu_ops) == (2, 294, 289, 5)
    assert m.operation_log == "yolov5s-int8-224_edgetpu.log"
    assert m.table_complete
    assert len(m.ops) == 17 and sum(r.count for r in m.ops) == 294
    assert rows(m.ops)[("TRANSPOSE", rules.UNSPECIFIED)] == 1
    assert sum(r.count for r in m.ops if not r.on_tpu) == m.cpu_ops
    assert m.counts == {"tpu": 289, "cpu": 5}


def test_first_op_unsupported_strands_the_rest():
    (m,) = console("issue342_transpose_v15.console.txt").models
    assert m.counts == {"tpu": 2, "cpu": 153}
    table = rows(m.ops)
    assert table[("TRANSPOSE", rules.NOT_SUPPORTED)] == 70
    assert table[("CONV_2D", rules.STRANDED)] == 35
    assert sum(r.count for r in m.ops) == 155


def test_float_io_signature():
    (m,) = console("f0cal20_mobilenetv2_float_io.console.txt").models
    table = rows(m.ops)
    assert table[("QUANTIZE", rules.UNSPECIFIED)] == 1
    assert table[("DEQUANTIZE", rules.DATA_TYPE)] == 1
    assert m.counts == {"tpu": 70, "cpu": 2}


def test_zero_subgraphs_is_parsed():
    rep = console("issue225_hand_quant_zero_subgraphs.console.txt")
    (m,) = rep.models
    assert m.num_subgraphs == 0 and m.total_ops == 42
    assert m.on_chip_cached_bytes == 0 and m.input_size_bytes == round(23.38 * MiB)
    assert rep.failure is None  # the console calls it a success: the wrapper must not


def test_console_without_table_keeps_counts():
    (m,) = console("issue393_no_table.console.txt").models
    assert m.ops == () and not m.table_complete
    assert m.counts == {"tpu": 117, "cpu": 48}
    assert m.output_model == "./EdgeTPU/model_edgetpu.tflite"


def test_old_compiler_memory_units():
    rep = console("issue60_model2_streaming_v2.1.console.txt")
    assert rep.version == "2.1.302470888"
    (m,) = rep.models
    assert m.on_chip_remaining_bytes == round(7.75 * KiB)
    assert m.off_chip_streamed_bytes == round(1.22 * MiB)


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("issue168_model_not_quantized.console.txt", "Invalid model: my_mnist_quant.tflite (Model not quantized)"),
        ("issue845_could_not_be_parsed.console.txt", "Model could not be parsed"),
        ("issue829_dynamic_tensors.console.txt", "Compilation failed: Model failed in Tflite interpreter"),
        ("issue439_large_activations.console.txt", "large activation tensors"),
        ("issue358_internal_error.console.txt", "Internal compiler error. Aborting!"),
    ],
)
def test_hard_failures(name, words):
    rep = console(name)
    assert rep.failure is not None and words in rep.failure
    assert rep.models == ()


def test_failure_verdict_and_errors():
    rep = console("issue829_dynamic_tensors.console.txt")
    assert rep.succeeded is False
    assert rep.errors and "dynamic-sized tensors" in rep.errors[0]
    assert console("issue845_could_not_be_parsed.console.txt").errors[0].startswith("ERROR: Didn't find op")


def test_log_files():
    (rep,) = logparse.parse_log(recorded("edgetpu-yolo_yolov8s_integer_quant_160_CPU.log").read_text())
    assert rep.version == "16.0.384591198"
    assert rep.input_model == "yolov8s_integer_quant.tflite"
    assert rep.output_model == "yolov8s_integer_quant_edgetpu.tflite"
    table = rows(rep.ops)
    assert table[("TRANSPOSE", rules.MAPPED)] == 6
    assert table[("DEQUANTIZE", rules.DATA_TYPE)] == 1
    assert table[("QUANTIZE", rules.UNSPECIFIED)] == 1 and table[("QUANTIZE", rules.MAPPED)] == 3
    (full,) = logparse.parse_log(recorded("edgetpu-yolo_yolov8n_full_integer_quant_192.log").read_text())
    assert all(r.on_tpu for r in full.ops) and sum(r.count for r in full.ops) == 257


def test_two_logs_in_one_text():
    reps = logparse.parse_log(recorded("nrf20_mnist4_mnist7.log").read_text())
    assert [r.input_model for r in reps] == ["mnist4.tflite", "mnist7.tflite"]
    assert [sum(x.count for x in r.ops) for r in reps] == [10, 8]


def test_operation_version_not_supported():
    (rep,) = logparse.parse_log(recorded("retinanet_tiny_yolo_edgetpu.log").read_text())
    table = rows(rep.ops)
    assert table[("RESIZE_NEAREST_NEIGHBOR", rules.OP_VERSION)] == 1
    assert table[("CONV_2D", rules.STRANDED)] == 2


def test_shortened_console_table():
    text = (
        "Operator                       Count      Status\n\n"
        "RESHAPE                        1          Operation is otherwise supported, but not mapped due to some "
        "unspecified limitation\n"
        "... All other operators were mapped successfully. See FRC_model_edgetpu.log.\n"
    )
    (m,) = logparse.parse_console(text).models
    assert len(m.ops) == 1 and m.table_complete is False


def test_sizes():
    assert logparse.parse_size("0.00B") == 0
    assert logparse.parse_size("7.75KiB") == 7936
    assert logparse.parse_size("1.00GiB") == 2**30
    with pytest.raises(ValueError):
        logparse.parse_size("lots")


def test_compare_reports_each_difference():
    actual = [logparse.OpRow("CONV_2D", 2, rules.MAPPED), logparse.OpRow("PAD", 5, rules.MAPPED)]
    predicted = [{"op": "CONV_2D", "count": 3, "status": rules.MAPPED}]
    assert logparse.compare(predicted, actual) == [
        {"op": "CONV_2D", "status": rules.MAPPED, "predicted": 3, "compiler": 2},
        {"op": "PAD", "status": rules.MAPPED, "predicted": 0, "compiler": 5},
    ]
