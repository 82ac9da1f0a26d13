"""Activation range selection for int8 PTQ: minmax, MSE-optimal, percentile.

The converter's int8 path is split in two: a calibration pass (``_experimental_calibrate_only``)
produces a float model whose activation tensors carry the min/max seen over the representative
data, and ``mlir_quantize`` turns that into the int8 model. With the ranges untouched the result is
the plain converter's model byte for byte (tests/quantize/test_ranges.py checks it). Between the two,
this module replaces min/max per tensor:

- ``minmax``: no edit (the plain converter).
- ``mse``: the clip range that minimizes the int8 quantize-dequantize error of the tensor's
  calibration values (a grid over clip factors, jointly then per side).
- ``percentile:P``: the (100-P)th and Pth percentiles of the calibration values.

Left alone: the graph input and output (their scales are the model's I/O contract), outputs
whose scale the int8 kernels fix (SOFTMAX, LOGISTIC, TANH, ...), and tensors touching a
CONCATENATION (one shared scale). Ops that must keep their input's scale (MAX_POOL_2D, RESHAPE,
...) get their input's chosen range.
"""

from __future__ import annotations

import copy
import enum
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgeq.config import IOType, Mode, QuantizeConfig, parse_ranges
from edgeq.data import Dataset
from edgeq.errors import ConversionFailed, UsageError
from edgeq.modelio import LoadedModel
from edgeq.quantize import tflite_edit

FIXED_OUTPUT_OPS = frozenset({"SOFTMAX", "LOG_SOFTMAX", "LOGISTIC", "TANH"})
SAME_SCALE_OPS = frozenset(
    {
        "MAX_POOL_2D",
        "AVERAGE_POOL_2D",
        "RESHAPE",
        "SQUEEZE",
        "EXPAND_DIMS",
        "TRANSPOSE",
        "PAD",
        "PADV2",
        "SLICE",
        "STRIDED_SLICE",
        "GATHER",
        "SPACE_TO_DEPTH",
        "DEPTH_TO_SPACE",
        "SPACE_TO_BATCH_ND",
        "BATCH_TO_SPACE_ND",
        "RESIZE_NEAREST_NEIGHBOR",
        "SPLIT",
        "SPLIT_V",
    }
)
MSE_MAX_VALUES = 65536  # values per tensor in the MSE search (a seeded subsample): bounds its time
SHARED_SCALE_OPS = frozenset({"CONCATENATION", "PACK", "UNPACK"})
# Fine near 1 (typical activations), geometric below (heavy tails, outliers 1000x the bulk).
_CLIP_FACTORS = np.unique(np.concatenate([np.geomspace(1e-3, 0.3, 25), np.linspace(0.3, 1.0, 36)]))


class RangeMethod(enum.StrEnum):
    MINMAX = "minmax"
    MSE = "mse"
    PERCENTILE = "percentile"


@dataclass(frozen=True)
class RangeConfig:
    """How activation ranges are chosen.

    Args:
        method: minmax (the converter's), mse, or percentile.
        percentile: P for ``percentile`` (0 < P <= 100).
        max_samples: calibration samples run to collect each tensor's values.
        values_per_sample: values kept per tensor and sample (a seeded subsample), bounding memory.
        seed: for that subsample.
    """

    method: RangeMethod = RangeMethod.MINMAX
    percentile: float | None = None
    max_samples: int = 256
    values_per_sample: int = 2048
    seed: int = 0

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "method", RangeMethod(self.method))
        except ValueError:
            raise UsageError(
                f"unknown range method {self.method!r}", "use --ranges minmax, mse or percentile:P (0 < P <= 100)"
            ) from None
        if self.method == RangeMethod.PERCENTILE:
            p = self.percentile
            if p is None or not np.isfinite(p) or not 0 < p <= 100:
                raise UsageError(
                    f"--ranges percentile:{p} is out of range",
                    "P must be above 0 and at most 100, e.g. percentile:99.99",
                )
        elif self.percentile is not None:
            raise UsageError(f"--ranges {self.method.value} takes no percentile", "use --ranges percentile:P")
        if self.max_samples < 1 or self.values_per_sample < 1:
            raise UsageError("range selection needs at least one sample and value", "e.g. max_samples=256")

    @classmethod
    def parse(cls, text: str, **kwargs: Any) -> RangeConfig:
        """``minmax``, ``mse`` or ``percentile:P`` as given to ``--ranges``.

        Raises:
            UsageError: an unknown method or a P outside (0, 100].
        """
        method, p = parse_ranges(text)
        return cls(RangeMethod(method), p, **kwargs)

    @property
    def label(self) -> str:
        return f"percentile:{self.percentile:g}" if self.method == RangeMethod.PERCENTILE else self.method.value

    def to_dict(self) -> dict:
        return {
            "method": self.label,
            "max_samples": self.max_samples,
            "values_per_sample": self.values_per_sample,
            "seed": self.seed,
        }


