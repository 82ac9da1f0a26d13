"""Reading .tflite flatbuffers once: tensors, ops, quantization parameters, float islands, MACs.

:func:`parse` (bytes) and :func:`load` (a file) check a model with :mod:`edgeq.tflite.check` (bounded work
on hostile files, the activation budget) and LiteRT's own C++ flatbuffer verifier, then keep the result:
a :class:`Model` whose typed facts (:class:`ModelInfo`) and readers (builtin options, constant bytes, op
versions, every subgraph's op names, signatures, metadata) the rest of edgeq asks instead of reading the
flatbuffer again. A model is parsed once per content (cached by its SHA-256; a file by path, size and
mtime), so a command that reads the same model in five places pays for one parse.

Uses the schema module that ships with LiteRT through :mod:`edgeq.tflite._schema`, so nothing here
imports TensorFlow.
"""

from __future__ import annotations

import collections
import hashlib
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgeq.errors import BadInput
from edgeq.tflite import check
from edgeq.tflite._schema import TFLITE_IDENTIFIER, builtin_code, code_name, enum_names, schema

FLOAT_TYPES = ("float32", "float16", "float64", "bfloat16")
INT_ACTIVATION_TYPES = ("int8", "uint8", "int16")
CONVERSION_OPS = ("QUANTIZE", "DEQUANTIZE")


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


@dataclass(frozen=True)
class Signature:
    """A signature of the model: its key, subgraph, and input and output names (as the signature names them)."""

    key: str
    subgraph: int
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]


@dataclass(frozen=True)
class Model:
    """One checked .tflite: its bytes, its typed facts, and readers for what the facts do not carry.

    The object tree behind it is shared by every caller of :func:`parse` for the same bytes: what the
    readers return (options objects) is read-only. An edit unpacks its own copy (:mod:`edgeq.tflite.edit`).
    """

    data: bytes
    origin: str
    info: ModelInfo
    _tree: Any = field(repr=False, compare=False)  # the schema's ModelT: read-only, private to edgeq.tflite

    def _op(self, op_index: int) -> Any:
        return self._tree.subgraphs[0].operators[op_index]

    def options(self, op_index: int) -> Any:
        """The builtin options object of op ``op_index`` of the main subgraph (strides, padding, fused
        activation, beta...: the schema's ``*OptionsT``), or None."""
        return self._op(op_index).builtinOptions

    def op_version(self, op_index: int) -> int:
        """The kernel version the converter wrote for op ``op_index`` of the main subgraph."""
        return int(self._tree.operatorCodes[self._op(op_index).opcodeIndex].version or 1)

    def constant_bytes(self, tensor_index: int) -> bytes | None:
        """The constant data of tensor ``tensor_index`` of the main subgraph (inline or in an external
        buffer inside the file), or None for an activation."""
        return self._tensor_bytes(self._tree.subgraphs[0].tensors[tensor_index])

    def variable_inits(
        self, subgraph_index: int
    ) -> tuple[list[tuple[bytes, str, tuple[int, ...], bytes | None]], list[str]]:
        """What an init subgraph (CALL_ONCE's) assigns: for each ASSIGN_VARIABLE of a VAR_HANDLE, (the
        variable's shared name, the value's type, shape and constant bytes or None), and the names of its
        other ops (neither VAR_HANDLE nor ASSIGN_VARIABLE). Raises IndexError for a subgraph that is not there."""
        if not 0 <= subgraph_index < len(self._tree.subgraphs or []):
            raise IndexError(subgraph_index)
        g = self._tree.subgraphs[subgraph_index]
        codes = self._tree.operatorCodes or []
        types = enum_names("TensorType")
        handles: dict[int, bytes] = {}
        assigns, others = [], []
        for op in g.operators or []:
            name = code_name(codes[op.opcodeIndex])
            ins, outs = (
                list(op.inputs if op.inputs is not None else []),
                list(op.outputs if op.outputs is not None else []),
            )
            if name == "VAR_HANDLE" and len(outs) == 1:
                handles[int(outs[0])] = bytes(getattr(op.builtinOptions, "sharedName", None) or b"")
            elif name == "ASSIGN_VARIABLE" and len(ins) == 2 and int(ins[0]) in handles:
                t = g.tensors[int(ins[1])]
                shape = tuple(int(d) for d in (t.shape if t.shape is not None else ()))
                assigns.append((handles[int(ins[0])], types.get(t.type, "?").lower(), shape, self._tensor_bytes(t)))
            else:
                others.append(name)
        return assigns, others

    def _tensor_bytes(self, t: Any) -> bytes | None:
        """Tensor ``t``'s constant data (inline, or in an external buffer inside the file), or None."""
        buffers = self._tree.buffers or []
        buf = buffers[t.buffer] if 0 < t.buffer < len(buffers) else None
        if buf is None:
            return None
        if (buf.offset or 0) > 1:
            return self.data[buf.offset : buf.offset + buf.size]
        if buf.data is not None and len(buf.data) > 0:
            return bytes(np.asarray(buf.data, dtype=np.uint8))
        return None

    def op_names(self) -> list[str]:
        """Every op the model uses, in first-use order over all subgraphs (control flow bodies included)."""
        codes = self._tree.operatorCodes or []
        seen: dict[str, None] = {}
        for g in self._tree.subgraphs or []:
            for op in g.operators or []:
                seen.setdefault(code_name(codes[op.opcodeIndex]))
        return list(seen)

    def resource_variables(self) -> int:
        """The number of distinct resource variables (VAR_HANDLE shared names, over all subgraphs)."""
        codes = self._tree.operatorCodes or []
        shared: set[bytes] = set()
        for g in self._tree.subgraphs or []:
            for op in g.operators or []:
                if code_name(codes[op.opcodeIndex]) == "VAR_HANDLE":
                    shared.add(bytes(getattr(op.builtinOptions, "sharedName", None) or b""))
        return len(shared)

    @property
    def signatures(self) -> tuple[Signature, ...]:
        return tuple(
            Signature(
                key=(sig.signatureKey or b"").decode(errors="replace"),
                subgraph=int(sig.subgraphIndex or 0),
                inputs=tuple((m.name or b"").decode(errors="replace") for m in sig.inputs or []),
                outputs=tuple((m.name or b"").decode(errors="replace") for m in sig.outputs or []),
            )
            for sig in self._tree.signatureDefs or []
        )

    @property
    def metadata(self) -> dict[str, int]:
        """The model's metadata entries: name -> bytes of the buffer holding it."""
        buffers = self._tree.buffers or []
        out = {}
        for m in self._tree.metadata or []:
            b = int(m.buffer)
            buf = buffers[b] if 0 <= b < len(buffers) else None
            size = 0 if buf is None else (len(buf.data) if buf.data is not None else int(buf.size or 0))
            out[(m.name or b"").decode(errors="replace")] = size
        return out


