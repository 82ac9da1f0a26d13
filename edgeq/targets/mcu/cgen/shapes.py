"""Declared shapes against what each op implies, and sizes against a budget, before anything is lowered.

A .tflite declares every tensor's shape, and the generated engine sizes its loops, constants and arena from
those declarations. A shape that its op does not imply (an output edited to ``[1, 28, 28, 1000000]``) comes
from a corrupt or hand-edited file: it is refused here, naming the op and both shapes, rather than met as
an index error deep in lowering or as gigabytes of arena. Each rule follows the op's Prepare in TFLite
(``ComputeOutSize`` for convolutions and pools, broadcasting for ADD/MUL, ...).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from edgeq.errors import BadInput
from edgeq.targets.mcu.cgen.graph import Graph, Op, Tensor
from edgeq.targets.mcu.cgen.lut import UNARY_OPS
from edgeq.tflite import MAX_ACTIVATION_TENSOR_BYTES

# no tensor, constant set or arena of a microcontroller model comes near this; a declared size above it
# is refused before any array of that size is made (the board's own RAM and flash are judged later). The
# validator every .tflite passes first holds activations to the same budget; this also covers constants.
MAX_TENSOR_BYTES = MAX_ACTIVATION_TENSOR_BYTES
REEXPORT = "the model is corrupt or hand-edited: re-export the .tflite with the TFLite converter"


class ShapeError(Exception):
    """One inconsistency of an op, turned into a :class:`BadInput` naming the op by :func:`check`."""


def corrupt(origin: str, op: Op | None, what: str) -> BadInput:
    where = f"op #{op.index} {op.name}: " if op is not None else ""
    return BadInput(f"{origin}: {where}{what}", REEXPORT)


def _shape(t: Tensor) -> tuple[int, ...]:
    return tuple(t.shape)


def _out_size(size: int, filt: int, stride: int, dilation: int, same: bool) -> int:
    """TFLite's ComputeOutSize."""
    if stride < 1 or dilation < 1 or filt < 1:
        raise ShapeError(f"stride {stride}, dilation {dilation} and filter {filt} must be at least 1")
    effective = (filt - 1) * dilation + 1
    return (size + stride - 1) // stride if same else (size + stride - effective) // stride


def _rank(t: Tensor, rank: int, what: str) -> None:
    if len(t.shape) != rank:
        raise ShapeError(f"{what} {t.name!r} is {list(t.shape)}, not {rank}-D")


def _scales(w: Tensor, channels: int) -> None:
    if len(w.scales) not in (1, channels):
        raise ShapeError(f"filter {w.name!r} has {len(w.scales)} scales for {channels} output channels")


def _conv(g: Graph, op: Op, depthwise: bool) -> tuple[int, ...]:
    inp, w = g.tensors[op.inputs[0]], g.tensors[op.inputs[1]]
    _rank(inp, 4, "input")
    _rank(w, 4, "filter")
    o = op.options
    n, ih, iw, ic = inp.shape
    same = int(getattr(o, "padding", 0)) == 0
    sh, sw = int(getattr(o, "strideH", 1)), int(getattr(o, "strideW", 1))
    dh, dw = int(getattr(o, "dilationHFactor", 1) or 1), int(getattr(o, "dilationWFactor", 1) or 1)
    _, kh, kw, _ = w.shape
    oc = w.shape[3] if depthwise else w.shape[0]
    if depthwise and (ic < 1 or oc % ic):
        raise ShapeError(f"filter {list(w.shape)} has {oc} channels, not a multiple of the input's {ic}")
    if not depthwise and (w.shape[3] < 1 or ic % w.shape[3]):
        raise ShapeError(f"filter {list(w.shape)} takes {w.shape[3]} channels, which do not divide the input's {ic}")
    _scales(w, oc)
    return (n, _out_size(ih, kh, sh, dh, same), _out_size(iw, kw, sw, dw, same), oc)


def _pool(g: Graph, op: Op) -> tuple[int, ...]:
    inp = g.tensors[op.inputs[0]]
    _rank(inp, 4, "input")
    o = op.options
    n, ih, iw, c = inp.shape
    same = int(getattr(o, "padding", 0)) == 0
    kh, kw = int(getattr(o, "filterHeight", 1)), int(getattr(o, "filterWidth", 1))
    sh, sw = int(getattr(o, "strideH", 1)), int(getattr(o, "strideW", 1))
    return (n, _out_size(ih, kh, sh, 1, same), _out_size(iw, kw, sw, 1, same), c)


