"""Kernels for the core, chosen at generation time: CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED, MAX_POOL_2D
and ADD on cores with the DSP extension.

On Cortex-M4, M7 and M33 every CONV_2D that :mod:`lower` gave the plain ``eq_conv2d`` is retargeted to
``eq_conv2d_dsp`` (runtime/eq_conv_dsp.c: int16 im2col, dual 16-bit multiply-accumulate, 2 output channels
x 2 pixels per pass). The filter is stored in that kernel's layout (:func:`dsp_filter`), so the plain
array is not emitted; the im2col columns are scratch the memory plan places in the arena. FULLY_CONNECTED
is retargeted to ``eq_fully_connected_dsp`` (runtime/eq_fc_dsp.c: the same filter layout, 4 rows per pass,
the input offset folded into a per-op bias, :func:`fc_bias`), MAX_POOL_2D to ``eq_max_pool_dsp``
(runtime/eq_pool_dsp.c: 4 channels per word) and ADD to ``eq_add_dsp`` (runtime/eq_add_dsp.c: without
broadcast one flat loop with the parameters in locals). Every DEPTHWISE_CONV_2D goes to ``eq_dwconv2d_dsp``
(runtime/eq_dw_dsp.c: the interior rectangle without bounds tests, 4 channels per pass) with the plain
filter and no scratch. The DSP kernels share runtime/eq_dsp.h (intrinsics, their C emulation, a faster
requantization with eq_mbqm's results). Other cores keep the plain kernels here (M55 takes mve.py's). The
arithmetic is the plain kernel's, so the project is bit-exact on every core.
"""

from __future__ import annotations

import re
from dataclasses import replace

import numpy as np

from edgeq.targets.mcu.cgen.lowered import Const, Lowered

DSP_CORES = ("cortex-m4", "cortex-m7", "cortex-m33")


def uses_dsp(core: str | None) -> bool:
    """Whether the project generated for ``core`` takes the DSP kernels (None: a core-agnostic project)."""
    return core in DSP_CORES


def dsp_filter(values: np.ndarray, out_c: int) -> np.ndarray:
    """OHWI int8 filter rows in the DSP kernel's layout: rows paired (2m, 2m+1) with their whole groups of 4
    taps interleaved (row 2m's 4 bytes, then row 2m+1's) and then their tails (row 2m's k % 4 taps, row
    2m+1's). A lone last row stays a row. Each pair block is 2k bytes, so channel c's data still starts at
    byte c * k. (The kernel's im2col columns hold each group in SXTB16's order, x0 x2 x1 x3, so the taps
    within a group keep their order here.)"""
    rows = np.asarray(values, dtype=np.int8).reshape(out_c, -1)
    k = rows.shape[1]
    k4 = k // 4 * 4
    blocks = []
    for m in range(0, out_c - 1, 2):
        groups = np.stack([rows[m, :k4].reshape(-1, 4), rows[m + 1, :k4].reshape(-1, 4)], axis=1)
        blocks += [groups.reshape(-1), rows[m, k4:], rows[m + 1, k4:]]
    if out_c % 2:
        blocks.append(rows[-1])
    return np.concatenate(blocks).astype(np.int8)


def _conv(low: Lowered) -> Lowered:
    w_name = f"w{low.op.inputs[1]}"
    name = f"op{low.op.index}"
    weights = next(c for c in low.consts if c.name == w_name)
    out_c = len(next(c for c in low.consts if c.name == f"{name}_mult").values)
    k = weights.values.size // out_c
    dsp_w = Const(f"{w_name}_dsp", "int8_t", dsp_filter(weights.values, out_c))
    consts = tuple(dsp_w if c is weights else c for c in low.consts if c.name != f"{name}_wsum")
    stmt = low.statement.replace("eq_conv2d(", "eq_conv2d_dsp(", 1).replace(f", {w_name}, ", f", {dsp_w.name}, ", 1)
    stmt = stmt.removesuffix(");") + ", (int16_t*){scratch});"
    params = low.params.replace(f"{name}_wsum}};", "0};")
    notes = {**low.notes, "kernel": "eq_conv2d_dsp", "scratch_bytes": 4 * (k + (k & 1))}
    return replace(low, statement=stmt, consts=consts, params=params, notes=notes)


