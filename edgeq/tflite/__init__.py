"""The one owner of the .tflite format: it alone imports the schema and ``flatbuffers``.

- :mod:`edgeq.tflite.model`: parse a model once (bounded, validated, cached by content) into typed facts
  (:class:`ModelInfo`: tensors, ops, I/O, quantization) and a :class:`Model` that answers what the facts do
  not carry (builtin options, constant bytes, op versions, every subgraph's ops, signatures, metadata);
- :mod:`edgeq.tflite.check`: the structural validation that runs before any native code reads the bytes;
- :mod:`edgeq.tflite.edit`: unpack, change, pack.

Everyone else asks these modules (tests/unit/test_tflite_owner.py checks it).
"""

from edgeq.tflite.check import MAX_ACTIVATION_BYTES, MAX_ACTIVATION_TENSOR_BYTES, validate
from edgeq.tflite.model import (
    CONVERSION_OPS,
    FLOAT_TYPES,
    INT_ACTIVATION_TYPES,
    Model,
    ModelInfo,
    OpInfo,
    Signature,
    TensorInfo,
    clear_cache,
    custom_op_count,
    load,
    parse,
    read_bytes,
    read_file,
    read_model_bytes,
)

__all__ = [
    "CONVERSION_OPS",
    "FLOAT_TYPES",
    "INT_ACTIVATION_TYPES",
    "MAX_ACTIVATION_BYTES",
    "MAX_ACTIVATION_TENSOR_BYTES",
    "Model",
    "ModelInfo",
    "OpInfo",
    "Signature",
    "TensorInfo",
    "clear_cache",
    "custom_op_count",
    "load",
    "parse",
    "read_bytes",
    "read_file",
    "read_model_bytes",
    "validate",
]
