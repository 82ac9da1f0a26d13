"""AdaRound: learn whether each int8 weight rounds up or down (Nagel et al., "Up or Down?", 2020).

Rounding every weight to its nearest int8 value minimizes each weight's own error, not the error
of the layer's output. For each CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED op of an int8 .tflite,
in graph order, this takes the op's (dequantized) input from the current int8 model on the
representative data and learns, per weight, a soft rounding h(V) in [0, 1] (a rectified sigmoid)
that minimizes the squared error of the op's output against the float weights' output on that same
input, plus a regularizer that drives h to 0 or 1 (its exponent annealed from 20 to 2). The
learned hard rounding is written into the op's int8 weights; scales, biases and ops do not change.
TensorFlow computes the gradients.

Run it with ``TF_ENABLE_ONEDNN_OPTS=0`` set before TensorFlow is imported: TF 2.21's oneDNN filter
gradient of a stride-2 1x1 convolution can crash the process otherwise.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgeq.errors import UsageError
from edgeq.quantize import bias_correction, tflite_edit
from edgeq.tflite.edit import new_buffer

_ZETA, _GAMMA = 1.1, -0.1  # the rectified sigmoid's stretch, from the paper


@dataclass(frozen=True)
class AdaRoundConfig:
    """Args:
    steps: optimizer steps per op.
    batch: samples per step.
    max_samples: representative samples whose op inputs are kept.
    learning_rate: Adam's.
    regularization: weight of the rounding regularizer.
    warmup: share of the steps before the regularizer starts.
    seed: minibatch order.
    """

    steps: int = 500
    batch: int = 16
    max_samples: int = 128
    learning_rate: float = 1e-2
    regularization: float = 0.01
    warmup: float = 0.2
    seed: int = 0

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise UsageError(f"--adaround-steps must be at least 1, got {self.steps}", "e.g. --adaround-steps 500")
        if self.batch < 1 or self.max_samples < 1:
            raise UsageError("AdaRound needs at least one sample per step", "e.g. batch=16")
        if not 0 <= self.warmup < 1:
            raise UsageError(f"AdaRound warmup is a share of the steps in [0, 1), got {self.warmup}", "e.g. 0.2")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class OpRounding:
    op_index: int
    op: str
    output: str
    flipped: int  # weights whose int8 value differs from round-to-nearest
    num_weights: int
    error_before: float  # mean squared output error on the kept inputs, nearest rounding
    error_after: float

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class AdaRoundResult:
    model: bytes
    ops: tuple[OpRounding, ...]
    skipped: tuple[str, ...]
    num_samples: int
    seconds: float
    notes: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict:
        return {
            "ops": [o.to_dict() for o in self.ops],
            "skipped": list(self.skipped),
            "num_samples": self.num_samples,
            "seconds": round(self.seconds, 3),
            "notes": list(self.notes),
        }


def adaround(
    quantized: bytes,
    float_model: bytes,
    x: np.ndarray,
    cfg: AdaRoundConfig = AdaRoundConfig(),
    on_op: Callable[[int, int, str], None] | None = None,
) -> AdaRoundResult:
    """Learn the rounding of the int8 weights of ``quantized`` (float weights from ``float_model``,
    matched by op output tensor name, as in :func:`~edgeq.quantize.bias_correction.correct_bias`).

    An op keeps round-to-nearest when the learned rounding does not lower its output error on the
    kept inputs. ``on_op(number, total, op)`` is told as each op's learning starts (progress: the longest technique).

    Raises:
        BadInput: no op of ``quantized`` matches ``float_model``.
    """
    start = time.perf_counter()
    x = x[: cfg.max_samples]
    qmodel = tflite_edit.unpack(quantized)
    fmodel = tflite_edit.unpack(float_model)
    graph = qmodel.subgraphs[0]
    targets, skipped = bias_correction._targets(qmodel, fmodel)
    unshared = _unshare_weight_buffers(qmodel, [op for _, op, *_ in targets])
    current = tflite_edit.pack(qmodel) if unshared else quantized
    rng = np.random.default_rng(cfg.seed)
    done: list[OpRounding] = []
    for k, (index, op, name, out_name, fop) in enumerate(targets):
        if on_op is not None:
            on_op(k + 1, len(targets), f"{name} {out_name}")
        w_t = graph.tensors[op.inputs[1]]
        if w_t.quantization is None or w_t.quantization.scale is None:
            skipped.append(f"{name} {out_name}: weights not quantized")
            continue
        runs = tflite_edit.run_keeping_tensors(current, x, [int(op.inputs[0])])
        x_in = tflite_edit.dequantize(np.concatenate(runs[int(op.inputs[0])]), graph.tensors[op.inputs[0]])
        w_float, _ = bias_correction._float_weights(fmodel, fop)
        scale = _weight_scales(w_t, w_float.shape)
        try:
            w_int, before, after = _learn(name, op, x_in.astype(np.float32), w_float, scale, cfg, rng)
        except Exception as exc:  # noqa: BLE001 - e.g. a kernel TensorFlow lacks here: this op only keeps nearest
            skipped.append(f"{name} {out_name}{_grouped(w_float, x_in)}: kept round-to-nearest ({_one_line(exc)})")
            continue
        nearest = np.clip(np.round(w_float / scale), -127, 127)
        if after >= before:
            w_int = nearest  # learned rounding did not help this op: keep nearest
        model_w = bias_correction._buffer_array(qmodel, w_t, np.int8)
        qmodel.buffers[w_t.buffer].data = np.frombuffer(
            w_int.astype(np.int8).reshape(model_w.shape).tobytes(), np.uint8
        )
        done.append(
            OpRounding(
                op_index=index,
                op=name,
                output=out_name,
                flipped=int(np.sum(w_int != nearest)),
                num_weights=int(w_int.size),
                error_before=float(before),
                error_after=float(min(after, before)),
            )
        )
        current = tflite_edit.pack(qmodel)
    notes = () if done else ("no conv or fully connected op to round: the model is unchanged",)
    return AdaRoundResult(
        model=current,
        ops=tuple(done),
        skipped=tuple(skipped),
        num_samples=int(len(x)),
        seconds=time.perf_counter() - start,
        notes=notes,
    )


def _grouped(w: np.ndarray, x: np.ndarray) -> str:
    """ " (grouped convolution, groups=G)" for a CONV_2D whose weights see a share of the input channels."""
    if w.ndim != 4 or not w.shape[-1] or x.shape[-1] == w.shape[-1]:
        return ""
    return f" (grouped convolution, groups={x.shape[-1] // w.shape[-1]})"


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:160]}"


def _weight_scales(tensor: Any, shape: tuple[int, ...]) -> np.ndarray:
    """The weight scales broadcast to the weights' shape (per channel on the quantized axis)."""
    scale = np.asarray(tensor.quantization.scale, dtype=np.float64)
    if scale.size == 1:
        return np.full(shape, scale[0])
    dims = [1] * len(shape)
    dims[int(tensor.quantization.quantizedDimension or 0)] = scale.size
    return np.broadcast_to(scale.reshape(dims), shape)


