"""Rules as data, and each documented limit on a small graph written op by op (tests/coral/tflite_builder.py)."""

from __future__ import annotations

import numpy as np
import pytest

from edgeq.errors import BadInput
from edgeq.targets.coral import TARGET, preflight, rules
from tests.coral.tflite_builder import Graph, chain


def test_rules_are_consistent_data():
    assert len({r.op for r in rules.RULES}) == len(rules.RULES)
    for r in rules.RULES:
        assert r.op.isupper() and r.name and r.since_runtime in (0, 13, 14)
        for lim in r.limits:
            assert lim.text.endswith(".")
            assert lim.check is None or lim.check in preflight.CHECKS, lim.check
            assert lim.status in rules.STATUSES
    used = {lim.check for r in rules.RULES for lim in r.limits if lim.check}
    assert used == set(preflight.CHECKS)
    assert not set(rules.ALTERNATIVES) & {r.op for r in rules.RULES if r.op != "TRANSPOSE"}


def test_profile_is_data_for_the_planner():
    from edgeq.targets.cpu import TARGET as CPU

    assert TARGET.profile["integer_only"] is True and TARGET.profile["int16_activations"] is False
    assert TARGET.profile["cpu_fallback_splits_graph"] is True
    assert CPU.profile == {"integer_only": False, "int16_activations": True, "cpu_fallback_splits_graph": False}


def test_confirmed_and_unconfirmed_are_both_listed():
    table = rules.table()
    assert sum(r["confirmed"] for r in table) >= 20
    assert {r["op"] for r in table if not r["confirmed"]} >= {"RSQRT", "SQUARED_DIFFERENCE", "SUM"}


def middle(path, runtime=rules.DEFAULT_RUNTIME_VERSION) -> preflight.OpVerdict:
    """The verdict on op #1 of a chain conv -> op -> conv."""
    return preflight.predict(path, runtime).ops[1]


def test_strided_slice_strides(tmp_path):
    bounds = [([0, 0, 0, 0], "int32"), ([1, 8, 8, 4], "int32")]
    v = middle(
        chain(
            tmp_path / "a.tflite",
            "STRIDED_SLICE",
            out_shape=(1, 4, 4, 4),
            extra_inputs=[*bounds, ([1, 2, 2, 1], "int32")],
        )
    )
    assert v.status == rules.STRIDES and "strides [1, 2, 2, 1]" in v.reason
    ok = chain(tmp_path / "b.tflite", "STRIDED_SLICE", extra_inputs=[*bounds, ([1, 1, 1, 1], "int32")])
    assert middle(ok).on_tpu
    masked = chain(
        tmp_path / "c.tflite", "STRIDED_SLICE", extra_inputs=[*bounds, ([1, 1, 1, 1], "int32")], newAxisMask=2
    )
    assert middle(masked).status == rules.UNSPECIFIED


def test_mean_axes_by_runtime(tmp_path):
    z6 = chain(tmp_path / "z6.tflite", "MEAN", in_shape=(1, 8, 8, 6), extra_inputs=[([3], "int32")])
    assert "not a multiple of 4" in middle(z6).reason
    z8 = chain(tmp_path / "z8.tflite", "MEAN", in_shape=(1, 8, 8, 8), extra_inputs=[([3], "int32")])
    assert middle(z8).on_tpu
    assert "(z)" in middle(z8, 12).reason  # runtime <= 12: x and y only
    yx = chain(tmp_path / "yx.tflite", "MEAN", extra_inputs=[([1, 2], "int32")])
    assert middle(yx, 12).on_tpu and middle(yx).on_tpu
    batch = chain(tmp_path / "b.tflite", "MEAN", extra_inputs=[([0], "int32")])
    assert "(batch)" in middle(batch).reason


def test_pad_dimensions_by_runtime(tmp_path):
    pads = chain(tmp_path / "p.tflite", "PAD", extra_inputs=[([[0, 0], [1, 1], [1, 1], [0, 4]], "int32")])
    assert middle(pads).on_tpu
    assert "pads dimensions z" in middle(pads, 12).reason
    batch = chain(tmp_path / "b.tflite", "PAD", extra_inputs=[([[1, 0], [0, 0], [0, 0], [0, 0]], "int32")])
    assert "batch" in middle(batch).reason


