"""Lookup tables for element-wise int8 ops, made by LiteRT's own reference kernels.

An int8 -> int8 op whose output depends only on its input value (LOGISTIC, TANH, HARD_SWISH, ...) is a
256-entry table. Rather than re-deriving each op's float or fixed-point arithmetic, the generator cuts the
op out of the model into a one-op model with a 256-element input and runs it once with LiteRT's
``BUILTIN_REF`` resolver on every int8 value: the table is, by construction, what the reference computes.
"""

from __future__ import annotations

import numpy as np

from edgeq.errors import BadInput
from edgeq.tflite import edit

# ops whose int8 kernel maps each value independently and reads no other tensor
UNARY_OPS = ("LOGISTIC", "TANH", "HARD_SWISH", "ELU", "RELU", "RELU6", "RELU_N1_TO_1", "LEAKY_RELU", "GELU", "QUANTIZE")


def unary_table(data: bytes, op_index: int) -> np.ndarray:
    """The 256 int8 outputs of op ``op_index`` of model ``data`` for inputs -128..127 (BUILTIN_REF)."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    from edgeq.tfimport import captured_stderr

    alone = edit.single_op_model(data, op_index, 256)
    try:
        with captured_stderr():
            interp = Interpreter(model_content=alone, experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
            interp.allocate_tensors()
        interp.set_tensor(interp.get_input_details()[0]["index"], np.arange(-128, 128, dtype=np.int8))
        interp.invoke()
        return interp.get_tensor(interp.get_output_details()[0]["index"]).astype(np.int8).reshape(256)
    except (RuntimeError, ValueError) as exc:
        raise BadInput(
            f"op #{op_index}: LiteRT could not run it alone to tabulate it ({exc})", "compile with --runtime tflm"
        ) from exc
