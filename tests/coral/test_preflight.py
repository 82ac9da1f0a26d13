"""The pre-flight on real converted models: what the compiler would map, checked against real logs."""

from __future__ import annotations

import pytest

from edgeq.errors import BadInput, UsageError
from edgeq.findings import Basis, Figure, Findings, Level
from edgeq.targets.coral import TARGET, logparse, preflight, results, rules
from tests.coral.conftest import recorded

pytestmark = pytest.mark.slow


def statuses(pred) -> dict[tuple[str, str], int]:
    return {(r["op"], r["status"]): r["count"] for r in pred.table()}


def test_bundled_int8_maps_every_op(coral_models):
    pred = preflight.predict(coral_models["bundled_int8"])
    assert pred.counts == {"tpu": 9, "cpu": 0}
    assert pred.first_unmapped is None
    assert all(v.status == rules.MAPPED for v in pred.ops)
    assert {r["op"] for r in pred.table()} == {"CONV_2D", "MAX_POOL_2D", "RESHAPE", "FULLY_CONNECTED", "SOFTMAX"}
    assert pred.memory["streaming_predicted"] is False
    assert 20_000 < pred.memory["parameter_bytes_on_tpu"] < 30_000


def test_int8_io_model_matches_the_real_mnist7_log(coral_models):
    """Same op histogram as nrf20's mnist7 (int8 I/O): the real compiler mapped all of it."""
    (real,) = logparse.parse_log(recorded("nrf20_mnist7.log").read_text())
    pred = preflight.predict(coral_models["mnist7_like"])
    assert logparse.compare(pred.table(), real.ops) == []


def test_float_io_model_matches_the_real_mnist4_log(coral_models):
    """Float I/O: the real compiler left the input QUANTIZE and the output DEQUANTIZE on the CPU, in its words."""
    (real,) = logparse.parse_log(recorded("nrf20_mnist4.log").read_text())
    pred = preflight.predict(coral_models["mnist4_like"])
    assert logparse.compare(pred.table(), real.ops) == []
    assert pred.counts == {"tpu": 8, "cpu": 2}


def test_bundled_float_io_puts_quantize_and_dequantize_on_the_cpu(coral_models):
    pred = preflight.predict(coral_models["bundled_float_io"])
    table = statuses(pred)
    assert table[("QUANTIZE", rules.UNSPECIFIED)] == 1
    assert table[("DEQUANTIZE", rules.DATA_TYPE)] == 1
    assert pred.counts == {"tpu": 9, "cpu": 2}
    # the edges do not split the graph: nothing is stranded
    assert not any(v.status == rules.STRANDED for v in pred.ops)
    first = pred.first_unmapped
    assert first["op"] == "QUANTIZE" and first["splits_graph"] is False
    assert "--io int8" in first["reason"]


def test_leaky_relu_in_the_middle_strands_the_tail(coral_models):
    pred = preflight.predict(coral_models["leaky"])
    first = pred.first_unmapped
    assert first["op"] == "LEAKY_RELU" and first["status"] == rules.NOT_SUPPORTED
    assert "PReLU" in first["reason"]
    before = [v for v in pred.ops if v.index < first["index"]]
    after = [v for v in pred.ops if v.index > first["index"]]
    assert before and all(v.on_tpu for v in before)
    assert after and all(v.status == rules.STRANDED for v in after)
    assert first["ops_stranded_after"] == len(after)
    assert pred.counts == {"tpu": len(before), "cpu": 1 + len(after)}
    assert {v.op for v in after} >= {"CONV_2D", "MEAN", "FULLY_CONNECTED", "SOFTMAX"}


def test_transpose_needs_runtime_14(coral_models):
    assert preflight.predict(coral_models["permute"], 14).counts["cpu"] == 0
    pred = preflight.predict(coral_models["permute"], 13)
    first = pred.first_unmapped
    assert first["op"] == "TRANSPOSE" and first["status"] == rules.NOT_SUPPORTED
    assert "runtime 14" in first["reason"]
    assert all(v.status == rules.STRANDED for v in pred.ops if v.index > first["index"])


def test_big_dense_layer_predicts_streaming(coral_models):
    pred = preflight.predict(coral_models["big_dense"])
    mem = pred.memory
    assert pred.counts["cpu"] == 0
    assert mem["parameter_bytes_on_tpu"] > rules.ON_CHIP_PARAMETER_BYTES
    assert mem["streaming_predicted"] is True
    assert mem["cached_bytes_estimate"] == rules.ON_CHIP_PARAMETER_BYTES
    assert mem["streamed_bytes_estimate"] == mem["parameter_bytes_on_tpu"] - rules.ON_CHIP_PARAMETER_BYTES
    report = TARGET.check(str(coral_models["big_dense"]))
    (streamed,) = [m for m in report.findings.messages if "streamed from the host" in m.text]
    assert streamed.level == Level.WARNING
    memory = report.findings.memory
    assert memory[results.PARAMETERS] == Figure(
        mem["parameter_bytes_on_tpu"], "bytes", Basis.PREDICTED, how=memory[results.PARAMETERS].how
    )
    assert memory[results.STREAMED].value == mem["streamed_bytes_estimate"]
    assert memory[results.STREAMED].basis == memory[results.ON_CHIP].basis == Basis.ESTIMATED
    assert "8 MiB on-chip memory" in memory[results.STREAMED].how and memory[results.STREAMED].error


