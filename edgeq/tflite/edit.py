"""Edits of .tflite flatbuffers: unpack a mutable copy, change it, pack it back.

Every change edgeq makes to a model the converter wrote goes through here: the accuracy techniques
(range selection, bias correction, AdaRound) change constants and quantization parameters, the .tflite
quantizer path folds float16 constants and adds a signature, the MCU target cuts ops out (the
missing-op search, one-op lookup tables). Callers hold the schema's object tree (``ModelT``) only between
:func:`unpack` and :func:`pack`, and build new tables with the constructors here, never with the schema.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from edgeq.errors import BadInput
from edgeq.tflite import check
from edgeq.tflite._schema import code_name, enum_names, schema
from edgeq.tflite._schema import pack as _pack


def unpack(data: bytes) -> Any:
    """A mutable copy of the object tree (``ModelT``) of .tflite bytes, read with bounded work.

    Raises:
        BadInput: the flatbuffer is truncated, or its tables claim more than the file can hold.
    """
    try:
        return check.parse(bytes(data))
    except check.Corrupt as exc:
        raise BadInput(f"corrupt model: {exc}", check.HINT) from None


def pack(model: Any, size_hint: int = 1024) -> bytes:
    """Serialize a ``ModelT`` back to .tflite bytes, with the TFL3 file identifier."""
    return _pack(model, size_hint)


def op_name(model: Any, op: Any) -> str:
    """The builtin name of an operator (``CONV_2D``), or its custom code."""
    return code_name(model.operatorCodes[op.opcodeIndex])


def tensor_name(tensor: Any) -> str:
    return (tensor.name or b"").decode(errors="replace")


def tensor_type(name: str) -> int:
    """The schema's value of a tensor type by name (``"INT8"``), to compare with ``tensor.type``."""
    return int(getattr(schema().TensorType, name.upper()))


def tensor_type_name(value: int) -> str:
    """The name of a tensor type value, lower case as :class:`edgeq.tflite.TensorInfo` writes it (``"int8"``)."""
    return enum_names("TensorType").get(int(value), f"type{value}").lower()


def activation_name(op: Any) -> str:
    """The fused activation of an op (``"NONE"``, ``"RELU"``, ``"RELU6"``...), ``"NONE"`` without one."""
    fused = getattr(op.builtinOptions, "fusedActivationFunction", None)
    return enum_names("ActivationFunctionType").get(int(fused or 0), "NONE")


def padding_name(op: Any) -> str:
    """``"SAME"`` or ``"VALID"``: the padding of a convolution's options."""
    return "SAME" if op.builtinOptions.padding == schema().Padding.SAME else "VALID"


def new_buffer(data: np.ndarray | bytes | None = None) -> Any:
    """A buffer table holding ``data`` (bytes or any array, kept as its uint8 bytes)."""
    buf = schema().BufferT()
    if data is not None:
        raw = data.tobytes() if isinstance(data, np.ndarray) else bytes(data)
        buf.data = np.frombuffer(raw, dtype=np.uint8).copy()
    return buf


def new_tensor(name: bytes, shape: Sequence[int], type_name: str, buffer: int = 0) -> Any:
    """A tensor table (``buffer`` 0: no constant data)."""
    t = schema().TensorT()
    t.name, t.shape, t.type, t.buffer = name, list(shape), tensor_type(type_name), buffer
    return t


def new_operator_code(builtin: str, version: int = 1) -> Any:
    """An operator code for builtin op ``builtin`` (``"DEQUANTIZE"``), in both the new and deprecated fields."""
    code = schema().OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = int(getattr(schema().BuiltinOperator, builtin))
    code.version = version
    return code


def new_operator(opcode_index: int, inputs: Iterable[int], outputs: Iterable[int]) -> Any:
    op = schema().OperatorT()
    op.opcodeIndex, op.inputs, op.outputs = opcode_index, list(inputs), list(outputs)
    return op


def new_signature(
    key: str, subgraph: int, inputs: Iterable[tuple[bytes, int]], outputs: Iterable[tuple[bytes, int]]
) -> Any:
    """A signature over ``subgraph`` naming its (name, tensor index) inputs and outputs."""
    s = schema()

    def entry(name: bytes, index: int) -> Any:
        t = s.TensorMapT()
        t.name, t.tensorIndex = name, index
        return t

    sig = s.SignatureDefT()
    sig.signatureKey, sig.subgraphIndex = key.encode(), subgraph
    sig.inputs = [entry(n, i) for n, i in inputs]
    sig.outputs = [entry(n, i) for n, i in outputs]
    return sig


