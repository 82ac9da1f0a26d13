"""Bias correction: helps the bundled CNN, changes only bias values, recomputes ops faithfully."""

from __future__ import annotations

import numpy as np
import pytest

from edgeq import tflite
from edgeq.bench import fidelity
from edgeq.config import QuantizeConfig
from edgeq.errors import BadInput, UsageError
from edgeq.quantize import bias_correction as bc
from edgeq.quantize import ranges, tflite_edit
from tests.quantize.conftest import predict_tflite


@pytest.fixture(scope="module")
def calibrated(bundled):
    return ranges.calibrate(bundled.model, bundled.calib, QuantizeConfig())


def _structure(data: bytes) -> list:
    model = tflite_edit.unpack(data)
    graph = model.subgraphs[0]
    ops = [(tflite_edit.op_name(model, op), list(op.inputs), list(op.outputs)) for op in graph.operators]
    tensors = [
        (
            tflite_edit.tensor_name(t),
            list(t.shape),
            t.type,
            list(t.quantization.scale if t.quantization is not None and t.quantization.scale is not None else []),
        )
        for t in graph.tensors
    ]
    return [ops, tensors]


def test_unknown_reference_is_a_usage_error():
    with pytest.raises(UsageError, match="reference 'mean'") as err:
        bc.BiasCorrectionConfig(reference="mean")
    assert "float-model or int8-input" in err.value.hint


@pytest.mark.slow
@pytest.mark.parametrize(
    ("reference", "min_gain_db"),
    # measured on 1000 eval samples: float-model +3.5 dB, int8-input +0.85 dB
    [(bc.Reference.FLOAT_MODEL, 1.5), (bc.Reference.INT8_INPUT, 0.2)],
)
def test_bias_correction_raises_sqnr_and_keeps_the_structure(bundled, calibrated, reference, min_gain_db):
    result = bc.correct_bias(bundled.plain, calibrated.model, bundled.calib.x, bc.BiasCorrectionConfig(reference))
    assert [c.op for c in result.corrected] == ["CONV_2D"] * 3 + ["FULLY_CONNECTED"]
    assert _structure(result.model) == _structure(bundled.plain)
    before = fidelity.sqnr_db(bundled.reference, predict_tflite(bundled.plain, bundled.eval_x))
    after = fidelity.sqnr_db(bundled.reference, predict_tflite(result.model, bundled.eval_x))
    assert after > before + min_gain_db, (before, after)
    info = tflite.read_bytes(result.model)
    assert not info.float_ops and info.inputs[0].dtype == "int8"


@pytest.mark.slow
def test_reference_output_matches_the_float_model(calibrated, bundled):
    """The float recomputation of each conv/FC (layout, stride, padding) reproduces the float model."""
    model = tflite_edit.unpack(calibrated.model)
    graph = model.subgraphs[0]
    x = bundled.calib.x[:4]
    targets = [op for op in graph.operators if tflite_edit.op_name(model, op) in bc.CORRECTED_OPS]
    wanted = [int(t) for op in targets for t in (op.inputs[0], op.outputs[0])]
    runs = tflite_edit.run_keeping_tensors(calibrated.model, x, wanted)
    for op in targets:
        name = tflite_edit.op_name(model, op)
        w, b = bc._float_weights(model, op)
        lo, hi = bc._linear_range(op)
        got = np.clip(bc._reference_output(name, op, np.concatenate(runs[int(op.inputs[0])]), w, b), lo, hi)
        want = np.concatenate(runs[int(op.outputs[0])])
        assert np.allclose(got.reshape(want.shape), want, rtol=1e-4, atol=1e-4), name


@pytest.mark.slow
def test_a_mismatched_float_model_is_bad_input(bundled, hostile_path):
    from edgeq.modelio import load_model

    other = ranges.calibrate(load_model(str(hostile_path)), bundled.calib, QuantizeConfig())
    with pytest.raises(BadInput, match="matches the float model"):
        bc.correct_bias(bundled.plain, other.model, bundled.calib.x[:8])


@pytest.mark.slow
def test_shared_bias_buffers_are_unshared_first(bundled, hostile_path):
    from edgeq.modelio import load_model

    calibrated = ranges.calibrate(load_model(str(hostile_path)), bundled.calib, QuantizeConfig())
    plain = ranges.quantize_calibrated(calibrated, None, QuantizeConfig().io_type)
    # share one bias buffer between two 16-channel convs, as the converter's deduplication would
    model = tflite_edit.unpack(plain)
    graph = model.subgraphs[0]
    convs = [i for i, op in enumerate(graph.operators) if tflite_edit.op_name(model, op) == "CONV_2D"]
    a, b = (graph.tensors[graph.operators[i].inputs[2]] for i in convs[2:4])
    assert list(a.shape) == list(b.shape) == [16]
    b.buffer = a.buffer
    shared = tflite_edit.pack(model)
    result = bc.correct_bias(shared, calibrated.model, bundled.calib.x[:32])
    assert result.unshared_buffers == 1
    fixed = tflite_edit.unpack(result.model)
    graph = fixed.subgraphs[0]
    a2, b2 = (graph.tensors[graph.operators[i].inputs[2]] for i in convs[2:4])
    assert a2.buffer != b2.buffer
    values = [np.frombuffer(bytes(fixed.buffers[t.buffer].data), "<i4") for t in (a2, b2)]
    assert not np.array_equal(*values)  # each op got its own correction
    predict_tflite(result.model, bundled.calib.x[:2])  # and the model still runs