@pytest.mark.parametrize(
    ("name", "words", "fix"),
    [
        ("dynamic_batch", "dynamic batch", "--input-shape 1x"),
        ("bundled_batch2", "batch 2", "--input-shape 1x"),
        ("bundled_dynamic", "dynamic-range quantized", "--mode int8 --data"),
        ("bundled_float", "not fully integer (float ops: CONV_2D x3", "--mode int8 --data"),
    ],
)
def test_hard_errors_name_the_fix(coral_models, name, words, fix):
    with pytest.raises(BadInput) as exc:
        preflight.predict(coral_models[name])
    assert words in exc.value.message
    assert fix in exc.value.hint
    assert exc.value.exit_code == 3


def test_unknown_runtime_version_is_a_usage_error(coral_models):
    with pytest.raises(UsageError, match="runtime version 9"):
        preflight.predict(coral_models["bundled_int8"], 9)


def test_check_report_shape(coral_models):
    checked = TARGET.check(str(coral_models["leaky"]))
    report = checked.to_dict()
    counts = report["details"]["counts"]
    assert set(counts) == {"tpu", "cpu"}
    assert all(set(r) == {"op", "count", "status", "on_tpu", "basis"} for r in report["ops"])
    assert report["details"]["first_unmapped"]["op"] == "LEAKY_RELU"
    assert report["ok"] is False
    assert len(report["details"]["op_details"]) == sum(counts.values())
    assert TARGET.cpu_ops(str(coral_models["leaky"])) == counts["cpu"]
    # the typed findings: the predicted placement, its first op off the TPU in "OP: why", the message's level
    placement = checked.findings.placement
    assert placement is not None and placement.basis == Basis.PREDICTED and placement.accelerator == "Edge TPU"
    assert (placement.on, placement.off) == (counts["tpu"], counts["cpu"])
    assert placement.first_off == f"LEAKY_RELU: {report['details']['first_unmapped']['reason']}"
    (first,) = [m for m in checked.findings.messages if m.text.startswith("first unmapped")]
    assert first.level == Level.WARNING
    assert Findings.from_dict(report["findings"]) == checked.findings  # what the build writes, read back
    assert TARGET.cpu_ops(str(coral_models["bundled_int8"])) == 0


def test_check_describes_itself_as_edgeq_check_prints_it(coral_models):
    report = TARGET.check(str(coral_models["leaky"]))
    lines = report.describe("m.tflite")
    counts = report.details["counts"]
    assert (
        lines[0]
        == f"m.tflite on coral (Edge TPU runtime {rules.DEFAULT_RUNTIME_VERSION}): {counts['tpu']} op(s) on the TPU, {counts['cpu']} op(s) on the CPU"
    )
    assert lines[1].splitlines()[0].split() == ["op", "count", "status", "on_tpu", "basis"]
    assert lines[2].startswith("parameters on the accelerator: ") and "(on-chip memory ~8 MiB)" in lines[2]
    assert lines[3].startswith("first unmapped: #1 LEAKY_RELU")
    assert lines[3 : 3 + len(report.messages)] == list(report.messages)


@pytest.fixture(scope="session")
def mobilenet_v2_float_io(tmp_path_factory):
    """Keras MobileNetV2 (alpha 0.35, 96x96, random weights) quantized with float I/O, as in Case 5."""
    import numpy as np

    from tests.coral.conftest import _keras, _quantize

    k = _keras()
    model = k.applications.MobileNetV2(alpha=0.35, input_shape=(96, 96, 3), weights=None, classes=10)
    x = np.random.default_rng(0).random((8, 96, 96, 3))
    from edgeq.config import IOType

    return _quantize(tmp_path_factory.mktemp("mnv2"), "mobilenet_v2", model, x, io=IOType.FLOAT)


def test_mobilenet_v2_float_io_matches_the_real_case_5_table(mobilenet_v2_float_io):
    """The real compiler's verdict on a Keras MobileNetV2 with float I/O (f0cal/google-coral#20): every row
    matches except the 5 PADs, which today's converter folds into the convolutions (the 2019 one did not)."""
    real = logparse.parse_console(recorded("f0cal20_mobilenetv2_float_io.console.txt").read_text())
    pred = preflight.predict(mobilenet_v2_float_io)
    assert logparse.compare(pred.table(), real.models[0].ops) == [
        {"op": "PAD", "status": rules.MAPPED, "predicted": 0, "compiler": 5}
    ]
    assert pred.counts == {"tpu": 65, "cpu": 2}


def test_a_verdict_from_an_unconfirmed_rule_is_labelled_a_guess(tmp_path):
    """RSQRT's runtime-14 support is from memory, not a source: its row must not read as the compiler's word."""
    from edgeq.targets.coral import rules
    from tests.coral.tflite_builder import chain

    assert not rules.RULES_BY_OP["RSQRT"].confirmed and rules.RULES_BY_OP["CONV_2D"].confirmed
    model = chain(tmp_path / "rsqrt.tflite", "RSQRT")
    report = TARGET.check(model, {"runtime_version": 14}).to_dict()
    basis = {r["op"]: r["basis"] for r in report["ops"]}
    assert basis == {"CONV_2D": "predicted", "RSQRT": "guess (unconfirmed rule)"}
    assert report["details"]["unconfirmed_ops"] == 1
    assert any("1 op verdict(s) rest on unconfirmed rules" in m for m in report["messages"])
    unconfirmed = [m for m in report["findings"]["messages"] if "unconfirmed rules" in m["text"]]
    assert [m["level"] for m in unconfirmed] == ["warning"]
    # below runtime 14 it is off the TPU, and the first-unmapped line says the reason is a guess too
    report = TARGET.check(model, {"runtime_version": 13}).to_dict()
    first = report["details"]["first_unmapped"]
    assert first["op"] == "RSQRT" and first["confirmed"] is False
    assert any("a guess" in m for m in report["messages"])
