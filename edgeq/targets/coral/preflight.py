"""Pre-flight: predict edgetpu_compiler's per-op table from the .tflite alone.

The compiler maps ops to the Edge TPU in one partition. The first op it cannot run stays on the CPU
with its own reason, and so does every op that depends on it, with the status "More than one subgraph
is not supported" (coral.ai models-intro; real logs in tests/data/edgetpu). A QUANTIZE of a float model
input and a DEQUANTIZE to a float model output run on the CPU at the edges without splitting the graph
(Cases 5 and 13 and the yolov8s float-I/O log).

What is predicted per op, in this order (the first that applies wins):

1. float-to-integer QUANTIZE at the input, integer-to-float DEQUANTIZE at the output: CPU, no split;
2. a non-constant tensor that is not 8-bit: "Operation is working on an unsupported data type";
3. an op missing from :data:`rules.RULES`, or newer than ``--runtime-version``: "Operation not supported";
4. a tensor with a dimension > 1 outside the 3 innermost: "Tensor has unsupported rank ...";
5. the op's documented limits (:class:`rules.Limit`, tested by the predicates in :data:`CHECKS`);
6. an op that consumes the output of a CPU op: "More than one subgraph is not supported".

Whole-model requirements (static shapes, batch 1, fully integer, 8-bit) are hard errors (BadInput).
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgeq.errors import BadInput, UsageError
from edgeq.targets.coral import rules
from edgeq.tflite import FLOAT_TYPES, ModelInfo, OpInfo, TensorInfo, read_bytes, read_model_bytes

EIGHT_BIT = ("int8", "uint8")
ITEMSIZE = {"int8": 1, "uint8": 1, "bool": 1, "int16": 2, "float16": 2, "int32": 4, "float32": 4, "int64": 8}
ACTIVATIONS = {1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6", 4: "TANH", 5: "SIGN_BIT"}
# Statuses whose op does not split the graph: the compiler runs them on the CPU at the model's edges.
EDGE_RULES = ("float-input-quantize", "float-output-dequantize")


@dataclass(frozen=True)
class OpVerdict:
    index: int
    op: str
    status: str
    on_tpu: bool
    reason: str = ""  # why it is on the CPU: a rule's text, with the model's own numbers
    rule: str = ""  # the rule behind the verdict (an op name, "rank", "data-type", "subgraph", ...)
    # False when the rule behind the verdict was not read in a source (rules.py says which): the
    # status words are then edgeq's guess at what the compiler would print, not its known answer
    confirmed: bool = True

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Prediction:
    """The predicted compiler table for one model, plus the parameter-memory estimate."""

    model: str
    runtime_version: int
    ops: tuple[OpVerdict, ...]
    memory: dict
    notes: tuple[str, ...] = ()
    op_versions: dict = field(default_factory=dict)

    def table(self) -> list[dict]:
        """Rows like the compiler's: one per (op, status, basis), in order of first appearance.

        ``basis`` says what the row is: "predicted" from a confirmed rule, or "guess" where the
        rule is unconfirmed (the compiler's wording is then edgeq's expectation, not a known answer).
        """
        rows: dict[tuple[str, str, bool], dict] = {}
        for v in self.ops:
            row = rows.setdefault(
                (v.op, v.status, v.confirmed),
                {
                    "op": v.op,
                    "count": 0,
                    "status": v.status,
                    "on_tpu": v.on_tpu,
                    "basis": "predicted" if v.confirmed else "guess (unconfirmed rule)",
                },
            )
            row["count"] += 1
        return list(rows.values())

    @property
    def unconfirmed(self) -> int:
        """Ops whose verdict rests on an unconfirmed rule."""
        return sum(not v.confirmed for v in self.ops)

    @property
    def counts(self) -> dict:
        tpu = sum(v.on_tpu for v in self.ops)
        return {"tpu": tpu, "cpu": len(self.ops) - tpu}

    @property
    def first_unmapped(self) -> dict | None:
        """The op that splits the graph (edges excepted), or the first CPU op when only edges are on the CPU."""
        cpu = [v for v in self.ops if not v.on_tpu]
        splitting = [v for v in cpu if v.rule not in EDGE_RULES]
        if not cpu:
            return None
        first = (splitting or cpu)[0]
        stranded = sum(1 for v in self.ops if v.rule == "subgraph")
        return {
            "index": first.index,
            "op": first.op,
            "status": first.status,
            "reason": first.reason,
            "splits_graph": first.rule not in EDGE_RULES,
            "ops_stranded_after": stranded,
            "confirmed": first.confirmed,
        }

    def to_dict(self) -> dict:
        return {
            "model": self.model,
            "runtime_version": self.runtime_version,
            "ops": self.table(),
            "counts": self.counts,
            "first_unmapped": self.first_unmapped,
            "unconfirmed_ops": self.unconfirmed,
            "memory": self.memory,
            "notes": list(self.notes),
            "op_details": [v.to_dict() for v in self.ops],
            "op_versions": self.op_versions,
        }


# --- reading what tflite.ModelInfo does not carry: builtin options and constant values -----------


class Graph:
    """The main subgraph with builtin options and constant tensor values, for the limit predicates."""

    def __init__(self, info: ModelInfo, data: bytes, origin: str = "model") -> None:
        from edgeq import tflite

        self.info = info
        self._model = tflite.parse(data, origin)  # the parse that made ``info``: cached, not read again
        self.op_versions: dict[str, int] = {}
        for op in info.ops:
            self.op_versions[op.name] = max(self.op_versions.get(op.name, 0), self._model.op_version(op.index))

    def options(self, op: OpInfo):
        return self._model.options(op.index)

    def tensor(self, index: int) -> TensorInfo | None:
        return self.info.tensors[index] if 0 <= index < len(self.info.tensors) else None

    def input(self, op: OpInfo, i: int) -> TensorInfo | None:
        return self.tensor(op.inputs[i]) if i < len(op.inputs) else None

    def value(self, index: int) -> np.ndarray | None:
        """A constant tensor's values, or None when it is computed at run time."""
        t = self.tensor(index)
        if t is None or not t.is_constant:
            return None
        raw = self._model.constant_bytes(index)
        if raw is None:
            return None
        if t.dtype not in ITEMSIZE or t.dtype == "bool":
            return None
        return np.frombuffer(raw, dtype=np.dtype(t.dtype)).reshape(t.shape or ())


