"""edgeq.tflite: the typed facts and readers of a parsed model, and the edits, on small checked-in models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgeq import tflite
from edgeq.errors import BadInput
from edgeq.tflite import edit

SEEDS = Path(__file__).resolve().parents[1] / "adversarial" / "seeds"
INT8 = SEEDS / "int8_io.tflite"  # conv, depthwise, max pool, reshape, fully connected, softmax


def test_the_readers_answer_what_the_facts_do_not_carry():
    m = tflite.load(INT8)
    assert m.info.size_bytes == INT8.stat().st_size
    assert m.op_names() == [op.name for op in m.info.ops]
    (sig,) = m.signatures
    assert (sig.key, sig.subgraph, len(sig.inputs), len(sig.outputs)) == ("serving_default", 0, 1, 1)
    assert "min_runtime_version" in m.metadata
    conv = m.info.ops[0]
    assert conv.name == "CONV_2D" and m.options(0).strideH >= 1
    assert m.op_version(0) >= 1 and m.resource_variables() == 0
    for t in m.info.tensors:
        raw = m.constant_bytes(t.index)
        assert (raw is not None) == t.is_constant
        if raw is not None and t.dtype in ("int8", "int32"):
            assert len(raw) == t.num_elements * np.dtype(t.dtype).itemsize


def test_an_edit_round_trips_and_is_checked_again():
    data = INT8.read_bytes()
    model = edit.unpack(data)
    assert edit.op_name(model, model.subgraphs[0].operators[0]) == "CONV_2D"
    again = tflite.read_bytes(edit.pack(model, len(data)), "repacked")
    before = tflite.read_bytes(data)
    assert [t.to_dict() for t in again.tensors] == [t.to_dict() for t in before.tensors]
    assert again.op_histogram() == before.op_histogram()


def test_the_edits_cut_ops():
    data = INT8.read_bytes()
    trimmed = edit.unpack(edit.without_ops(data, {"SOFTMAX", "RESHAPE"}))
    assert [edit.op_name(trimmed, op) for op in trimmed.subgraphs[0].operators] == [
        "CONV_2D",
        "DEPTHWISE_CONV_2D",
        "MAX_POOL_2D",
        "FULLY_CONNECTED",
    ]
    alone = tflite.read_bytes(edit.single_op_model(data, 5, 256), "softmax alone")
    assert [op.name for op in alone.ops] == ["SOFTMAX"] and alone.inputs[0].shape == (256,)


def test_new_tables_are_made_by_name():
    t = edit.new_tensor(b"x", [1, 2], "FLOAT16", buffer=3)
    assert edit.tensor_type_name(t.type) == "float16" and t.buffer == 3
    assert edit.tensor_type("int8") == edit.tensor_type("INT8")
    buf = edit.new_buffer(np.arange(4, dtype=np.int32))
    assert bytes(buf.data) == np.arange(4, dtype=np.int32).tobytes()
    code = edit.new_operator_code("DEQUANTIZE", version=3)
    assert code.builtinCode == code.deprecatedBuiltinCode and code.version == 3


def test_hostile_bytes_are_refused_with_bounded_work():
    data = INT8.read_bytes()
    with pytest.raises(BadInput, match="truncated or corrupt"):
        edit.unpack(data[: len(data) // 2])
    assert tflite.custom_op_count(b"\x00" * 64, "edgetpu-custom-op") is None
    assert tflite.custom_op_count(data, "edgetpu-custom-op") == 0
    with pytest.raises(BadInput, match="not a TFLite model"):
        tflite.parse(b"not a model at all")
