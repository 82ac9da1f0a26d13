"""Each supported op lowered to one kernel call with its parameters computed here (TFLite's Prepare).

A lowering returns a :class:`Lowered`: the C statement (tensor pointers as ``{tN}`` placeholders the
emitter fills from the memory plan), the constant arrays it needs, and, for RESHAPE, the alias that
lets the planner give input and output one buffer. The set of op names here is the runtime's
supported-op list; anything else is refused before code is written.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

import numpy as np

from edgeq.errors import BadInput, UnsupportedOp
from edgeq.targets.mcu.cgen import lut, quant, shapes
from edgeq.targets.mcu.cgen import stream as _stream
from edgeq.targets.mcu.cgen.graph import Graph, Op, Tensor
from edgeq.targets.mcu.cgen.lowered import Const, Lowered, _bad, _const_ints, _int8, _ints


# The schema's options objects (Conv2DOptionsT, Pool2DOptionsT, ...) as the lowerings read them. An op
# written without its options (the flatbuffer field is optional) has None there: refused, not guessed.
@runtime_checkable
class ConvOptions(Protocol):
    strideH: int
    strideW: int
    dilationHFactor: int
    dilationWFactor: int
    padding: int


@runtime_checkable
class DepthwiseConvOptions(ConvOptions, Protocol):
    depthMultiplier: int


@runtime_checkable
class PoolOptions(Protocol):
    filterHeight: int
    filterWidth: int
    strideH: int
    strideW: int
    padding: int


@runtime_checkable
class SoftmaxOptions(Protocol):
    beta: float


@runtime_checkable
class ConcatOptions(Protocol):
    axis: int


def _no_options(g: Graph, op: Op) -> BadInput:
    return BadInput(
        f"op #{op.index} {op.name} has no builtin options (strides, padding, ...)",
        "re-export the .tflite with the TFLite converter",
    )


def _act(op: Op) -> int:
    return int(getattr(op.options, "fusedActivationFunction", 0) or 0)


def _optional_weights(g: Graph, op: Op, idx: int, ctype: str) -> Const | None:
    """A constant input the op may omit (index -1), such as a bias."""
    return None if idx < 0 else _weights(g, op, idx, ctype)


def _weights(g: Graph, op: Op, idx: int, ctype: str) -> Const:
    if idx < 0:
        raise _bad(g, op, "an omitted constant input")
    t = g.tensors[idx]
    if t.data is None:
        raise _bad(g, op, f"non-constant weights {t.name!r}")
    want = {"int8_t": "int8", "int32_t": "int32"}[ctype]
    if t.dtype != want:
        raise _bad(g, op, f"{t.dtype} weights {t.name!r}")
    return Const(f"w{idx}", ctype, t.data.reshape(-1))


def _channel_multipliers(inp: Tensor, w: Tensor, out: Tensor, channels: int) -> tuple[list[int], list[int]]:
    """PopulateConvolutionQuantizationParams: input_scale * filter_scale[c] / output_scale, in double."""
    mults, shifts = [], []
    for c in range(channels):
        fs = w.scales[c] if len(w.scales) > 1 else w.scales[0]
        m, s = quant.quantize_multiplier(float(inp.scale) * float(fs) / float(out.scale))
        mults.append(m)
        shifts.append(s)
    return mults, shifts


def _conv(g: Graph, op: Op, depthwise: bool) -> Lowered:
    x, w_i, out_i = op.inputs[0], op.inputs[1], op.outputs[0]
    b_i = op.inputs[2] if len(op.inputs) > 2 else -1
    _int8(g, op, x, w_i, out_i)
    inp, w, out = g.tensors[x], g.tensors[w_i], g.tensors[out_i]
    if len(inp.shape) != 4 or len(w.shape) != 4:
        raise _bad(g, op, "a non-4-D convolution")
    if any(z != 0 for z in w.zero_points):
        raise _bad(g, op, "asymmetric (non-zero zero point) filter")
    o = op.options
    if not isinstance(o, DepthwiseConvOptions if depthwise else ConvOptions):
        raise _no_options(g, op)
    n, ih, iw, ic = inp.shape
    _, oh, ow, oc = out.shape
    kh, kw = (w.shape[1], w.shape[2])
    sh, sw = int(o.strideH), int(o.strideW)
    dh, dw = int(o.dilationHFactor or 1), int(o.dilationWFactor or 1)
    same = int(o.padding) == 0
    ph = quant.padding(same, sh, dh, ih, kh, oh)
    pw = quant.padding(same, sw, dw, iw, kw, ow)
    dm = int(o.depthMultiplier or 1) if isinstance(o, DepthwiseConvOptions) else 1
    if depthwise and oc != ic * dm:
        dm = oc // ic  # the converter may leave depthMultiplier at 0 or 1; the shapes decide
    if not depthwise and w.shape[3] != ic:
        raise _bad(g, op, "a grouped convolution")
    act_min, act_max = quant.activation_range(_act(op), out.scale, out.zero_point)
    mults, shifts = _channel_multipliers(inp, w, out, oc)
    name = f"op{op.index}"
    consts = [
        Const(f"{name}_mult", "int32_t", np.array(mults, dtype=np.int32)),
        Const(f"{name}_shift", "int32_t", np.array(shifts, dtype=np.int32)),
    ]
    wc = _weights(g, op, w_i, "int8_t")
    bc = _optional_weights(g, op, b_i, "int32_t")
    consts += [wc] if bc is None else [wc, bc]
    wsum = "0"
    if not depthwise:
        wsum = f"{name}_wsum"
        consts.append(Const(wsum, "int32_t", wc.values.reshape(oc, -1).astype(np.int32).sum(axis=1, dtype=np.int32)))
    params = (
        f"static const eq_conv_t {name}_p = {{{n}, {ih}, {iw}, {ic}, {oh}, {ow}, {oc}, {kh}, {kw}, {sh}, {sw}, "
        f"{dh}, {dw}, {ph}, {pw}, {dm}, {-inp.zero_point}, {out.zero_point}, {act_min}, {act_max}, "
        f"{name}_mult, {name}_shift, {wsum}}};"
    )
    fn = "eq_dwconv2d" if depthwise else "eq_conv2d"
    bias = bc.name if bc is not None else "0"
    stmt = f"{fn}(&{name}_p, {{t{x}}}, {wc.name}, {bias}, {{t{out_i}}});"
    return Lowered(op, stmt, tuple(consts), params, notes={"macs": out.size * kh * kw * (1 if depthwise else ic)})


def _fully_connected(g: Graph, op: Op) -> Lowered:
    x, w_i, out_i = op.inputs[0], op.inputs[1], op.outputs[0]
    b_i = op.inputs[2] if len(op.inputs) > 2 else -1
    _int8(g, op, x, w_i, out_i)
    inp, w, out = g.tensors[x], g.tensors[w_i], g.tensors[out_i]
    if len(w.shape) != 2:
        raise _bad(g, op, "non-2-D weights")
    if int(getattr(op.options, "weightsFormat", 0) or 0) != 0:
        raise _bad(g, op, "shuffled weights")
    out_depth, in_depth = w.shape
    batches = inp.size // in_depth
    per_channel = len(w.scales) > 1
    if per_channel and any(z != 0 for z in w.zero_points):  # TFLM's per-channel kernel assumes them zero
        raise _bad(g, op, "an asymmetric (non-zero zero point) per-channel filter")
    # TFLM's CalculateOpDataFullyConnected: QuantizeMultiplier(input_scale * filter_scale[c] / output_scale),
    # products in double, one multiplier per output channel when the filter is per-channel
    mults, shifts = _channel_multipliers(inp, w, out, len(w.scales))
    act_min, act_max = quant.activation_range(_act(op), out.scale, out.zero_point)
    name = f"op{op.index}"
    consts = [
        Const(f"{name}_mult", "int32_t", np.array(mults, dtype=np.int32)),
        Const(f"{name}_shift", "int32_t", np.array(shifts, dtype=np.int32)),
    ]
    wc = _weights(g, op, w_i, "int8_t")
    bc = _optional_weights(g, op, b_i, "int32_t")
    consts += [wc] if bc is None else [wc, bc]
    params = (
        f"static const eq_fc_t {name}_p = {{{batches}, {in_depth}, {out_depth}, {-inp.zero_point}, "
        f"{-w.zero_point}, {out.zero_point}, {act_min}, {act_max}, {int(per_channel)}, {name}_mult, {name}_shift}};"
    )
    bias = bc.name if bc is not None else "0"
    stmt = f"eq_fully_connected(&{name}_p, {{t{x}}}, {wc.name}, {bias}, {{t{out_i}}});"
    return Lowered(op, stmt, tuple(consts), params, notes={"macs": batches * in_depth * out_depth})


def _pool(g: Graph, op: Op, kind: str) -> Lowered:
    x, out_i = op.inputs[0], op.outputs[0]
    _int8(g, op, x, out_i)
    inp, out = g.tensors[x], g.tensors[out_i]
    if (inp.scale, inp.zero_point) != (out.scale, out.zero_point):
        raise _bad(g, op, "pooling that rescales")
    o = op.options
    if not isinstance(o, PoolOptions):
        raise _no_options(g, op)
    n, ih, iw, c = inp.shape
    _, oh, ow, _ = out.shape
    kh, kw, sh, sw = int(o.filterHeight), int(o.filterWidth), int(o.strideH), int(o.strideW)
    same = int(o.padding) == 0
    ph = quant.padding(same, sh, 1, ih, kh, oh)
    pw = quant.padding(same, sw, 1, iw, kw, ow)
    act_min, act_max = quant.activation_range(_act(op), out.scale, out.zero_point)
    name = f"op{op.index}"
    params = (
        f"static const eq_pool_t {name}_p = {{{n}, {ih}, {iw}, {c}, {oh}, {ow}, {kh}, {kw}, {sh}, {sw}, "
        f"{ph}, {pw}, {act_min}, {act_max}}};"
    )
    return Lowered(op, f"eq_{kind}_pool(&{name}_p, {{t{x}}}, {{t{out_i}}});", (), params)


def _reshape(g: Graph, op: Op) -> Lowered:
    x, out_i = op.inputs[0], op.outputs[0]
    _int8(g, op, x, out_i)
    inp, out = g.tensors[x], g.tensors[out_i]
    if (inp.scale, inp.zero_point) != (out.scale, out.zero_point) or inp.size != out.size:
        raise _bad(g, op, "a reshape that changes quantization or size")
    return Lowered(op, f"eq_copy({{t{x}}}, {{t{out_i}}}, {out.size});", alias=(x, out_i))


def _softmax(g: Graph, op: Op) -> Lowered:
    x, out_i = op.inputs[0], op.outputs[0]
    _int8(g, op, x, out_i)
    inp, out = g.tensors[x], g.tensors[out_i]
    if out.zero_point != -128 or np.float32(out.scale) != np.float32(1 / 256):
        raise _bad(g, op, "an int8 softmax whose output is not scale 1/256, zero point -128")
    if not isinstance(op.options, SoftmaxOptions):
        raise _no_options(g, op)
    mult, shift, diff_min = quant.softmax_params(float(op.options.beta), inp.scale)
    depth = inp.shape[-1]
    name = f"op{op.index}"
    params = f"static const eq_softmax_t {name}_p = {{{inp.size // depth}, {depth}, {mult}, {shift}, {diff_min}}};"
    return Lowered(op, f"eq_softmax(&{name}_p, {{t{x}}}, {{t{out_i}}});", (), params)


def _broadcast_strides(shape: tuple[int, ...], out_shape: tuple[int, ...]) -> list[int]:
    """Element strides of ``shape`` over a 4-D ``out_shape`` (0 along broadcast axes)."""
    padded = (1,) * (4 - len(shape)) + tuple(shape)
    strides, step = [0, 0, 0, 0], 1
    for axis in range(3, -1, -1):
        strides[axis] = 0 if padded[axis] == 1 and out_shape[axis] != 1 else step
        step *= padded[axis]
    return strides


def _binary(g: Graph, op: Op, kind: str) -> Lowered:
    a, b, out_i = op.inputs[0], op.inputs[1], op.outputs[0]
    _int8(g, op, a, b, out_i)
    t1, t2, out = g.tensors[a], g.tensors[b], g.tensors[out_i]
    if len(out.shape) > 4:
        raise _bad(g, op, "more than 4 dimensions")
    dims = (1,) * (4 - len(out.shape)) + tuple(out.shape)
    s1, s2 = _broadcast_strides(t1.shape, dims), _broadcast_strides(t2.shape, dims)
    act_min, act_max = quant.activation_range(_act(op), out.scale, out.zero_point)
    if kind == "add":
        left_shift = 20
        twice_max = quant.f32(2 * max(t1.scale, t2.scale))
        m1 = quant.quantize_multiplier(t1.scale / twice_max)
        m2 = quant.quantize_multiplier(t2.scale / twice_max)
        mo = quant.quantize_multiplier(twice_max / quant.f32((1 << left_shift) * out.scale))
    else:
        left_shift, m1, m2 = 0, (0, 0), (0, 0)
        mo = quant.quantize_multiplier(float(t1.scale) * float(t2.scale) / float(out.scale))
    consts: list[Const] = []
    ptrs = []
    for idx in (a, b):
        if g.tensors[idx].data is not None:
            c = _weights(g, op, idx, "int8_t")
            consts.append(c)
            ptrs.append(c.name)
        else:
            ptrs.append(f"{{t{idx}}}")
    name = f"op{op.index}"
    params = (
        f"static const eq_binary_t {name}_p = {{{{{_ints(dims)}}}, {{{_ints(s1)}}}, {{{_ints(s2)}}}, "
        f"{-t1.zero_point}, {-t2.zero_point}, {out.zero_point}, {act_min}, {act_max}, {left_shift}, "
        f"{m1[0]}, {m1[1]}, {m2[0]}, {m2[1]}, {mo[0]}, {mo[1]}}};"
    )
    return Lowered(op, f"eq_{kind}(&{name}_p, {ptrs[0]}, {ptrs[1]}, {{t{out_i}}});", tuple(consts), params)


def _dims4(shape: tuple[int, ...]) -> tuple[int, ...]:
    return (1,) * (4 - len(shape)) + tuple(shape)


def _mean(g: Graph, op: Op) -> Lowered:
    x, axis_i, out_i = op.inputs[0], op.inputs[1], op.outputs[0]
    _int8(g, op, x, out_i)
    inp, out = g.tensors[x], g.tensors[out_i]
    rank = len(inp.shape)
    if rank > 4:
        raise _bad(g, op, "more than 4 dimensions")
    raw_axes = _const_ints(g, op, axis_i, "axis")
    axes = {a % rank for a in raw_axes}
    count = int(np.prod([inp.shape[a] for a in axes]))
    mult, shift = quant.quantize_multiplier(float(inp.scale) / float(out.scale))
    # LiteRT's reference MEAN: equal quantization sums and divides; otherwise 1/count is folded into the
    # multiplier (QuantizedMeanOrSum). Its 4-D keep_dims path over H and W answers as the latter (checked
    # against BUILTIN_REF), though its source reads as a rounded division after the rescale.
    if (inp.scale, inp.zero_point) == (out.scale, out.zero_point):
        mode = 1
    else:
        mode = 2
        n_shift = min(count.bit_length() - 1, 32, 31 + shift)
        mult, shift = int((mult << n_shift) // count), shift - n_shift
    dims = _dims4(inp.shape)
    reduce = [0] * (4 - rank) + [int(a in axes) for a in range(rank)]
    name = f"op{op.index}"
    params = (
        f"static const eq_mean_t {name}_p = {{{{{_ints(dims)}}}, {{{_ints(reduce)}}}, {count}, {inp.zero_point}, "
        f"{out.zero_point}, {mult}, {shift}, {mode}}};"
    )
    return Lowered(op, f"eq_mean(&{name}_p, {{t{x}}}, {{t{out_i}}});", (), params)


def _concat(g: Graph, op: Op) -> Lowered:
    out_i = op.outputs[0]
    _int8(g, op, *op.inputs, out_i)
    out = g.tensors[out_i]
    if any((g.tensors[i].scale, g.tensors[i].zero_point) != (out.scale, out.zero_point) for i in op.inputs):
        raise _bad(g, op, "a concatenation of differently quantized inputs")
    if _act(op) != quant.ACT_NONE:
        raise _bad(g, op, "a fused activation on CONCATENATION")
    if not isinstance(op.options, ConcatOptions):
        raise _no_options(g, op)
    axis = int(op.options.axis) % len(out.shape)
    outer = int(np.prod(out.shape[:axis]))
    inner = [int(np.prod(g.tensors[i].shape[axis:])) for i in op.inputs]
    name = f"op{op.index}"
    consts = [Const(f"{name}_inner", "int32_t", np.array(inner, dtype=np.int32))]
    ptrs = []
    for i in op.inputs:
        if g.tensors[i].data is not None:
            c = _weights(g, op, i, "int8_t")
            consts.append(c)
            ptrs.append(c.name)
        else:
            ptrs.append(f"{{t{i}}}")
    stmt = (
        f"{{ const int8_t* const ins[{len(ptrs)}] = {{{', '.join(ptrs)}}}; "
        f"eq_concat({outer}, {len(ptrs)}, ins, {name}_inner, {{t{out_i}}}); }}"
    )
    return Lowered(op, stmt, tuple(consts))


def _pad(g: Graph, op: Op) -> Lowered:
    x, pads_i, out_i = op.inputs[0], op.inputs[1], op.outputs[0]
    _int8(g, op, x, out_i)
    inp, out = g.tensors[x], g.tensors[out_i]
    if len(inp.shape) > 4:
        raise _bad(g, op, "more than 4 dimensions")
    pads = _const_ints(g, op, pads_i, "paddings")
    before = [0] * (4 - len(inp.shape)) + pads[0::2]
    value = out.zero_point
    if len(op.inputs) > 2 and op.inputs[2] >= 0:
        value = _const_ints(g, op, op.inputs[2], "pad value")[0]
    name = f"op{op.index}"
    params = (
        f"static const eq_pad_t {name}_p = {{{{{_ints(_dims4(inp.shape))}}}, {{{_ints(_dims4(out.shape))}}}, "
        f"{{{_ints(before)}}}, {value}}};"
    )
    return Lowered(op, f"eq_pad(&{name}_p, {{t{x}}}, {{t{out_i}}});", (), params)


def _unary(g: Graph, op: Op) -> Lowered:
    x, out_i = op.inputs[0], op.outputs[0]
    _int8(g, op, x, out_i)  # float <-> int8 conversions live at the model's edges, which are int8 here
    return _unary_table(g, op)


def _unary_table(g: Graph, op: Op) -> Lowered:
    x, out_i = op.inputs[0], op.outputs[0]
    name = f"op{op.index}"
    # a table of 256 entries, indexed by the input's bits (uint8), in the order -128..127 rotated to 0..255
    table = np.roll(lut.unary_table(g.source, op.index), -128)
    stmt = f"eq_lut({name}_lut, {{t{x}}}, {{t{out_i}}}, {g.tensors[x].size});"
    return Lowered(op, stmt, (Const(f"{name}_lut", "int8_t", table),))


def _c_float(x: float) -> str:
    # repr() of the float32 value held in a double is its shortest round-trip form: the C compiler reads
    # back exactly that value
    return repr(float(np.float32(x)))


def _quantize(g: Graph, op: Op) -> Lowered:
    """QUANTIZE: int8 -> int8 is a requantizing table; float32 -> int8 (a model's float input) is
    reference_ops::AffineQuantize."""
    x, out_i = op.inputs[0], op.outputs[0]
    if g.tensors[x].dtype == "int8" and g.tensors[out_i].dtype == "uint8" and out_i in g.outputs:
        _int8(g, op, x)  # a model's uint8 output: the table holds the uint8 bits, stored as int8
        return _unary_table(g, op)
    if g.tensors[x].dtype != "float32":
        return _unary(g, op)
    _int8(g, op, out_i)
    t = g.tensors[out_i]
    stmt = (
        f"eq_quantize_f32((const float*){{t{x}}}, {{t{out_i}}}, {t.size}, (float){_c_float(t.scale)}, {t.zero_point});"
    )
    return Lowered(op, stmt)


def _dequantize(g: Graph, op: Op) -> Lowered:
    """DEQUANTIZE int8 -> float32 (a model's float output): reference_ops::Dequantize."""
    x, out_i = op.inputs[0], op.outputs[0]
    t = g.tensors[x]
    if t.data is not None:
        raise _bad(g, op, f"a DEQUANTIZE of constant {t.dtype} weights")
    _int8(g, op, x)
    if g.tensors[out_i].dtype != "float32":
        raise _bad(g, op, f"a DEQUANTIZE to {g.tensors[out_i].dtype}")
    stmt = f"eq_dequantize_f32({{t{x}}}, (float*){{t{out_i}}}, {t.size}, {_c_float(t.scale)}, {t.zero_point});"
    return Lowered(op, stmt)


def _float_edge(g: Graph, op: Op, t: int) -> bool:
    """A float tensor the runtime takes: the model's float input read by QUANTIZE, or its float output
    written by DEQUANTIZE."""
    if op.name == "QUANTIZE":
        return t == op.inputs[0] and t in g.inputs
    if op.name == "DEQUANTIZE":
        return t == op.outputs[0] and t in g.outputs
    return False


LOWERINGS: dict[str, Callable[[Graph, Op], Lowered]] = {
    "CONV_2D": lambda g, op: _conv(g, op, depthwise=False),
    "DEPTHWISE_CONV_2D": lambda g, op: _conv(g, op, depthwise=True),
    "FULLY_CONNECTED": _fully_connected,
    "MAX_POOL_2D": lambda g, op: _pool(g, op, "max"),
    "AVERAGE_POOL_2D": lambda g, op: _pool(g, op, "avg"),
    "RESHAPE": _reshape,
    "SOFTMAX": _softmax,
    "ADD": lambda g, op: _binary(g, op, "add"),
    "MUL": lambda g, op: _binary(g, op, "mul"),
    "MEAN": _mean,
    "CONCATENATION": _concat,
    "PAD": _pad,
    "PADV2": _pad,
    **{name: _unary for name in lut.UNARY_OPS},
    "QUANTIZE": _quantize,
    "DEQUANTIZE": _dequantize,
}
# streaming models: resource variables, STRIDED_SLICE, SPLIT_V

LOWERINGS.update(_stream.LOWERINGS)
SUPPORTED_OPS = tuple(LOWERINGS)


def lower(g: Graph, origin: str = "model") -> list[Lowered]:
    """Every op of ``g`` lowered, in execution order.

    Raises:
        UnsupportedOp: ops outside :data:`SUPPORTED_OPS` (all of them named).
        BadInput: a supported op with a variant the runtime does not implement; a declared shape its op
            does not imply, or a tensor over :data:`shapes.MAX_TENSOR_BYTES` (a corrupt or edited model).
    """
    missing: dict[str, list[int]] = {}
    floats: dict[str, list[int]] = {}
    for op in g.ops:
        if op.name not in LOWERINGS:
            missing.setdefault(op.name, []).append(op.index)
        activations = [
            g.tensors[i]
            for i in op.inputs + op.outputs
            if i >= 0 and g.tensors[i].data is None and not _float_edge(g, op, i)
        ]
        if any(t.dtype.startswith("float") for t in activations):
            floats.setdefault(op.name, []).append(op.index)
    if missing:
        listed = ", ".join(f"{name} (x{len(idx)}, first op #{idx[0]})" for name, idx in missing.items())
        raise UnsupportedOp(
            f"the generated C runtime has no kernel for {len(missing)} op(s) of {origin}: {listed}",
            f"compile with --runtime tflm (the C runtime implements {', '.join(SUPPORTED_OPS)})",
            details={
                "unsupported_ops": [{"op": k, "indices": v} for k, v in missing.items()],
                "float_ops": [{"op": k, "indices": v} for k, v in floats.items()],
            },
        )
    if floats:
        listed = ", ".join(f"{name} (x{len(idx)})" for name, idx in floats.items())
        raise BadInput(
            f"{origin} computes in float ({listed}); the generated C runtime runs int8 models",
            "quantize first (edgeq quantize MODEL --mode int8 --io int8), or compile with --runtime tflm",
        )
    shapes.check(g, origin)  # a hand-edited shape is refused before any kernel parameter is computed from it
    return [LOWERINGS[op.name](g, op) for op in g.ops]
