"""Tiny .tflite graphs written op by op with LiteRT's own schema, for rules the converter rarely emits.

These are not run (only read, like the pre-flight reads a file); the TFLite converter makes the models
of the end-to-end tests.
"""

from __future__ import annotations

import flatbuffers
import numpy as np
from ai_edge_litert import schema_py_generated as s

DTYPES = {"int8": s.TensorType.INT8, "uint8": s.TensorType.UINT8, "int32": s.TensorType.INT32}
DTYPES |= {"float32": s.TensorType.FLOAT32, "int16": s.TensorType.INT16}
OPTIONS = {
    "CONV_2D": "Conv2DOptions",
    "DEPTHWISE_CONV_2D": "DepthwiseConv2DOptions",
    "FULLY_CONNECTED": "FullyConnectedOptions",
    "MAX_POOL_2D": "Pool2DOptions",
    "AVERAGE_POOL_2D": "Pool2DOptions",
    "CONCATENATION": "ConcatenationOptions",
    "STRIDED_SLICE": "StridedSliceOptions",
    "PACK": "PackOptions",
    "SQUEEZE": "SqueezeOptions",
    "MEAN": "ReducerOptions",
    "SUM": "ReducerOptions",
    "SOFTMAX": "SoftmaxOptions",
    "RESHAPE": "ReshapeOptions",
}


class Graph:
    def __init__(self) -> None:
        self.tensors: list = []
        self.buffers: list = [s.BufferT()]
        self.ops: list = []
        self.codes: list[tuple[int, int]] = []

    def tensor(self, shape, dtype="int8", data=None, name=None, signature=None) -> int:
        t = s.TensorT()
        t.shape = list(shape)
        if signature is not None:
            t.shapeSignature = list(signature)
        t.type = DTYPES[dtype]
        t.name = (name or f"t{len(self.tensors)}").encode()
        if dtype in ("int8", "uint8", "int16"):
            q = s.QuantizationParametersT()
            q.scale, q.zeroPoint = [0.05], [0]
            t.quantization = q
        buf = s.BufferT()
        if data is not None:
            buf.data = np.frombuffer(np.asarray(data, dtype=dtype).tobytes(), dtype=np.uint8)
        self.buffers.append(buf)
        t.buffer = len(self.buffers) - 1
        self.tensors.append(t)
        return len(self.tensors) - 1

    def const(self, values, dtype="int32") -> int:
        arr = np.asarray(values, dtype=dtype)
        return self.tensor(arr.shape, dtype, arr)

    def op(self, name: str, inputs, outputs, version: int = 1, **options) -> None:
        code = (getattr(s.BuiltinOperator, name), version)
        if code not in self.codes:
            self.codes.append(code)
        o = s.OperatorT()
        o.opcodeIndex = self.codes.index(code)
        o.inputs, o.outputs = list(inputs), list(outputs)
        if name in OPTIONS:
            kind = OPTIONS[name]
            opts = getattr(s, kind + "T")()
            for k, v in options.items():
                setattr(opts, k, v)
            o.builtinOptionsType = getattr(s.BuiltinOptions, kind)
            o.builtinOptions = opts
        self.ops.append(o)

    def bytes(self, inputs, outputs) -> bytes:
        g = s.SubGraphT()
        g.tensors, g.operators = self.tensors, self.ops
        g.inputs, g.outputs = list(inputs), list(outputs)
        m = s.ModelT()
        m.version = 3
        m.subgraphs = [g]
        m.buffers = self.buffers
        m.operatorCodes = []
        for builtin, version in self.codes:
            c = s.OperatorCodeT()
            c.builtinCode, c.deprecatedBuiltinCode, c.version = builtin, min(builtin, 127), version
            m.operatorCodes.append(c)
        b = flatbuffers.Builder(1024)
        b.Finish(m.Pack(b), file_identifier=b"TFL3")
        return bytes(b.Output())

    def save(self, path, inputs, outputs) -> str:
        with open(path, "wb") as f:
            f.write(self.bytes(inputs, outputs))
        return str(path)


def chain(path, middle: str, in_shape=(1, 8, 8, 4), out_shape=None, extra_inputs=(), **options) -> str:
    """input -> CONV_2D -> ``middle`` -> CONV_2D -> output: a supported op on each side of the op under test."""
    g = Graph()
    x = g.tensor(in_shape, name="input")
    c = in_shape[-1]
    w = g.const(np.ones((c, 1, 1, c)), "int8")
    b = g.const(np.zeros(c), "int32")
    h = g.tensor(in_shape)
    g.op("CONV_2D", [x, w, b], [h], strideW=1, strideH=1)
    extras = [g.const(v, dt) if not isinstance(v, int) else v for v, dt in extra_inputs]
    m = g.tensor(out_shape or in_shape)
    g.op(middle, [h, *extras], [m], **options)
    oc = (out_shape or in_shape)[-1]
    w2 = g.const(np.ones((oc, 1, 1, oc)), "int8")
    b2 = g.const(np.zeros(oc), "int32")
    y = g.tensor(out_shape or in_shape, name="output") if len(out_shape or in_shape) == 4 else None
    if y is None:
        return g.save(path, [x], [m])
    g.op("CONV_2D", [m, w2, b2], [y], strideW=1, strideH=1)
    return g.save(path, [x], [y])
