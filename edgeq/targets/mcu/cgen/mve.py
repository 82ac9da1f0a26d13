"""Kernels for Cortex-M55's Helium (M-profile Vector Extension, MVE), chosen at generation time.

A project generated for Cortex-M55 is built with the hard float ABI (:func:`emit.float_abi`), which is what
enables MVE, and startup.c turns the coprocessor on. Each op kind with a Helium kernel is retargeted here from
the plain kernel :mod:`lower` gave it; every other op keeps the plain C kernel. The arithmetic is the plain
kernel's (TFLM's), so the project is bit-exact on every core. On any other core nothing changes.
"""

from __future__ import annotations

import re
from dataclasses import replace

import numpy as np

from edgeq.targets.mcu.cgen import dsp
from edgeq.targets.mcu.cgen.lowered import Const, Lowered

MVE_CORES = ("cortex-m55",)


def uses_mve(core: str | None) -> bool:
    """Whether the project generated for ``core`` takes the Helium kernels (None: a core-agnostic project)."""
    return core in MVE_CORES


def _conv(low: Lowered) -> Lowered:
    """CONV_2D to ``eq_conv2d_mve`` (runtime/eq_conv_mve.c): the plain filter, bias and parameters (wsum
    included), plus scratch the memory plan places in the arena (:func:`conv_scratch_bytes`)."""

    fields = _CONV_FIELDS.search(low.params)
    if not low.statement.startswith("eq_conv2d(") or fields is None:
        return low
    out_c, k_h, k_w, pad_h, pad_w = (int(fields.group(i)) for i in (7, 8, 9, 14, 15))
    k = k_h * k_w * int(fields.group(4))
    direct = k_h == k_w == 1 and pad_h == pad_w == 0
    stmt = "eq_conv2d_mve(" + low.statement.removeprefix("eq_conv2d(").removesuffix(");") + ", (int8_t*){scratch});"
    notes = {**low.notes, "kernel": "eq_conv2d_mve", "scratch_bytes": conv_scratch_bytes(k, out_c, direct)}
    return replace(low, statement=stmt, notes=notes)


# eq_conv_t's leading fields as lower._conv writes them: batches, in_h, in_w, in_c, out_h, out_w, out_c, k_h,
# k_w, stride_h, stride_w, dil_h, dil_w, pad_h, pad_w
_CONV_FIELDS = re.compile(r"= \{" + ", ".join([r"(-?\d+)"] * 15) + ",")