# Parsed models kept by content (SHA-256): a few, since each holds its bytes and object tree.
_CACHED_MODELS = 4
_MODELS: collections.OrderedDict[bytes, Model] = collections.OrderedDict()
# file version (path, size, mtime, inode) -> the SHA-256 of its bytes
_FILES: collections.OrderedDict[tuple[str, int, int, int], bytes] = collections.OrderedDict()
_LOCK = threading.Lock()


def parse(data: bytes, origin: str = "model") -> Model:
    """Check and parse .tflite bytes, once per content: later calls with the same bytes get the same
    :class:`Model`.

    The bytes are validated in Python first (:mod:`edgeq.tflite.check`: bounded work, table consistency,
    the activation budget), then by LiteRT's flatbuffer verifier; the C++ side reads them only after the
    Python checks pass.

    Raises:
        BadInput: not a TFLite model, truncated, internally inconsistent (names the first problem), or
            without a subgraph.
    """
    data = bytes(data)
    digest = hashlib.sha256(data).digest()
    with _LOCK:
        model = _MODELS.get(digest)
        if model is not None:
            _MODELS.move_to_end(digest)
            return model
    model = _parse(data, origin)  # a failure is not kept: it raises again, with the caller's origin
    with _LOCK:
        _MODELS[digest] = model
        while len(_MODELS) > _CACHED_MODELS:
            _MODELS.popitem(last=False)
    return model


def _parse(data: bytes, origin: str) -> Model:
    tree = check.validate(data, origin)
    from ai_edge_litert.interpreter import Interpreter

    try:
        Interpreter(model_content=data)
    except ValueError as exc:
        raise BadInput(
            f"{origin} is truncated or corrupt ({exc})", "re-export or re-download the .tflite file"
        ) from exc
    return Model(data=data, origin=origin, info=_facts(tree, data, origin), _tree=tree)


def load(path: str | Path) -> Model:
    """:func:`parse` of a file, once per file version (path, size, modification time).

    Raises:
        BadInput: a missing file, a folder, or bytes that are not a valid TFLite model.
    """
    p = Path(path)
    try:
        st = p.stat()
    except FileNotFoundError as exc:
        raise BadInput(f"model file not found: {p}", "check the path") from exc
    key = (os.path.abspath(p), st.st_size, st.st_mtime_ns, st.st_ino)  # a rewritten file is read again
    with _LOCK:
        digest = _FILES.get(key)
        if digest is not None and digest in _MODELS:
            _MODELS.move_to_end(digest)
            return _MODELS[digest]
    model = parse(read_model_bytes(p), origin=str(path))
    with _LOCK:
        _FILES[key] = hashlib.sha256(model.data).digest()
        while len(_FILES) > 4 * _CACHED_MODELS:
            _FILES.popitem(last=False)
    return model


def clear_cache() -> None:
    """Forget every parsed model (tests that count parses; a long-lived process freeing memory)."""
    with _LOCK:
        _MODELS.clear()
        _FILES.clear()


def read_bytes(data: bytes, origin: str = "model") -> ModelInfo:
    """The typed facts of .tflite bytes (:func:`parse`).

    Raises:
        BadInput: the bytes are not a valid TFLite model.
    """
    return parse(data, origin).info


def _facts(model: Any, data: bytes, origin: str) -> ModelInfo:
    if not model.subgraphs:
        raise BadInput(f"{origin} has no subgraph", "re-export the .tflite file")
    type_names = enum_names("TensorType")
    op_names = enum_names("BuiltinOperator")
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
        builtin = builtin_code(code)
        is_custom = builtin == schema().BuiltinOperator.CUSTOM
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
    """The typed facts of a .tflite file (:func:`load`)."""
    return load(path).info


def custom_op_count(data: bytes, custom_code: str) -> int | None:
    """How many ops of every subgraph are the custom op ``custom_code`` (an Edge TPU compiled model's
    ``edgetpu-custom-op``), read with bounded work but not validated (a compiled model holds ops LiteRT
    cannot resolve); None when the bytes are not a readable model."""
    if data[4:8] != TFLITE_IDENTIFIER:
        return None
    try:
        tree = check.parse(data)
    except check.Corrupt:
        return None
    codes = tree.operatorCodes or []
    want = custom_code.encode()
    try:
        return sum(
            1
            for g in tree.subgraphs or []
            for op in g.operators or []
            if (codes[op.opcodeIndex].customCode or b"") == want
        )
    except (IndexError, TypeError):
        return None


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
