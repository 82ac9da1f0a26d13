"""The int8 .tflite as the C generator needs it: tensors with their constant data, ops with builtin options.

:mod:`edgeq.tflite` parses the model (once, checked) and gives its typed facts; this module adds the weight
values as arrays and each op's options object (strides, padding, fused activation, beta), which only code
generation needs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

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
class Variable:
    """A resource variable (VAR_HANDLE's shared name, which stays here: the C names it by index) with the
    value CALL_ONCE's init subgraph assigns it, or None when no init subgraph assigns it a constant."""

    index: int
    shared_name: bytes
    init: np.ndarray | None


@dataclass(frozen=True)
class Graph:
    tensors: tuple[Tensor, ...]
    ops: tuple[Op, ...]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    source: bytes = b""  # the .tflite itself, for ops tabulated by running LiteRT (lut.py)
    variables: tuple[Variable, ...] = ()
    handles: dict[int, int] = field(default_factory=dict)  # VAR_HANDLE output tensor -> variable index


def _variables(model: tflite.Model, ops: list[Op], origin: str) -> tuple[tuple[Variable, ...], dict[int, int]]:
    """The main subgraph's resource variables, numbered in first-use order, with their CALL_ONCE values.

    Raises:
        BadInput: an init subgraph that is missing or does more than assign constants to variables.
    """
    names: dict[bytes, int] = {}
    handles: dict[int, int] = {}
    for op in ops:
        if op.name == "VAR_HANDLE" and len(op.outputs) == 1:
            key = bytes(getattr(op.options, "sharedName", None) or b"")
            handles[op.outputs[0]] = names.setdefault(key, len(names))
    inits: dict[bytes, np.ndarray | None] = {}
    for op in ops:
        if op.name != "CALL_ONCE":
            continue
        sub = int(getattr(op.options, "initSubgraphIndex", -1))
        try:
            assigns, others = model.variable_inits(sub)
        except IndexError:
            raise BadInput(
                f"{origin}: op #{op.index} CALL_ONCE names init subgraph {sub}, which is not in the model",
                "the model is corrupt or hand-edited: re-export the .tflite with the TFLite converter",
            ) from None
        if others or sub == 0:
            raise BadInput(
                f"{origin}: the init subgraph of op #{op.index} CALL_ONCE runs {len(others)} op(s) other than "
                "VAR_HANDLE and ASSIGN_VARIABLE; the generated C runtime takes init subgraphs that assign constants",
                "compile with --runtime tflm",
            )
        for key, dtype, shape, raw in assigns:
            arr = None
            if raw is not None and dtype in _NUMPY and len(raw) == math.prod(shape) * np.dtype(_NUMPY[dtype]).itemsize:
                arr = np.frombuffer(raw, dtype=_NUMPY[dtype]).reshape(-1)
            inits[key] = arr
    variables = tuple(Variable(i, key, inits.get(key)) for key, i in names.items())
    return variables, handles


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
    variables, handles = _variables(model, ops, origin)
    return Graph(
        tensors=tuple(tensors),
        ops=tuple(ops),
        inputs=tuple(t.index for t in model.info.inputs),
        outputs=tuple(t.index for t in model.info.outputs),
        source=data,
        variables=variables,
        handles=handles,
    )