@dataclass(frozen=True)
class TensorRange:
    index: int
    name: str
    calibrated: tuple[float, float]
    chosen: tuple[float, float]
    why: str  # "mse", "percentile", "same scale as input"

    def to_dict(self) -> dict:
        return {"tensor": self.name, "calibrated": list(self.calibrated), "chosen": list(self.chosen), "why": self.why}


@dataclass(frozen=True)
class RangeResult:
    model: bytes
    float_model: bytes  # the calibrated float model: the float reference later techniques compare with
    method: str
    edited: tuple[TensorRange, ...]
    left_alone: tuple[str, ...]  # "tensor: reason"
    num_samples: int
    seconds: float
    notes: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict:
        """For the sidecar: what was changed and why (the model bytes are the artifact)."""
        return {
            "method": self.method,
            "num_samples": self.num_samples,
            "seconds": round(self.seconds, 3),
            "edited": [e.to_dict() for e in self.edited],
            "left_alone": list(self.left_alone),
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class Calibrated:
    """A float model carrying calibration min/max, and what the converter would stamp on its output."""

    model: bytes
    metadata: Any  # the converter's ConversionMetadataT, for byte-identical output


def calibrate(model: LoadedModel, calib: Dataset, cfg: QuantizeConfig) -> Calibrated:
    """The converter's calibration pass only: a float .tflite with min/max per activation tensor.

    Raises:
        UsageError: ``cfg`` is not plain int8 (range editing is an int8 technique).
        ConversionFailed: the converter failed.
    """
    from edgeq.quantize import ptq
    from edgeq.tfimport import captured_stderr

    if cfg.mode != Mode.INT8 or cfg.selective:
        raise UsageError(f"--ranges applies to --mode int8, not {cfg.mode.value}", "use --mode int8")
    converter = ptq.make_converter(model, cfg.batch)
    ptq.configure(converter, cfg, calib)
    converter._experimental_calibrate_only = True
    # The quantized model gets the conversion metadata at the end, as the converter would add it.
    converter.exclude_conversion_metadata = True
    with captured_stderr() as log:
        try:
            data = converter.convert()
        except Exception as exc:
            error: Exception | None = exc
        else:
            error = None
    if error is not None:
        raise ptq._conversion_error(error, log.text, cfg) from error
    return Calibrated(model=bytes(data), metadata=converter._metadata)


def quantize_calibrated(calibrated: Calibrated, ranges_model: bytes | None, io_type: IOType) -> bytes:
    """``mlir_quantize`` a calibrated model (``ranges_model``: the same with edited ranges), then what
    the converter does after it: deduplicate read-only buffers and add the conversion metadata."""
    from tensorflow.lite.python import lite
    from tensorflow.lite.python.convert import deduplicate_readonly_buffers, mlir_quantize
    from tensorflow.lite.tools import flatbuffer_utils

    from edgeq.tfimport import captured_stderr, tensorflow

    tf = tensorflow()
    dtype = {IOType.FLOAT: tf.float32, IOType.INT8: tf.int8, IOType.UINT8: tf.uint8}.get(io_type)
    if dtype is None:
        raise UsageError(f"int8 range selection makes int8, uint8 or float I/O, not {io_type.value}", "use --io int8")
    with captured_stderr() as log:
        try:
            data = mlir_quantize(ranges_model or calibrated.model, input_data_type=dtype, output_data_type=dtype)
            data = deduplicate_readonly_buffers(data)
        except Exception as exc:
            raise ConversionFailed(
                f"int8 quantization of the calibrated model failed ({str(exc).strip()[:200]})",
                "run with -v for the converter log, or use --ranges minmax",
                details={"log": log.text[-4000:]},
            ) from exc
    obj = flatbuffer_utils.convert_bytearray_to_object(data)
    meta = copy.deepcopy(calibrated.metadata)
    meta.options.modelOptimizationModes.extend(lite._get_sparsity_modes(obj))
    meta.environment.modelHash = lite._get_model_hash(obj)
    obj = lite._populate_conversion_metadata(obj, meta)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(obj))


