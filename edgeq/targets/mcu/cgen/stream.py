"""Lowerings for streaming models: resource variables (VAR_HANDLE, READ_VARIABLE, ASSIGN_VARIABLE, CALL_ONCE)
and the int8 data moves that keep their windows (STRIDED_SLICE, SPLIT_V).

A resource variable is static storage of its own (``eq_var<k>``, never in the arena the plan reuses between
ops), kept across invokes. ``model_reset()`` sets every variable to the value CALL_ONCE's init subgraph
assigns it; CALL_ONCE itself calls it on the first invoke, as TFLM runs the init subgraph once. READ_VARIABLE
copies the variable into its output tensor and ASSIGN_VARIABLE copies a tensor into the variable, as
TFLM's kernels do; every size is checked against the variable's before any C is written.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from edgeq.errors import BadInput
from edgeq.targets.mcu.cgen.graph import Graph, Op
from edgeq.targets.mcu.cgen.lowered import Const, Lowered, _bad, _const_ints, _int8, _ints

MAX_RANK = 4  # STRIDED_SLICE here: up to 4-D (the wake-word models' tensors are 4-D)


@dataclass(frozen=True)
class SliceOptions:
    begin_mask: int
    end_mask: int
    ellipsis_mask: int
    new_axis_mask: int
    shrink_axis_mask: int
    offset: bool


def _variable(g: Graph, op: Op, handle: int, tensor: int) -> str:
    """The C name of the variable behind ``handle``, checked to hold exactly ``tensor``'s int8 bytes."""
    if handle < 0 or handle not in g.handles:
        raise _bad(g, op, "a resource that no VAR_HANDLE of the main subgraph makes")
    var = g.variables[g.handles[handle]]
    t = g.tensors[tensor]
    if var.init is None or var.init.dtype != np.int8:
        raise _bad(g, op, "a resource variable that CALL_ONCE does not initialise with int8 constants")
    if t.dtype != "int8" or t.nbytes != var.init.size:
        raise BadInput(
            f"op #{op.index} {op.name}: tensor {t.index} holds {t.nbytes} bytes of {t.dtype}, the variable it "
            f"reads or writes {var.init.size} bytes of int8",
            "the model is corrupt or hand-edited: re-export the .tflite with the TFLite converter",
        )
    return f"eq_var{var.index}"


def _var_handle(g: Graph, op: Op) -> Lowered:
    return Lowered(op, "/* a handle: the variable is static storage */")


def _call_once(g: Graph, op: Op) -> Lowered:
    return Lowered(op, "if (!eq_state_ready) model_reset();")


def _unchanged_while_read(g: Graph, op: Op, out_i: int) -> bool:
    """Whether the variable ``op`` reads stays as it is for as long as its output ``out_i`` is read: no
    ASSIGN_VARIABLE writes it from ``op`` to the last reader (but one that writes ``out_i`` back), and nothing
    reads ``out_i`` under another name (a RESHAPE) or as the model's output."""
    if out_i in g.outputs:
        return False
    var = g.handles.get(op.inputs[0])
    readers = [o for o in g.ops if o.index > op.index and out_i in o.inputs]
    if not readers or any(o.name == "RESHAPE" for o in readers):
        return False
    last = max(o.index for o in readers)
    for o in g.ops:
        if op.index < o.index <= last and o.name == "ASSIGN_VARIABLE" and g.handles.get(o.inputs[0]) == var:
            if not (o.index == last and o.inputs[1] == out_i):
                return False
    return True


def _read_variable(g: Graph, op: Op) -> Lowered:
    handle, out_i = op.inputs[0], op.outputs[0]
    var = _variable(g, op, handle, out_i)
    if _unchanged_while_read(g, op, out_i):
        # read in place: the planner gives the output tensor the variable's storage, no copy, no arena
        return Lowered(op, f"/* tensor {out_i} is {var}, read in place */", notes={"static": (out_i, var)})
    return Lowered(op, f"eq_copy({var}, {{t{out_i}}}, {g.tensors[out_i].nbytes});")


def _assign_variable(g: Graph, op: Op) -> Lowered:
    handle, x = op.inputs[0], op.inputs[1]
    var = _variable(g, op, handle, x)
    src = f"{{t{x}}}"
    consts: tuple[Const, ...] = ()
    data = g.tensors[x].data
    if data is not None:
        c = Const(f"w{x}", "int8_t", data.reshape(-1))
        consts, src = (c,), c.name
    return Lowered(op, f"eq_copy({src}, {var}, {g.tensors[x].nbytes});", consts)


def _axis_start(start: int, size: int, stride: int, masked: bool) -> int:
    """TFLM's strided_slice::StartForAxis."""
    if masked:
        start = -(1 << 31) if stride > 0 else (1 << 31) - 1
    if start < 0:
        start += size
    return max(0, min(start, size)) if stride > 0 else max(-1, min(start, size - 1))


def _axis_stop(stop: int, start: int, size: int, stride: int, masked: bool, shrink: bool) -> int:
    """TFLM's strided_slice::StopForAxis."""
    if shrink:
        return start + 1
    if masked:
        stop = (1 << 31) - 1 if stride > 0 else -(1 << 31)
    if stop < 0:
        stop += size
    return max(0, min(stop, size)) if stride > 0 else max(-1, min(stop, size - 1))


