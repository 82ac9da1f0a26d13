"""The int8 .tflite as the C generator needs it: tensors with their constant data, ops with builtin options.

:mod:`edgeq.tflite` parses the model (once, checked) and gives its typed facts; this module adds the weight
values as arrays and each op's options object (strides, padding, fused activation, beta), which only code
generation needs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from edgeq import tflite
from edgeq.errors import BadInput

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
    """The main subgraph of a checked .tflite (:func:`edgeq.tflite.parse`) as a :class:`Graph`.

    Raises:
        BadInput: not a TFLite model, or a constant whose data does not match its shape.
    """
    model = tflite.parse(data, origin)
    # other subgraphs are reached only through ops (WHILE, IF, CALL_ONCE), which lowering refuses by name
    tensors = []
    for t in model.info.tensors:
        i, dtype, shape = t.index, t.dtype, t.shape
        arr = None
        raw = model.constant_bytes(i)
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
            Tensor(index=i, name=t.name, shape=shape, dtype=dtype, scales=t.scales, zero_points=t.zero_points, data=arr)
        )
    ops = [
        Op(
            index=op.index,
            name="CUSTOM:" + op.name if op.is_custom else op.name,
            inputs=op.inputs,
            outputs=op.outputs,
            options=model.options(op.index),
        )
        for op in model.info.ops
    ]
    return Graph(
        tensors=tuple(tensors),
        ops=tuple(ops),
        inputs=tuple(t.index for t in model.info.inputs),
        outputs=tuple(t.index for t in model.info.outputs),
        source=data,
    )