def int8_error(values: np.ndarray, lo: float, hi: float) -> float:
    """Mean squared error of int8 asymmetric quantize-dequantize of ``values`` over [lo, hi]
    (the range nudged to contain zero, as the converter does)."""
    return float(_int8_errors(values, np.array([lo]), np.array([hi]))[0])


def _int8_errors(values: np.ndarray, los: np.ndarray, his: np.ndarray) -> np.ndarray:
    """:func:`int8_error` for many candidate ranges at once (one row per candidate)."""
    lo = np.minimum(los, 0.0)[:, None]
    hi = np.maximum(his, 0.0)[:, None]
    scale = np.where(hi - lo > 0, (hi - lo) / 255.0, 1.0)
    zero = np.clip(np.round(-128.0 - lo / scale), -128, 127)
    q = np.clip(np.round(values[None, :] / scale) + zero, -128, 127)
    err = np.mean((values[None, :] - (q - zero) * scale) ** 2, axis=1)
    return np.where((hi - lo)[:, 0] > 0, err, np.mean(values**2))


def mse_range(values: np.ndarray, lo: float, hi: float) -> tuple[float, float]:
    """The clip range minimizing :func:`int8_error`: the best common factor on both ends, then
    each end alone with the other fixed (only the upper end for a range starting at 0, as after
    ReLU). The full range is always a candidate, so this never does worse than minmax on these
    values."""
    values = values.astype(np.float64, copy=False)
    ones = np.ones_like(_CLIP_FACTORS)
    f_lo, f_hi = 1.0, 1.0
    # candidate factors for each end; None keeps that end at its best factor so far
    steps: list[tuple[np.ndarray | None, np.ndarray | None]]
    if lo >= 0:
        steps = [(ones, _CLIP_FACTORS)]
    else:
        steps = [(_CLIP_FACTORS, _CLIP_FACTORS), (_CLIP_FACTORS, None), (None, _CLIP_FACTORS)]
    best = int8_error(values, lo, hi)
    for cand_lo, cand_hi in steps:
        c_lo = cand_lo if cand_lo is not None else np.full_like(_CLIP_FACTORS, f_lo)
        c_hi = cand_hi if cand_hi is not None else np.full_like(_CLIP_FACTORS, f_hi)
        errors = _int8_errors(values, lo * c_lo, hi * c_hi)
        i = int(np.argmin(errors))
        if errors[i] < best:
            best, f_lo, f_hi = float(errors[i]), float(c_lo[i]), float(c_hi[i])
    return float(lo * f_lo), float(hi * f_hi)


def percentile_range(values: np.ndarray, p: float) -> tuple[float, float]:
    a, b = np.percentile(values, [100.0 - p, p])
    return float(min(a, b)), float(max(a, b))


