"""The generator's Prepare-time arithmetic and the C fixed-point primitives, checked on known values (fast)."""

from __future__ import annotations

import shutil
import subprocess
from importlib import resources

import numpy as np
import pytest

from edgeq.errors import BadInput, UnsupportedOp
from edgeq.targets.mcu.cgen import lower, quant
from edgeq.targets.mcu.cgen.graph import Graph, Op, Tensor


@pytest.mark.parametrize(
    ("m", "expected"),
    [
        (0.5, (1 << 30, 0)),
        (0.25, (1 << 30, -1)),
        (1.5, (1610612736, 1)),
        (0.0, (0, 0)),
        (2.0**-40, (0, 0)),  # below 2^-31: flushed to zero as TFLite does
        (1 - 2.0**-40, (1 << 30, 1)),  # the mantissa rounds up to 2^31 and is halved
        (0.1, (1717986918, -3)),
    ],
)
def test_quantize_multiplier_matches_tflite(m, expected):
    assert quant.quantize_multiplier(m) == expected


def test_activation_ranges_quantize_the_bounds_in_float32():
    scale, zp = 6 / 255, -128
    assert quant.activation_range(quant.ACT_NONE, scale, zp) == (-128, 127)
    assert quant.activation_range(quant.ACT_RELU, 0.05, -10) == (-10, 127)
    assert quant.activation_range(quant.ACT_RELU6, 0.1, -128) == (-128, -68)  # -128 + round(6 / 0.1)
    assert quant.activation_range(quant.ACT_RELU_N1_TO_1, 0.01, 0) == (-100, 100)


def test_padding_puts_the_odd_pixel_at_the_end():
    assert quant.padding(True, 2, 1, 7, 3, 4) == 1  # total 2
    assert quant.padding(True, 2, 1, 8, 3, 4) == 0  # total 1: all of it after
    assert quant.padding(True, 1, 2, 5, 3, 5) == 2  # dilated 3x3 spans 5
    assert quant.padding(False, 1, 1, 5, 3, 3) == 0


def test_softmax_diff_min_is_the_input_radius():
    mult, shift, diff_min = quant.softmax_params(1.0, 0.1)
    assert quant.quantize_multiplier(0.1 * (1 << 26)) == (mult, shift)
    assert diff_min == -int(np.floor(31 * 2**26 / 2**shift))


def _srdhm(a: int, b: int) -> int:
    if a == b == -(2**31):
        return 2**31 - 1
    ab = a * b
    nudge = 2**30 if ab >= 0 else 1 - 2**30
    q = abs(ab + nudge) // 2**31  # C division truncates toward zero
    return q if ab + nudge >= 0 else -q


def _rdbpot(x: int, e: int) -> int:
    mask = (1 << e) - 1
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> e) + (1 if (x & mask) > threshold else 0)


def _mbqm(x: int, m: int, s: int) -> int:
    return _rdbpot(_srdhm(x * (1 << max(s, 0)), m), max(-s, 0))


@pytest.mark.skipif(shutil.which("gcc") is None, reason="no gcc on PATH")
def test_c_fixed_point_primitives_round_as_tflite(tmp_path):
    rng = np.random.default_rng(7)
    cases = [(int(x), int(m), int(s)) for x, m, s in zip(
        rng.integers(-(2**20), 2**20, 300), rng.integers(2**30, 2**31 - 1, 300), rng.integers(-12, 3, 300), strict=True
    )]  # fmt: skip
    cases += [(-(2**31), -(2**31), 0), (-3, 1 << 30, -1), (3, 1 << 30, -1), (-5, 1 << 30, -2), (5, 1 << 30, -2)]
    runtime = resources.files("edgeq.targets.mcu.cgen").joinpath("runtime")
    (tmp_path / "t.c").write_text(
        '#include <stdio.h>\n#include "eq_kernels.h"\nint main(void){long x,m,s;'
        'while(scanf("%ld %ld %ld",&x,&m,&s)==3) printf("%d\\n",(int)eq_mbqm((int32_t)x,(int32_t)m,(int32_t)s));}'
    )
    exe = tmp_path / "t"
    subprocess.run(
        [
            "gcc",
            "-std=c99",
            "-O2",
            "-I",
            str(runtime),
            str(tmp_path / "t.c"),
            str(runtime / "eq_kernels.c"),
            "-o",
            str(exe),
        ],
        check=True,
    )
    out = subprocess.run([str(exe)], input="\n".join(f"{x} {m} {s}" for x, m, s in cases), capture_output=True,
                         text=True, check=True).stdout.split()  # fmt: skip
    assert [int(v) for v in out] == [_mbqm(x, m, s) for x, m, s in cases]


def test_unsupported_ops_are_all_named():
    t = Tensor(0, "x", (1, 4), "int8", (0.1,), (0,), None)
    g = Graph(
        tensors=(t, t, t),
        ops=(Op(0, "TILE", (0,), (1,), None), Op(1, "CUSTOM:Foo", (1,), (2,), None), Op(2, "TILE", (1,), (2,), None)),
        inputs=(0,),
        outputs=(2,),
    )
    with pytest.raises(UnsupportedOp) as err:
        lower.lower(g, "m.tflite")
    assert "2 op(s) of m.tflite: TILE (x2, first op #0), CUSTOM:Foo (x1, first op #1)" in err.value.message
    assert "--runtime tflm" in err.value.hint


def _int8_tensor(i: int, shape: tuple[int, ...], data: np.ndarray | None = None) -> Tensor:
    return Tensor(i, f"t{i}", shape, "int8", (0.05,), (0,), data)


@pytest.mark.parametrize("name", ["CONV_2D", "DEPTHWISE_CONV_2D", "MAX_POOL_2D", "SOFTMAX", "CONCATENATION"])
def test_an_op_written_without_its_options_is_refused_by_name(name):
    # the flatbuffer's builtin_options field is optional: a model may leave it out, and the lowering
    # must say so (exit 3) rather than fail on None.strideH (an internal error)
    w = np.ones((1, 1, 1, 1), dtype=np.int8)
    tensors = (_int8_tensor(0, (1, 2, 2, 1)), _int8_tensor(1, (1, 1, 1, 1), w), _int8_tensor(2, (1, 2, 2, 1)))
    ins = (0, 1) if name.endswith("CONV_2D") else (0,)
    g = Graph(tensors=tensors, ops=(Op(0, name, ins, (2,), None),), inputs=(0,), outputs=(2,))
    if name == "SOFTMAX":  # the output quantization its kernel needs, so the options are what is missing
        g = Graph(
            tensors=(tensors[0], tensors[1], Tensor(2, "t2", (1, 2, 2, 1), "int8", (1 / 256,), (-128,), None)),
            ops=g.ops,
            inputs=(0,),
            outputs=(2,),
        )
    with pytest.raises(BadInput) as err:
        lower.lower(g, "m.tflite")
    assert err.value.message == f"op #0 {name} has no builtin options (strides, padding, ...)"


def test_the_schema_options_objects_satisfy_the_lowering_protocols():
    from ai_edge_litert import schema_py_generated as schema

    assert isinstance(schema.Conv2DOptionsT(), lower.ConvOptions)
    assert not isinstance(schema.Conv2DOptionsT(), lower.DepthwiseConvOptions)
    assert isinstance(schema.DepthwiseConv2DOptionsT(), lower.DepthwiseConvOptions)
    assert isinstance(schema.Pool2DOptionsT(), lower.PoolOptions)
    assert isinstance(schema.SoftmaxOptionsT(), lower.SoftmaxOptions)
    assert isinstance(schema.ConcatenationOptionsT(), lower.ConcatOptions)