def test_softmax_size_and_rank(tmp_path):
    def softmax(shape):
        g = Graph()
        x = g.tensor(shape, name="input")
        y = g.tensor(shape, name="output")
        g.op("SOFTMAX", [x], [y], beta=1.0)
        return preflight.predict(g.save(tmp_path / f"s{len(shape)}{shape[-1]}.tflite", [x], [y])).ops[0]

    assert softmax((1, 1000)).on_tpu
    big = softmax((1, 20000))
    assert big.status == rules.UNSPECIFIED and "20,000 elements" in big.reason and "16,000" in big.reason
    assert "input shape [1, 49, 10]" in softmax((1, 49, 10)).reason


def test_fully_connected_output_and_constant_weights(tmp_path):
    g = Graph()
    x = g.tensor((1, 7, 16), name="input")
    w = g.const(np.ones((10, 16)), "int8")
    b = g.const(np.zeros(10), "int32")
    y = g.tensor((1, 7, 10), name="output")
    g.op("FULLY_CONNECTED", [x, w, b], [y], keepNumDims=True)
    v = preflight.predict(g.save(tmp_path / "fc.tflite", [x], [y])).ops[0]
    assert "Output tensor is one-dimensional" in v.reason and "[1, 7, 10]" in v.reason

    g = Graph()
    x = g.tensor((1, 16), name="input")
    flat = g.tensor((1, 160), name="weights_input")
    w = g.tensor((10, 16), name="weights")
    y = g.tensor((1, 10), name="output")
    g.op("RESHAPE", [flat, g.const([10, 16])], [w])
    g.op("FULLY_CONNECTED", [x, w, -1], [y])
    v = preflight.predict(g.save(tmp_path / "fc2.tflite", [x, flat], [y])).ops[1]
    assert v.status == rules.NOT_CONSTANT and "('weights') is computed at run time" in v.reason


def test_fused_activation_and_concat_constants(tmp_path):
    pool = chain(
        tmp_path / "mp.tflite",
        "MAX_POOL_2D",
        strideW=1,
        strideH=1,
        filterWidth=1,
        filterHeight=1,
        fusedActivationFunction=1,
    )
    assert "No fused activation function" in middle(pool).reason and "RELU" in middle(pool).reason

    def concat(values, name):
        g = Graph()
        x = g.tensor((1, 4, 4, 4), name="input")
        c = g.const(values, "int8")
        y = g.tensor((1, 4, 4, 8), name="output")
        g.op("CONCATENATION", [x, c], [y], axis=3)
        return preflight.predict(g.save(tmp_path / name, [x], [y])).ops[0]

    assert concat(np.zeros((1, 4, 4, 4)), "zero.tflite").on_tpu
    assert "not all zeros" in concat(np.ones((1, 4, 4, 4)), "ones.tflite").reason


def test_dilation_rules(tmp_path):
    g = Graph()
    x = g.tensor((1, 8, 8, 4), name="input")
    w = g.const(np.ones((4, 3, 3, 4)), "int8")
    b = g.const(np.zeros(4), "int32")
    y = g.tensor((1, 8, 8, 4), name="output")
    g.op("CONV_2D", [x, w, b], [y], dilationHFactor=2, dilationWFactor=1, strideW=1, strideH=1)
    v = preflight.predict(g.save(tmp_path / "d.tflite", [x], [y])).ops[0]
    assert "same dilation" in v.reason and "dilation 2 (y) x 1 (x)" in v.reason

    g = Graph()
    x = g.tensor((1, 8, 8, 4), name="input")
    w = g.const(np.ones((1, 3, 3, 4)), "int8")
    b = g.const(np.zeros(4), "int32")
    y = g.tensor((1, 8, 8, 4), name="output")
    g.op("DEPTHWISE_CONV_2D", [x, w, b], [y], dilationHFactor=2, dilationWFactor=2, depthMultiplier=1)
    path = g.save(tmp_path / "dw.tflite", [x], [y])
    assert preflight.predict(path, 13).ops[0].on_tpu
    assert "Dilated conv kernels" in preflight.predict(path, 12).ops[0].reason


