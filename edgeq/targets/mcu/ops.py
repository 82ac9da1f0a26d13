"""TFLM's operators as data: the MicroMutableOpResolver method that registers each, which ones have
CMSIS-NN kernels, the runtime's flash cost, and the pre-flight rules for models TFLM cannot load.

Whether an op is supported is decided by the real TFLM interpreter (``edgeq.targets.mcu.tflm``); this
table names the resolver call for the C export and lists the ops for ``edgeq targets --supported-ops mcu``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# Builtin op -> MicroMutableOpResolver method (tflite-micro micro_mutable_op_resolver.h). The names are
# not a mechanical CamelCase of the op: AddBatchMatMul, AddCumSum, AddPadV2, AddPrelu, AddSvdf, AddL2Pool2D.
RESOLVER_METHODS: dict[str, str] = {
    "ABS": "AddAbs",
    "ADD": "AddAdd",
    "ADD_N": "AddAddN",
    "ARG_MAX": "AddArgMax",
    "ARG_MIN": "AddArgMin",
    "ASSIGN_VARIABLE": "AddAssignVariable",
    "AVERAGE_POOL_2D": "AddAveragePool2D",
    "BATCH_MATMUL": "AddBatchMatMul",
    "BATCH_TO_SPACE_ND": "AddBatchToSpaceNd",
    "BROADCAST_ARGS": "AddBroadcastArgs",
    "BROADCAST_TO": "AddBroadcastTo",
    "CALL_ONCE": "AddCallOnce",
    "CAST": "AddCast",
    "CEIL": "AddCeil",
    "CONCATENATION": "AddConcatenation",
    "CONV_2D": "AddConv2D",
    "COS": "AddCos",
    "CUMSUM": "AddCumSum",
    "DEPTH_TO_SPACE": "AddDepthToSpace",
    "DEPTHWISE_CONV_2D": "AddDepthwiseConv2D",
    "DEQUANTIZE": "AddDequantize",
    "DIV": "AddDiv",
    "ELU": "AddElu",
    "EMBEDDING_LOOKUP": "AddEmbeddingLookup",
    "EQUAL": "AddEqual",
    "EXP": "AddExp",
    "EXPAND_DIMS": "AddExpandDims",
    "FILL": "AddFill",
    "FLOOR": "AddFloor",
    "FLOOR_DIV": "AddFloorDiv",
    "FLOOR_MOD": "AddFloorMod",
    "FULLY_CONNECTED": "AddFullyConnected",
    "GATHER": "AddGather",
    "GATHER_ND": "AddGatherNd",
    "GREATER": "AddGreater",
    "GREATER_EQUAL": "AddGreaterEqual",
    "HARD_SWISH": "AddHardSwish",
    "IF": "AddIf",
    "L2_NORMALIZATION": "AddL2Normalization",
    "L2_POOL_2D": "AddL2Pool2D",
    "LEAKY_RELU": "AddLeakyRelu",
    "LESS": "AddLess",
    "LESS_EQUAL": "AddLessEqual",
    "LOG": "AddLog",
    "LOG_SOFTMAX": "AddLogSoftmax",
    "LOGICAL_AND": "AddLogicalAnd",
    "LOGICAL_NOT": "AddLogicalNot",
    "LOGICAL_OR": "AddLogicalOr",
    "LOGISTIC": "AddLogistic",
    "MAX_POOL_2D": "AddMaxPool2D",
    "MAXIMUM": "AddMaximum",
    "MEAN": "AddMean",
    "MINIMUM": "AddMinimum",
    "MIRROR_PAD": "AddMirrorPad",
    "MUL": "AddMul",
    "NEG": "AddNeg",
    "NOT_EQUAL": "AddNotEqual",
    "PACK": "AddPack",
    "PAD": "AddPad",
    "PADV2": "AddPadV2",
    "PRELU": "AddPrelu",
    "QUANTIZE": "AddQuantize",
    "READ_VARIABLE": "AddReadVariable",
    "REDUCE_MAX": "AddReduceMax",
    "REDUCE_MIN": "AddReduceMin",
    "RELU": "AddRelu",
    "RELU6": "AddRelu6",
    "RESHAPE": "AddReshape",
    "RESIZE_BILINEAR": "AddResizeBilinear",
    "RESIZE_NEAREST_NEIGHBOR": "AddResizeNearestNeighbor",
    "REVERSE_V2": "AddReverseV2",
    "ROUND": "AddRound",
    "RSQRT": "AddRsqrt",
    "SELECT_V2": "AddSelectV2",
    "SHAPE": "AddShape",
    "SIN": "AddSin",
    "SLICE": "AddSlice",
    "SOFTMAX": "AddSoftmax",
    "SPACE_TO_BATCH_ND": "AddSpaceToBatchNd",
    "SPACE_TO_DEPTH": "AddSpaceToDepth",
    "SPLIT": "AddSplit",
    "SPLIT_V": "AddSplitV",
    "SQRT": "AddSqrt",
    "SQUARE": "AddSquare",
    "SQUARED_DIFFERENCE": "AddSquaredDifference",
    "SQUEEZE": "AddSqueeze",
    "STRIDED_SLICE": "AddStridedSlice",
    "SUB": "AddSub",
    "SUM": "AddSum",
    "SVDF": "AddSvdf",
    "TANH": "AddTanh",
    "TRANSPOSE": "AddTranspose",
    "TRANSPOSE_CONV": "AddTransposeConv",
    "UNIDIRECTIONAL_SEQUENCE_LSTM": "AddUnidirectionalSequenceLSTM",
    "UNPACK": "AddUnpack",
    "VAR_HANDLE": "AddVarHandle",
    "WHILE": "AddWhile",
    "ZEROS_LIKE": "AddZerosLike",
}

# Custom ops with a registration of their own (AddCustom under the hood).
CUSTOM_RESOLVER_METHODS: dict[str, str] = {
    "TFLite_Detection_PostProcess": "AddDetectionPostprocess",
    "CIRCULAR_BUFFER": "AddCircularBuffer",
    "ethos-u": "AddEthosU",  # needs a TFLM build with the Ethos-U driver (not the Python package)
}

# Ops with an optimized int8 kernel in tflite-micro tensorflow/lite/micro/kernels/cmsis_nn/.
CMSIS_NN_OPS = frozenset(
    {
        "ADD",
        "AVERAGE_POOL_2D",
        "BATCH_MATMUL",
        "CONV_2D",
        "DEPTHWISE_CONV_2D",
        "FULLY_CONNECTED",
        "MAXIMUM",
        "MAX_POOL_2D",
        "MINIMUM",
        "MUL",
        "PAD",
        "SOFTMAX",
        "SVDF",
        "TRANSPOSE",
        "TRANSPOSE_CONV",
        "UNIDIRECTIONAL_SEQUENCE_LSTM",
    }
)

# What a missing op can be replaced with (the hint of the error that names it).
ALTERNATIVES: dict[str, str] = {
    "TILE": "broadcast with a Mul/Add against a constant, or repeat the data on the host",
    "TOPK_V2": "take the top-k on the host after the model (ARG_MAX is supported)",
    "ATAN2": "compute it outside the model",
    "SIGN": "compare with GREATER/LESS and combine, or compute it outside the model",
    "ONE_HOT": "feed one-hot inputs from the host",
    "ethos-u": "this model was compiled by Vela for an Ethos-U NPU: check the model from before Vela, "
    "or use --target ethos-u",
}

# Flash taken by TFLM itself: a fixed framework part plus one kernel per distinct op. The two data
# points: the TFLM README ("the core runtime fits in 16 KB on an Arm Cortex M3") and tflite-micro
# PR #378 (keyword_benchmark, 5 registered kernels: text 56,860 bytes). Toolchain, logging and
# CMSIS-NN vs reference kernels move the real figure by tens of KB (tensorflow/tensorflow#48073 saw
# 160 KB with armcc): an estimate, labelled as one.
RUNTIME_FLASH_BASE_BYTES = 36 * 1024
RUNTIME_FLASH_PER_OP_BYTES = 4 * 1024
RUNTIME_FLASH_BASIS = (
    "TFLM runtime flash estimate: 36 KiB framework + 4 KiB per distinct op kernel (fitted to tflite-micro "
    "PR #378: keyword_benchmark with 5 kernels = 56,860 bytes of text; TFLM README: core runtime 16 KB on "
    "Cortex-M3). Toolchain, logging and kernel choice move it by tens of KB."
)

# The arena constant written to the firmware: the measured arena plus this margin. The Python
# interpreter runs the reference kernels on a 64-bit host; CMSIS-NN kernels request scratch buffers
# (im2col, a few KB) that the reference kernels do not, while a 32-bit target's pointers shrink the
# interpreter's own structs (the arena's tail).
ARENA_MARGIN_FRACTION = 0.10
ARENA_MARGIN_BYTES = 1024
ARENA_ALIGNMENT = 16
ARENA_MARGIN_BASIS = (
    "arena constant = measured arena + 10% + 1 KiB, rounded up to 16 bytes: room for the scratch buffers "
    "CMSIS-NN kernels request (the Python interpreter runs the reference kernels)"
)


def runtime_flash_bytes(num_distinct_ops: int) -> int:
    return RUNTIME_FLASH_BASE_BYTES + RUNTIME_FLASH_PER_OP_BYTES * num_distinct_ops


def arena_with_margin(arena_bytes: int) -> int:
    raw = arena_bytes * (1 + ARENA_MARGIN_FRACTION) + ARENA_MARGIN_BYTES
    return int(math.ceil(raw / ARENA_ALIGNMENT) * ARENA_ALIGNMENT)


def resolver_method(op: str) -> str | None:
    return RESOLVER_METHODS.get(op) or CUSTOM_RESOLVER_METHODS.get(op)


@dataclass(frozen=True)
class Rule:
    """A condition under which TFLM aborts the process instead of returning an error; checked on the file
    before the interpreter sees it. ``text`` is the message, ``fix`` the hint."""

    id: str
    text: str
    fix: str
    source: str


SOFTMAX_MIN_SCALE = 2.0**-26
RULES = (
    Rule(
        "softmax-input-scale",
        "An int8 SOFTMAX needs input scale x beta > 2^-26 (1.49e-8): TFLM's CalculateSoftmaxParams calls "
        "QuantizeMultiplierGreaterThanOne on scale x beta x 2^26, which aborts the process below that.",
        "the calibration collapsed (the logits were ~0 on every sample): re-quantize with representative "
        "data, or a trained model",
        "tflite-micro kernels/softmax_common.cc; observed: SIGABRT in QuantizeMultiplierGreaterThanOne",
    ),
    Rule(
        "float16-weights",
        "TFLM has no float16 kernels: a DEQUANTIZE of float16 weights (a model converted with float16 "
        "quantization) stops at TFLM's type assert in DEQUANTIZE's Prepare",
        "convert for the microcontroller in int8 (edgeq quantize MODEL --mode int8 --data CALIBRATION.npz), or "
        "in float32 without float16 quantization",
        "tflite-micro kernels/dequantize_common.cc (input->type must be int8, int16 or uint8)",
    ),
)


def preflight(info) -> list[dict]:
    """Rule violations of a :class:`edgeq.tflite.ModelInfo` (a list of {rule, op, index, text, fix})."""
    found = []
    for op in info.ops:
        if op.name == "SOFTMAX" and op.inputs:
            t = info.tensors[op.inputs[0]]
            if t.dtype == "int8" and t.scales and t.scales[0] < SOFTMAX_MIN_SCALE:
                rule = RULES[0]
                found.append(
                    {
                        "rule": rule.id,
                        "op": op.name,
                        "index": op.index,
                        "text": f"SOFTMAX #{op.index} has input scale {t.scales[0]:.3g}: {rule.text}",
                        "fix": rule.fix,
                    }
                )
    fp16 = [op for op in info.ops if op.name == "DEQUANTIZE" and info.tensors[op.inputs[0]].dtype == "float16"]
    if fp16:
        rule = RULES[1]
        found.append(
            {
                "rule": rule.id,
                "op": "DEQUANTIZE",
                "index": fp16[0].index,
                "text": f"{len(fp16)} DEQUANTIZE op(s) (first #{fp16[0].index}) turn float16 weights into float32: "
                + rule.text,
                "fix": rule.fix,
            }
        )
    return found


def table() -> list[dict]:
    """The supported-ops table as rows (``edgeq targets --supported-ops mcu``)."""
    rows = [
        {
            "op": op,
            "name": method,
            "since_runtime": "all",
            "limitations": [] if op not in CMSIS_NN_OPS else ["CMSIS-NN optimized int8 kernel on Cortex-M"],
            "confirmed": True,
            "source": "tflite-micro micro_mutable_op_resolver.h",
            "note": "",
        }
        for op, method in RESOLVER_METHODS.items()
    ]
    rows += [
        {
            "op": op,
            "name": method,
            "since_runtime": "all",
            "limitations": ["custom op"],
            "confirmed": True,
            "source": "tflite-micro micro_mutable_op_resolver.h",
            "note": "needs the Ethos-U driver in the TFLM build" if op == "ethos-u" else "",
        }
        for op, method in CUSTOM_RESOLVER_METHODS.items()
    ]
    return rows