def effective_rank(shape: tuple[int, ...]) -> int:
    """Rank without leading 1s: [1, 10] is one-dimensional, [1, 7, 10] two-dimensional."""
    dims = list(shape)
    while dims and dims[0] == 1:
        dims.pop(0)
    return len(dims)


def _position(axis: int, rank: int) -> str:
    """Coral's names for dimensions counted from the innermost: z (channels), x, y; anything outer is batch."""
    return {0: "z", 1: "x", 2: "y"}.get(rank - 1 - axis, "batch")


def _axes(values: np.ndarray, rank: int) -> list[int]:
    return sorted({int(a) + rank if int(a) < 0 else int(a) for a in np.ravel(values)})


# --- the limit predicates: each returns None when the op is within the limit, else what breaks it -------


def _no_fused_activation(g: Graph, op: OpInfo, p: dict) -> str | None:
    act = getattr(g.options(op), "fusedActivationFunction", 0) or 0
    return f"fused {ACTIVATIONS.get(act, act)}" if act else None


def _concat_constant_is_zero_pad(g: Graph, op: OpInfo, p: dict) -> str | None:
    const = [i for i in op.inputs if i >= 0 and g.info.tensors[i].is_constant]
    if not const:
        return None
    values = [g.value(i) for i in const]
    if len(op.inputs) == 2 and all(v is not None and not np.any(v) for v in values):
        return None
    return f"{len(op.inputs)} inputs, {len(const)} constant" + ("" if len(op.inputs) != 2 else " and not all zeros")


def _constant_params(g: Graph, op: OpInfo, p: dict) -> str | None:
    for i in p.get("inputs", ()):
        t = g.input(op, i)
        if t is not None and op.inputs[i] >= 0 and not t.is_constant:
            return f"input {i} ({t.name!r}) is computed at run time"
    return None


def _same_dilation(g: Graph, op: OpInfo, p: dict) -> str | None:
    o = g.options(op)
    h, w = getattr(o, "dilationHFactor", 1) or 1, getattr(o, "dilationWFactor", 1) or 1
    return None if h == w else f"dilation {h} (y) x {w} (x)"


