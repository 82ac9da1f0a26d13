"""Full-integer quantization of a float ``.tflite`` (what people download for phones and Coral).

There is no Keras model to give the TFLite converter, so the float flatbuffer is quantized as it is,
with Google's litert-quantizer (formerly ai-edge-quantizer) and its static int8 recipe (``static_wi8_ai8``: int8 weights per
channel, int8 activations), calibrated on the representative data; ``--mode int16x8`` takes its
``static_wi8_ai16`` recipe (int16 activations). The quantizer makes integer I/O (it quantizes the graph's
input and output tensors); ``--io float`` adds QUANTIZE/DEQUANTIZE ops around that body
(:func:`edgeq.tflite.edit.io_conversion`).

Three things are done around it, each because the tool alone gets them wrong:

- Calibration is measured, not assumed. One calibration pass keeps two statistics of every tensor:
  its global min/max over all samples (``qsv_utils.min_max_update``) and the tool's default, a
  moving average of per-sample ranges (``qsv_utils.moving_average_update``, what the documented
  ``Quantizer.calibrate`` does). Both are quantized, run on the calibration samples against the float
  model, and the one whose worst output is closer to float (SQNR) is kept, so the route is never
  behind the tool's own default recipe on the data it was given. Neither wins everywhere: the moving
  average clipped a face detector's input range (12 dB output SQNR against 26 dB) and wrecked
  BirdNET's location model (-5.3 dB against 21.4 dB), while on other models it is the better one by
  a fraction of a dB (benchmarks/quantizer_recipe.py measures both side by side).
- Operator codes of models written before TFLite schema v3a (``builtin_code`` 0, the op in
  ``deprecated_builtin_code``) are filled in: the quantizer reads only the new field and took the
  convolutions of MediaPipe's detectors for ADDs.
- Float16 weights (a float model saved with fp16 constants and DEQUANTIZE ops in front of them, as
  MediaPipe ships its detectors) are widened back to float32 constants first: the quantizer
  otherwise quantizes the DEQUANTIZE outputs and leaves the fp16 constants in the model.

A model without a signature (most downloaded ones) gets a ``serving_default`` one naming its
input and output tensors, since the quantizer calibrates by signature.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgeq.config import InputShape, IOType, Mode, QuantizeConfig, pin_shapes
from edgeq.errors import BadInput, ConversionFailed, Unavailable, UsageError

RECIPE = "static_wi8_ai8"
RECIPES = {Mode.INT8: RECIPE, Mode.INT16X8: "static_wi8_ai16"}  # int16x8: int8 weights, int16 activations
GLOBAL_MIN_MAX = "global min/max"
MOVING_AVERAGE = "moving average"
CALIBRATIONS = {  # candidate -> what it is; the first wins ties (it never clips a calibration sample)
    GLOBAL_MIN_MAX: "every tensor's min and max over all samples (qsv_utils.min_max_update)",
    MOVING_AVERAGE: "the quantizer's default: a moving average (0.95) of per-sample min/max "
    "(qsv_utils.moving_average_update)",
}
CALIBRATION = (
    "global min/max (qsv_utils.min_max_update) or the quantizer's default moving average of per-sample "
    "ranges (qsv_utils.moving_average_update), whichever has the better worst-output SQNR against the float "
    "model on the calibration data (the choice and both figures end the converter log)"
)
SELECTION_SAMPLES = 256  # at most this many calibration samples (evenly spread) judge the candidates
SMOOTHING = 0.95  # the quantizer's moving-average weight (qsv_utils.moving_average_update's default)
SIGNATURE = "serving_default"


@dataclass(frozen=True)
class FloatTflite:
    """A float .tflite made ready for the quantizer, and what was done to make it so."""

    data: bytes
    input_name: str
    input_shape: tuple[int, ...]
    folded_fp16_constants: int
    added_signature: bool
    pinned_input_shape: tuple[int, ...] | None = None  # the static shape a dynamic input was given


# litert-quantizer is ai-edge-quantizer renamed (0.11.0 is 0.10.0's code under the new import name)
PACKAGE = "litert-quantizer"


def require_quantizer() -> str:
    """The installed litert-quantizer's version.

    Raises:
        Unavailable: it is not installed.
    """
    import importlib.metadata

    try:
        return importlib.metadata.version(PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        raise Unavailable(
            "quantizing a .tflite needs litert-quantizer (formerly ai-edge-quantizer), which is not installed",
            "pip install litert-quantizer (an edgeq dependency: reinstall edgeq)",
        ) from None


def _quantizer_modules() -> tuple[Any, Any, Any, Any, Any]:
    """``calibrator, quantizer, recipe, recipe_manager, qsv_utils`` of litert-quantizer."""
    import importlib

    require_quantizer()
    return tuple(  # type: ignore[return-value]
        importlib.import_module(f"litert_quantizer.{module}")
        for module in ("calibrator", "quantizer", "recipe", "recipe_manager", "utils.qsv_utils")
    )


def check_config(cfg: QuantizeConfig) -> None:
    """Refuse what this route cannot make, before any work.

    Raises:
        UsageError: a mode other than int8, int16x8, fp16 or float (the model as it is); I/O other than
            the quantizer's own (int8, int16) or float; selective quantization; the accuracy techniques.
    """
    if cfg.mode in (Mode.FLOAT, Mode.FP16):
        return
    if cfg.mode not in RECIPES:
        raise UsageError(
            f"a float .tflite can be quantized to int8, int16x8 or fp16 only, not {cfg.mode.value}",
            "use --mode int8, or quantize the Keras model, SavedModel or ONNX file it came from",
        )
    own = IOType.INT8 if cfg.mode == Mode.INT8 else IOType.INT16
    if cfg.io_type not in (own, IOType.FLOAT):
        raise UsageError(
            f"a float .tflite quantized to {cfg.mode.value} has {own.value} or float I/O, not {cfg.io_type.value}",
            f"use --io {own.value} or --io float (the {cfg.mode.value} body with float input and output)",
        )
    if cfg.selective:
        raise UsageError(
            "--denylist/--denylist-ops need a Keras model or SavedModel (the quantization debugger runs on it); "
            "this model is a .tflite, quantized by litert-quantizer",
            "drop them, or quantize the Keras model, SavedModel or ONNX file the .tflite came from",
        )
    if not cfg.techniques.plain:
        source = "Keras model" if cfg.techniques.cle else "Keras model, SavedModel or ONNX file"
        raise UsageError(
            f"{cfg.techniques.label} needs the {source} a .tflite is made from; this model is a .tflite, "
            "quantized by litert-quantizer",
            f"drop --ranges/--cle/--bias-correction/--adaround, or quantize the {source} the .tflite came from",
        )


def prepare(data: bytes, origin: str, shapes: tuple[InputShape, ...] = (), batch: int | None = None) -> FloatTflite:
    """Check that ``data`` is a float, single-input .tflite, pin its dynamic input dimensions (``shapes``,
    from ``--input-shape``; without them a dynamic batch alone takes ``batch``) and ready it for the quantizer.

    Raises:
        UsageError: ``shapes`` that do not fit the model's input (:func:`edgeq.config.pin_shapes`).
        BadInput: already quantized, several inputs or subgraph signatures, a dynamic input shape left.
    """
    from edgeq import tflite
    from edgeq.tflite import edit

    info = tflite.read_bytes(data, origin=origin)
    integer_io = [t.name for t in (*info.inputs, *info.outputs) if t.dtype != "float32"]
    integer_ops = [op.name for op in info.ops if op.compute in ("int8", "int16")]
    if integer_io or integer_ops:
        raise BadInput(
            f"{origin} is already quantized ({'non-float I/O ' + integer_io[0] if integer_io else integer_ops[0]})",
            "give the float .tflite, or use this one as it is",
        )
    if len(info.inputs) != 1:
        raise BadInput(
            f"{origin} has {len(info.inputs)} inputs; edgeq quantizes single-input models",
            "export a single-input model",
        )
    spec = info.inputs[0]
    pins = _pins(spec, shapes, batch, origin)
    if pins:
        data = edit.pin_input_shapes(data, pins, origin)
        spec = tflite.read_bytes(data, origin=origin).inputs[0]
    if spec.is_dynamic:
        example = "x".join(str(d) if d > 0 else ("1" if i == 0 else "N") for i, d in enumerate(spec.shape_signature))
        raise BadInput(
            f"{origin} input {spec.name!r} has a dynamic shape {list(spec.shape_signature)}",
            f"pin it with --input-shape {example} (N: the size you will run it at)",
        )
    model = edit.unpack(data)
    _set_builtin_codes(model)
    folded = _fold_fp16_constants(model)
    added = _add_signature(model, origin)
    return FloatTflite(
        data=edit.pack(model),
        input_name=spec.name,
        input_shape=tuple(spec.shape),
        folded_fp16_constants=folded,
        added_signature=added,
        pinned_input_shape=tuple(spec.shape) if pins else None,
    )


def _pins(spec, shapes: tuple[InputShape, ...], batch: int | None, origin: str) -> dict[str, tuple[int, ...]]:
    """The shape to pin the input to: ``shapes`` checked against it, else ``batch`` for a dynamic batch alone."""
    own = tuple(d if d >= 0 else None for d in spec.shape_signature)
    if shapes:
        return pin_shapes(shapes, [(spec.name, own)], origin)
    if batch is not None and len(own) > 1 and own[0] is None and None not in own[1:]:
        return {spec.name: (batch, *(int(d) for d in own[1:] if d is not None))}
    return {}


def _set_builtin_codes(model) -> None:
    """Fill ``builtin_code`` from ``deprecated_builtin_code`` in models written before schema v3a.

    The quantizer reads only the new field, so an old model's CONV_2D (``builtin_code`` 0) would be
    taken for an ADD and its weights quantized like activations: per tensor, asymmetric, which
    LiteRT then refuses to run."""
    for code in model.operatorCodes:
        code.builtinCode = max(int(code.builtinCode or 0), int(code.deprecatedBuiltinCode or 0))


def _fold_fp16_constants(model) -> int:
    """Replace ``DEQUANTIZE(float16 constant)`` by the float32 constant it computes; the count folded."""
    from edgeq.tflite import edit

    float16 = edit.tensor_type("FLOAT16")
    folded = 0
    for index, sg in enumerate(model.subgraphs):
        kept = []
        for op in sg.operators:
            src = sg.tensors[op.inputs[0]] if edit.op_name(model, op) == "DEQUANTIZE" else None
            raw = model.buffers[src.buffer].data if src is not None else None
            if src is None or src.type != float16 or raw is None or len(raw) == 0:
                kept.append(op)
                continue
            dst = sg.tensors[op.outputs[0]]
            values = np.frombuffer(np.asarray(raw, dtype=np.uint8).tobytes(), dtype=np.float16).astype(np.float32)
            # a new buffer: the output's own is usually buffer 0, shared by every non-constant tensor
            model.buffers.append(edit.new_buffer(values))
            dst.buffer = len(model.buffers) - 1
            folded += 1
        sg.operators = kept
        # the float16 copies no op reads now; every index renumbered, the signatures' too (a signature's
        # output index once pointed past the shortened tensor list: "Invalid tensor index 81 exceeds max 63")
        edit.drop_unused_tensors(model, index)
    return folded


def _add_signature(model, origin: str) -> bool:
    """Give a model without signatures a ``serving_default`` over its main subgraph's I/O."""
    from edgeq.tflite import edit

    if model.signatureDefs:
        if len(model.signatureDefs) > 1:
            raise BadInput(
                f"{origin} has {len(model.signatureDefs)} signatures; edgeq quantizes single-signature models",
                "export the signature to deploy alone",
            )
        return False
    sg = model.subgraphs[0]
    model.signatureDefs = [
        edit.new_signature(
            SIGNATURE,
            0,
            [(sg.tensors[i].name, i) for i in sg.inputs],
            [(sg.tensors[i].name, i) for i in sg.outputs],
        )
    ]
    return True


