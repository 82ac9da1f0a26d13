"""TFLite's Quantization Debugger, and selective quantization through it.

The debugger calibrates once and then re-quantizes that calibrated model with different
options (``denylisted_nodes``, ``denylisted_ops``), so a whole sensitivity search costs one
calibration. It needs a converter it can call twice; the concrete-function converter edgeq
uses elsewhere cannot be calibrated twice in TF 2.21, so this module converts from a
static batch-1 clone of a tf_keras model with ``from_keras_model`` (Keras 3 models are moved
to tf_keras first), and from a batch-1 SavedModel of a Keras 3 model tf_keras cannot express.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgeq.config import IOType, QuantizeConfig
from edgeq.data import Dataset
from edgeq.debug.metrics import LayerStat, layer_stat
from edgeq.errors import BadInput, UsageError
from edgeq.modelio import Format, LoadedModel
from edgeq.tfimport import captured_stderr, tensorflow


def _static_batch_keras(obj: Any, shape: tuple[int, ...]) -> Any:
    """A batch-1 copy of a tf_keras model, its input ``shape`` (without the batch; ``--input-shape`` pins it)."""
    import tf_keras

    fixed = tf_keras.models.clone_model(
        obj, input_tensors=tf_keras.Input(batch_shape=(1, *shape), name=obj.inputs[0].name.split(":")[0])
    )
    fixed.set_weights(obj.get_weights())
    return fixed


def _as_tf_keras(model: LoadedModel) -> Any | None:
    """The tf_keras model to convert from, or None for a Keras 3 model tf_keras cannot express.

    A Keras 3 model moved to tf_keras keeps its layer names in the converted tensors (``model/dense/...``),
    which ``--denylist`` matches; the traced Keras 3 graph suffixes them (``functional_1/dense_1/...``)."""
    if model.format != Format.KERAS3:
        return model.obj
    from edgeq.keras_migrate import to_tf_keras

    try:
        return to_tf_keras(model.obj)[0]
    except (BadInput, TypeError, ValueError, KeyError):  # hard_silu, Keras 3-only layers or arguments
        return None


def _save_keras3(model: LoadedModel, folder: str) -> None:
    """Save a Keras 3 model as a batch-1 SavedModel. Keras 3 layers and activations (hard_silu, ...) with
    no tf_keras counterpart cannot be converted through tf_keras, but their traced graph converts."""
    from edgeq.quantize.ptq import static_input_shape

    tf = tensorflow()
    keras_model = model.obj
    spec = tf.TensorSpec(static_input_shape(model, 1), tf.as_dtype(model.inputs[0].dtype), name=model.inputs[0].name)
    holder = tf.Module()
    holder.variables_ = [getattr(v, "value", v) for v in keras_model.variables]  # the tf.Variables inside
    holder.serve = tf.function(lambda x: keras_model(x, training=False), input_signature=[spec])
    tf.saved_model.save(holder, folder, signatures=holder.serve.get_concrete_function())


@contextlib.contextmanager
def converter_for(model: LoadedModel, calib: Dataset) -> Iterator[Any]:
    """A full-integer converter the debugger can use (float I/O; the debugger sets I/O itself).

    A Keras 3 model tf_keras cannot express is converted from a SavedModel in a temporary folder, which
    lives as long as the converter is in use (the debugger converts twice while it is made)."""
    from edgeq.quantize import ptq

    tf = tensorflow()
    with tempfile.TemporaryDirectory(prefix="edgeq-debug-") as tmp:
        tf_keras_model = None if model.format == Format.SAVED_MODEL else _as_tf_keras(model)
        if model.format == Format.SAVED_MODEL:
            converter = tf.lite.TFLiteConverter.from_saved_model(model.path)
        elif tf_keras_model is None:
            _save_keras3(model, tmp)
            converter = tf.lite.TFLiteConverter.from_saved_model(tmp)
        else:
            converter = tf.lite.TFLiteConverter.from_keras_model(
                _static_batch_keras(tf_keras_model, ptq.static_input_shape(model, 1)[1:])
            )
        ptq.configure(converter, QuantizeConfig(io=IOType.FLOAT, allow_float_ops=True), calib)
        yield converter


def _samples(x: np.ndarray) -> Iterator[list[np.ndarray]]:
    for i in range(len(x)):
        yield [x[i : i + 1]]


@dataclass
class Session:
    """A calibrated debugger: layer statistics, and int8 models with any denylist."""

    debugger: Any
    layers: list[LayerStat]
    log: str

    def names(self) -> list[str]:
        return [s.tensor_name for s in self.layers]

    def resolve(self, nodes: list[str]) -> list[str]:
        """Map user-given names (a full tensor name, or a Keras layer name inside it) to tensor names.

        Raises:
            BadInput: a name that matches no tensor, or more than one.
        """
        out = []
        for node in nodes:
            if node in self.names():
                out.append(node)
                continue
            hits = [n for n in self.names() if node in n.replace(";", "/").split("/")]
            if len(hits) != 1:
                shown = ", ".join(self.names()[:6])
                what = "matches no quantized tensor" if not hits else f"matches {len(hits)} tensors"
                raise BadInput(f"--denylist name {node!r} {what}", f"use a tensor name from edgeq debug (e.g. {shown})")
            out.append(hits[0])
        return out

    def quantized_model(self, nodes: Sequence[str] = (), ops: Sequence[str] = (), io: IOType = IOType.INT8) -> bytes:
        """The int8 model with ``nodes`` (tensor names) and ``ops`` (op names) left in float."""
        if io not in (IOType.INT8, IOType.FLOAT):
            raise UsageError(
                f"selective quantization makes int8 or float I/O, not {io.value}", "use --io int8 or --io float"
            )
        tf = tensorflow()
        with captured_stderr():  # the debugger prints its options to stdout
            self.debugger.options = tf.lite.experimental.QuantizationDebugOptions(
                denylisted_nodes=list(nodes) or None, denylisted_ops=list(ops) or None, fully_quantize=io == IOType.INT8
            )
            return bytes(self.debugger.get_nondebug_quantized_model())


def calibrate(model: LoadedModel, calib: Dataset, debug_data: np.ndarray | None = None) -> Session:
    """Calibrate on ``calib`` and run the debugger on ``debug_data`` (default: the calibration set).

    Raises:
        BadInput: the debugger fails on this model (its message is kept).
    """
    tf = tensorflow()
    x = calib.x if debug_data is None else debug_data
    with converter_for(model, calib) as converter, captured_stderr() as log:
        try:
            debugger = tf.lite.experimental.QuantizationDebugger(converter=converter, debug_dataset=lambda: _samples(x))
            debugger.run()
        except (ValueError, RuntimeError) as exc:
            raise BadInput(
                f"the TFLite quantization debugger failed: {str(exc).splitlines()[0][:200]}",
                "check the model converts with edgeq quantize",
            ) from exc
    return Session(debugger=debugger, layers=_layer_stats(debugger), log=log.text)


def _layer_stats(debugger: Any) -> list[LayerStat]:
    """Layer statistics in graph order, from the debugger's own CSV dump (op, scale, zero
    point and the tensor name that ``denylisted_nodes`` expects)."""
    import csv
    import io

    buf = io.StringIO()
    debugger.layer_statistics_dump(buf)
    stats = []
    for i, row in enumerate(csv.DictReader(io.StringIO(buf.getvalue()))):
        stats.append(
            layer_stat(
                i,
                row["op_name"],
                int(row["tensor_idx"]),
                row["tensor_name"],
                row,
                float(row["scale"]),
                int(row["zero_point"]),
            )
        )
    return stats


PASS_THROUGH = ("MAX_POOL_2D", "RESHAPE", "SQUEEZE", "CONCATENATION", "PAD", "TRANSPOSE")


def sensitivity_groups(session: Session) -> list[list[str]]:
    """Tensors to keep in float, most sensitive first (rmse/scale, from the debugger).

    Each group is a layer and the compute layer feeding it: keeping a layer in float does not
    help when its input was already squeezed through a badly scaled int8 tensor upstream.
    """
    from edgeq.tflite import read_bytes

    info = read_bytes(session.quantized_model())
    producer_of = {}
    for op in info.ops:
        for o in op.outputs:
            producer_of[info.tensors[o].name] = op
    layer_names = {s.tensor_name for s in session.layers}

    def feeding_layer(name: str) -> str | None:
        op = producer_of.get(name)
        seen = 0
        while op is not None and seen < 50:
            seen += 1
            inputs = [info.tensors[i] for i in op.inputs if i >= 0 and not info.tensors[i].is_constant]
            if not inputs:
                return None
            upstream = producer_of.get(inputs[0].name)
            if upstream is None:
                return None
            up_name = info.tensors[upstream.outputs[0]].name
            if upstream.name not in PASS_THROUGH and up_name in layer_names:
                return up_name
            op = upstream
        return None

    ranked = [s for s in session.layers if s.op not in PASS_THROUGH and s.rmse_over_scale == s.rmse_over_scale]
    ranked.sort(key=lambda s: -s.rmse_over_scale)
    groups = []
    for s in ranked:
        up = feeding_layer(s.tensor_name)
        groups.append([s.tensor_name] + ([up] if up else []))
    return groups