def _no_dilation(g: Graph, op: OpInfo, p: dict) -> str | None:
    o = g.options(op)
    h, w = getattr(o, "dilationHFactor", 1) or 1, getattr(o, "dilationWFactor", 1) or 1
    return None if h == w == 1 else f"dilation {h} x {w}"


def _fc_default_weights(g: Graph, op: OpInfo, p: dict) -> str | None:
    fmt = getattr(g.options(op), "weightsFormat", 0) or 0
    return None if fmt == 0 else f"weights format {fmt}"


def _output_1d(g: Graph, op: OpInfo, p: dict) -> str | None:
    out = g.tensor(op.outputs[0])
    if out is None or effective_rank(out.shape) <= 1:
        return None
    return f"output shape {list(out.shape)}"


def _axes_within(g: Graph, op: OpInfo, p: dict) -> str | None:
    data, axes_t = g.input(op, 0), g.input(op, p.get("input", 1))
    if data is None or axes_t is None:
        return None
    values = g.value(op.inputs[p.get("input", 1)])
    if values is None:
        return "the reduction axes are computed at run time"
    rank = len(data.shape)
    axes = _axes(values, rank)
    bad = [a for a in axes if _position(a, rank) not in p["allowed"]]
    if bad:
        return f"reduces axes {axes} of a {list(data.shape)} tensor ({', '.join(_position(a, rank) for a in bad)})"
    multiple = p.get("z_multiple")
    if multiple and rank - 1 in axes and data.shape[-1] % multiple:
        return f"reduces z of size {data.shape[-1]}, not a multiple of {multiple}"
    return None


def _pad_within(g: Graph, op: OpInfo, p: dict) -> str | None:
    data = g.input(op, 0)
    values = g.value(op.inputs[1]) if len(op.inputs) > 1 else None
    if data is None:
        return None
    if values is None:
        return "the paddings are computed at run time"
    rank = len(data.shape)
    padded = [a for a in range(min(rank, len(values))) if np.any(values[a])]
    bad = [a for a in padded if _position(a, rank) not in p["allowed"]]
    if bad:
        return f"pads dimensions {', '.join(_position(a, rank) for a in bad)} of a {list(data.shape)} tensor"
    return None


def _pack_not_batch(g: Graph, op: OpInfo, p: dict) -> str | None:
    out = g.tensor(op.outputs[0])
    if out is None:
        return None
    rank = len(out.shape)
    axis = getattr(g.options(op), "axis", 0) or 0
    axis = axis + rank if axis < 0 else axis
    return "packs along the batch dimension" if _position(axis, rank) == "batch" else None


def _prelu_alpha_1d(g: Graph, op: OpInfo, p: dict) -> str | None:
    alpha = g.input(op, 1)
    if alpha is None or effective_rank(alpha.shape) <= 1:
        return None
    return f"alpha shape {list(alpha.shape)}"


def _io_3d(g: Graph, op: OpInfo, p: dict) -> str | None:
    for i in (op.inputs[0], op.outputs[0]):
        t = g.tensor(i)
        if t is not None and any(d > 1 for d in t.shape[:-3]):
            return f"tensor shape {list(t.shape)}"
    return None


def _softmax_1d(g: Graph, op: OpInfo, p: dict) -> str | None:
    t = g.input(op, 0)
    if t is None:
        return None
    if effective_rank(t.shape) > 1:
        return f"input shape {list(t.shape)}"
    if t.num_elements > p["max_elements"]:
        return f"{t.num_elements:,} elements"
    return None


def _split_not_batch(g: Graph, op: OpInfo, p: dict) -> str | None:
    data, axis = g.input(op, 1), g.value(op.inputs[0])
    if data is None or axis is None:
        return None
    rank = len(data.shape)
    a = int(np.ravel(axis)[0])
    return "splits along the batch dimension" if _position(a + rank if a < 0 else a, rank) == "batch" else None