def slice_window(
    shape: tuple[int, ...], begin: list[int], end: list[int], strides: list[int], o: SliceOptions
) -> tuple[list[int], list[int], list[int], list[int]]:
    """Per axis of ``shape``: (start, stride, count of elements taken), and the output shape after shrink."""
    starts, counts, out_shape = [], [], []
    for axis, size in enumerate(shape):
        stride = strides[axis]
        start = _axis_start(begin[axis], size, stride, bool(o.begin_mask >> axis & 1))
        shrink = bool(o.shrink_axis_mask >> axis & 1)
        stop = _axis_stop(end[axis], start, size, stride, bool(o.end_mask >> axis & 1), shrink)
        count = max(0, -(-(stop - start) // stride)) if stride > 0 else max(0, -(-(start - stop) // -stride))
        starts.append(start)
        counts.append(count)
        if not shrink:
            out_shape.append(count)
    return starts, list(strides), counts, out_shape


def _strided_slice(g: Graph, op: Op) -> Lowered:
    x, out_i = op.inputs[0], op.outputs[0]
    _int8(g, op, x, out_i)
    inp, out = g.tensors[x], g.tensors[out_i]
    if (inp.scale, inp.zero_point) != (out.scale, out.zero_point):
        raise _bad(g, op, "a STRIDED_SLICE that rescales")
    rank = len(inp.shape)
    o = op.options
    if o is None or rank > MAX_RANK:
        raise _bad(g, op, f"a {rank}-D STRIDED_SLICE, or one without options")
    b, e, el, na, sa = (
        int(getattr(o, k, 0) or 0) for k in ("beginMask", "endMask", "ellipsisMask", "newAxisMask", "shrinkAxisMask")
    )
    opts = SliceOptions(b, e, el, na, sa, bool(getattr(o, "offset", False)))
    if opts.ellipsis_mask or opts.new_axis_mask or opts.offset:
        raise _bad(g, op, "a STRIDED_SLICE with an ellipsis, a new axis or offset=True")
    begin, end, strides = (
        _const_ints(g, op, op.inputs[k], what) for k, what in ((1, "begin"), (2, "end"), (3, "strides"))
    )
    if not len(begin) == len(end) == len(strides) == rank or any(s == 0 for s in strides):
        raise _bad(g, op, "begin, end and strides that do not give one non-zero step per input axis")
    starts, steps, counts, out_shape = slice_window(inp.shape, begin, end, strides, opts)
    if out_shape != list(out.shape) or int(np.prod(counts)) != out.size:
        raise BadInput(
            f"op #{op.index} STRIDED_SLICE: its output is declared {list(out.shape)}, its window gives {out_shape}",
            "the model is corrupt or hand-edited: re-export the .tflite with the TFLite converter",
        )
    for start, step, count, size in zip(starts, steps, counts, inp.shape, strict=True):
        if count and not (0 <= start < size and 0 <= start + (count - 1) * step < size):
            raise _bad(g, op, "a window outside its input")  # by construction never; checked before C is written
    pad = MAX_RANK - rank
    dims = [1] * pad + list(inp.shape)
    in_strides = [int(np.prod(dims[a + 1 :])) for a in range(MAX_RANK)]
    name = f"op{op.index}"
    params = (
        f"static const eq_slice_t {name}_p = {{{{{_ints([0] * pad + starts)}}}, {{{_ints([1] * pad + steps)}}}, "
        f"{{{_ints([1] * pad + counts)}}}, {{{_ints(in_strides)}}}}};"
    )
    return Lowered(op, f"eq_strided_slice(&{name}_p, {{t{x}}}, {{t{out_i}}});", (), params)


def _split_v(g: Graph, op: Op) -> Lowered:
    x = op.inputs[0]
    outs = list(op.outputs)
    _int8(g, op, x, *outs)
    inp = g.tensors[x]
    if any((g.tensors[i].scale, g.tensors[i].zero_point) != (inp.scale, inp.zero_point) for i in outs):
        raise _bad(g, op, "a SPLIT_V that rescales")
    rank = len(inp.shape)
    axis_vals = _const_ints(g, op, op.inputs[2], "axis")
    if len(axis_vals) != 1 or not -rank <= axis_vals[0] < rank:
        raise _bad(g, op, "an axis outside the input")
    axis = axis_vals[0] % rank
    sizes = [g.tensors[i].shape[axis] if len(g.tensors[i].shape) == rank else -1 for i in outs]
    want = [tuple(inp.shape[:axis]) + (s,) + tuple(inp.shape[axis + 1 :]) for s in sizes]
    if sum(sizes) != inp.shape[axis] or any(tuple(g.tensors[i].shape) != w for i, w in zip(outs, want, strict=True)):
        raise BadInput(
            f"op #{op.index} SPLIT_V: its outputs do not split its {list(inp.shape)} input along axis {axis}",
            "the model is corrupt or hand-edited: re-export the .tflite with the TFLite converter",
        )
    outer = int(np.prod(inp.shape[:axis]))
    inner = [int(np.prod(g.tensors[i].shape[axis:])) for i in outs]
    name = f"op{op.index}"
    ptrs = ", ".join(f"{{t{i}}}" for i in outs)
    stmt = (
        f"{{ int8_t* const outs[{len(outs)}] = {{{ptrs}}}; "
        f"eq_split({outer}, {len(outs)}, {{t{x}}}, {name}_inner, outs); }}"
    )
    return Lowered(op, stmt, (Const(f"{name}_inner", "int32_t", np.array(inner, dtype=np.int32)),))


LOWERINGS: dict[str, Callable[[Graph, Op], Lowered]] = {
    "VAR_HANDLE": _var_handle,
    "CALL_ONCE": _call_once,
    "READ_VARIABLE": _read_variable,
    "ASSIGN_VARIABLE": _assign_variable,
    "STRIDED_SLICE": _strided_slice,
    "SPLIT_V": _split_v,
}