def test_squeeze_leading_ones_until_runtime_12(tmp_path):
    g = Graph()
    x = g.tensor((5, 1, 10), name="input")
    y = g.tensor((5, 10), name="output")
    g.op("SQUEEZE", [x], [y], squeezeDims=[1])
    path = g.save(tmp_path / "sq.tflite", [x], [y])
    with pytest.raises(BadInput, match="batch 5"):  # a [5, 1, 10] input reads as batch 5
        preflight.predict(path)
    g = Graph()
    x = g.tensor((1, 5, 1, 10), name="input")
    y = g.tensor((1, 5, 10), name="output")
    g.op("SQUEEZE", [x], [y], squeezeDims=[2])
    path = g.save(tmp_path / "sq2.tflite", [x], [y])
    assert preflight.predict(path, 14).ops[0].on_tpu
    assert "squeezes dims [2]" in preflight.predict(path, 12).ops[0].reason


def test_pack_in_batch_dimension(tmp_path):
    g = Graph()
    a = g.tensor((1, 8, 4), name="a")
    y = g.tensor((1, 1, 8, 4), name="output")
    g.op("PACK", [a], [y], valuesCount=1, axis=0)
    path = g.save(tmp_path / "pack.tflite", [a], [y])
    assert "packs along the batch dimension" in preflight.predict(path).ops[0].reason
    assert preflight.predict(path, 12).ops[0].status == rules.NOT_SUPPORTED  # Pack needs runtime 13


def test_rank_and_data_type(tmp_path):
    g = Graph()
    x = g.tensor((1, 8, 8, 4), name="input")
    shape = g.const([2, 4, 8, 4])
    y = g.tensor((2, 4, 8, 4), name="output")
    g.op("RESHAPE", [x, shape], [y])
    v = preflight.predict(g.save(tmp_path / "r.tflite", [x], [y])).ops[0]
    assert v.status == rules.RANK and "[2, 4, 8, 4]" in v.reason

    g = Graph()
    x = g.tensor((1, 10), name="input")
    axis = g.const([1])
    y = g.tensor((1,), "int32", name="output")
    g.op("ARG_MAX", [x, axis], [y])
    v = preflight.predict(g.save(tmp_path / "am.tflite", [x], [y])).ops[0]
    assert v.status == rules.DATA_TYPE and "int32" in v.reason


def test_an_independent_branch_stays_on_the_tpu(tmp_path):
    """Only ops that depend on the CPU op are stranded; a parallel branch keeps its place."""
    g = Graph()
    x = g.tensor((1, 8, 8, 4), name="input")
    w = g.const(np.ones((4, 1, 1, 4)), "int8")
    b = g.const(np.zeros(4), "int32")
    h, leaky, left, right, y = (g.tensor((1, 8, 8, 4)) for _ in range(5))
    g.op("CONV_2D", [x, w, b], [h], strideW=1, strideH=1)
    g.op("LEAKY_RELU", [h], [leaky])
    g.op("CONV_2D", [leaky, w, b], [left], strideW=1, strideH=1)
    g.op("CONV_2D", [h, w, b], [right], strideW=1, strideH=1)
    g.op("ADD", [left, right], [y])
    pred = preflight.predict(g.save(tmp_path / "branch.tflite", [x], [y]))
    assert [v.status for v in pred.ops] == [
        rules.MAPPED,
        rules.NOT_SUPPORTED,
        rules.STRANDED,
        rules.MAPPED,
        rules.STRANDED,
    ]


def test_other_hard_errors(tmp_path):
    g = Graph()
    x = g.tensor((1, 8, 8, 4), name="input", signature=(1, -1, -1, 4))
    y = g.tensor((1, 8, 8, 4), name="output")
    g.op("RELU", [x], [y])
    with pytest.raises(BadInput, match="dynamic dimensions"):
        preflight.predict(g.save(tmp_path / "dyn.tflite", [x], [y]))

    g = Graph()
    x = g.tensor((1, 10), "int16", name="input")
    y = g.tensor((1, 10), "int16", name="output")
    g.op("RELU", [x], [y])
    with pytest.raises(BadInput, match="16-bit activations") as exc:
        preflight.predict(g.save(tmp_path / "i16.tflite", [x], [y]))
    assert "--mode int8" in exc.value.hint
