"""Deterministic corrupt .tflite files: valid models with one internal inconsistency each.

Every mutation edits LiteRT's object form of a valid model (``ModelT``) and packs it again, so the
result is a well-formed flatbuffer with the TFL3 identifier whose *content* is wrong: an index past
the end of a table, a buffer too short for its tensor, a shape that cannot be, an opcode that does not
exist. A few byte-level mutations (truncation, a flipped byte, a zeroed table) cover what the packer
cannot produce. The same seed always gives the same files.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from pathlib import Path

import flatbuffers
import numpy as np
from ai_edge_litert import schema_py_generated as s

HERE = Path(__file__).resolve().parent
SEEDS = (
    HERE / "seeds" / "int8_io.tflite",
    HERE / "seeds" / "int8_float_io.tflite",
    HERE / "seeds" / "float.tflite",
    HERE.parent / "data" / "third_party" / "hand_recrop.tflite",
)


def load(data: bytes):
    """The object form, with index and shape vectors as lists (the reader gives read-only arrays)."""
    m = s.ModelT.InitFromPackedBuf(data, 0)
    for g in m.subgraphs:
        g.inputs, g.outputs = [int(i) for i in g.inputs], [int(i) for i in g.outputs]
        for op in g.operators:
            op.inputs, op.outputs = [int(i) for i in op.inputs], [int(i) for i in op.outputs]
        for t in g.tensors:
            t.shape = [int(d) for d in t.shape] if t.shape is not None else None
    return m


def pack(model) -> bytes:
    b = flatbuffers.Builder(1024)
    b.Finish(model.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def _graph(m):
    return m.subgraphs[0]


def _const_tensors(m) -> list[int]:
    bufs = m.buffers
    return [i for i, t in enumerate(_graph(m).tensors) if 0 < t.buffer < len(bufs) and bufs[t.buffer].data is not None]


def _activation_tensors(m) -> list[int]:
    consts = set(_const_tensors(m))
    return [i for i in range(len(_graph(m).tensors)) if i not in consts]


# Each mutation takes (model, rng) and edits the model in place; it returns False when it does not apply.
Mutation = Callable[[object, random.Random], bool]


def buffer_out_of_range(m, rng) -> bool:
    t = _graph(m).tensors[rng.choice(_const_tensors(m) or [0])]
    t.buffer = len(m.buffers) + rng.randint(0, 1000)
    return True


def buffer_index_huge(m, rng) -> bool:
    _graph(m).tensors[rng.randrange(len(_graph(m).tensors))].buffer = 2**32 - 1
    return True


def op_input_out_of_range(m, rng) -> bool:
    op = rng.choice(_graph(m).operators)
    op.inputs[rng.randrange(len(op.inputs))] = len(_graph(m).tensors) + rng.randint(0, 50)
    return True


def op_input_negative(m, rng) -> bool:
    op = rng.choice(_graph(m).operators)
    op.inputs[0] = -7
    return True


def op_output_out_of_range(m, rng) -> bool:
    op = rng.choice(_graph(m).operators)
    op.outputs[0] = len(_graph(m).tensors) + 3
    return True


def op_output_optional(m, rng) -> bool:
    op = rng.choice(_graph(m).operators)
    op.outputs[0] = -1
    return True


def op_inputs_swapped(m, rng) -> bool:
    ops = [op for op in _graph(m).operators if len(op.inputs) >= 2]
    if not ops:
        return False
    op = rng.choice(ops)
    op.inputs = list(reversed(list(op.inputs)))
    return True


def op_inputs_dropped(m, rng) -> bool:
    op = rng.choice(_graph(m).operators)
    op.inputs = list(op.inputs)[:0]
    return True


def op_cycle(m, rng) -> bool:
    """An op that reads its own output."""
    op = rng.choice(_graph(m).operators)
    op.inputs[0] = op.outputs[0]
    return True


def opcode_out_of_range(m, rng) -> bool:
    rng.choice(_graph(m).operators).opcodeIndex = len(m.operatorCodes) + rng.randint(0, 20)
    return True


def opcode_unknown_builtin(m, rng) -> bool:
    code = rng.choice(m.operatorCodes)
    code.builtinCode = 4000 + rng.randint(0, 100)
    code.deprecatedBuiltinCode = 127
    return True


def opcode_swapped(m, rng) -> bool:
    """Two ops' opcodes exchanged: each gets inputs of the wrong kind and count."""
    if len(m.operatorCodes) < 2:
        return False
    a, b = rng.sample(range(len(m.operatorCodes)), 2)
    ca, cb = m.operatorCodes[a], m.operatorCodes[b]
    m.operatorCodes[a], m.operatorCodes[b] = cb, ca
    return True


def opcode_version_huge(m, rng) -> bool:
    rng.choice(m.operatorCodes).version = 9999
    return True


