"""What the accuracy techniques share when they change a model the converter produced.

Range selection, bias correction and AdaRound change numbers inside the .tflite, never its ops. The
edits themselves (unpack, pack, op and tensor names, new tables) are :mod:`edgeq.tflite.edit`'s, the
one owner of the format; here are the rest: a LiteRT run that keeps every intermediate tensor,
dequantization, and an op's float forward pass.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from edgeq.tflite import edit
from edgeq.tflite.edit import op_name, pack, tensor_name, unpack

# the techniques edit through edgeq.tflite.edit; these names are theirs, used as tflite_edit.unpack(...)
__all__ = ["dequantize", "forward", "op_name", "pack", "run_keeping_tensors", "tensor_name", "unpack"]


def run_keeping_tensors(
    data: bytes,
    x: np.ndarray,
    tensors: Iterable[int],
    keep: Callable[[np.ndarray], np.ndarray] | None = None,
) -> dict[int, list[np.ndarray]]:
    """Run ``data`` on ``x`` (float samples, the model's batch per invoke) and keep the values of
    ``tensors`` (indices into the main subgraph) from every run, raw (not dequantized).

    Uses LiteRT's ``experimental_preserve_all_tensors`` so intermediate tensors are not reused.
    ``keep`` reduces each kept value (for example to a subsample) so memory stays bounded.
    """
    from ai_edge_litert.interpreter import Interpreter

    from edgeq.tfimport import captured_stderr

    wanted = list(tensors)
    with captured_stderr(), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "for debugging purposes only": that is the use here
        interp = Interpreter(model_content=data, experimental_preserve_all_tensors=True)
        interp.allocate_tensors()
    inp = interp.get_input_details()[0]
    batch = int(inp["shape"][0]) if len(inp["shape"]) else 1
    scale, zp = inp["quantization"]
    info = np.iinfo(inp["dtype"]) if np.issubdtype(inp["dtype"], np.integer) else None
    kept: dict[int, list[np.ndarray]] = {i: [] for i in wanted}
    for start in range(0, len(x) - batch + 1, batch):
        chunk = x[start : start + batch]
        if info is not None:
            chunk = np.clip(np.round(chunk / scale + zp), info.min, info.max)
        interp.set_tensor(inp["index"], chunk.astype(inp["dtype"]))
        interp.invoke()
        for i in wanted:
            value = np.array(interp.get_tensor(i))
            kept[i].append(keep(value) if keep is not None else value)
    return kept


def dequantize(values: np.ndarray, tensor: Any, axis_size: int | None = None) -> np.ndarray:
    """Float values of an integer tensor from its (per-tensor or per-axis) scale and zero point."""
    q = tensor.quantization
    scale = np.asarray(q.scale, dtype=np.float64)
    zero = np.asarray(q.zeroPoint, dtype=np.float64)
    if scale.size > 1:
        shape = [1] * values.ndim
        shape[int(q.quantizedDimension or 0)] = scale.size
        scale, zero = scale.reshape(shape), zero.reshape(shape)
    return (values.astype(np.float64) - zero) * scale


def forward(name: str, op: Any, x: Any, w: Any) -> Any:
    """A CONV_2D, DEPTHWISE_CONV_2D or FULLY_CONNECTED op without bias and activation, in TensorFlow
    (differentiable in ``x`` and ``w``), with TFLite's weight layouts: conv (out, h, w, in),
    depthwise (1, h, w, in * multiplier), fully connected (out, in)."""
    from edgeq.tfimport import tensorflow

    tf = tensorflow()
    if name == "FULLY_CONNECTED":
        return tf.matmul(tf.reshape(x, (-1, w.shape[1])), w, transpose_b=True)
    opts = op.builtinOptions
    padding = edit.padding_name(op)
    strides = (1, opts.strideH, opts.strideW, 1)
    dilations = (opts.dilationHFactor or 1, opts.dilationWFactor or 1)
    if name == "CONV_2D":
        return tf.nn.conv2d(x, tf.transpose(w, (1, 2, 3, 0)), strides, padding, dilations=dilations)
    channels = x.shape[-1]
    kernel = tf.reshape(w, (w.shape[1], w.shape[2], channels, w.shape[3] // channels))
    return tf.nn.depthwise_conv2d(x, kernel, strides, padding, dilations=dilations)