def _fully_connected(g: Graph, op: Op) -> tuple[int, ...]:
    inp, w = g.tensors[op.inputs[0]], g.tensors[op.inputs[1]]
    _rank(w, 2, "weights")
    out_depth, in_depth = w.shape
    _scales(w, out_depth)
    if in_depth < 1 or inp.size % in_depth:
        raise ShapeError(f"input {list(inp.shape)} is not a whole number of rows of the weights' {in_depth}")
    if getattr(op.options, "keepNumDims", False):
        return (*inp.shape[:-1], out_depth)
    return (inp.size // in_depth, out_depth)


def _same_as_input(g: Graph, op: Op) -> tuple[int, ...]:
    return _shape(g.tensors[op.inputs[0]])


def _reshape(g: Graph, op: Op) -> tuple[int, ...]:
    return _shape(g.tensors[op.inputs[0]])  # judged by element count: a reshape keeps every element


def _broadcast(g: Graph, op: Op) -> tuple[int, ...]:
    a, b = _shape(g.tensors[op.inputs[0]]), _shape(g.tensors[op.inputs[1]])
    rank = max(len(a), len(b))
    a, b = (1,) * (rank - len(a)) + a, (1,) * (rank - len(b)) + b
    out = []
    for x, y in zip(a, b, strict=True):
        if x != y and 1 not in (x, y):
            raise ShapeError(f"inputs {list(a)} and {list(b)} do not broadcast")
        out.append(y if x == 1 else x)
    return tuple(out)


def _ints(g: Graph, idx: int) -> list[int]:
    t = g.tensors[idx]
    if t.data is None:
        raise ShapeError(f"{t.name!r} is not constant")
    return [int(v) for v in np.asarray(t.data).reshape(-1)]


def _mean(g: Graph, op: Op) -> tuple[int, ...]:
    shape = _shape(g.tensors[op.inputs[0]])
    rank = len(shape)
    axes = _ints(g, op.inputs[1])
    if rank == 0 or any(not -rank <= a < rank for a in axes):
        raise ShapeError(f"axes {axes} are outside the input's {rank} dimensions")
    reduced = {a % rank for a in axes}
    if getattr(op.options, "keepDims", False):
        return tuple(1 if i in reduced else d for i, d in enumerate(shape))
    return tuple(d for i, d in enumerate(shape) if i not in reduced)


def _concat(g: Graph, op: Op) -> tuple[int, ...]:
    shapes = [_shape(g.tensors[i]) for i in op.inputs]
    rank = len(shapes[0])
    axis = int(getattr(op.options, "axis", 0))
    if rank == 0 or not -rank <= axis < rank:
        raise ShapeError(f"axis {axis} is outside the inputs' {rank} dimensions")
    axis %= rank
    for s in shapes:
        if len(s) != rank or any(s[i] != shapes[0][i] for i in range(rank) if i != axis):
            raise ShapeError(f"inputs {[list(s) for s in shapes]} differ off the concatenation axis {axis}")
    return tuple(sum(s[axis] for s in shapes) if i == axis else d for i, d in enumerate(shapes[0]))


def _pad(g: Graph, op: Op) -> tuple[int, ...]:
    shape = _shape(g.tensors[op.inputs[0]])
    pads = _ints(g, op.inputs[1])
    if len(pads) != 2 * len(shape) or any(p < 0 for p in pads):
        raise ShapeError(f"paddings {pads} do not fit the input's {len(shape)} dimensions")
    return tuple(d + pads[2 * i] + pads[2 * i + 1] for i, d in enumerate(shape))


# op -> (the output shape its inputs imply, whether only the element count must match)
RULES: dict[str, tuple[Callable[[Graph, Op], tuple[int, ...]], bool]] = {
    "CONV_2D": (lambda g, op: _conv(g, op, depthwise=False), False),
    "DEPTHWISE_CONV_2D": (lambda g, op: _conv(g, op, depthwise=True), False),
    "MAX_POOL_2D": (_pool, False),
    "AVERAGE_POOL_2D": (_pool, False),
    "FULLY_CONNECTED": (_fully_connected, True),
    "RESHAPE": (_reshape, True),
    "ADD": (_broadcast, False),
    "MUL": (_broadcast, False),
    "MEAN": (_mean, True),
    "CONCATENATION": (_concat, False),
    "PAD": (_pad, False),
    "PADV2": (_pad, False),
}
# every other op the engine lowers keeps its input's shape
KEEPS_SHAPE = ("SOFTMAX", "DEQUANTIZE", *UNARY_OPS)


def _size(shape: tuple[int, ...]) -> int:
    return math.prod(shape)


def check(g: Graph, origin: str = "model") -> None:
    """Every tensor's declared shape against its op and :data:`MAX_TENSOR_BYTES`.

    Raises:
        BadInput: a negative dimension (or an empty one in an activation), a tensor above the cap, or an op whose declared output is not the
            shape its inputs, filter, strides and padding imply (op index, type, tensor and both shapes named).
    """
    for t in g.tensors:
        if any(d < 0 for d in t.shape) or (t.data is None and 0 in t.shape):
            raise corrupt(origin, None, f"tensor {t.name!r} declares {list(t.shape)}: a negative or empty dimension")
        nbytes = t.nbytes
        if nbytes > MAX_TENSOR_BYTES:
            raise corrupt(
                origin,
                None,
                f"tensor {t.name!r} declares {list(t.shape)}, {nbytes:,} bytes, over the {MAX_TENSOR_BYTES:,}-byte "
                "cap for a microcontroller model",
            )
    for op in g.ops:
        if op.name not in RULES and op.name not in KEEPS_SHAPE:
            continue  # lowering refuses it by name
        if not op.outputs or not op.inputs or op.outputs[0] < 0 or op.inputs[0] < 0:
            continue
        rule, by_count = RULES.get(op.name, (_same_as_input, False))
        try:
            want = rule(g, op)
        except ShapeError as exc:
            raise corrupt(origin, op, str(exc)) from None
        out = g.tensors[op.outputs[0]]
        declared = _shape(out)
        if (_size(declared) != _size(want)) if by_count else (declared != want):
            implied = f"{_size(want):,} elements ({list(want)})" if by_count else str(list(want))
            raise corrupt(
                origin, op, f"output {out.name!r} is declared {list(declared)} but its inputs imply {implied}"
            )
