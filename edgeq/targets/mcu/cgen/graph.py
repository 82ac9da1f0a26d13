"""The int8 .tflite as the C generator needs it: tensors with their constant data, ops with builtin options.

``edgeq.flatbuffer`` reads what a model holds for checks; this module also keeps the weight bytes and each
op's options object (strides, padding, fused activation, beta), which only code generation needs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from edgeq.errors import BadInput
from edgeq.flatbuffer import _enum_names, _schema, verify_bytes

_NUMPY = {
    "int8": np.int8,
    "uint8": np.uint8,
    "int16": np.int16,
    "int32": np.int32,
    "int64": np.int64,
    "float32": np.float32,
    "float16": np.float16,
}


@dataclass(frozen=True)
class Tensor:
    index: int
    name: str
    shape: tuple[int, ...]
    dtype: str
    scales: tuple[float, ...]
    zero_points: tuple[int, ...]
    data: np.ndarray | None  # constant data, None for activations

    @property
    def size(self) -> int:
        return math.prod(self.shape)  # Python ints: a hand-edited shape cannot wrap around to a small size

    @property
    def scale(self) -> float:
        return self.scales[0] if self.scales else 0.0

    @property
    def zero_point(self) -> int:
        return self.zero_points[0] if self.zero_points else 0

    @property
    def itemsize(self) -> int:
        return np.dtype(_NUMPY.get(self.dtype, np.int8)).itemsize

    @property
    def nbytes(self) -> int:
        return self.size * self.itemsize


@dataclass(frozen=True)
class Op:
    index: int
    name: str
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    options: object  # the schema's options object (e.g. Conv2DOptionsT) or None


@dataclass(frozen=True)
class Graph:
    tensors: tuple[Tensor, ...]
    ops: tuple[Op, ...]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    source: bytes = b""  # the .tflite itself, for ops tabulated by running LiteRT (lut.py)


def read(data: bytes, origin: str = "model") -> Graph:
    """Parse the main subgraph of a verified .tflite into a :class:`Graph`.

    Raises:
        BadInput: not a TFLite model.
    """
    verify_bytes(data, origin)
    schema = _schema()
    model = schema.ModelT.InitFromPackedBuf(data, 0)
    if not model.subgraphs:
        raise BadInput(f"{origin} has no subgraph", "re-export the .tflite file")
    # other subgraphs are reached only through ops (WHILE, IF, CALL_ONCE), which lowering refuses by name
    type_names = _enum_names("TensorType")
    op_names = _enum_names("BuiltinOperator")
    graph = model.subgraphs[0]
    buffers = model.buffers or []
    tensors = []
    for i, t in enumerate(graph.tensors or []):
        q = t.quantization
        dtype = type_names.get(t.type, f"type{t.type}").lower()
        shape = tuple(int(d) for d in (t.shape if t.shape is not None else ()))
        arr = None
        buf = buffers[t.buffer] if 0 < t.buffer < len(buffers) else None
        if buf is not None and (buf.offset or 0) > 1:
            raw = data[buf.offset : buf.offset + buf.size]
        elif buf is not None and buf.data is not None and len(buf.data) > 0:
            raw = bytes(np.asarray(buf.data, dtype=np.uint8))
        else:
            raw = None
        if raw is not None:
            # an exotic constant type (int4, string...) stays raw bytes: no kernel here reads it
            arr = np.frombuffer(raw, dtype=_NUMPY.get(dtype, np.uint8))
            if dtype in _NUMPY:
                if arr.size != math.prod(shape):
                    raise BadInput(
                        f"{origin}: constant tensor {i} declares {list(shape)} but holds {arr.size} values",
                        "the model is corrupt or hand-edited: re-export the .tflite with the TFLite converter",
                    )
                arr = arr.reshape(shape if shape else ())
        tensors.append(
            Tensor(
                index=i,
                name=(t.name or b"").decode(errors="replace"),
                shape=shape,
                dtype=dtype,
                scales=tuple(float(s) for s in (q.scale if q is not None and q.scale is not None else ())),
                zero_points=tuple(int(z) for z in (q.zeroPoint if q is not None and q.zeroPoint is not None else ())),
                data=arr,
            )
        )
    ops = []
    for i, op in enumerate(graph.operators or []):
        code = model.operatorCodes[op.opcodeIndex]
        builtin = max(int(code.builtinCode or 0), int(code.deprecatedBuiltinCode or 0))
        if builtin == schema.BuiltinOperator.CUSTOM:
            name = "CUSTOM:" + (code.customCode or b"?").decode(errors="replace")
        else:
            name = op_names.get(builtin, f"OP{builtin}")
        ops.append(
            Op(
                index=i,
                name=name,
                inputs=tuple(int(x) for x in (op.inputs if op.inputs is not None else ())),
                outputs=tuple(int(x) for x in (op.outputs if op.outputs is not None else ())),
                options=op.builtinOptions,
            )
        )
    return Graph(
        tensors=tuple(tensors),
        ops=tuple(ops),
        inputs=tuple(int(x) for x in graph.inputs),
        outputs=tuple(int(x) for x in graph.outputs),
        source=data,
    )
