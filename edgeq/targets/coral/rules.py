"""What the Edge TPU runs, as data: the compiler's statuses, the model requirements, the supported
operations with their documented limits, and the hardware profile.

Every rule's ``text`` is the message a user sees when the rule is why an op stays on the CPU, and a
line of ``edgeq targets --supported-ops coral``. The predicates that test a limit live in
:mod:`edgeq.targets.coral.preflight` under the rule's ``check`` name; this module imports nothing heavy.

Sources (``source`` keys below; full citations in docs/coral.md and tests/data/edgetpu/SOURCE.md):

- ``coral-table-v12``: Coral's supported-operations table before runtime 13 ("Operation name | Known
  limitations"), read from a verbatim mirror (dgist-datalab/Datalab_Intern,
  Edge_TPU/convert_model_for_Edge_TPU.md) of coral.ai/docs/edgetpu/models-intro.
- ``axis-artpec7``: the current table's wording for the first 24 rows, mirrored by Axis for ARTPEC-7 (an
  Edge TPU) at developer.axis.com/computer-vision/on-device/system-on-chip/artpec-7/supported-ops/;
  that page has no runtime-version column.
- ``issue``: a maintainer's statement or a real compiler log in a public issue (URL in ``note``).
- ``memory``: the current coral.ai table as remembered, not re-read here: UNCONFIRMED.

``confirmed`` is True only when the op's membership *and* the ``since_runtime`` were read in a source.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# --- the compiler's own per-op statuses (verbatim from real logs, tests/data/edgetpu) -----------------
MAPPED = "Mapped to Edge TPU"
STRANDED = "More than one subgraph is not supported"
NOT_SUPPORTED = "Operation not supported"
UNSPECIFIED = "Operation is otherwise supported, but not mapped due to some unspecified limitation"
DATA_TYPE = "Operation is working on an unsupported data type"
OP_VERSION = "Operation version not supported"
STRIDES = "Only Strided-Slice with unitary strides supported"
RANK = "Tensor has unsupported rank (up to 3 innermost dimensions mapped)"
NOT_CONSTANT = "Filter, bias, or other param is not constant at compile-time"

STATUSES = (MAPPED, STRANDED, NOT_SUPPORTED, UNSPECIFIED, DATA_TYPE, OP_VERSION, STRIDES, RANK, NOT_CONSTANT)

# Compiler 16.0.384591198 (the last release) emits runtime-14 packages unless told -m N
# (google-coral/edgetpu#439: "Default was 14"; #435, #561).
DEFAULT_RUNTIME_VERSION = 14
KNOWN_RUNTIME_VERSIONS = tuple(range(10, 15))

# The hardware, as data a quantization planner reads (edgeq.targets.base.Target.profile).
PROFILE = {
    "integer_only": True,  # "fully 8-bit quantized" models only (coral.ai models-intro)
    "int16_activations": False,
    "cpu_fallback_splits_graph": True,  # the first unmapped op and what depends on it run on the CPU
    "on_chip_parameter_bytes": 8 * 1024 * 1024,  # "~8 MB" of SRAM caches parameters (coral.ai pipeline)
    "max_tensor_rank_mapped": 3,  # only the 3 innermost dimensions may be > 1
    "batch": 1,
}

# Real logs show "On-chip memory used" + "remaining" between ~6.9 and ~8.0 MiB: activations share it.
ON_CHIP_PARAMETER_BYTES = PROFILE["on_chip_parameter_bytes"]


@dataclass(frozen=True)
class Requirement:
    """A whole-model requirement; breaking it is a hard error (exit 3) with ``fix`` as the hint."""

    id: str
    text: str
    fix: str
    source: str


REQUIREMENTS = (
    Requirement(
        "static-shapes",
        "Tensor sizes are constant at compile time: no dynamic dimensions.",
        "quantize the float model with its input shape pinned: edgeq quantize FLOAT_MODEL --input-shape 1xHxWxC "
        "(Keras, SavedModel, ONNX or float .tflite)",
        "coral-table-v12",
    ),
    Requirement(
        "batch-1",
        "Batch size is 1: with more than 3 dimensions only the 3 innermost may be larger than 1.",
        "quantize the float model with batch 1: edgeq quantize FLOAT_MODEL --input-shape 1xHxWxC",
        "coral-table-v12; google-coral/edgetpu#700",
    ),
    Requirement(
        "fully-integer",
        "Every op computes in 8-bit integers (full-integer quantization); float and dynamic-range "
        "(hybrid) ops are not compiled.",
        "quantize with --mode int8 --data CALIBRATION.npz",
        "coral-table-v12; google-coral/edgetpu#313 ('Model not quantized')",
    ),
    Requirement(
        "8-bit-activations",
        "Activations are 8-bit (int8 or uint8); 16-bit activations (int16x8) are not supported.",
        "quantize with --mode int8 --data CALIBRATION.npz",
        "coral-table-v12",
    ),
)


@dataclass(frozen=True)
class Limit:
    """One documented limitation of a supported op.

    ``check`` names a predicate in preflight.CHECKS (None: documented but not predictable from the file,
    listed as a note). ``runtimes`` is the inclusive range of runtime versions the wording applies to.
    """

    text: str
    check: str | None = None
    status: str = UNSPECIFIED
    params: dict = field(default_factory=dict)
    runtimes: tuple[int, int] = (0, 99)
    confirmed: bool = True

    def applies(self, runtime: int) -> bool:
        return self.runtimes[0] <= runtime <= self.runtimes[1]


@dataclass(frozen=True)
class OpRule:
    op: str  # TFLite builtin operator name, as the compiler prints it
    name: str  # the name in Coral's table
    since_runtime: int  # 0: every runtime version
    limits: tuple[Limit, ...] = ()
    source: str = "coral-table-v12"
    confirmed: bool = True
    note: str = ""


NO_FUSED_ACTIVATION = Limit("No fused activation function.", "no_fused_activation")
BATCH_AXIS_NOTE = "the batch dimension is any dimension outside the 3 innermost"

RULES: tuple[OpRule, ...] = (
    OpRule("ADD", "Add", 0),
    OpRule("AVERAGE_POOL_2D", "AveragePool2d", 0, (NO_FUSED_ACTIVATION,)),
    OpRule(
        "CONCATENATION",
        "Concatenation",
        0,
        (
            NO_FUSED_ACTIVATION,
            Limit(
                "If any input is a compile-time constant tensor, there must be only 2 inputs, and this constant "
                "tensor must be all zeroes (effectively, a zero-padding op).",
                "concat_constant_is_zero_pad",
            ),
        ),
    ),
    OpRule(
        "CONV_2D",
        "Conv2d",
        0,
        (
            Limit("Filter and bias are constant at compile time.", "constant_params", NOT_CONSTANT, {"inputs": [1, 2]}),
            Limit(
                "Must use the same dilation in x and y dimensions.",
                "same_dilation",
                runtimes=(13, 99),
                confirmed=False,
            ),
        ),
        note="dilation wording: axis-artpec7; its runtime 13+ attribution is unconfirmed",
    ),
    OpRule(
        "DEPTHWISE_CONV_2D",
        "DepthwiseConv2d",
        0,
        (
            Limit("Filter and bias are constant at compile time.", "constant_params", NOT_CONSTANT, {"inputs": [1, 2]}),
            Limit("Dilated conv kernels are not supported.", "no_dilation", runtimes=(0, 12), confirmed=False),
            Limit(
                "Must use the same dilation in x and y dimensions.",
                "same_dilation",
                runtimes=(13, 99),
                confirmed=False,
            ),
        ),
        note="dilation wording: axis-artpec7; the runtime split and the <=12 wording are unconfirmed",
    ),
    OpRule("EXPAND_DIMS", "ExpandDims", 13, source="axis-artpec7", confirmed=False, note="runtime 13+ unconfirmed"),
    OpRule(
        "FULLY_CONNECTED",
        "FullyConnected",
        0,
        (
            Limit(
                "Weights and bias are constant at compile time.", "constant_params", NOT_CONSTANT, {"inputs": [1, 2]}
            ),
            Limit("Only the default format is supported for fully-connected weights.", "fc_default_weights"),
            Limit("Output tensor is one-dimensional.", "output_1d"),
        ),
    ),
    OpRule("L2_NORMALIZATION", "L2Normalization", 0),
    OpRule("LOGISTIC", "Logistic", 0),
    OpRule(
        "UNIDIRECTIONAL_SEQUENCE_LSTM",
        "LSTM",
        14,
        (Limit("Unidirectional LSTM only.", None),),
        source="axis-artpec7",
        confirmed=False,
        note="runtime 14+ unconfirmed",
    ),
    OpRule("MAXIMUM", "Maximum", 0),
    OpRule("MAX_POOL_2D", "MaxPool2d", 0, (NO_FUSED_ACTIVATION,)),
    OpRule(
        "MEAN",
        "Mean",
        0,
        (
            Limit(
                "Supports reduction along x- and/or y-dimensions only.",
                "axes_within",
                params={"input": 1, "allowed": "yx"},
                runtimes=(0, 12),
            ),
            Limit(
                "No reduction in batch dimension. If a z-reduction, the z-dimension must be multiple of 4.",
                "axes_within",
                params={"input": 1, "allowed": "yxz", "z_multiple": 4},
                runtimes=(13, 99),
                confirmed=False,
            ),
        ),
        note="13+ wording: axis-artpec7",
    ),
    OpRule("MINIMUM", "Minimum", 0),
    OpRule("MUL", "Mul", 0),
    OpRule(
        "PACK",
        "Pack",
        13,
        (Limit("No packing in batch dimension.", "pack_not_batch"),),
        source="axis-artpec7",
        confirmed=False,
        note="runtime 13+ unconfirmed",
    ),
    OpRule(
        "PAD",
        "Pad",
        0,
        (
            Limit(
                "Supports padding along x- and/or y-dimensions only.",
                "pad_within",
                params={"allowed": "yx"},
                runtimes=(0, 12),
            ),
            Limit(
                "No padding in batch dimension.",
                "pad_within",
                params={"allowed": "yxz"},
                runtimes=(13, 99),
                confirmed=False,
            ),
        ),
        note="13+ wording: axis-artpec7",
    ),
    OpRule(
        "PRELU",
        "PReLU",
        13,
        (
            Limit(
                "Alpha must be 1-dimensional (only the innermost dimension can be >1 size). If using Keras PReLU "
                "with 4D input (batch, height, width, channels), then shared_axes must be [1,2] so each filter has "
                "only one set of parameters.",
                "prelu_alpha_1d",
            ),
        ),
        source="axis-artpec7",
        confirmed=False,
        note="runtime 13+ unconfirmed",
    ),
    OpRule(
        "QUANTIZE",
        "Quantize",
        13,
        source="axis-artpec7",
        confirmed=False,
        note="runtime 13+ unconfirmed; an integer-to-integer QUANTIZE maps (real logs), a float-to-integer one "
        "at the model input stays on the CPU",
    ),
    OpRule(
        "REDUCE_MAX",
        "ReduceMax",
        14,
        (Limit("Cannot operate on the batch dimension.", "axes_within", params={"input": 1, "allowed": "yxz"}),),
        source="axis-artpec7",
        confirmed=False,
        note="runtime 14+ unconfirmed",
    ),
    OpRule(
        "REDUCE_MIN",
        "ReduceMin",
        14,
        (Limit("Cannot operate on the batch dimension.", "axes_within", params={"input": 1, "allowed": "yxz"}),),
        source="axis-artpec7",
        confirmed=False,
        note="runtime 14+ unconfirmed",
    ),
    OpRule("RELU", "ReLU", 0),
    OpRule("RELU6", "ReLU6", 0),
    OpRule("RELU_N1_TO_1", "ReLUN1To1", 0),
    OpRule(
        "RESHAPE",
        "Reshape",
        0,
        (Limit("Certain reshapes might not be mapped for large tensor sizes.", None),),
        note="limit wording: axis-artpec7",
    ),
    OpRule(
        "RESIZE_BILINEAR",
        "ResizeBilinear",
        0,
        (
            Limit("Input/output is a 3-dimensional tensor.", "io_3d"),
            Limit(
                "Depending on input/output size, this operation may not be mapped to the Edge TPU to avoid loss in "
                "precision.",
                None,
            ),
        ),
    ),
    OpRule(
        "RESIZE_NEAREST_NEIGHBOR",
        "ResizeNearestNeighbor",
        0,
        (
            Limit("Input/output is a 3-dimensional tensor.", "io_3d"),
            Limit(
                "Depending on input/output size, this operation may not be mapped to the Edge TPU to avoid loss in "
                "precision.",
                None,
            ),
        ),
    ),
    OpRule("RSQRT", "Rsqrt", 14, source="memory", confirmed=False),
    OpRule("SLICE", "Slice", 0),
    OpRule(
        "SOFTMAX",
        "Softmax",
        0,
        (
            Limit(
                "Supports only 1D input tensor with a max of 16,000 elements.",
                "softmax_1d",
                params={"max_elements": 16000},
            ),
        ),
    ),
    OpRule("SPACE_TO_DEPTH", "SpaceToDepth", 0),
    OpRule(
        "SPLIT",
        "Split",
        0,
        (Limit("No splitting in batch dimension.", "split_not_batch", confirmed=False),),
        note="the batch-dimension limit is unconfirmed (not in the pre-13 table)",
    ),
    OpRule(
        "SQUEEZE",
        "Squeeze",
        0,
        (
            Limit(
                "Supported only when input tensor dimensions that have leading 1s (that is, no relayout needed). "
                "For example input tensor with [y][x][z] = 1,1,10 or 1,5,10 is ok. But [y][x][z] = 5,1,10 is not "
                "supported.",
                "squeeze_leading_ones",
                runtimes=(0, 12),
            ),
        ),
        note="no limit from runtime 13 (unconfirmed)",
    ),
    OpRule("SQUARED_DIFFERENCE", "SquaredDifference", 14, source="memory", confirmed=False),
    OpRule(
        "STRIDED_SLICE",
        "StridedSlice",
        0,
        (
            Limit(
                "Supported only when all strides are equal to 1 (that is, effectively a Stride op), and with "
                "ellipsis-axis-mask == 0, and new-axis-max == 0.",
                "unit_strides",
                STRIDES,
            ),
            Limit("Ellipsis-axis-mask and new-axis-mask are 0.", "no_ellipsis_new_axis"),
        ),
    ),
    OpRule("SUB", "Sub", 0),
    OpRule(
        "SUM",
        "Sum",
        13,
        (Limit("Cannot operate on the batch dimension.", "axes_within", params={"input": 1, "allowed": "yxz"}),),
        source="memory",
        confirmed=False,
    ),
    OpRule("TANH", "Tanh", 0),
    OpRule(
        "TRANSPOSE",
        "Transpose",
        14,
        source="issue",
        confirmed=True,
        note="compiler 16 (runtime 14) added it: google-coral/edgetpu#193 (maintainer), mapped in real v16 logs; "
        "'Operation not supported' in v14/v15 logs (#242, #342)",
    ),
    OpRule(
        "TRANSPOSE_CONV",
        "TransposeConv",
        13,
        (Limit("Filter is constant at compile time.", "constant_params", NOT_CONSTANT, {"inputs": [1]}),),
        source="issue",
        confirmed=False,
        note="listed in the table per google-coral/edgetpu#684; runtime 13+ unconfirmed",
    ),
)

RULES_BY_OP = {r.op: r for r in RULES}

# Ops seen unsupported in real logs or maintainer answers, with what to use instead.
ALTERNATIVES = {
    "LEAKY_RELU": "LeakyReLU is not an Edge TPU op (google-coral/edgetpu#147): use ReLU, or PReLU with "
    "shared_axes=[1, 2] (runtime 13+)",
    "HARD_SWISH": "use ReLU6 or a Logistic-based swish",
    "GATHER": "replace the gather with a slice or a one-hot matmul",
    "FLOOR_MOD": "compute the modulo outside the model",
    "BATCH_MATMUL": "use a Dense (FULLY_CONNECTED) layer with constant weights",
    "DEQUANTIZE": "keep the model's output integer (quantize with --io int8)",
    "TRANSPOSE": "Transpose needs runtime 14 (compiler 16); for older runtimes keep the model NHWC end to end",
    "CAST": "remove the cast; keep tensors 8-bit",
    "ARG_MAX": "take the argmax on the host after the model",
    "EXP": "not an Edge TPU op",
    "DIV": "multiply by a constant reciprocal instead",
}

FLOAT_INPUT_QUANTIZE = (
    "QUANTIZE of the float model input runs on the CPU (the model has float I/O); quantize with --io int8 "
    "to make the Edge TPU take the input directly"
)
FLOAT_OUTPUT_DEQUANTIZE = (
    "DEQUANTIZE to the float model output runs on the CPU (the model has float I/O); quantize with --io int8 "
    "to keep it off the CPU"
)


def rules_for_runtime(runtime: int) -> list[OpRule]:
    return [r for r in RULES if r.since_runtime <= runtime]


def table(runtime: int | None = None) -> list[dict]:
    """The supported-ops table as rows (what ``edgeq targets --supported-ops coral`` prints)."""
    rows = []
    for r in RULES:
        if runtime is not None and r.since_runtime > runtime:
            continue
        limits = [lim for lim in r.limits if runtime is None or lim.applies(runtime)]
        rows.append(
            {
                "op": r.op,
                "name": r.name,
                "since_runtime": r.since_runtime or "all",
                "limitations": [
                    lim.text
                    + ("" if lim.runtimes == (0, 99) or runtime is not None else f" (runtime {_span(lim.runtimes)})")
                    + ("" if lim.check else " [not predicted]")
                    for lim in limits
                ],
                "confirmed": r.confirmed and all(lim.confirmed for lim in r.limits),
                "source": r.source,
                "note": r.note,
            }
        )
    return rows


def _span(runtimes: tuple[int, int]) -> str:
    lo, hi = runtimes
    if lo <= 0:
        return f"<= {hi}"
    if hi >= 99:
        return f"{lo}+"
    return f"{lo}-{hi}"