def without_ops(data: bytes, drop: set[str]) -> bytes:
    """A copy of the model with every operator named in ``drop`` removed from every subgraph."""
    model = unpack(data)
    codes = model.operatorCodes or []
    for g in model.subgraphs or []:
        g.operators = [op for op in (g.operators or []) if code_name(codes[op.opcodeIndex]) not in drop]
    return pack(model, len(data) + 4096)


def single_op_model(data: bytes, op_index: int, length: int) -> bytes:
    """Op ``op_index`` of the main subgraph cut out alone, its input and output made 1-D of ``length``
    elements (an element-wise op tabulated over every input value)."""
    model = unpack(data)
    sg = model.subgraphs[0]
    op = sg.operators[op_index]
    src, dst = op.inputs[0], op.outputs[0]
    for t in (src, dst):
        sg.tensors[t].shape = [length]
        sg.tensors[t].shapeSignature = None
    sg.operators = [op]
    sg.inputs, sg.outputs = [src], [dst]
    model.subgraphs = [sg]
    model.signatureDefs = None
    return pack(model, len(data))


def drop_unused_tensors(model: Any, subgraph: int) -> int:
    """Remove the tensors of subgraph ``subgraph`` that nothing names any more (constants no op reads after
    a fold), emptying the buffers only they held, so they add no size; the count removed.

    Tensor indices are renumbered everywhere the model names them: the operators' inputs, outputs and
    intermediates, the subgraph's inputs and outputs, and every signature over the subgraph (its
    ``tensorIndex`` entries), so a signature runner still finds its tensors.
    """
    sg = model.subgraphs[subgraph]
    signatures = [s for s in model.signatureDefs or [] if s.subgraphIndex == subgraph]
    entries = [e for s in signatures for e in (*(s.inputs or []), *(s.outputs or []))]
    used = {i for op in sg.operators or [] for i in (*op.inputs, *op.outputs, *_intermediates(op)) if i >= 0}
    used |= set(sg.inputs) | set(sg.outputs) | {e.tensorIndex for e in entries}
    dropped = [i for i in range(len(sg.tensors)) if i not in used]
    if not dropped:
        return 0
    new_index = {old: new for new, old in enumerate(sorted(used))}

    def renumber(indices: Iterable[int]) -> list[int]:
        return [new_index[i] if i >= 0 else i for i in indices]

    still_used = {sg.tensors[i].buffer for i in used}
    others = {t.buffer for g in model.subgraphs if g is not sg for t in g.tensors or []}
    for i in dropped:
        buffer = sg.tensors[i].buffer
        if buffer and buffer not in still_used and buffer not in others:
            model.buffers[buffer].data = None
    for op in sg.operators or []:
        op.inputs, op.outputs = renumber(op.inputs), renumber(op.outputs)
        if _intermediates(op):
            op.intermediates = renumber(op.intermediates)
    sg.inputs, sg.outputs = renumber(sg.inputs), renumber(sg.outputs)
    for e in entries:
        e.tensorIndex = new_index[e.tensorIndex]
    sg.tensors = [sg.tensors[i] for i in sorted(used)]
    return len(dropped)


def _intermediates(op: Any) -> list[int]:
    return list(op.intermediates) if op.intermediates is not None else []


def pin_input_shapes(data: bytes, shapes: dict[str, tuple[int, ...]], origin: str = "model") -> bytes:
    """A copy of the model whose main-subgraph inputs named in ``shapes`` (tensor names) have those static
    shapes, and every tensor of that subgraph the static shape LiteRT infers from them: no ``-1`` is left
    in a shape signature, so quantizers, compilers and targets see a static model.

    Raises:
        BadInput: a name that is no input, a shape LiteRT refuses for the model (a static dimension
            changed, ops that cannot take it).
    """
    from ai_edge_litert.interpreter import Interpreter

    model = unpack(data)
    sg = model.subgraphs[0]
    index = {tensor_name(sg.tensors[i]): i for i in sg.inputs}
    missing = [n for n in shapes if n not in index]
    if missing:
        raise BadInput(f"{origin} has no input named {missing[0]!r}", f"its inputs: {', '.join(map(repr, index))}")
    try:
        interp = Interpreter(model_content=bytes(data))
        for name, dims in shapes.items():
            interp.resize_tensor_input(index[name], [int(d) for d in dims], strict=True)
        interp.allocate_tensors()
        inferred = {int(d["index"]): [int(x) for x in d["shape"]] for d in interp.get_tensor_details()}
    except (RuntimeError, ValueError) as exc:
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BadInput(
            f"{origin} does not take the input shape {dict(shapes)} ({msg[:200]})",
            "pin only its dynamic dimensions, with sizes its ops accept",
        ) from exc
    for i, t in enumerate(sg.tensors):
        signature = list(t.shapeSignature) if t.shapeSignature is not None else []
        if i in inferred and (any(d < 0 for d in signature) or i in index.values()):
            t.shape, t.shapeSignature = inferred[i], None
    return pack(model, len(data) + 4096)


