"""TFLite's Prepare-time arithmetic, done once in Python: multipliers, shifts, activation bounds, padding.

Each function reproduces the float and double conversions of TFLite's own code (scales are float32 in
the flatbuffer; products are taken in double where TFLite takes them in double, in float where it uses
float), because a multiplier one unit off changes outputs.
"""

from __future__ import annotations

import math

import numpy as np

INT8_MIN, INT8_MAX = -128, 127

# fused activation codes of the schema (ActivationFunctionType)
ACT_NONE, ACT_RELU, ACT_RELU_N1_TO_1, ACT_RELU6 = 0, 1, 2, 3


def _round_away(x: float) -> int:
    """std::round: halves away from zero."""
    return int(math.floor(abs(x) + 0.5)) * (1 if x >= 0 else -1)


def quantize_multiplier(m: float) -> tuple[int, int]:
    """TFLite's QuantizeMultiplier: ``m`` as a Q31 mantissa and a power-of-two shift (frexp-style)."""
    if m == 0.0:
        return 0, 0
    q, shift = math.frexp(m)
    q_fixed = _round_away(q * (1 << 31))
    if q_fixed == 1 << 31:
        q_fixed //= 2
        shift += 1
    if shift < -31:  # flushed to zero, as TFLite does
        return 0, 0
    return int(q_fixed), int(shift)


def activation_range(act: int, scale: float, zero_point: int) -> tuple[int, int]:
    """CalculateActivationRangeQuantized for int8: the fused activation's bounds in output units.

    ``zero_point + round(f / scale)`` with the division in float32, as TFLite computes it.
    """

    def q(f: float) -> int:
        return zero_point + _round_away(float(np.float32(f) / np.float32(scale)))

    if act == ACT_RELU:
        return max(INT8_MIN, q(0.0)), INT8_MAX
    if act == ACT_RELU6:
        return max(INT8_MIN, q(0.0)), min(INT8_MAX, q(6.0))
    if act == ACT_RELU_N1_TO_1:
        return max(INT8_MIN, q(-1.0)), min(INT8_MAX, q(1.0))
    if act == ACT_NONE:
        return INT8_MIN, INT8_MAX
    raise ValueError(f"fused activation {act}")


def padding(same: bool, stride: int, dilation: int, in_size: int, filter_size: int, out_size: int) -> int:
    """ComputePaddingHeightWidth for one axis: the leading padding (the odd extra goes at the end)."""
    if not same:
        return 0
    effective = (filter_size - 1) * dilation + 1
    total = (out_size - 1) * stride + effective - in_size
    return max(total, 0) // 2


def f32(x: float) -> float:
    return float(np.float32(x))


def softmax_params(beta: float, input_scale: float) -> tuple[int, int, int]:
    """PreprocessSoftmaxScaling and CalculateInputRadius with 5 integer bits: (multiplier, left shift, diff_min)."""
    integer_bits = 5
    real = min(float(beta) * float(input_scale) * (1 << (31 - integer_bits)), (1 << 31) - 1.0)
    mult, shift = quantize_multiplier(real)
    max_input_rescaled = 1.0 * ((1 << integer_bits) - 1) * (1 << (31 - integer_bits)) / (1 << shift)
    return mult, shift, -int(math.floor(max_input_rescaled))