def conv_scratch_bytes(k: int, out_c: int, direct: bool) -> int:
    """eq_conv2d_mve's scratch (EQ_CONV_MVE_SCRATCH): 3 int32 requantization constants per channel (worked
    out once per call, channels in fours), 3 pixels' int32 accumulators (channels in pairs), then their im2col
    columns of ``k`` taps each padded to 16 bytes, unless a 1x1 unpadded filter (``direct``) with k a multiple
    of 16 reads the input in place."""
    columns = 0 if direct and k % 16 == 0 else 3 * ((k + 15) // 16 * 16)
    return 12 * ((out_c + 3) // 4 * 4) + 12 * (out_c + out_c % 2) + columns


# eq_conv_t's 20 integer fields as lower._conv writes them, then mult, shift and wsum (0 for a depthwise op)
_DW_FIELDS = re.compile(r"= \{((?:-?\d+, ){20})(\w+), (\w+), 0\};$")


# The order of the 16 channels of a block in eq_dw_mve.c's four accumulators: base_k + 4j, base 0, 2, 1, 3.
DW_ORDER = np.array([base + 4 * j for base in (0, 2, 1, 3) for j in range(4)])


def dw_table(
    weights: np.ndarray, bias: np.ndarray | None, in_offset: int, mult: np.ndarray, shift: np.ndarray
) -> np.ndarray:
    """eq_dwconv2d_mve's per-channel table (depth multiplier 1), per block of 16 channels in its accumulators'
    order (:data:`DW_ORDER`), zero past the last channel: bias + in_offset * sum(w over the window) (wrapped
    to int32 as the reference's accumulator wraps), the multiplier, max(shift, 0) and min(shift, 0). When
    ``out_c`` divides 16, lane l holds channel l % out_c instead (16 / out_c pixels share a pass). Then one
    word of flags: bit 0, a shift is positive; bit 1, a shift is not negative."""
    out_c = len(mult)
    taps = np.asarray(weights, dtype=np.int64).reshape(-1, out_c)
    folded = in_offset * taps.sum(axis=0)
    if bias is not None:
        folded = folded + np.asarray(bias, dtype=np.int64).reshape(-1)
    shifts = np.asarray(shift, dtype=np.int64)
    rows = np.stack([folded, np.asarray(mult, dtype=np.int64), np.maximum(shifts, 0), np.minimum(shifts, 0)])
    blocks = -(-out_c // 16)
    padded = np.zeros((4, blocks * 16), dtype=np.int64)
    padded[:, :out_c] = rows
    if out_c < 16 and 16 % out_c == 0:  # the kernel's grouped pixels: lanes past out_c repeat the channels
        padded = rows[:, np.arange(16) % out_c]
    table = padded.reshape(4, blocks, 16)[:, :, DW_ORDER].transpose(1, 0, 2)
    # one word after the blocks: bit 0 set when a shift is positive, bit 1 when one is not negative (the
    # kernel's quicker requantization applies when neither is: no left shift, a right shift on every lane)
    flags = int((shifts > 0).any()) | 2 * int((shifts >= 0).any())
    words = np.append(table.reshape(-1), flags)
    return ((words + 2**31) % 2**32 - 2**31).astype(np.int32)


def _depthwise(low: Lowered) -> Lowered:
    """DEPTHWISE_CONV_2D with depth multiplier 1 -> ``eq_dwconv2d_mve`` (runtime/eq_dw_mve.c): the plain
    filter and parameters, the struct's wsum field pointing at the kernel's per-channel table
    (:func:`dw_table`). Other depth multipliers keep the plain kernel."""
    fields = _DW_FIELDS.search(low.params)
    name = f"op{low.op.index}"
    w_name, b_idx = f"w{low.op.inputs[1]}", (low.op.inputs[2] if len(low.op.inputs) > 2 else -1)
    b_name = f"w{b_idx}" if b_idx >= 0 else "0"
    old = f"eq_dwconv2d(&{name}_p, {{t{low.op.inputs[0]}}}, {w_name}, {b_name}, "
    if fields is None or not low.statement.startswith(old):  # not the shape this module knows
        return low
    ints = [int(v) for v in fields.group(1).split(", ")[:20]]
    out_c, dm, in_offset = ints[6], ints[15], ints[16]
    if dm != 1:
        return low
    weights = next(c for c in low.consts if c.name == w_name).values
    bias = next((c.values for c in low.consts if c.name == b_name), None)
    mult, shift = (next(c.values for c in low.consts if c.name == f"{name}_{k}") for k in ("mult", "shift"))
    if len(mult) != out_c:
        return low
    sums = Const(f"{name}_dwtab", "int32_t", dw_table(weights, bias, in_offset, mult, shift))
    params = low.params[: fields.end(3)] + f", {sums.name}}};"
    stmt = "eq_dwconv2d_mve(" + low.statement.removeprefix("eq_dwconv2d(")
    notes = {**low.notes, "kernel": "eq_dwconv2d_mve"}
    return replace(low, statement=stmt, consts=(*low.consts, sums), params=params, notes=notes)


# eq_fc_t's leading fields as lower._fully_connected writes them: batches, in_depth, out_depth, in_offset, w_offset
_FC_FIELDS = re.compile(r"= \{(-?\d+), (-?\d+), (-?\d+), (-?\d+), (-?\d+),")


def _fc(low: Lowered) -> Lowered:
    """FULLY_CONNECTED -> ``eq_fully_connected_mve`` (runtime/eq_fc_mve.c): the plain weights, the input
    offset folded into a per-op bias (:func:`dsp.fc_bias`, always emitted)."""
    fields = _FC_FIELDS.search(low.params)
    name, w_name = f"op{low.op.index}", f"w{low.op.inputs[1]}"
    b_idx = low.op.inputs[2] if len(low.op.inputs) > 2 else -1
    b_name = f"w{b_idx}" if b_idx >= 0 else "0"
    old = f"eq_fully_connected(&{name}_p, {{t{low.op.inputs[0]}}}, {w_name}, {b_name}, "
    if fields is None or not low.statement.startswith(old):  # not the shape this module knows
        return low
    _, in_depth, out_depth, in_offset, w_offset = (int(v) for v in fields.groups())
    weights = next(c for c in low.consts if c.name == w_name).values
    bias = next((c.values for c in low.consts if c.name == b_name), None)
    rows = np.asarray(weights, dtype=np.int8).reshape(out_depth, in_depth)
    folded = Const(f"{name}_bias_mve", "int32_t", dsp.fc_bias(rows, bias, in_offset, w_offset))
    consts = (*(c for c in low.consts if c.name != b_name), folded)
    new = f"eq_fully_connected_mve(&{name}_p, {{t{low.op.inputs[0]}}}, {w_name}, {folded.name}, "
    notes = {**low.notes, "kernel": "eq_fully_connected_mve"}
    return replace(low, statement=new + low.statement[len(old) :], consts=consts, notes=notes)


def _pool(low: Lowered) -> Lowered:
    """MAX_POOL_2D and AVERAGE_POOL_2D -> ``eq_max_pool_mve`` / ``eq_avg_pool_mve`` (runtime/eq_pool_mve.c):
    the same parameters, 16 channels per vector for max, 4 for the average's int32 sums."""
    for plain in ("eq_max_pool", "eq_avg_pool"):
        if low.statement.startswith(plain + "("):
            stmt = f"{plain}_mve(" + low.statement.removeprefix(plain + "(")
            return replace(low, statement=stmt, notes={**low.notes, "kernel": f"{plain}_mve"})
    return low


def _elementwise(low: Lowered) -> Lowered:
    """ADD -> ``eq_add_mve`` (runtime/eq_add_mve.c): the same parameters, 4 lanes per pass where neither input
    broadcasts (the kernel checks the strides; a broadcasting ADD runs eq_add). Other element-wise ops keep
    the plain kernels."""
    if not low.statement.startswith("eq_add("):
        return low
    stmt = "eq_add_mve(" + low.statement.removeprefix("eq_add(")
    return replace(low, statement=stmt, notes={**low.notes, "kernel": "eq_add_mve"})


_BY_KERNEL = {
    "eq_conv2d": _conv,
    "eq_dwconv2d": _depthwise,
    "eq_fully_connected": _fc,
    "eq_max_pool": _pool,
    "eq_avg_pool": _pool,
    "eq_add": _elementwise,
}


def retarget(lowered: list[Lowered], core: str | None) -> list[Lowered]:
    """``lowered`` with the Helium kernels of ``core``: unchanged unless the core has MVE."""
    if not uses_mve(core):
        return lowered
    return [_BY_KERNEL.get(low.statement.split("(", 1)[0], _keep)(low) for low in lowered]


def _keep(low: Lowered) -> Lowered:
    return low