def _squeeze_leading_ones(g: Graph, op: OpInfo, p: dict) -> str | None:
    data = g.input(op, 0)
    if data is None:
        return None
    rank = len(data.shape)
    dims = getattr(g.options(op), "squeezeDims", None)
    squeezed = (
        sorted({int(d) + rank if int(d) < 0 else int(d) for d in dims})
        if dims is not None and len(dims)
        else [i for i, d in enumerate(data.shape) if d == 1]
    )
    return None if squeezed == list(range(len(squeezed))) else f"squeezes dims {squeezed} of {list(data.shape)}"


def _unit_strides(g: Graph, op: OpInfo, p: dict) -> str | None:
    strides = g.value(op.inputs[3]) if len(op.inputs) > 3 else None
    if strides is None:
        return "the strides are computed at run time"
    return None if np.all(strides == 1) else f"strides {np.ravel(strides).tolist()}"


def _no_ellipsis_new_axis(g: Graph, op: OpInfo, p: dict) -> str | None:
    o = g.options(op)
    e, n = getattr(o, "ellipsisMask", 0) or 0, getattr(o, "newAxisMask", 0) or 0
    return None if e == n == 0 else f"ellipsis mask {e}, new-axis mask {n}"


CHECKS: dict[str, Callable[[Graph, OpInfo, dict], str | None]] = {
    "no_fused_activation": _no_fused_activation,
    "concat_constant_is_zero_pad": _concat_constant_is_zero_pad,
    "constant_params": _constant_params,
    "same_dilation": _same_dilation,
    "no_dilation": _no_dilation,
    "fc_default_weights": _fc_default_weights,
    "output_1d": _output_1d,
    "axes_within": _axes_within,
    "pad_within": _pad_within,
    "pack_not_batch": _pack_not_batch,
    "prelu_alpha_1d": _prelu_alpha_1d,
    "io_3d": _io_3d,
    "softmax_1d": _softmax_1d,
    "split_not_batch": _split_not_batch,
    "squeeze_leading_ones": _squeeze_leading_ones,
    "unit_strides": _unit_strides,
    "no_ellipsis_new_axis": _no_ellipsis_new_axis,
}


# --- whole-model requirements: hard errors -------------------------------------------------------------


def _histogram(names: list[str]) -> str:
    return ", ".join(f"{n} x{c}" for n, c in collections.Counter(names).most_common())


def _pinned_fix(fix: str, shape: tuple[int, ...]) -> str:
    """A requirement's fix with the ``--input-shape`` this model's input would take (batch 1, N where dynamic)."""
    example = "x".join("1" if i == 0 else (str(d) if d > 0 else "N") for i, d in enumerate(shape))
    return f"{fix}; for this input: --input-shape {example}" if len(shape) > 1 else fix


def require_compilable(info: ModelInfo, origin: str) -> None:
    """Raise the hard errors: dynamic shapes, batch > 1, float or hybrid ops, 16-bit activations.

    Raises:
        BadInput: naming the problem and the fix (the requirement's ``fix``).
    """
    req = {r.id: r for r in rules.REQUIREMENTS}
    if not info.ops:
        raise BadInput(f"{origin} has no operators", "pass a converted model")
    for t in info.inputs:
        if t.is_dynamic:
            what = (
                "a dynamic batch" if t.shape_signature[0] < 0 and len(t.shape_signature) > 1 else "dynamic dimensions"
            )
            raise BadInput(
                f"model has {what} (input {t.name!r} shape {list(t.shape_signature)}); the Edge TPU needs static "
                "shapes",
                _pinned_fix(req["static-shapes"].fix, t.shape_signature),
            )
    dynamic = [t for t in info.tensors if t.is_dynamic]
    if dynamic:
        raise BadInput(
            f"model has {len(dynamic)} tensor(s) with dynamic dimensions (e.g. {dynamic[0].name!r} "
            f"{list(dynamic[0].shape_signature)}); the Edge TPU needs static shapes",
            req["static-shapes"].fix,
        )
    for t in info.inputs:
        if len(t.shape) > 1 and t.shape[0] > 1:
            raise BadInput(
                f"model has batch {t.shape[0]} (input {t.name!r} shape {list(t.shape)}); the Edge TPU runs batch 1",
                _pinned_fix(req["batch-1"].fix, t.shape),
            )
    hybrid = [op.name for op in info.ops if op.compute == "hybrid"]
    floating = [op.name for op in info.ops if op.compute == "float"]
    if hybrid:
        raise BadInput(
            f"model is dynamic-range quantized: int8 weights but float activations (float ops: "
            f"{_histogram(hybrid + floating)}); the Edge TPU needs a fully integer model",
            req["fully-integer"].fix,
        )
    if floating:
        # a float .tflite is quantized as it is (litert-quantizer): name that command, not the Keras route
        raise BadInput(
            f"model is not fully integer (float ops: {_histogram(hybrid + floating)})",
            f"quantize it to int8: edgeq quantize {origin} --mode int8 --data CALIBRATION.npz -o MODEL_int8.tflite",
        )
    wide = [op.name for op in info.ops if op.compute == "int16"]
    if wide:
        raise BadInput(
            f"model has 16-bit activations (int16x8 ops: {_histogram(wide)}); the Edge TPU runs 8-bit models",
            req["8-bit-activations"].fix,
        )


