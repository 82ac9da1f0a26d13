"""Empirical bias correction of an int8 .tflite, op by op in graph order.

Rounding weights and activations to int8 shifts the mean of a layer's output, and the next layers
inherit the shift. For each CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED op, in graph order, this
runs the current int8 model on the representative data and compares the op's (dequantized) output,
per output channel, with what it should be; the mean difference, in bias units, is added to the
op's int32 bias. Later ops are measured with the earlier ones already corrected. What "should be"
is (:class:`Reference`):

- ``float-model`` (default): the float model's output of the same op on the same samples. The bias
  then also absorbs the mean error accumulated upstream.
- ``int8-input``: the op recomputed in float, with the float weights and bias, from the int8 model's
  own dequantized input to the op, then its fused activation: only this op's own error.

Both compare after the fused activation (the int8 model has no pre-activation tensor to read).
Only bias values change: no op, tensor, shape, type or scale does. Bias buffers the converter
deduplicated (ops sharing one buffer of equal values) get their own copy first.

The correction is a mean over the representative data, so that data must look like the
deployment's; where errors are large and nonlinear (a badly ranged tensor, e.g. the 1000x model
before cross-layer equalization), it can hurt: measure it (benchmarks/fidelity.py).
"""

from __future__ import annotations

import dataclasses
import enum
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgeq.errors import BadInput, UsageError
from edgeq.quantize import tflite_edit
from edgeq.tflite import edit

CORRECTED_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")
_INT32 = np.iinfo(np.int32)


class Reference(enum.StrEnum):
    """What an int8 op's output is compared with.

    FLOAT_MODEL: the float model's output of the same op on the same sample (the error the int8
    model has accumulated up to this op, which the bias then absorbs).
    INT8_INPUT: the op recomputed in float (float weights and bias) from the int8 model's own
    dequantized input to it (only this op's error: weight rounding and output requantization).
    """

    FLOAT_MODEL = "float-model"
    INT8_INPUT = "int8-input"


@dataclass(frozen=True)
class BiasCorrectionConfig:
    """Args:
    reference: what the int8 output is compared with (see :class:`Reference`); float-model measured
        better on the bundled CNN (benchmarks/fidelity.py).
    max_samples: representative samples used (each op costs one int8 run over them).
    """

    reference: Reference = Reference.FLOAT_MODEL
    max_samples: int = 256

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "reference", Reference(self.reference))
        except ValueError:
            raise UsageError(
                f"unknown bias correction reference {self.reference!r}", "use float-model or int8-input"
            ) from None
        if self.max_samples < 1:
            raise UsageError(f"bias correction needs at least one sample, got {self.max_samples}", "e.g. 256")

    def to_dict(self) -> dict:
        return {"reference": self.reference.value, "max_samples": self.max_samples}


@dataclass(frozen=True)
class OpCorrection:
    op_index: int
    op: str
    output: str
    mean_abs_shift: float  # mean over channels of |bias change|, in output units
    max_abs_shift_lsb: float  # largest change, in units of the output tensor's scale

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class BiasCorrectionResult:
    model: bytes
    corrected: tuple[OpCorrection, ...]
    skipped: tuple[str, ...]
    unshared_buffers: int
    num_samples: int
    seconds: float
    notes: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict:
        return {
            "corrected": [c.to_dict() for c in self.corrected],
            "skipped": list(self.skipped),
            "unshared_buffers": self.unshared_buffers,
            "num_samples": self.num_samples,
            "seconds": round(self.seconds, 3),
            "notes": list(self.notes),
        }


