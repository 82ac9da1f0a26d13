"""Kernels for Cortex-M55's Helium (M-profile Vector Extension, MVE), chosen at generation time.

A project generated for Cortex-M55 is built with the hard float ABI (:func:`emit.float_abi`), which is what
enables MVE, and startup.c turns the coprocessor on. Each op kind with a Helium kernel is retargeted here from
the plain kernel :mod:`lower` gave it; every other op keeps the plain C kernel. The arithmetic is the plain
kernel's (TFLM's), so the project is bit-exact on every core. On any other core nothing changes.
"""

from __future__ import annotations

import re

from edgeq.targets.mcu.cgen.lowered import Lowered

MVE_CORES = ("cortex-m55",)


def uses_mve(core: str | None) -> bool:
    """Whether the project generated for ``core`` takes the Helium kernels (None: a core-agnostic project)."""
    return core in MVE_CORES


def _conv(low: Lowered) -> Lowered:
    """CONV_2D to ``eq_conv2d_mve`` (runtime/eq_conv_mve.c): the plain filter, bias and parameters (wsum
    included), plus scratch the memory plan places in the arena (:func:`conv_scratch_bytes`)."""
    from dataclasses import replace  # here, not at the top: the other op kinds' code stays apart from this one

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


def _depthwise(low: Lowered) -> Lowered:
    """DEPTHWISE_CONV_2D: the plain kernel until its Helium kernel lands."""
    return low


def _fc(low: Lowered) -> Lowered:
    """FULLY_CONNECTED: the plain kernel until its Helium kernel lands."""
    return low


def _pool(low: Lowered) -> Lowered:
    """MAX_POOL_2D and AVERAGE_POOL_2D: the plain kernels until their Helium kernels land."""
    return low


def _elementwise(low: Lowered) -> Lowered:
    """ADD and the other element-wise ops: the plain kernels until their Helium kernels land."""
    return low


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