@dataclass(frozen=True)
class Quantized:
    """The quantized model, the calibration kept and how each candidate measured on the calibration data."""

    data: bytes
    log: str
    calibration: str  # a key of CALIBRATIONS
    worst_sqnr_db: dict[str, float] = field(default_factory=dict)  # candidate -> worst-output SQNR (dB)
    num_selection_samples: int = 0
    note: str = ""  # why the candidates were not compared, when they were not
    candidates: dict[str, bytes] = field(default_factory=dict, repr=False)  # every candidate's model


def quantize(model: FloatTflite, x: np.ndarray, mode: Mode = Mode.INT8) -> tuple[bytes, str]:
    """The ``mode`` model (int8 or int16x8, its I/O of the same type) of ``model`` calibrated on ``x``
    (float samples, model input shape without batch), and what the tool wrote while doing it, ending
    with the calibration chosen (:func:`quantize_measured`).

    Raises:
        ConversionFailed: the quantizer failed (an op it cannot quantize, a custom op).
    """
    q = quantize_measured(model, x, mode)
    return q.data, q.log


def quantize_measured(model: FloatTflite, x: np.ndarray, mode: Mode = Mode.INT8) -> Quantized:
    """Calibrate once keeping both candidate statistics (:data:`CALIBRATIONS`), quantize with each and keep
    the one whose worst output is closer to the float model's on (at most :data:`SELECTION_SAMPLES` of) ``x``.

    Raises:
        ConversionFailed: the quantizer failed (an op it cannot quantize, a custom op).
    """
    from edgeq.tfimport import captured_stderr

    calibrator, quantizer, recipe, recipe_manager, _ = _quantizer_modules()
    batch = model.input_shape[0] if model.input_shape else 1
    signature, input_key = _signature(model.data)
    samples = [{input_key: x[i : i + batch]} for i in range(0, len(x) - batch + 1, batch)]
    rcp = getattr(recipe, RECIPES[mode])()
    try:
        # its C++ log goes to the captured descriptors; its tqdm bars to sys.stderr, which the CLI may
        # have swapped: the library never prints
        with captured_stderr() as log, contextlib.redirect_stderr(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "preserve all tensors is for debugging": it is the use
            manager = recipe_manager.RecipeManager()
            manager.load_quantization_recipe(rcp)
            # one thread: calibration is a few invokes per sample, and the machine is shared
            calib = calibrator.Calibrator(model.data, num_threads=1, qsv_update_func=_both_statistics)
            calib.calibrate({signature: samples}, manager)
            stats = calib.get_model_qsvs()
            built = {}
            for name in CALIBRATIONS:
                q = quantizer.Quantizer(bytearray(model.data), rcp)
                result = q.quantize(_candidate(stats, name), enable_progress_bar=False, enable_progress_report=False)
                built[name] = bytes(result.quantized_model)
    except Exception as exc:  # the tool raises ValueError, RuntimeError, KeyError... for what it cannot do
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConversionFailed(
            f"the quantizer could not quantize the model: {msg[:300]}",
            "check its ops with edgeq inspect; quantize the Keras model, SavedModel or ONNX file it came from instead",
        ) from exc
    return _choose(model, built, x, log.text)


def _both_statistics(qsv: dict, new: dict) -> dict:
    """The calibrator's update: the global min/max in ``min``/``max`` and, beside them, the moving average
    the quantizer keeps by default (``ma_min``/``ma_max``, started from the first sample as it starts)."""
    out = dict(new)
    out["min"] = np.minimum(qsv["min"], new["min"])
    out["max"] = np.maximum(qsv["max"], new["max"])
    for key in ("min", "max"):
        previous = qsv.get(f"ma_{key}", qsv[key])
        out[f"ma_{key}"] = SMOOTHING * np.asarray(previous) + (1 - SMOOTHING) * np.asarray(new[key])
    return out


def _candidate(stats: dict[str, dict], name: str) -> dict[str, dict]:
    """One candidate's statistics, in the quantizer's own ``min``/``max`` keys."""
    prefix = "ma_" if name == MOVING_AVERAGE else ""
    out = {}
    for tensor, qsv in stats.items():
        kept = {k: v for k, v in qsv.items() if not k.startswith("ma_")}
        if prefix and "min" in qsv:
            kept["min"], kept["max"] = qsv.get("ma_min", qsv["min"]), qsv.get("ma_max", qsv["max"])
        out[tensor] = kept
    return out


def _choose(model: FloatTflite, built: dict[str, bytes], x: np.ndarray, log: str) -> Quantized:
    """The candidate with the best worst-output SQNR on the calibration samples (ties: the first)."""
    first = next(iter(built))
    if len(set(built.values())) == 1:
        note = "both calibrations gave the same model"
        return Quantized(
            built[first], f"{log}\nedgeq: calibration {first} ({note})", first, note=note, candidates=built
        )
    batch = model.input_shape[0] if model.input_shape else 1
    count = max(min(len(x), SELECTION_SAMPLES) // batch, 1) * batch
    pick = np.linspace(0, len(x) - 1, count).round().astype(int)
    try:
        worst = _worst_sqnr(model.data, built, np.ascontiguousarray(x[pick]))
    except Exception as exc:  # a model LiteRT cannot run here: keep the range that clips nothing
        note = f"not compared ({type(exc).__name__}: {str(exc).strip()[:200]})"
        return Quantized(built[first], f"{log}\nedgeq: calibration {first}, {note}", first, note=note, candidates=built)
    best = max(built, key=lambda name: (worst[name], name == first))
    figures = "; ".join(f"{name} {value:.2f} dB" for name, value in worst.items())
    line = f"edgeq: calibration {best} (worst-output SQNR on {count} calibration samples: {figures})"
    return Quantized(built[best], f"{log}\n{line}", best, worst, count, candidates=built)


def _worst_sqnr(reference: bytes, built: dict[str, bytes], x: np.ndarray) -> dict[str, float]:
    """Each candidate's worst-output SQNR (dB) against the float model on ``x``, outputs paired by name."""
    from edgeq.bench.fidelity import sqnr_db
    from edgeq.runtime import open_session

    ref = open_session(reference, origin="float model").predict_outputs(x)
    out = {}
    for name, data in built.items():
        got = open_session(data, origin=f"{name} candidate").predict_outputs(x)
        out[name] = min(sqnr_db(ref[k], got[k]) for k in ref)
    return out


def _signature(data: bytes) -> tuple[str, str]:
    """The signature's key and its input's name (a model's own signature may name the input apart
    from the tensor)."""
    from edgeq.tflite import edit

    sig = edit.unpack(data).signatureDefs[0]
    return sig.signatureKey.decode(), sig.inputs[0].name.decode()


def to_fp16(data: bytes) -> tuple[bytes, int]:
    """Float16 weights, as the TFLite converter stores them: each float32 constant becomes a float16
    constant read through a DEQUANTIZE op (which runs once, at load). ``data`` has float32 constants
    only (``prepare`` made it so). Returns the model and how many constants were converted."""
    from edgeq.tflite import edit

    model = edit.unpack(data)
    sg = model.subgraphs[0]
    read = {i for op in sg.operators for i in op.inputs if i >= 0}
    constants = [
        i
        for i in sorted(read)
        if sg.tensors[i].type == edit.tensor_type("FLOAT32")
        and model.buffers[sg.tensors[i].buffer].data is not None
        and len(model.buffers[sg.tensors[i].buffer].data) > 0
    ]
    if not constants:
        return data, 0
    model.operatorCodes.append(edit.new_operator_code("DEQUANTIZE", version=3))  # version 3: float16 input
    dequantize_ops = []
    for i in constants:
        const = sg.tensors[i]
        buffer = model.buffers[const.buffer]
        values = np.frombuffer(np.asarray(buffer.data, dtype=np.uint8).tobytes(), dtype=np.float32)
        buffer.data = np.frombuffer(values.astype(np.float16).tobytes(), dtype=np.uint8)
        const.type = edit.tensor_type("FLOAT16")
        sg.tensors.append(edit.new_tensor(const.name + b"_dequantize", const.shape, "FLOAT32"))
        new = len(sg.tensors) - 1
        for op in sg.operators:
            op.inputs = [new if j == i else j for j in op.inputs]
        dequantize_ops.append(edit.new_operator(len(model.operatorCodes) - 1, [i], [new]))
    sg.operators = dequantize_ops + sg.operators  # constants: computed once, before everything else
    return edit.pack(model), len(constants)