def _unshare_weight_buffers(model: Any, ops: list[Any]) -> int:
    graph = model.subgraphs[0]
    users: dict[int, int] = {}
    for t in graph.tensors:
        users[t.buffer] = users.get(t.buffer, 0) + 1
    copied = 0
    for op in ops:
        tensor = graph.tensors[op.inputs[1]]
        if users.get(tensor.buffer, 0) > 1:
            model.buffers.append(new_buffer(np.array(model.buffers[tensor.buffer].data, dtype=np.uint8)))
            users[tensor.buffer] -= 1
            tensor.buffer = len(model.buffers) - 1
            copied += 1
    return copied


def _learn(
    name: str, op: Any, x: np.ndarray, w: np.ndarray, scale: np.ndarray, cfg: AdaRoundConfig, rng
) -> tuple[np.ndarray, float, float]:
    """The learned int8 weights, and the output error with nearest and with learned rounding."""
    from edgeq.tfimport import tensorflow

    tf = tensorflow()
    w32, s32 = w.astype(np.float32), scale.astype(np.float32)
    floor = np.floor(w / scale)
    rest = np.clip(w / scale - floor, 0.01, 0.99)  # start at the nearest-rounding side, not at the edges
    v = tf.Variable((-np.log((_ZETA - _GAMMA) / (rest - _GAMMA) - 1)).astype(np.float32))
    floor32 = floor.astype(np.float32)
    lo, hi = -127.0 - floor32, 127.0 - floor32  # keep floor + h inside int8's symmetric weight range

    def soft() -> Any:
        return tf.clip_by_value(tf.sigmoid(v) * (_ZETA - _GAMMA) + _GAMMA, 0.0, 1.0)

    def weights(h: Any) -> Any:
        return s32 * (floor32 + tf.clip_by_value(h, lo, hi))

    target = tflite_edit.forward(name, op, tf.constant(x), tf.constant(w32))

    def error(wq: Any) -> float:
        return float(tf.reduce_mean((tflite_edit.forward(name, op, tf.constant(x), wq) - target) ** 2))

    nearest = np.clip(np.round(w / scale), -127, 127)
    before = error(tf.constant((nearest * scale).astype(np.float32)))
    optimizer = tf.keras.optimizers.Adam(cfg.learning_rate)
    warm = int(cfg.warmup * cfg.steps)
    n = len(x)
    for step in range(cfg.steps):
        idx = rng.choice(n, size=min(cfg.batch, n), replace=False)
        xb = tf.constant(x[idx])
        yb = tf.gather(target, idx)
        reg_on = step >= warm
        beta = 20.0 - (20.0 - 2.0) * (step - warm) / max(cfg.steps - warm, 1) if reg_on else 20.0
        with tf.GradientTape() as tape:
            h = soft()
            rec = tf.reduce_mean(tf.reduce_sum((tflite_edit.forward(name, op, xb, weights(h)) - yb) ** 2, axis=-1))
            loss = rec
            if reg_on:
                loss = loss + cfg.regularization * tf.reduce_sum(1.0 - tf.abs(2.0 * h - 1.0) ** beta)
        optimizer.apply_gradients([(tape.gradient(loss, v), v)])
    learned = np.clip(floor + (soft().numpy() >= 0.5), -127, 127)
    after = error(tf.constant((learned * scale).astype(np.float32)))
    return learned, before, after