# eq_fc_t's leading fields as lower._fully_connected writes them: batches, in_depth, out_depth, in_offset, w_offset
_FC_FIELDS = re.compile(r"= \{(-?\d+), (-?\d+), (-?\d+), (-?\d+), (-?\d+),")


def fc_bias(weights: np.ndarray, bias: np.ndarray | None, in_offset: int, w_offset: int) -> np.ndarray:
    """Each row's bias with the input offset folded in, for eq_fully_connected_dsp: bias + in_offset * sum(w)
    + k * w_offset * in_offset, wrapped to int32 as the reference's int32 accumulator wraps (exact)."""
    rows = np.asarray(weights, dtype=np.int64)
    folded = in_offset * rows.sum(axis=1) + rows.shape[1] * w_offset * in_offset
    if bias is not None:
        folded = folded + np.asarray(bias, dtype=np.int64).reshape(-1)
    return ((folded + 2**31) % 2**32 - 2**31).astype(np.int32)


def _fc(low: Lowered) -> Lowered:
    """eq_fully_connected -> eq_fully_connected_dsp: weights re-laid out, the input offset folded into the bias."""
    fields = _FC_FIELDS.search(low.params)
    if fields is None:  # not the parameter block this module knows: keep the plain kernel
        return low
    _, in_depth, out_depth, in_offset, w_offset = (int(v) for v in fields.groups())
    name = f"op{low.op.index}"
    w_name = f"w{low.op.inputs[1]}"
    b_idx = low.op.inputs[2] if len(low.op.inputs) > 2 else -1
    b_name = f"w{b_idx}" if b_idx >= 0 else "0"
    weights = next(c for c in low.consts if c.name == w_name)
    bias = next((c.values for c in low.consts if c.name == b_name), None)
    rows = np.asarray(weights.values, dtype=np.int8).reshape(out_depth, in_depth)
    dsp_w = Const(f"{w_name}_dsp", "int8_t", dsp_filter(rows, out_depth))
    dsp_b = Const(f"{name}_bias_dsp", "int32_t", fc_bias(rows, bias, in_offset, w_offset))
    consts = tuple(c for c in low.consts if c.name not in (w_name, b_name)) + (dsp_w, dsp_b)
    old = f"eq_fully_connected(&{name}_p, {{t{low.op.inputs[0]}}}, {w_name}, {b_name}, "
    new = f"eq_fully_connected_dsp(&{name}_p, {{t{low.op.inputs[0]}}}, {dsp_w.name}, {dsp_b.name}, "
    if not low.statement.startswith(old):
        return low
    notes = {**low.notes, "kernel": "eq_fully_connected_dsp"}
    return replace(low, statement=new + low.statement[len(old) :], consts=consts, notes=notes)


def _retarget_one(low: Lowered) -> Lowered:
    if low.statement.startswith("eq_conv2d("):
        return _conv(low)
    if low.statement.startswith("eq_fully_connected("):
        return _fc(low)
    if low.statement.startswith("eq_dwconv2d("):
        return _depthwise(low)
    if low.statement.startswith("eq_add("):  # same parameters, requantization in locals (runtime/eq_add_dsp.c)
        notes = {**low.notes, "kernel": "eq_add_dsp"}
        return replace(low, statement=low.statement.replace("eq_add(", "eq_add_dsp(", 1), notes=notes)
    if low.statement.startswith("eq_max_pool("):  # same parameters, 4 channels per word
        notes = {**low.notes, "kernel": "eq_max_pool_dsp"}
        return replace(low, statement=low.statement.replace("eq_max_pool(", "eq_max_pool_dsp(", 1), notes=notes)
    return low


def _depthwise(low: Lowered) -> Lowered:
    """DEPTHWISE_CONV_2D to ``eq_dwconv2d_dsp`` (runtime/eq_dw_dsp.c): the same filter, parameters and
    arithmetic, interior pixels without bounds tests and 4 channels per pass; any other op unchanged."""
    if not low.statement.startswith("eq_dwconv2d("):
        return low
    stmt = low.statement.replace("eq_dwconv2d(", "eq_dwconv2d_dsp(", 1)
    return replace(low, statement=stmt, notes={**low.notes, "kernel": "eq_dwconv2d_dsp"})


def retarget(lowered: list[Lowered], core: str | None) -> list[Lowered]:
    """``lowered`` with the kernels of ``core``: unchanged unless the core has the DSP extension."""
    if not uses_dsp(core):
        return lowered
    return [_retarget_one(low) for low in lowered]