def io_conversion(data: bytes, io: str) -> bytes:
    """A copy of an integer-I/O model whose main-subgraph inputs and outputs are ``io`` (``"float32"``, or
    ``"int16"`` around an int8 body) with the body unchanged: a QUANTIZE op in front of each input, a
    DEQUANTIZE (float32) or QUANTIZE (int16, a requantize) op after each output. The new I/O tensors take
    the old ones' names (the old ones get ``_int8``/``_int16``) and every signature entry points at them.
    An int16 tensor is symmetric (zero point 0) over the int8 one's real range, so it loses nothing of it.

    Raises:
        BadInput: I/O tensors not all int8, or not all int16 (for float32 I/O); int16 I/O asked of a
            model that is not int8.
    """
    model = unpack(data)
    sg = model.subgraphs[0]
    kinds = {tensor_type_name(sg.tensors[i].type) for i in (*sg.inputs, *sg.outputs)}
    body = kinds.pop() if len(kinds) == 1 else ""
    if body not in ("int8", "int16") or (io == "int16" and body != "int8"):
        raise BadInput(f"the model's I/O is {'/'.join(sorted(kinds | {body}))}", "convert int8 or int16 I/O only")
    wide = body == "int16" or io == "int16"  # QUANTIZE version 3 makes or reads int16, DEQUANTIZE 3 reads it
    entry_op = _op_code(model, "QUANTIZE", 3 if wide else 2)
    exit_op = _op_code(model, "QUANTIZE", 3) if io == "int16" else _op_code(model, "DEQUANTIZE", 3 if wide else 2)
    moved: dict[int, int] = {}
    front, back = [], []
    for i in sg.inputs:
        moved[i] = _io_twin(sg, i, io, body)
        front.append(new_operator(entry_op, [moved[i]], [i]))
    for i in sg.outputs:
        moved[i] = _io_twin(sg, i, io, body)
        back.append(new_operator(exit_op, [i], [moved[i]]))
    sg.operators = front + list(sg.operators) + back
    sg.inputs, sg.outputs = [moved[i] for i in sg.inputs], [moved[i] for i in sg.outputs]
    for sig in model.signatureDefs or []:
        if sig.subgraphIndex == 0:
            for e in (*(sig.inputs or []), *(sig.outputs or [])):
                e.tensorIndex = moved.get(e.tensorIndex, e.tensorIndex)
    return pack(model, len(data) + 4096)


def _op_code(model: Any, builtin: str, version: int) -> int:
    """The index of ``builtin``'s operator code, raised to ``version`` at least (added when missing)."""
    value = int(getattr(schema().BuiltinOperator, builtin))
    for index, code in enumerate(model.operatorCodes):
        if max(int(code.builtinCode or 0), int(code.deprecatedBuiltinCode or 0)) == value:
            code.version = max(int(code.version or 1), version)
            return index
    model.operatorCodes.append(new_operator_code(builtin, version))
    return len(model.operatorCodes) - 1


def _io_twin(sg: Any, index: int, io: str, body: str) -> int:
    """Add the ``io`` twin of ``body``-typed tensor ``index`` (its name, shape; int16: symmetric over its
    range), rename the old one ``<name>_<body>``; the twin's index."""
    old = sg.tensors[index]
    twin = new_tensor(old.name, old.shape, "INT16" if io == "int16" else "FLOAT32")
    twin.shapeSignature = old.shapeSignature
    if io == "int16":
        q = old.quantization
        scale, zero = float(q.scale[0]), int(q.zeroPoint[0])
        reach = max(abs((-128 - zero) * scale), abs((127 - zero) * scale))
        params = schema().QuantizationParametersT()
        params.scale, params.zeroPoint = [reach / 32767.0], [0]
        twin.quantization = params
    old.name = (old.name or b"") + b"_" + body.encode()
    sg.tensors.append(twin)
    return len(sg.tensors) - 1