def tensors_swapped(m, rng) -> bool:
    """Two tensors of different shapes exchange places in the tensor table."""
    ts = _graph(m).tensors
    i, j = rng.sample(range(len(ts)), 2)
    ts[i], ts[j] = ts[j], ts[i]
    return True


def shape_negative(m, rng) -> bool:
    t = _graph(m).tensors[rng.choice(_activation_tensors(m))]
    if t.shape is None or len(t.shape) == 0:
        return False
    t.shape = list(t.shape)
    t.shape[rng.randrange(len(t.shape))] = -rng.randint(2, 9)
    return True


def shape_huge(m, rng) -> bool:
    t = _graph(m).tensors[rng.choice(_activation_tensors(m))]
    t.shape = [2**30, 2**30, 4]
    return True


def shape_rank_changed(m, rng) -> bool:
    t = _graph(m).tensors[rng.choice(range(len(_graph(m).tensors)))]
    t.shape = [int(np.prod(t.shape))] if t.shape is not None and len(t.shape) > 1 else [1, 1, 1, 1, 1, 1, 1]
    return True


def input_shape_wrong(m, rng) -> bool:
    g = _graph(m)
    t = g.tensors[g.inputs[0]]
    t.shape = [1] + [d + 5 for d in list(t.shape)[1:]]
    t.shapeSignature = None
    return True


def const_shape_grown(m, rng) -> bool:
    """A constant tensor's shape claims more elements than its buffer holds."""
    consts = _const_tensors(m)
    if not consts:
        return False
    t = _graph(m).tensors[rng.choice(consts)]
    t.shape = [d * 3 for d in t.shape] if t.shape is not None and len(t.shape) else [7]
    return True