def select(calibrated: bytes, x: np.ndarray, cfg: RangeConfig) -> tuple[bytes | None, list[TensorRange], list[str]]:
    """Choose ranges per ``cfg`` over the samples ``x``. Returns the edited calibrated model
    (None for minmax: nothing to edit), the edits, and the tensors left alone with the reason."""
    if cfg.method == RangeMethod.MINMAX or cfg.percentile == 100:
        return None, [], []  # percentile:100 is the calibrated min/max itself
    model = tflite_edit.unpack(calibrated)
    graph = model.subgraphs[0]
    tensors = graph.tensors
    io = set(graph.inputs) | set(graph.outputs)
    producer: dict[int, tuple[str, Any]] = {}
    shared: set[int] = set()
    for op in graph.operators:
        name = tflite_edit.op_name(model, op)
        for t in op.outputs:
            producer[int(t)] = (name, op)
        if name in SHARED_SCALE_OPS:
            shared.update(int(t) for t in list(op.inputs) + list(op.outputs) if t >= 0)

    def has_range(i: int) -> bool:
        q = tensors[i].quantization
        return q is not None and q.min is not None and q.max is not None and len(q.min) == 1

    left: list[str] = []
    search: list[int] = []
    for i in sorted(producer):
        if not has_range(i):
            continue
        name = tflite_edit.tensor_name(tensors[i])
        op = producer[i][0]
        if i in io:
            left.append(f"{name}: graph input/output")
        elif op in FIXED_OUTPUT_OPS:
            left.append(f"{name}: {op} output scale is fixed")
        elif i in shared:
            left.append(f"{name}: shares one scale through a concatenation")
        elif op not in SAME_SCALE_OPS:
            search.append(i)
    rng = np.random.default_rng(cfg.seed)
    runs = tflite_edit.run_keeping_tensors(
        calibrated, x[: cfg.max_samples], search, keep=lambda v: _subsample(v.ravel(), cfg.values_per_sample, rng)
    )
    edits: list[TensorRange] = []
    chosen: dict[int, tuple[float, float]] = {}
    for i in search:
        values = np.concatenate(runs.pop(i))
        q = tensors[i].quantization
        lo, hi = float(q.min[0]), float(q.max[0])
        if cfg.method == RangeMethod.MSE:
            new = mse_range(_subsample(values, MSE_MAX_VALUES, rng), lo, hi)
        else:
            new = percentile_range(values, float(cfg.percentile))  # type: ignore[arg-type]
        chosen[i] = new
        edits.append(TensorRange(i, tflite_edit.tensor_name(tensors[i]), (lo, hi), new, cfg.method.value))
    # Same-scale ops in graph order, so chains (pool -> reshape) follow their first input.
    for op in graph.operators:
        name = tflite_edit.op_name(model, op)
        if name not in SAME_SCALE_OPS or not len(op.inputs) or op.inputs[0] not in chosen:
            continue
        for t in op.outputs:
            t = int(t)
            if has_range(t) and t not in io and t not in shared:
                chosen[t] = chosen[int(op.inputs[0])]
                q = tensors[t].quantization
                edits.append(
                    TensorRange(
                        t,
                        tflite_edit.tensor_name(tensors[t]),
                        (float(q.min[0]), float(q.max[0])),
                        chosen[t],
                        f"same scale as {name} input",
                    )
                )
    for i, (lo, hi) in chosen.items():
        tensors[i].quantization.min = [lo]
        tensors[i].quantization.max = [hi]
    return tflite_edit.pack(model), edits, left


def _subsample(values: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    return values if len(values) <= k else rng.choice(values, size=k, replace=False)


def quantize_with_ranges(model: LoadedModel, calib: Dataset, qcfg: QuantizeConfig, cfg: RangeConfig) -> RangeResult:
    """int8 PTQ of ``model`` with activation ranges chosen per ``cfg``.

    Args:
        model: the float Keras/SavedModel model.
        calib: representative data (all of it calibrates; ``cfg.max_samples`` of it feed the search).
        qcfg: int8 with int8, uint8 or float I/O.
        cfg: the range method.

    Returns:
        The int8 .tflite bytes, the calibrated float model, and the ranges that were changed.
        ``minmax`` is the plain converter's model, byte for byte.

    Raises:
        UsageError: not int8, or an I/O type int8 quantization cannot have.
        ConversionFailed: the converter failed.
    """
    start = time.perf_counter()
    calibrated = calibrate(model, calib, qcfg)
    edited, edits, left = select(calibrated.model, calib.x, cfg)
    data = quantize_calibrated(calibrated, edited, qcfg.io_type)
    notes: tuple[str, ...] = ()
    if not edits and cfg.method != RangeMethod.MINMAX and cfg.percentile != 100:
        notes = ("no activation range could be edited: the model is left as the plain converter makes it",)
    return RangeResult(
        model=data,
        float_model=calibrated.model,
        method=cfg.label,
        edited=tuple(edits),
        left_alone=tuple(left),
        num_samples=min(cfg.max_samples, calib.num_samples) if edits else 0,
        seconds=time.perf_counter() - start,
        notes=notes,
    )
