"""Post-training quantization with the TFLite converter.

The converter is always fed a concrete function with a static input shape (batch 1 by
default), so the produced model has no dynamic dimensions for edge targets to trip on.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import numpy as np

from edgeq.config import IOType, Mode, QuantizeConfig
from edgeq.data import Dataset
from edgeq.errors import BadInput, ConversionFailed, EdgeqError
from edgeq.modelio import Format, LoadedModel
from edgeq.tfimport import captured_stderr, tensorflow


def static_input_shape(model: LoadedModel, batch: int) -> tuple[int, ...]:
    """The input shape with the batch fixed, or a clear error for other dynamic dims."""
    if len(model.inputs) != 1:
        raise BadInput(
            f"model has {len(model.inputs)} inputs; edgeq quantizes single-input models",
            "export a single-input model",
        )
    spec = model.inputs[0]
    rest = spec.shape[1:]
    if any(d is None for d in rest):
        raise BadInput(
            f"model input {spec.name!r} has dynamic dimensions {list(spec.shape)}",
            "pin them with --input-shape, e.g. --input-shape "
            + "x".join(str(d) if d is not None else ("1" if i == 0 else "N") for i, d in enumerate(spec.shape)),
        )
    return (batch, *[int(d) for d in rest if d is not None])


def make_converter(model: LoadedModel, batch: int):
    """A TFLiteConverter over a static-shape concrete function of ``model``."""
    tf = tensorflow()
    shape = static_input_shape(model, batch)
    spec = tf.TensorSpec(shape, tf.as_dtype(model.inputs[0].dtype), name=model.inputs[0].name)
    holder = tf.Module()
    if model.format == Format.SAVED_MODEL:
        signature = model.obj.signatures["serving_default"]
        name = model.inputs[0].name
        holder.model = model.obj
        holder.serve = tf.function(lambda x: signature(**{name: x}), input_signature=[spec])
    else:
        keras_model = model.obj
        # The converter saves ``holder`` as a SavedModel before converting. Holding only the variables
        # (not the Keras model) keeps Keras from tracing every layer into that SavedModel: the same
        # flatbuffer, in a third of the time (benchmarks/run.py, quantize overhead).
        # Keras 3 variables wrap tf.Variables; the converter must see the tf ones to freeze them.
        holder.variables_ = [
            getattr(v, "value", v) if model.format == Format.KERAS3 else v for v in keras_model.variables
        ]
        names = [o.name for o in model.outputs]
        if len(names) > 1:
            # Keyed by the Keras output names, the .tflite's signature names each output: its output tensors
            # come out in another order than the model's, so position says nothing (edgeq.outputs pairs by name).
            def serve(x: Any) -> dict:
                y = keras_model(x, training=False)
                return dict(y) if isinstance(y, dict) else dict(zip(names, y, strict=True))

            holder.serve = tf.function(serve, input_signature=[spec])
        else:
            holder.serve = tf.function(lambda x: keras_model(x, training=False), input_signature=[spec])
    concrete = holder.serve.get_concrete_function()
    return tf.lite.TFLiteConverter.from_concrete_functions([concrete], holder)


def _representative(x: np.ndarray, batch: int) -> Iterator[list[np.ndarray]]:
    for start in range(0, len(x) - batch + 1, batch):
        yield [x[start : start + batch]]


def configure(converter, cfg: QuantizeConfig, calib: Dataset | None) -> None:
    """Set the converter's options for ``cfg.mode`` (documented TFLite PTQ recipes)."""
    tf = tensorflow()
    ops = tf.lite.OpsSet
    io_dtypes = {IOType.FLOAT: tf.float32, IOType.INT8: tf.int8, IOType.UINT8: tf.uint8, IOType.INT16: tf.int16}
    mode = cfg.mode
    if mode == Mode.FLOAT:
        return
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if mode == Mode.DYNAMIC:
        return
    if mode == Mode.FP16:
        converter.target_spec.supported_types = [tf.float16]
        return
    assert calib is not None
    x, batch = calib.x, cfg.batch
    converter.representative_dataset = lambda: _representative(x, batch)
    integer_ops = (
        ops.TFLITE_BUILTINS_INT8
        if mode == Mode.INT8
        else ops.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8
    )
    converter.target_spec.supported_ops = [integer_ops, ops.TFLITE_BUILTINS] if cfg.allow_float_ops else [integer_ops]
    if cfg.io_type != IOType.FLOAT:
        converter.inference_input_type = io_dtypes[cfg.io_type]
        converter.inference_output_type = io_dtypes[cfg.io_type]


def convert(model: LoadedModel, cfg: QuantizeConfig, calib: Dataset | None) -> tuple[bytes, str]:
    """Convert ``model`` per ``cfg``. Returns the flatbuffer and the converter's log.

    Raises:
        ConversionFailed: the converter raised; the message names the op when it can.
    """
    with captured_stderr() as log:
        error: Exception | None = None
        try:  # tracing the model (make_converter) fails like a conversion: in TensorFlow's graph code
            converter = make_converter(model, cfg.batch)
            configure(converter, cfg, calib)
            data = converter.convert()
        except EdgeqError:
            raise  # edgeq's own refusals (bad data, usage) keep their kind and exit code
        except Exception as exc:
            error = exc
    if error is not None:
        raise _conversion_error(error, log.text, cfg) from error
    return bytes(data), log.text


def _conversion_error(exc: Exception, log: str, cfg: QuantizeConfig) -> ConversionFailed:
    from edgeq.onnx_import import parse_log

    text = f"{exc}\n{log}"
    ops = sorted(set(re.findall(r"'tfl\.(\w+)' op", text)) | set(re.findall(r"op '(\w+)' is neither", text)))
    failure = parse_log(f"{log}\n{type(exc).__name__}: {exc}")
    # the MLIR diagnostics ("error: ...") when there are some; else the last exception line, never the
    # opening of a graph-mode error ("in user code:")
    lines = [ln.strip() for ln in str(exc).splitlines() if "error:" in ln.lower()] or [failure.reason]
    what = f"ops {', '.join(ops)}: " if ops else f"op {failure.op} (node {failure.node}): " if failure.node else ""
    hint = (
        "pass --allow-float-ops to keep unsupported ops in float; rerun with -v for the converter log"
        if cfg.mode.needs_data and not cfg.allow_float_ops
        else "rerun with -v for the converter log"
    )
    return ConversionFailed(
        f"TFLite converter failed ({what}{lines[0][:300]})",
        hint,
        details={"ops": ops, **failure.to_dict(), "log": log[-4000:], "log_tail": failure.tail},
    )