def buffer_truncated(m, rng) -> bool:
    consts = _const_tensors(m)
    if not consts:
        return False
    buf = m.buffers[_graph(m).tensors[rng.choice(consts)].buffer]
    buf.data = buf.data[: len(buf.data) // 3]
    return True


def buffer_emptied(m, rng) -> bool:
    """A weight tensor whose buffer holds nothing (LiteRT: "lacks data")."""
    consts = _const_tensors(m)
    if not consts:
        return False
    m.buffers[_graph(m).tensors[rng.choice(consts)].buffer].data = None
    return True


def buffers_all_empty(m, rng) -> bool:
    for buf in m.buffers:
        buf.data = None
    return True


def buffer_offset_bogus(m, rng) -> bool:
    consts = _const_tensors(m)
    if not consts:
        return False
    buf = m.buffers[_graph(m).tensors[rng.choice(consts)].buffer]
    buf.data, buf.offset, buf.size = None, 2**40, 2**20
    return True


def dtype_invalid(m, rng) -> bool:
    _graph(m).tensors[rng.randrange(len(_graph(m).tensors))].type = 99
    return True


def dtype_changed(m, rng) -> bool:
    t = _graph(m).tensors[rng.randrange(len(_graph(m).tensors))]
    t.type = s.TensorType.INT64 if t.type != s.TensorType.INT64 else s.TensorType.INT8
    return True


def quant_lengths_mismatch(m, rng) -> bool:
    ts = [t for t in _graph(m).tensors if t.quantization is not None and t.quantization.scale is not None]
    if not ts:
        return False
    q = rng.choice(ts).quantization
    q.scale = list(q.scale) + [0.5, 0.25]
    q.zeroPoint = [0]
    return True


def quant_dimension_out_of_range(m, rng) -> bool:
    ts = [t for t in _graph(m).tensors if t.quantization is not None and t.quantization.scale is not None]
    if not ts:
        return False
    q = rng.choice(ts).quantization
    q.quantizedDimension = 17
    q.scale = list(q.scale) * 2
    q.zeroPoint = [0] * len(q.scale)
    return True


def quant_scale_bad(m, rng) -> bool:
    ts = [t for t in _graph(m).tensors if t.quantization is not None and t.quantization.scale is not None]
    if not ts:
        return False
    q = rng.choice(ts).quantization
    q.scale = [float(rng.choice([0.0, -1.0, np.nan, np.inf]))] * len(q.scale)
    return True


def subgraph_input_out_of_range(m, rng) -> bool:
    _graph(m).inputs = [len(_graph(m).tensors) + 11]
    return True


def subgraph_output_out_of_range(m, rng) -> bool:
    _graph(m).outputs = [-3]
    return True


def subgraph_no_inputs(m, rng) -> bool:
    _graph(m).inputs = []
    return True


def subgraph_no_outputs(m, rng) -> bool:
    _graph(m).outputs = []
    return True


def no_subgraphs(m, rng) -> bool:
    m.subgraphs = []
    return True


def no_operator_codes(m, rng) -> bool:
    m.operatorCodes = []
    return True


def no_operators(m, rng) -> bool:
    _graph(m).operators = []
    return True


def no_tensors(m, rng) -> bool:
    _graph(m).tensors = []
    return True


def no_buffers(m, rng) -> bool:
    m.buffers = []
    return True


def options_mismatch(m, rng) -> bool:
    """An op whose builtin options are of another op's type."""
    op = rng.choice(_graph(m).operators)
    op.builtinOptionsType = s.BuiltinOptions.SplitOptions
    opts = s.SplitOptionsT()
    opts.numSplits = 1000
    op.builtinOptions = opts
    return True


def signature_bad(m, rng) -> bool:
    sig = s.SignatureDefT()
    t = s.TensorMapT()
    t.name, t.tensorIndex = b"x", len(_graph(m).tensors) + 40
    sig.inputs, sig.outputs, sig.signatureKey, sig.subgraphIndex = [t], [t], b"serving_default", 5
    m.signatureDefs = [sig]
    return True


def subgraph_index_in_op(m, rng) -> bool:
    """A WHILE-style reference to a subgraph that does not exist, via a CALL_ONCE op."""
    m.operatorCodes.append(s.OperatorCodeT())
    m.operatorCodes[-1].builtinCode = s.BuiltinOperator.CALL_ONCE
    m.operatorCodes[-1].deprecatedBuiltinCode = s.BuiltinOperator.PLACEHOLDER_FOR_GREATER_OP_CODES
    op = s.OperatorT()
    op.opcodeIndex = len(m.operatorCodes) - 1
    op.inputs, op.outputs = [], []
    op.builtinOptionsType = s.BuiltinOptions.CallOnceOptions
    op.builtinOptions = s.CallOnceOptionsT()
    op.builtinOptions.initSubgraphIndex = 9
    _graph(m).operators.insert(0, op)
    return True


MUTATIONS: tuple[Mutation, ...] = (
    buffer_out_of_range,
    buffer_index_huge,
    op_input_out_of_range,
    op_input_negative,
    op_output_out_of_range,
    op_output_optional,
    op_inputs_swapped,
    op_inputs_dropped,
    op_cycle,
    opcode_out_of_range,
    opcode_unknown_builtin,
    opcode_swapped,
    opcode_version_huge,
    tensors_swapped,
    shape_negative,
    shape_huge,
    shape_rank_changed,
    input_shape_wrong,
    const_shape_grown,
    buffer_truncated,
    buffer_emptied,
    buffers_all_empty,
    buffer_offset_bogus,
    dtype_invalid,
    dtype_changed,
    quant_lengths_mismatch,
    quant_dimension_out_of_range,
    quant_scale_bad,
    subgraph_input_out_of_range,
    subgraph_output_out_of_range,
    subgraph_no_inputs,
    subgraph_no_outputs,
    no_subgraphs,
    no_operator_codes,
    no_operators,
    no_tensors,
    no_buffers,
    options_mismatch,
    signature_bad,
    subgraph_index_in_op,
)


def byte_mutations(data: bytes, rng: random.Random) -> Iterator[tuple[str, bytes]]:
    """Damage the packed bytes themselves: what the packer cannot produce."""
    yield "truncated_half", data[: len(data) // 2]
    yield "truncated_tail", data[:-16]
    pos = rng.randrange(8, len(data))
    yield "byte_flipped", data[:pos] + bytes([data[pos] ^ 0xFF]) + data[pos + 1 :]
    pos = rng.randrange(8, max(9, len(data) // 4))
    yield "offsets_zeroed", data[:pos] + b"\0" * 32 + data[pos + 32 :]
    root = int.from_bytes(data[:4], "little")
    yield "root_past_end", (len(data) + 100).to_bytes(4, "little") + data[4:]
    yield "vtable_huge", data[:root] + (2**31 - 1).to_bytes(4, "little", signed=True) + data[root + 4 :]


def corrupt_models(seed: int = 0, seeds: tuple[Path, ...] = SEEDS, rounds: int = 1) -> Iterator[tuple[str, bytes]]:
    """(name, bytes) of each corrupt model: every mutation on every seed model, ``rounds`` times with
    different random choices, then the byte-level damage. Deterministic for a given ``seed``."""
    for path in seeds:
        original = path.read_bytes()
        for r in range(rounds):
            for mutation in MUTATIONS:
                rng = random.Random(f"{seed}:{path.name}:{mutation.__name__}:{r}")
                model = load(original)
                if not mutation(model, rng):
                    continue
                suffix = f"_{r}" if rounds > 1 else ""
                yield f"{path.stem}.{mutation.__name__}{suffix}", pack(model)
            rng = random.Random(f"{seed}:{path.name}:bytes:{r}")
            for name, data in byte_mutations(original, rng):
                yield f"{path.stem}.{name}{'_' + str(r) if rounds > 1 else ''}", data


def write_corrupt_models(folder: Path, seed: int = 0, rounds: int = 1) -> list[Path]:
    """Write every corrupt model into ``folder``; returns their paths in a stable order."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, data in corrupt_models(seed, rounds=rounds):
        p = folder / f"{name}.tflite"
        p.write_bytes(data)
        paths.append(p)
    return paths