# --- the prediction -----------------------------------------------------------------------------------


def _edge_conversion(op: OpInfo, info: ModelInfo) -> str | None:
    if op.compute != "conversion":
        return None
    ins = [info.tensors[i] for i in op.inputs if i >= 0]
    outs = [info.tensors[i] for i in op.outputs if i >= 0]
    if op.name == "QUANTIZE" and any(t.dtype in FLOAT_TYPES for t in ins):
        return "float-input-quantize"
    if op.name == "DEQUANTIZE" and any(t.dtype in FLOAT_TYPES for t in outs):
        return "float-output-dequantize"
    return None


def _intrinsic(g: Graph, op: OpInfo, runtime: int) -> OpVerdict | None:
    """Why ``op`` cannot be mapped whatever its neighbours, or None when it can."""
    info = g.info
    edge = _edge_conversion(op, info)
    if edge == "float-input-quantize":
        return OpVerdict(op.index, op.name, rules.UNSPECIFIED, False, rules.FLOAT_INPUT_QUANTIZE, edge)
    if edge == "float-output-dequantize":
        return OpVerdict(op.index, op.name, rules.DATA_TYPE, False, rules.FLOAT_OUTPUT_DEQUANTIZE, edge)
    tensors = [info.tensors[i] for i in op.inputs + op.outputs if i >= 0]
    wide = [t for t in tensors if not t.is_constant and t.dtype not in EIGHT_BIT]
    if wide:
        t = wide[0]
        return OpVerdict(
            op.index,
            op.name,
            rules.DATA_TYPE,
            False,
            f"works on a {t.dtype} tensor ({t.name!r}); the Edge TPU computes 8-bit tensors only",
            "data-type",
        )
    rule = rules.RULES_BY_OP.get(op.name)
    if rule is None:
        hint = rules.ALTERNATIVES.get(op.name, "")
        what = f"custom op {op.name}" if op.is_custom else op.name
        reason = f"{what} is not in the Edge TPU's supported operations" + (f"; {hint}" if hint else "")
        return OpVerdict(op.index, op.name, rules.NOT_SUPPORTED, False, reason, "not-supported")
    if rule.since_runtime > runtime:
        reason = (
            f"{rule.name} needs Edge TPU runtime {rule.since_runtime}+ and this check targets runtime {runtime}; "
            f"use --runtime-version {rule.since_runtime} (compile with -m {rule.since_runtime}) if your devices "
            "have that runtime"
        )
        return OpVerdict(op.index, op.name, rules.NOT_SUPPORTED, False, reason, op.name, rule.confirmed)
    for t in tensors:
        if not t.is_constant and any(d > 1 for d in t.shape[:-3]):
            return OpVerdict(
                op.index,
                op.name,
                rules.RANK,
                False,
                f"tensor {t.name!r} has shape {list(t.shape)}: with more than 3 dimensions only the 3 innermost "
                "may be larger than 1",
                "rank",
            )
    for limit in rule.limits:
        if limit.check is None or not limit.applies(runtime):
            continue
        broken = CHECKS[limit.check](g, op, limit.params)
        if broken:
            return OpVerdict(
                op.index,
                op.name,
                limit.status,
                False,
                f"{rule.name}: {limit.text} (here: {broken})",
                op.name,
                rule.confirmed and limit.confirmed,
            )
    return None