def correct_bias(
    quantized: bytes, float_model: bytes, x: np.ndarray, cfg: BiasCorrectionConfig = BiasCorrectionConfig()
) -> BiasCorrectionResult:
    """Correct the int32 biases of ``quantized`` against the float weights in ``float_model``.

    Args:
        quantized: the int8 .tflite.
        float_model: a float .tflite of the same model whose ops write tensors of the same names
            (the converter's calibrated model, or its float conversion).
        x: representative float inputs (the model's input shape, batch first).
        cfg: samples.

    Returns:
        The corrected model (same ops, tensors and scales; only bias values differ) and per op
        the size of the change.

    Raises:
        BadInput: no op of ``quantized`` matches ``float_model``.
    """
    start = time.perf_counter()
    x = x[: cfg.max_samples]
    qmodel = tflite_edit.unpack(quantized)
    fmodel = tflite_edit.unpack(float_model)
    graph = qmodel.subgraphs[0]
    unshared = _unshare_bias_buffers(qmodel)
    current = tflite_edit.pack(qmodel) if unshared else quantized
    corrected: list[OpCorrection] = []
    targets, skipped = _targets(qmodel, fmodel)
    float_means: dict[int, np.ndarray] = {}
    if cfg.reference == Reference.FLOAT_MODEL and targets:
        wanted = [int(fop.outputs[0]) for *_, fop in targets]
        runs = tflite_edit.run_keeping_tensors(float_model, x, wanted, keep=_channel_sums)
        float_means = {t: np.sum(runs[t], axis=0) for t in wanted}
    for index, op, name, out_name, fop in targets:
        in_t, out_t = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
        lo, hi = _linear_range(op)
        if cfg.reference == Reference.FLOAT_MODEL:
            runs = tflite_edit.run_keeping_tensors(
                current, x, [int(op.outputs[0])], keep=_dequantized_channel_sums(out_t)
            )
            sums = np.sum(runs[int(op.outputs[0])], axis=0)
            ref = float_means[int(fop.outputs[0])]
            shift = (ref[0] - sums[0]) / np.maximum(sums[1], 1)
        else:
            runs = tflite_edit.run_keeping_tensors(current, x, [int(op.inputs[0]), int(op.outputs[0])])
            x_in = tflite_edit.dequantize(np.concatenate(runs[int(op.inputs[0])]), in_t)
            y_q = tflite_edit.dequantize(np.concatenate(runs[int(op.outputs[0])]), out_t)
            weights, bias = _float_weights(fmodel, fop)
            expected = np.clip(_reference_output(name, op, x_in, weights, bias), lo, hi)
            channels = expected.shape[-1]
            shift = (expected - y_q.reshape(expected.shape)).reshape(-1, channels).mean(axis=0)
        corrected.append(_apply(qmodel, op, index, name, out_name, shift))
        current = tflite_edit.pack(qmodel)
    notes = () if corrected else ("no conv or fully connected op to correct: the model is unchanged",)
    return BiasCorrectionResult(
        model=current,
        corrected=tuple(corrected),
        skipped=tuple(skipped),
        unshared_buffers=unshared,
        num_samples=int(len(x)),
        seconds=time.perf_counter() - start,
        notes=notes,
    )


def _targets(qmodel: Any, fmodel: Any) -> tuple[list[tuple], list[str]]:
    """The int8 conv/FC ops that can be corrected, each with its float op, and the others with why."""
    graph = qmodel.subgraphs[0]
    float_ops = _ops_by_output(fmodel)
    targets, skipped = [], []
    for index, op in enumerate(graph.operators):
        name = tflite_edit.op_name(qmodel, op)
        if name not in CORRECTED_OPS:
            continue
        out_name = tflite_edit.tensor_name(graph.tensors[op.outputs[0]])
        reason = _unsupported(qmodel, op)
        fop = float_ops.get(out_name) if reason is None else None
        if fop is not None:
            targets.append((index, op, name, out_name, fop[1]))
        else:
            skipped.append(f"{name} {out_name}: {reason or 'no float op writes this tensor'}")
    # no op matches the float model at all: the wrong float model (ops skipped for a reason are fine)
    if not targets and skipped and all(s.endswith("no float op writes this tensor") for s in skipped):
        raise BadInput(
            "no conv or fully connected op of the int8 model matches the float model",
            "pass the float model this int8 model was converted from",
        )
    return targets, skipped


def _ops_by_output(model: Any) -> dict[str, tuple[str, Any]]:
    graph = model.subgraphs[0]
    out = {}
    for op in graph.operators:
        name = tflite_edit.op_name(model, op)
        if name in CORRECTED_OPS:
            out[tflite_edit.tensor_name(graph.tensors[op.outputs[0]])] = (name, op)
    return out


def _unsupported(model: Any, op: Any) -> str | None:
    """Why an int8 op cannot be corrected, or None."""
    graph = model.subgraphs[0]
    if len(op.inputs) < 3 or op.inputs[2] < 0:
        return "no bias"
    types = {graph.tensors[i].type for i in op.inputs[:2]}
    if types != {edit.tensor_type("INT8")} or graph.tensors[op.inputs[2]].type != edit.tensor_type("INT32"):
        return "not an int8 op with an int32 bias"
    return None


