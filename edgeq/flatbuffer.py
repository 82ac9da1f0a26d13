"""Reading .tflite flatbuffers: tensors, ops, quantization parameters, float islands, MACs.

Uses the schema module that ships with LiteRT (``ai_edge_litert.schema_py_generated``) and
LiteRT's own C++ flatbuffer verifier, so nothing here imports TensorFlow.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np

from edgeq.errors import BadInput

TFLITE_IDENTIFIER = b"TFL3"
FLOAT_TYPES = ("float32", "float16", "float64", "bfloat16")
INT_ACTIVATION_TYPES = ("int8", "uint8", "int16")
CONVERSION_OPS = ("QUANTIZE", "DEQUANTIZE")


@cache
def _schema():
    from ai_edge_litert import schema_py_generated

    return schema_py_generated


@cache
def _enum_names(enum_name: str) -> dict[int, str]:
    enum_cls = getattr(_schema(), enum_name)
    return {v: k for k, v in vars(enum_cls).items() if not k.startswith("_") and isinstance(v, int)}


@dataclass(frozen=True)
class TensorInfo:
    index: int
    name: str
    shape: tuple[int, ...]
    shape_signature: tuple[int, ...]
    dtype: str
    scales: tuple[float, ...]
    zero_points: tuple[int, ...]
    quantized_dimension: int
    is_constant: bool

    @property
    def num_elements(self) -> int:
        return int(np.prod([max(d, 1) for d in self.shape])) if self.shape else 1

    @property
    def is_dynamic(self) -> bool:
        return any(d < 0 for d in self.shape_signature)

    def to_dict(self) -> dict:
        per_tensor = len(self.scales) == 1
        return {
            "name": self.name,
            "dtype": self.dtype,
            "shape": list(self.shape),
            "shape_signature": list(self.shape_signature),
            "scale": self.scales[0] if per_tensor else (list(self.scales) or None),
            "zero_point": self.zero_points[0] if per_tensor else (list(self.zero_points) or None),
        }


@dataclass(frozen=True)
class OpInfo:
    index: int
    name: str
    is_custom: bool
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    compute: str  # float | hybrid | int8 | int16 | conversion | other
    macs: int

    @property
    def is_float(self) -> bool:
        return self.compute in ("float", "hybrid")

    def to_dict(self) -> dict:
        return {
            "index": self.index,
            "op": self.name,
            "custom": self.is_custom,
            "compute": self.compute,
            "macs": self.macs,
        }


@dataclass(frozen=True)
class ModelInfo:
    """What a .tflite holds, read back from its bytes (main subgraph)."""

    size_bytes: int
    num_subgraphs: int
    tensors: tuple[TensorInfo, ...]
    ops: tuple[OpInfo, ...]
    inputs: tuple[TensorInfo, ...]
    outputs: tuple[TensorInfo, ...]
    description: str = ""
    num_parameters: int = 0
    weight_dtypes: dict = field(default_factory=dict)

    @property
    def macs(self) -> int:
        return sum(op.macs for op in self.ops)

    @property
    def float_ops(self) -> list[str]:
        return [op.name for op in self.ops if op.is_float]

    @property
    def custom_ops(self) -> list[str]:
        return sorted({op.name for op in self.ops if op.is_custom})

    def op_histogram(self) -> dict[str, int]:
        return dict(collections.Counter(op.name for op in self.ops).most_common())

    def compute_histogram(self) -> dict[str, int]:
        return dict(collections.Counter(op.compute for op in self.ops).most_common())


def verify_bytes(data: bytes, origin: str):
    """Validate the model's tables in Python (:mod:`edgeq.tflite_check`), then run LiteRT's flatbuffer
    verifier; the C++ side reads the bytes only after the Python checks pass.

    Returns:
        The parsed model (LiteRT's generated ``ModelT``).

    Raises:
        BadInput: not a TFLite model, truncated, or internally inconsistent (names the first problem).
    """
    from edgeq.tflite_check import validate

    model = validate(data, origin)
    from ai_edge_litert.interpreter import Interpreter

    try:
        Interpreter(model_content=data)
    except ValueError as exc:
        raise BadInput(
            f"{origin} is truncated or corrupt ({exc})", "re-export or re-download the .tflite file"
        ) from exc
    return model


def read_bytes(data: bytes, origin: str = "model") -> ModelInfo:
    """Parse a verified .tflite flatbuffer into a :class:`ModelInfo`.

    Raises:
        BadInput: the bytes are not a valid TFLite model.
    """
    model = verify_bytes(data, origin)
    schema = _schema()
    if not model.subgraphs:
        raise BadInput(f"{origin} has no subgraph", "re-export the .tflite file")
    type_names = _enum_names("TensorType")
    op_names = _enum_names("BuiltinOperator")
    graph = model.subgraphs[0]
    buffers = model.buffers or []

    def has_data(buffer_index: int) -> bool:
        if buffer_index <= 0 or buffer_index >= len(buffers):
            return False
        buf = buffers[buffer_index]
        return (buf.data is not None and len(buf.data) > 0) or (buf.offset or 0) > 1

    tensors = []
    for i, t in enumerate(graph.tensors or []):
        q = t.quantization
        scales = tuple(float(s) for s in (q.scale if q is not None and q.scale is not None else ()))
        zps = tuple(int(z) for z in (q.zeroPoint if q is not None and q.zeroPoint is not None else ()))
        shape = tuple(int(d) for d in (t.shape if t.shape is not None else ()))
        sig = tuple(int(d) for d in t.shapeSignature) if t.shapeSignature is not None else shape
        tensors.append(
            TensorInfo(
                index=i,
                name=(t.name or b"").decode(errors="replace"),
                shape=shape,
                shape_signature=sig,
                dtype=type_names.get(t.type, f"type{t.type}").lower(),
                scales=scales,
                zero_points=zps,
                quantized_dimension=int(q.quantizedDimension or 0) if q is not None else 0,
                is_constant=has_data(t.buffer),
            )
        )
    tensors_t = tuple(tensors)

    ops = []
    for i, op in enumerate(graph.operators or []):
        code = model.operatorCodes[op.opcodeIndex]
        builtin = max(int(code.builtinCode or 0), int(code.deprecatedBuiltinCode or 0))
        is_custom = builtin == schema.BuiltinOperator.CUSTOM
        name = (
            (code.customCode or b"?").decode(errors="replace") if is_custom else op_names.get(builtin, f"OP{builtin}")
        )
        ins = tuple(int(x) for x in (op.inputs if op.inputs is not None else ()))
        outs = tuple(int(x) for x in (op.outputs if op.outputs is not None else ()))
        ops.append(
            OpInfo(
                index=i,
                name=name,
                is_custom=is_custom,
                inputs=ins,
                outputs=outs,
                compute=_compute_kind(name, ins, outs, tensors_t),
                macs=_macs(name, ins, outs, tensors_t),
            )
        )

    constants = [t for t in tensors_t if t.is_constant]
    weight_dtypes = dict(collections.Counter(t.dtype for t in constants))
    return ModelInfo(
        size_bytes=len(data),
        num_subgraphs=len(model.subgraphs),
        tensors=tensors_t,
        ops=tuple(ops),
        inputs=tuple(tensors_t[i] for i in (graph.inputs if graph.inputs is not None else ())),
        outputs=tuple(tensors_t[i] for i in (graph.outputs if graph.outputs is not None else ())),
        description=(model.description or b"").decode(errors="replace"),
        num_parameters=sum(t.num_elements for t in constants),
        weight_dtypes=weight_dtypes,
    )


def read_model_bytes(path: str | Path) -> bytes:
    """The bytes of a .tflite file, with clear errors for a missing file or a folder."""
    p = Path(path)
    try:
        return p.read_bytes()
    except FileNotFoundError as exc:
        raise BadInput(f"model file not found: {p}", "check the path") from exc
    except IsADirectoryError as exc:
        raise BadInput(f"{p} is a directory, not a .tflite file", "pass a .tflite file") from exc


def read_file(path: str | Path) -> ModelInfo:
    return read_bytes(read_model_bytes(path), origin=str(path))


def _compute_kind(name: str, ins: tuple[int, ...], outs: tuple[int, ...], tensors) -> str:
    """What arithmetic an op does, judged by the dtypes of its non-constant tensors.

    An op whose activations are float computes in float even when its weights are int8
    ("hybrid", as in dynamic-range models).
    """
    used = [tensors[i] for i in ins + outs if i >= 0]
    activations = {t.dtype for t in used if not t.is_constant}
    weights = {t.dtype for t in used if t.is_constant}
    if name in CONVERSION_OPS and {t.dtype for t in used} & set(FLOAT_TYPES):
        return "conversion"  # float <-> integer at the model's edges (or fp16 weights)
    # an integer-to-integer QUANTIZE is a requantization, integer arithmetic like any other op
    if activations & set(FLOAT_TYPES):
        return "hybrid" if weights & {"int8", "uint8", "int4"} else "float"
    if "int16" in activations:
        return "int16"
    if activations & {"int8", "uint8"}:
        return "int8"
    if not activations and weights & set(FLOAT_TYPES):
        return "float"
    return "other"


def _macs(name: str, ins: tuple[int, ...], outs: tuple[int, ...], tensors) -> int:
    """Multiply-accumulates of the ops that dominate compute; element-wise ops count 0."""
    if not outs or len(ins) < 2 or ins[1] < 0:
        return 0
    out_elems = tensors[outs[0]].num_elements
    w = tensors[ins[1]].shape
    if name == "CONV_2D" and len(w) == 4:
        return out_elems * w[1] * w[2] * w[3]
    if name == "DEPTHWISE_CONV_2D" and len(w) == 4:
        return out_elems * w[1] * w[2]
    if name == "FULLY_CONNECTED" and len(w) == 2:
        return out_elems * w[1]
    if name == "TRANSPOSE_CONV" and len(ins) >= 3:
        wt = tensors[ins[1]].shape
        return tensors[ins[2]].num_elements * wt[0] * wt[1] * wt[2] if len(wt) == 4 else 0
    if name == "BATCH_MATMUL":
        a = tensors[ins[0]].shape
        return out_elems * a[-1] if a else 0
    return 0
