"""Structural validation of .tflite bytes, before any native code (LiteRT, TFLM, Vela) reads them.

LiteRT's flatbuffer verifier only proves that the bytes are a well-formed flatbuffer; what the tables
*say* is trusted by the C++ runtimes, and a tensor pointing past the end of the buffer table or an op
reading a tensor that does not exist can crash them (SIGSEGV, SIGABRT) instead of failing. This module
reads the model in Python, where every read is bounds-checked, and checks what the runtimes assume:

- the flatbuffer's tables fit the file and do not overlap into a blow-up (a bounded element budget);
- operator codes, buffer, tensor and subgraph indices are in range (-1 only for optional op inputs);
- tensor types are known, shapes non-negative and of a sane size, constant buffers exactly as large as
  shape x dtype, external buffers inside the file;
- quantization parameters: as many zero points as scales, a per-channel axis that exists and matches;
- no op reads a tensor that only it or a later op writes, and each tensor is written at most once and
  never when it is a constant;
- subgraph inputs and outputs, signature tensors and control-flow subgraph references are in range;
- the declared activations (every tensor without constant data) fit a memory budget: at most
  :data:`MAX_ACTIVATION_TENSOR_BYTES` each and :data:`MAX_ACTIVATION_BYTES` together, so a shape edited
  to ``[1,32768,32768,1]`` is refused before any runtime, input generator or code generator sizes
  memory from it.

:func:`validate` raises :class:`~edgeq.errors.BadInput` naming the model and the first problem found.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

from edgeq.errors import BadInput
from edgeq.tflite._schema import builtin_code, root, schema, unpack
from edgeq.tflite._schema import enum_names as _enum_values

HINT = "re-export the model with the TFLite converter (or re-download it)"
# Bits per element; None for types whose size is not fixed (strings, resources, variants).
_TYPE_BITS = {
    "FLOAT32": 32, "FLOAT16": 16, "INT32": 32, "UINT8": 8, "INT64": 64, "STRING": None, "BOOL": 8,
    "INT16": 16, "COMPLEX64": 64, "INT8": 8, "FLOAT64": 64, "COMPLEX128": 128, "UINT64": 64,
    "RESOURCE": None, "VARIANT": None, "UINT32": 32, "UINT16": 16, "INT4": 4, "BFLOAT16": 16, "INT2": 2,
    "UINT4": 4, "FLOAT8_E4M3FN": 8, "FLOAT8_E5M2": 8,
}  # fmt: skip
# No edge model has a tensor this large; a shape claiming more is corrupt (and would make the
# runtimes try to allocate it).
MAX_TENSOR_BYTES = 2**31
# The activation budget: what edgeq lets a model's declared non-constant tensors claim before anything
# is allocated from them (inputs generated for bench and eval, the runtimes' arenas, the C engine's plan).
# Far above edge models (a 1080p x 64-channel float32 feature map is 531 MB), and below what fits a
# 4 GiB machine with the runtime's own arena beside the generated inputs.
MAX_ACTIVATION_TENSOR_BYTES = 1 << 30
MAX_ACTIVATION_BYTES = 2 << 30
# Options fields that name a subgraph (control flow), by options class name.
_SUBGRAPH_FIELDS = ("initSubgraphIndex", "condSubgraphIndex", "bodySubgraphIndex", "thenSubgraphIndex",
                    "elseSubgraphIndex", "decompositionSubgraphIndex", "subgraphIndex")  # fmt: skip


class Corrupt(Exception):
    """One problem found; :func:`validate` turns it into a BadInput naming the model."""


def validate(data: bytes, origin: str = "model"):
    """Check that ``data`` is a .tflite model whose tables are consistent, before native code reads it.

    Returns:
        The parsed model (LiteRT's generated ``ModelT``), so callers need not read it twice.

    Raises:
        BadInput: not a TFLite model, or the first inconsistency found, e.g. "corrupt model m.tflite:
            tensor 7 of subgraph 0 points to buffer 99 (the model has 12)".
    """
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise BadInput(
            f"{origin} is not a TFLite model (no TFL3 identifier)",
            "pass a .tflite file produced by the TFLite converter",
        )
    try:
        model = parse(data)
        for problem in problems(model, len(data)):
            raise Corrupt(problem)
    except Corrupt as exc:
        raise BadInput(f"corrupt model {origin}: {exc}", HINT, details={"problem": str(exc)}) from None
    check_activation_budget(model, origin)
    return model


def _gib(n: int) -> str:
    return f"{n / 2**30:g} GiB"


def check_activation_budget(model, origin: str = "model") -> None:
    """Refuse a model whose declared activations exceed the budget, before anything is allocated.

    Raises:
        BadInput: a non-constant tensor larger than :data:`MAX_ACTIVATION_TENSOR_BYTES` (named, with its
            shape, type and bytes), or all of them together above :data:`MAX_ACTIVATION_BYTES`.
    """
    type_names = _enum_values("TensorType")
    buffers = model.buffers or []
    total = 0
    for g_index, graph in enumerate(model.subgraphs or []):
        for t_index, t in enumerate(graph.tensors or []):
            bits = _TYPE_BITS.get(type_names.get(t.type, ""))
            if bits is None or _held(buffers, int(t.buffer)) > 0:
                continue  # constants are in the file already (their size was checked against it)
            shape = [int(d) for d in (t.shape if t.shape is not None else ())]
            nbytes = -(-math.prod(shape) * bits // 8)
            total += nbytes
            if nbytes > MAX_ACTIVATION_TENSOR_BYTES:
                name = (t.name or b"").decode("utf-8", errors="replace")[:60]
                raise BadInput(
                    f"model {origin}: tensor {t_index} {name!r} of subgraph {g_index} has shape {shape} of "
                    f"{type_names[t.type]}: {nbytes:,} bytes, more than edgeq's budget of "
                    f"{_gib(MAX_ACTIVATION_TENSOR_BYTES)} per activation tensor",
                    "edge models are far smaller: re-export the model with its real input size",
                    details={
                        "tensor": t_index,
                        "shape": shape,
                        "bytes": nbytes,
                        "cap_bytes": MAX_ACTIVATION_TENSOR_BYTES,
                    },
                )
    if total > MAX_ACTIVATION_BYTES:
        raise BadInput(
            f"model {origin}: its activations (tensors without constant data) declare {total:,} bytes, more "
            f"than edgeq's budget of {_gib(MAX_ACTIVATION_BYTES)}",
            "edge models are far smaller: re-export the model with its real input size",
            details={"bytes": total, "cap_bytes": MAX_ACTIVATION_BYTES},
        )


def parse(data: bytes):
    """The model's object form (LiteRT's generated ``ModelT``), read with a bounded amount of work.

    Raises:
        Corrupt: the flatbuffer's offsets point outside the file, or its tables repeat so much that
            reading them would not end in reasonable time.
    """
    try:
        _check_budget(root(data), len(data))
        return unpack(data)
    except Corrupt:
        raise
    except Exception:  # the generated reader raises struct.error, IndexError, ValueError... on garbage
        raise Corrupt("the flatbuffer is truncated or corrupt (its offsets point outside the file)") from None


def _check_budget(root, size: int) -> None:
    """Refuse tables that reference each other so often that reading them explodes.

    A converter writes every tensor and op once, so they number at most size/4; a corrupt file whose
    subgraph vector repeats one large subgraph a million times would have the object reader build
    each copy.
    """
    budget = size // 4 + 64
    n_sub = root.SubgraphsLength()
    used = n_sub + root.BuffersLength() + root.OperatorCodesLength()
    if used > budget:
        raise Corrupt(f"its tables claim {used:,} entries, more than a {size:,}-byte file can hold")
    for i in range(n_sub):
        g = root.Subgraphs(i)
        used += g.TensorsLength() + g.OperatorsLength()
        if used > budget:
            raise Corrupt(f"its subgraphs claim more tensors and ops than a {size:,}-byte file can hold")


def problems(model, size: int) -> Iterator[str]:
    """Every inconsistency in a parsed model, first found first (lazy: the caller may stop at one)."""
    s = schema()
    builtin_names = _enum_values("BuiltinOperator")
    if not model.subgraphs:
        yield "it has no subgraph"
        return
    buffers = model.buffers or []
    codes = model.operatorCodes or []
    for c, code in enumerate(codes):
        builtin = builtin_code(code)
        if builtin not in builtin_names:
            yield f"operator code {c} names builtin op {builtin}, which does not exist"
        elif builtin == s.BuiltinOperator.CUSTOM and not code.customCode:
            yield f"operator code {c} is a custom op without a name"
    for b, buf in enumerate(buffers):
        offset, length = int(buf.offset or 0), int(buf.size or 0)
        if offset > 1 and offset + length > size:
            yield f"buffer {b} lies at bytes {offset:,}..{offset + length:,}, past the end of the {size:,}-byte file"
    n_sub = len(model.subgraphs)
    for g_index, graph in enumerate(model.subgraphs):
        yield from _subgraph_problems(model, g_index, graph, buffers, codes, n_sub)
    main = model.subgraphs[0]
    if main.outputs is None or len(main.outputs) == 0:
        yield "subgraph 0 has no outputs"
    if main.inputs is None or len(main.inputs) == 0:
        yield "subgraph 0 has no inputs"
    for sig in model.signatureDefs or []:
        key = (sig.signatureKey or b"").decode(errors="replace")
        if not 0 <= int(sig.subgraphIndex or 0) < n_sub:
            yield f"signature {key!r} names subgraph {sig.subgraphIndex} (the model has {n_sub})"
            continue
        n_t = len(model.subgraphs[int(sig.subgraphIndex or 0)].tensors or [])
        for m in list(sig.inputs or []) + list(sig.outputs or []):
            if not 0 <= int(m.tensorIndex) < n_t:
                yield f"signature {key!r} names tensor {m.tensorIndex} (its subgraph has {n_t})"


def _held(buffers: list, b: int) -> int:
    """Bytes of constant data buffer ``b`` holds (0: none, an activation; buffer 0 is the empty sentinel)."""
    if not 0 < b < len(buffers):
        return 0
    buf = buffers[b]
    return len(buf.data) if buf.data is not None else (int(buf.size or 0) if int(buf.offset or 0) > 1 else 0)


def _where(g_index: int) -> str:
    return f"of subgraph {g_index}"


def _subgraph_problems(model, g_index: int, graph, buffers, codes, n_sub: int) -> Iterator[str]:
    type_names = _enum_values("TensorType")
    tensors = graph.tensors or []
    n_t, n_b = len(tensors), len(buffers)
    where = _where(g_index)
    constant = [False] * n_t
    for t_index, t in enumerate(tensors):
        name = f"tensor {t_index} {where}"
        shape = [int(d) for d in (t.shape if t.shape is not None else ())]
        if any(d < 0 for d in shape):
            yield f"{name} has a negative dimension in its shape {shape}"
            continue
        type_name = type_names.get(t.type)
        if type_name is None:
            yield f"{name} has tensor type {t.type}, which does not exist"
            continue
        bits = _TYPE_BITS.get(type_name)
        elements = math.prod(shape)
        if bits is not None and elements * bits // 8 > MAX_TENSOR_BYTES:
            yield f"{name} has shape {shape}: {elements * bits // 8:,} bytes, more than any edge model holds ({_gib(MAX_TENSOR_BYTES)})"
            continue
        if not 0 <= int(t.buffer) < n_b:
            yield f"{name} points to buffer {t.buffer} (the model has {n_b})"
            continue
        held = _held(buffers, int(t.buffer))
        constant[t_index] = held > 0
        if constant[t_index] and bits is not None and t.sparsity is None:
            want = -(-elements * bits // 8)
            if held != want and not (bits < 8 and held == elements):  # sub-byte types may be stored unpacked
                yield f"{name} has shape {shape} of {type_name} ({want:,} bytes) but its buffer holds {held:,}"
        yield from _quantization_problems(name, t.quantization, shape)
    yield from _io_problems(graph.inputs, "input", n_t, where)
    yield from _io_problems(graph.outputs, "output", n_t, where)
    available = set(constant_index for constant_index, c in enumerate(constant) if c)
    available |= {int(i) for i in (graph.inputs if graph.inputs is not None else ()) if 0 <= int(i) < n_t}
    available |= {i for i, t in enumerate(tensors) if t.isVariable}
    written: set[int] = set()
    first_writer: dict[int, int] = {}
    for o_index, op in enumerate(graph.operators or []):
        for i in op.outputs if op.outputs is not None else ():
            first_writer.setdefault(int(i), o_index)
    for o_index, op in enumerate(graph.operators or []):
        name = f"op {o_index} {where}"
        if not 0 <= int(op.opcodeIndex) < len(codes):
            yield f"{name} uses operator code {op.opcodeIndex} (the model has {len(codes)})"
            continue
        ins = [int(i) for i in (op.inputs if op.inputs is not None else ())]
        outs = [int(i) for i in (op.outputs if op.outputs is not None else ())]
        for i in ins:
            if i == -1:
                continue  # an optional input left out
            if not 0 <= i < n_t:
                yield f"{name} reads tensor {i} (the subgraph has {n_t})"
            elif i not in available and first_writer.get(i, -1) >= o_index:
                # a tensor nobody writes is scratch (Vela's, say); one written at or after this op is not ready
                yield f"{name} reads tensor {i} before op {first_writer[i]} writes it"
        for i in [int(x) for x in (op.intermediates if op.intermediates is not None else ())]:
            if not 0 <= i < n_t:
                yield f"{name} has intermediate tensor {i} (the subgraph has {n_t})"
        for i in outs:
            if not 0 <= i < n_t:
                yield f"{name} writes tensor {i} (the subgraph has {n_t})"
            elif constant[i]:
                yield f"{name} writes tensor {i}, which is a constant"
            elif i in written:
                yield f"{name} writes tensor {i}, which an earlier op already wrote"
            else:
                written.add(i)
                available.add(i)
        opts = op.builtinOptions
        for field_name in _SUBGRAPH_FIELDS:
            ref = getattr(opts, field_name, None) if opts is not None else None
            if ref is not None and not 0 <= int(ref) < n_sub:
                yield f"{name} calls subgraph {ref} (the model has {n_sub})"
    for i in [int(x) for x in (graph.outputs if graph.outputs is not None else ())]:
        if 0 <= i < n_t and i not in available:
            yield f"output tensor {i} {where} is never written"


def _io_problems(indices, kind: str, n_t: int, where: str) -> Iterator[str]:
    for i in [int(x) for x in (indices if indices is not None else ())]:
        if not 0 <= i < n_t:
            yield f"{kind} {i} {where} is not a tensor (the subgraph has {n_t})"


def _quantization_problems(name: str, q, shape: list[int]) -> Iterator[str]:
    if q is None:
        return
    scales = [float(x) for x in (q.scale if q.scale is not None else ())]
    zps = [int(x) for x in (q.zeroPoint if q.zeroPoint is not None else ())]
    if scales and zps and len(scales) != len(zps):
        yield f"{name} has {len(scales)} quantization scale(s) but {len(zps)} zero point(s)"
    if any(not math.isfinite(x) or x < 0 for x in scales):
        yield f"{name} has a quantization scale that is negative or not finite"
    if len(scales) > 1:
        axis = int(q.quantizedDimension or 0)
        if not 0 <= axis < len(shape):
            yield f"{name} is quantized per channel along axis {axis}, but its shape {shape} has no such axis"
        elif shape[axis] != len(scales):
            yield f"{name} has {len(scales)} per-channel scales for {shape[axis]} channels (axis {axis})"