def _unshare_bias_buffers(model: Any) -> int:
    """Give every corrected op's bias its own buffer (the converter deduplicates equal ones)."""
    graph = model.subgraphs[0]
    users: dict[int, int] = {}
    for t in graph.tensors:
        users[t.buffer] = users.get(t.buffer, 0) + 1
    seen: set[int] = set()
    copied = 0
    for op in graph.operators:
        if tflite_edit.op_name(model, op) not in CORRECTED_OPS or len(op.inputs) < 3 or op.inputs[2] < 0:
            continue
        tensor = graph.tensors[op.inputs[2]]
        if users.get(tensor.buffer, 0) > 1 or tensor.buffer in seen:
            model.buffers.append(edit.new_buffer(np.array(model.buffers[tensor.buffer].data, dtype=np.uint8)))
            users[tensor.buffer] -= 1
            tensor.buffer = len(model.buffers) - 1
            copied += 1
        seen.add(tensor.buffer)
    return copied


def _dequantized_channel_sums(tensor: Any) -> Callable[[np.ndarray], np.ndarray]:
    """:func:`_channel_sums` of an int8 output, in float through ``tensor``'s scale and zero point."""

    def keep(values: np.ndarray) -> np.ndarray:
        return _channel_sums(tflite_edit.dequantize(values, tensor))

    return keep


def _channel_sums(values: np.ndarray) -> np.ndarray:
    """Per-channel (last axis) sum and count of one run's output, stacked as (2, channels)."""
    flat = np.asarray(values, dtype=np.float64).reshape(-1, values.shape[-1])
    return np.stack([flat.sum(axis=0), np.full(flat.shape[1], flat.shape[0], dtype=np.float64)])


def _buffer_array(model: Any, tensor: Any, dtype: Any) -> np.ndarray:
    data = model.buffers[tensor.buffer].data
    if data is None or len(data) == 0:
        raise BadInput(f"tensor {tflite_edit.tensor_name(tensor)} has no data in the float model", "re-convert it")
    return np.frombuffer(np.asarray(data, dtype=np.uint8).tobytes(), dtype=dtype).reshape(tuple(tensor.shape))


def _float_weights(model: Any, op: Any) -> tuple[np.ndarray, np.ndarray]:
    graph = model.subgraphs[0]
    w = _buffer_array(model, graph.tensors[op.inputs[1]], np.float32)
    b = _buffer_array(model, graph.tensors[op.inputs[2]], np.float32)
    return w.astype(np.float64), b.astype(np.float64)


def _reference_output(name: str, op: Any, x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The op's float pre-activation output for input ``x`` with float weights."""
    return np.asarray(tflite_edit.forward(name, op, x.astype(np.float64), w)) + b


def _linear_range(op: Any) -> tuple[float, float]:
    """Where the op's fused activation passes its input through unchanged."""
    return {
        "RELU": (0.0, np.inf),
        "RELU6": (0.0, 6.0),
        "RELU_N1_TO_1": (-1.0, 1.0),
    }.get(edit.activation_name(op), (-np.inf, np.inf))


def _apply(model: Any, op: Any, index: int, name: str, out_name: str, shift: np.ndarray) -> OpCorrection:
    graph = model.subgraphs[0]
    bias_t = graph.tensors[op.inputs[2]]
    out_t = graph.tensors[op.outputs[0]]
    bias = _buffer_array(model, bias_t, np.int32).astype(np.int64)
    scale = np.asarray(bias_t.quantization.scale, dtype=np.float64)
    steps = np.round(shift / scale)
    new = np.clip(bias + steps.astype(np.int64), _INT32.min, _INT32.max).astype("<i4")
    model.buffers[bias_t.buffer].data = np.frombuffer(new.tobytes(), dtype=np.uint8)
    applied = steps * scale
    out_scale = float(out_t.quantization.scale[0]) if out_t.quantization.scale is not None else 1.0
    return OpCorrection(
        op_index=index,
        op=name,
        output=out_name,
        mean_abs_shift=float(np.mean(np.abs(applied))),
        max_abs_shift_lsb=float(np.max(np.abs(applied)) / out_scale) if out_scale else 0.0,
    )