def _memory(info: ModelInfo, verdicts: list[OpVerdict]) -> dict:
    on_tpu = {v.index for v in verdicts if v.on_tpu}
    seen: set[int] = set()
    tpu_bytes = 0
    for op in info.ops:
        if op.index not in on_tpu:
            continue
        for i in op.inputs:
            t = info.tensors[i] if i >= 0 else None
            if t is not None and t.is_constant and i not in seen:
                seen.add(i)
                tpu_bytes += t.num_elements * ITEMSIZE.get(t.dtype, 1)
    total = sum(t.num_elements * ITEMSIZE.get(t.dtype, 1) for t in info.tensors if t.is_constant)
    budget = rules.ON_CHIP_PARAMETER_BYTES
    return {
        "parameter_bytes": total,
        "parameter_bytes_on_tpu": tpu_bytes,
        "on_chip_bytes": budget,
        "cached_bytes_estimate": min(tpu_bytes, budget),
        "streamed_bytes_estimate": max(0, tpu_bytes - budget),
        "streaming_predicted": tpu_bytes > budget,
    }


def predict_info(info: ModelInfo, data: bytes, origin: str, runtime_version: int) -> Prediction:
    """The prediction for an already-read model (see :func:`predict`)."""
    require_compilable(info, origin)
    g = Graph(info, data, origin)
    cpu_tensors: set[int] = set()  # outputs of ops on the CPU that split the graph
    verdicts: list[OpVerdict] = []
    for op in info.ops:
        verdict = _intrinsic(g, op, runtime_version)
        if verdict is None and any(i in cpu_tensors for i in op.inputs):
            verdict = OpVerdict(
                op.index,
                op.name,
                rules.STRANDED,
                False,
                "supported, but it depends on an op that runs on the CPU, and the compiler makes only one Edge TPU "
                "subgraph",
                "subgraph",
            )
        if verdict is None:
            rule = rules.RULES_BY_OP.get(op.name)
            verdict = OpVerdict(
                op.index, op.name, rules.MAPPED, True, rule=op.name, confirmed=rule is None or rule.confirmed
            )
        elif verdict.rule not in EDGE_RULES:
            cpu_tensors.update(i for i in op.outputs if i >= 0)
        verdicts.append(verdict)
    notes = []
    present = {op.name for op in info.ops}
    for rule in rules.RULES:
        if rule.op in present:
            notes += [
                f"{rule.op}: {lim.text} [not predicted]"
                for lim in rule.limits
                if lim.check is None and lim.applies(runtime_version)
            ]
    if info.num_subgraphs > 1:
        notes.append(f"the model has {info.num_subgraphs} subgraphs; only the main one is predicted")
    return Prediction(
        model=origin,
        runtime_version=runtime_version,
        ops=tuple(verdicts),
        memory=_memory(info, verdicts),
        notes=tuple(notes),
        op_versions=g.op_versions,
    )


def predict(path: str | Path, runtime_version: int = rules.DEFAULT_RUNTIME_VERSION) -> Prediction:
    """Predict edgetpu_compiler's per-op table for the .tflite at ``path``.

    Args:
        path: a .tflite file.
        runtime_version: the Edge TPU runtime the model must run on (the compiler's -m).

    Returns:
        Per-op statuses, counts on TPU and CPU, the first unmapped op, and the parameter-memory estimate.

    Raises:
        UsageError: an unknown runtime version.
        BadInput: not a TFLite model, corrupt, or breaking a model requirement (dynamic shapes, batch > 1,
            float or dynamic-range ops, 16-bit activations), with the fix.
    """
    if runtime_version not in rules.KNOWN_RUNTIME_VERSIONS:
        raise UsageError(
            f"unknown Edge TPU runtime version {runtime_version}",
            f"choose one of {', '.join(map(str, rules.KNOWN_RUNTIME_VERSIONS))} "
            f"(compiler 16 targets {rules.DEFAULT_RUNTIME_VERSION})",
        )
    data = read_model_bytes(path)
    info = read_bytes(data, origin=str(path))
    return predict_info(info, data, str(path), runtime_version)
