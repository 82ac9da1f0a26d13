"""Frozen, self-validating configs, one per stage.

Configs say what is wrong in the user's terms ("dynamic-range quantization cannot have int8
I/O; use --mode int8 with --data") and carry ``to_dict`` for provenance sidecars.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from edgeq.errors import UsageError

if TYPE_CHECKING:
    from edgeq.executor import ExecutorConfig


class Mode(enum.StrEnum):
    """TFLite conversion modes."""

    FLOAT = "float"
    DYNAMIC = "dynamic"
    FP16 = "fp16"
    INT8 = "int8"
    INT16X8 = "int16x8"

    @property
    def needs_data(self) -> bool:
        return self in (Mode.INT8, Mode.INT16X8)


class IOType(enum.StrEnum):
    """Type of the converted model's inputs and outputs."""

    FLOAT = "float"
    INT8 = "int8"
    UINT8 = "uint8"
    INT16 = "int16"


# Which I/O types each mode can produce. Dynamic range and fp16 keep float activations,
# so their I/O can only be float.
ALLOWED_IO = {
    Mode.FLOAT: (IOType.FLOAT,),
    Mode.DYNAMIC: (IOType.FLOAT,),
    Mode.FP16: (IOType.FLOAT,),
    Mode.INT8: (IOType.INT8, IOType.UINT8, IOType.FLOAT),
    Mode.INT16X8: (IOType.INT16, IOType.FLOAT),
}
DEFAULT_IO = {
    Mode.FLOAT: IOType.FLOAT,
    Mode.DYNAMIC: IOType.FLOAT,
    Mode.FP16: IOType.FLOAT,
    Mode.INT8: IOType.INT8,
    Mode.INT16X8: IOType.FLOAT,
}


@dataclass(frozen=True)
class Bound:
    """The range of one numeric option, declared once: the CLI's option types, the configs (and so
    edgeq.toml) and target option declarations all check values with :meth:`check`.

    Every bound is finite: NaN and infinity are refused, so no budget or timeout can be switched off.
    """

    low: float
    high: float
    low_open: bool = False  # the value must be above ``low`` (a timeout, a scale)
    high_open: bool = False  # the value must be below ``high`` (a fraction)
    example: str = ""

    def text(self) -> str:
        """The range in words: "between 1 and 100000", "above 0 and at most 86400"."""
        lo, hi = (f"{v:.0f}" if float(v).is_integer() else f"{v:g}" for v in (self.low, self.high))
        if not (self.low_open or self.high_open):
            return f"between {lo} and {hi}"
        return f"{'above' if self.low_open else 'at least'} {lo} and {'below' if self.high_open else 'at most'} {hi}"

    def ok(self, value: float) -> bool:
        import math

        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return False
        above = value > self.low if self.low_open else value >= self.low
        below = value < self.high if self.high_open else value <= self.high
        return above and below

    def check(self, name: str, value: Any) -> None:
        """Raise UsageError naming ``name`` (the flag, or the edgeq.toml key) and the range.

        Raises:
            UsageError: ``value`` is NaN, infinite or outside the range.
        """
        if value is not None and not self.ok(value):
            hint = f"e.g. {name} {self.example}" if self.example else f"give {name} a number {self.text()}"
            raise UsageError(f"{name} must be {self.text()}, got {value}", hint)


# The bounds of every numeric option (generous, but each keeps memory and time finite; --help says them).
MAX_THREADS = 64  # more interpreter threads than any edge CPU has cores; far more crash LiteRT's thread pool
RUNS = Bound(1, 100_000, example="100")
WARMUP = Bound(0, 10_000, example="10")
THREADS = Bound(1, MAX_THREADS, example="4")
BATCH = Bound(1, 1024, example="1")
SAMPLES = Bound(1, 1_000_000, example="200")
SEED = Bound(0, 2**32 - 1, example="0")  # numpy's seeds
RESIZE_SIDE = Bound(1, 4096, example="224x224")  # a 4096x4096x3 float32 image is 192 MiB
SCALE = Bound(0, 1e6, low_open=True, example="1/255")
NORM = Bound(-1e6, 1e6, example="0.5,0.5,0.5")  # --mean and --std values
DROP_POINTS = Bound(0, 100, example="1")  # --max-drop, --max-class-drop: accuracy points
SQNR_DB = Bound(-100, 300, example="20")
TIMEOUT_S = Bound(0, 86_400, low_open=True, example="600")
EPOCHS = Bound(1, 10_000, example="10")
BATCH_SIZE = Bound(1, 65_536, example="64")
LEARNING_RATE = Bound(0, 10, low_open=True, example="0.001")
VAL_SPLIT = Bound(0, 1, high_open=True, example="0.1")
PATIENCE = Bound(1, 10_000, example="3")
ADAROUND_STEPS = Bound(1, 100_000, example="500")
CPU_DEVICES = Bound(1, MAX_THREADS, example="2")
CHECK_SAMPLES = Bound(1, 10_000, example="20")  # --proof-samples, --parity-samples
PORT = Bound(1, 65_535, example="22")
RUNTIME_VERSION = Bound(1, 99, example="14")  # Edge TPU runtime versions (10 to 16 exist)
INPUT_DIM = Bound(1, 2**24, example="1x224x224x3")  # one dimension of --input-shape (audio: 144000 samples and more)
MAX_INPUT_RANK = 8  # TFLite kernels take at most 5 or 6 dimensions
MAX_INPUT_ELEMENTS = 2**28  # one pinned input: 1 GiB of float32


def _plain(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if dataclasses.is_dataclass(value):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    return value


class _Dict:
    def to_dict(self) -> dict:
        return _plain(self)


@dataclass(frozen=True)
class Preprocess(_Dict):
    """How raw data becomes model input: ``x = (resize(color(img)) * scale - mean) / std``.

    Image folders default to ``scale = 1/255``; arrays from .npz/.npy are used as stored
    unless a scale or mean/std is given.
    """

    resize: tuple[int, int] | None = None
    color_mode: str | None = None  # "grayscale" | "rgb" | None (follow the model's channels)
    scale: float | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if self.color_mode not in (None, "grayscale", "rgb"):
            raise UsageError(f"unknown color mode {self.color_mode!r}", "use --color-mode grayscale or rgb")
        if self.resize is not None:
            if len(self.resize) != 2:
                raise UsageError(f"bad resize {self.resize!r}", "use --resize HxW, e.g. 28x28")
            for side in self.resize:
                RESIZE_SIDE.check("--resize", side)
        SCALE.check("--scale", self.scale)
        for name, values in (("--mean", self.mean), ("--std", self.std)):
            for v in values or ():
                NORM.check(name, v)
        if (self.mean is None) != (self.std is None):
            raise UsageError("--mean and --std go together", "pass both, or neither")
        if self.std is not None and any(s == 0 for s in self.std):
            raise UsageError("--std has a zero", "every std must be non-zero")


@dataclass(frozen=True)
class DataConfig(_Dict):
    """A data set on disk and how to sample and preprocess it."""

    path: str
    samples: int | None = None
    seed: int = 0
    preprocess: Preprocess = field(default_factory=Preprocess)

    def __post_init__(self) -> None:
        SAMPLES.check("--samples", self.samples)
        SEED.check("--seed", self.seed)


def parse_ranges(text: str) -> tuple[str, float | None]:
    """``minmax``, ``mse`` or ``percentile:P`` (0 < P <= 100) as given to ``--ranges``: the method and P.

    Raises:
        UsageError: an unknown method, a missing P, or a P outside (0, 100].
    """
    import math

    name, _, arg = str(text).strip().lower().partition(":")
    if name == "percentile":
        try:
            p = float(arg)
        except ValueError:
            raise UsageError(
                f"--ranges {text!r} has no percentile number", "use --ranges percentile:P, e.g. percentile:99.99"
            ) from None
        if not math.isfinite(p) or not 0 < p <= 100:
            raise UsageError(
                f"--ranges percentile:{arg} is out of range", "P must be above 0 and at most 100, e.g. percentile:99.99"
            )
        return name, p
    if name not in RANGE_METHODS:
        raise UsageError(f"unknown range method {text!r}", "use --ranges minmax, mse or percentile:P (0 < P <= 100)")
    if arg:
        raise UsageError(f"--ranges {text!r}: {name} takes no argument", "use --ranges minmax, mse or percentile:P")
    return name, None


RANGE_METHODS = ("minmax", "mse", "percentile")


@dataclass(frozen=True)
class TechniqueConfig(_Dict):
    """The all-integer accuracy techniques of int8 PTQ (``--ranges``, ``--cle``, ``--bias-correction``,
    ``--adaround``). The default names none: the plain converter's model, byte for byte.

    None of them, nor any combination, was better than the plain converter on every model and
    data split measured (benchmarks/results/fidelity_latest.md), so none is on by default; the
    planner (``--max-drop``/``--min-sqnr``) tries them in turn and keeps what meets the budget on
    the evaluation data.
    """

    ranges: str = "minmax"
    cle: bool = False
    bias_correction: bool = False
    adaround: bool = False
    adaround_steps: int = 500

    def __post_init__(self) -> None:
        method, p = parse_ranges(self.ranges)
        object.__setattr__(self, "ranges", f"percentile:{p:g}" if p is not None else method)
        ADAROUND_STEPS.check("--adaround-steps", self.adaround_steps)

    @classmethod
    def given(
        cls,
        ranges: str | None = None,
        cle: bool | None = None,
        bias_correction: bool | None = None,
        adaround: bool | None = None,
        adaround_steps: int | None = None,
    ) -> TechniqueConfig:
        """From options that may be absent (None)."""
        return cls(
            ranges=ranges or "minmax",
            cle=bool(cle),
            bias_correction=bool(bias_correction),
            adaround=bool(adaround),
            adaround_steps=500 if adaround_steps is None else adaround_steps,
        )

    @property
    def plain(self) -> bool:
        """The plain converter's model: no technique at all."""
        return self.label == "minmax"

    @property
    def label(self) -> str:
        parts = (["cle"] if self.cle else []) + ([self.ranges] if self.ranges != "minmax" else [])
        parts += (["adaround"] if self.adaround else []) + (["bias"] if self.bias_correction else [])
        return "+".join(parts) or "minmax"


PLAIN = TechniqueConfig()


@dataclass(frozen=True)
class QuantizeConfig(_Dict):
    """What ``quantize`` converts to."""

    mode: Mode = Mode.INT8
    io: IOType | None = None  # None: the mode's default (int8 for int8, float otherwise)
    batch: int = 1
    allow_float_ops: bool = False
    # Selective quantization: tensors (debugger names or Keras layer names) and op types kept float.
    denylist: tuple[str, ...] = ()
    denylist_ops: tuple[str, ...] = ()
    techniques: TechniqueConfig = field(default_factory=TechniqueConfig)

    def __post_init__(self) -> None:
        object.__setattr__(self, "mode", Mode(self.mode))
        if not self.techniques.plain and self.mode != Mode.INT8:
            raise UsageError(
                f"{self.techniques.label} applies to int8 quantization, not {self.mode.value}", "use --mode int8"
            )
        if not self.techniques.plain and (self.denylist or self.denylist_ops):
            raise UsageError(
                "--denylist keeps layers in float; it does not combine with --ranges, --cle, --bias-correction "
                "or --adaround",
                "use one or the other",
            )
        object.__setattr__(self, "denylist", tuple(self.denylist))
        object.__setattr__(self, "denylist_ops", tuple(op.upper() for op in self.denylist_ops))
        if self.selective and self.mode != Mode.INT8:
            raise UsageError(f"--denylist is for int8 selective quantization, not {self.mode.value}", "use --mode int8")
        if self.selective and self.io not in (None, IOType.INT8, IOType.FLOAT):
            raise UsageError(
                f"selective quantization makes int8 or float I/O, not {IOType(self.io).value}",
                "use --io int8 or --io float",
            )
        io = DEFAULT_IO[self.mode] if self.io is None else IOType(self.io)
        object.__setattr__(self, "io", io)
        if io not in ALLOWED_IO[self.mode]:
            allowed = ", ".join(t.value for t in ALLOWED_IO[self.mode])
            if self.mode in (Mode.DYNAMIC, Mode.FP16, Mode.FLOAT):
                hint = "use --mode int8 with --data for integer I/O"
            else:
                hint = f"--mode {self.mode.value} allows --io {allowed}"
            raise UsageError(f"{self.mode.value} quantization cannot have {io.value} I/O", hint)
        BATCH.check("--batch", self.batch)

    @property
    def selective(self) -> bool:
        return bool(self.denylist or self.denylist_ops)

    @property
    def io_type(self) -> IOType:
        assert isinstance(self.io, IOType)
        return self.io


@dataclass(frozen=True)
class BenchConfig(_Dict):
    """How the benchmark harness measures: warm-up runs are excluded from the statistics."""

    num_runs: int = 100
    warmup_runs: int = 10
    num_threads: int = 1
    batch: int | None = None  # None: the model's static batch; required for a dynamic batch

    def __post_init__(self) -> None:
        RUNS.check("--runs", self.num_runs)
        WARMUP.check("--warmup", self.warmup_runs)
        THREADS.check("--threads", self.num_threads)
        BATCH.check("--batch", self.batch)


@dataclass(frozen=True)
class InputShape(_Dict):
    """One input shape pinned by ``--input-shape 1x320x320x3`` (or, naming the input, ``image:1x320x320x3``).

    Every dimension is a positive integer within :data:`INPUT_DIM`, the rank at most
    :data:`MAX_INPUT_RANK`, the element count at most :data:`MAX_INPUT_ELEMENTS`; which input it
    names and whether it agrees with the model's static dimensions is :func:`pin_shapes`'s to say.
    """

    dims: tuple[int, ...]
    name: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "dims", tuple(self.dims))
        if not 1 <= len(self.dims) <= MAX_INPUT_RANK:
            raise UsageError(
                f"--input-shape {self.text()} has {len(self.dims)} dimensions; at most {MAX_INPUT_RANK} are allowed",
                "e.g. --input-shape 1x224x224x3",
            )
        for d in self.dims:
            if not INPUT_DIM.ok(d) or not isinstance(d, int):
                raise UsageError(
                    f"--input-shape {self.text()}: every dimension must be {INPUT_DIM.text()}, got {d}",
                    "e.g. --input-shape 1x224x224x3",
                )
        count = 1
        for d in self.dims:
            count *= d
        if count > MAX_INPUT_ELEMENTS:
            raise UsageError(
                f"--input-shape {self.text()} is {count} elements; at most {MAX_INPUT_ELEMENTS} are allowed",
                "edge models take far smaller inputs: give the model's real input size",
            )

    @classmethod
    def parse(cls, text: Any) -> InputShape:
        """``1x320x320x3`` or ``NAME:1x320x320x3`` (the name is everything before the last colon).

        Raises:
            UsageError: not that form, a dimension that is not a positive integer or out of bounds.
        """
        if isinstance(text, InputShape):
            return text
        raw = str(text).strip()
        name, _, dims = raw.rpartition(":")
        if len(name) > 256:
            raise UsageError("--input-shape names an input of more than 256 characters", "give the input's name")
        parts = dims.lower().replace(",", "x").split("x")
        if len(raw) > 1000 or not all(p.strip().isascii() and p.strip().isdigit() for p in parts):
            shown = _quoted(raw if len(raw) <= 60 else raw[:57] + "...")
            raise UsageError(
                f"--input-shape takes DxDx.. (positive integers), got {shown}",
                "e.g. --input-shape 1x224x224x3, or NAME:1x224x224x3 for one input of several",
            )
        return cls(tuple(int(p) for p in parts), name.strip() or None)

    def text(self) -> str:
        shape = "x".join(str(d) for d in self.dims)
        return f"{_quoted(self.name)[1:-1]}:{shape}" if self.name else shape


def _quoted(text: str) -> str:
    """``text`` in double quotes on one line: control characters and undecodable bytes escaped."""
    import json

    from edgeq.paths import printable

    return json.dumps(printable(text), ensure_ascii=False)


def input_shapes(values: Any) -> tuple[InputShape, ...]:
    """Parse and check ``--input-shape`` values (a string or several): one unnamed shape, or named ones
    each naming another input.

    Raises:
        UsageError: a malformed shape, an unnamed shape with others, an input named twice.
    """
    items = [values] if isinstance(values, (str, InputShape)) else list(values or ())
    shapes = tuple(InputShape.parse(v) for v in items)
    if len(shapes) > 1 and any(s.name is None for s in shapes):
        raise UsageError(
            "several --input-shape values must each name their input", "e.g. --input-shape a:1x16 --input-shape b:1x8"
        )
    names = [s.name for s in shapes]
    twice = sorted({n for n in names if names.count(n) > 1 and n is not None})
    if twice:
        raise UsageError(f"--input-shape names input {twice[0]!r} twice", "give each input one shape")
    return shapes


def pin_shapes(
    shapes: tuple[InputShape, ...], inputs: list[tuple[str, tuple[int | None, ...]]], origin: str
) -> dict[str, tuple[int, ...]]:
    """The static shape each pinned input of a model gets: ``inputs`` are its (name, shape) with None
    for a dynamic dimension. Inputs not named keep their shape (absent from the result).

    Raises:
        UsageError: an unnamed shape for a model of several inputs, a name the model has no input of
            (the message lists them), another rank, or a dimension that contradicts a static one.
    """
    names = [n for n, _ in inputs]
    listed = ", ".join(_quoted(n) for n in names[:20]) + (" ..." if len(names) > 20 else "")
    first = _quoted(names[0])[1:-1] if names else "NAME"
    pinned: dict[str, tuple[int, ...]] = {}
    for s in shapes:
        if s.name is None and len(inputs) != 1:
            raise UsageError(
                f"{origin} has {len(inputs)} inputs ({listed}); --input-shape {s.text()} does not say which",
                f"name it: --input-shape {first}:{s.text()}",
            )
        name = names[0] if s.name is None else s.name
        if name not in names:
            raise UsageError(
                f"{origin} has no input named {_quoted(name)}; its inputs: {listed}",
                f"use one of those names: --input-shape {first}:{'x'.join(map(str, s.dims))}",
            )
        own = dict(inputs)[name]
        shown = "x".join("?" if d is None or d < 0 else str(d) for d in own)
        if len(own) != len(s.dims):
            raise UsageError(
                f"--input-shape {s.text()} has {len(s.dims)} dimensions; input {_quoted(name)} of {origin} has "
                f"{len(own)} ({shown})",
                f"give {len(own)} dimensions, keeping the static ones: {shown.replace('?', 'N')}",
            )
        clash = [i for i, (d, p) in enumerate(zip(own, s.dims, strict=True)) if d is not None and d >= 0 and d != p]
        if clash:
            raise UsageError(
                f"--input-shape {s.text()} contradicts input {_quoted(name)} of {origin} ({shown}): dimension "
                f"{clash[0]} is fixed at {own[clash[0]]}",
                f"pin only its dynamic dimensions (?): {shown.replace('?', 'N')}",
            )
        pinned[name] = s.dims
    return pinned


@dataclass(frozen=True)
class LoadConfig(_Dict):
    """How models are deserialized. Safe mode refuses Python code stored in a model file.

    ``input_shapes`` pin dynamic input dimensions (``--input-shape``): a Keras or SavedModel model is
    converted with that input signature, an ONNX model converted by onnx2tf with it, a float .tflite
    rewritten with it (:func:`pin_shapes` matches them to the model's inputs)."""

    custom_objects: tuple[str, ...] = ()  # "module:attr" specs; giving any implies trust
    trust_model: bool = False
    input_shapes: tuple[InputShape, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "input_shapes", input_shapes(self.input_shapes))

    @property
    def safe_mode(self) -> bool:
        return not (self.trust_model or self.custom_objects)


class Strategy(enum.StrEnum):
    """tf.distribute strategies: one device, the devices of one machine, several machines."""

    DEFAULT = "default"
    MIRRORED = "mirrored"
    MULTI_WORKER = "multi-worker"


class LrSchedule(enum.StrEnum):
    CONSTANT = "constant"
    COSINE = "cosine"


@dataclass(frozen=True)
class TrainConfig(_Dict):
    """How ``train`` (and the fine-tuning inside QAT) fits a model."""

    epochs: int = 10
    batch_size: int = 64
    learning_rate: float = 1e-3
    lr_schedule: LrSchedule = LrSchedule.COSINE
    val_split: float = 0.1  # used when no validation data is given
    patience: int | None = None  # early stopping on val_loss after this many epochs without gain
    augment: bool = False
    loss: str | None = None  # None: sparse categorical cross-entropy for classifiers
    seed: int = 0
    strategy: Strategy = Strategy.DEFAULT

    def __post_init__(self) -> None:
        object.__setattr__(self, "lr_schedule", LrSchedule(self.lr_schedule))
        object.__setattr__(self, "strategy", Strategy(self.strategy))
        EPOCHS.check("--epochs", self.epochs)
        BATCH_SIZE.check("--batch-size", self.batch_size)
        LEARNING_RATE.check("--lr", self.learning_rate)
        VAL_SPLIT.check("--val-split", self.val_split)
        PATIENCE.check("--patience", self.patience)
        SEED.check("--train-seed", self.seed)


class Method(enum.StrEnum):
    PTQ = "ptq"
    QAT = "qat"
    AUTO = "auto"  # the accuracy-budget planner


# The accuracy budget --method auto builds with when neither --max-drop nor --min-sqnr is given.
DEFAULT_MAX_DROP = 1.0


def build_max_drop(max_drop: float | None, min_sqnr: float | None) -> float | None:
    """The accuracy-drop budget (points) of a build's planner: the given one, none when only
    --min-sqnr is given (unlabeled data), else :data:`DEFAULT_MAX_DROP`."""
    if max_drop is not None or min_sqnr is not None:
        return max_drop
    return DEFAULT_MAX_DROP


# The budget --method auto builds with on unlabeled evaluation data when neither --max-drop nor --min-sqnr is
# given: the worst output's SQNR against float, by the model's task (edgeq.bench.tasks.model_task). Class
# scores only need their argmax kept (20 dB: noise at a tenth of the signal's amplitude); an embedding's
# cosine stays above 0.99 at 20 dB; boxes and regressed values are read as numbers, so they ask for more.
DEFAULT_MIN_SQNR_DB = {"classification": 20.0, "embedding": 20.0, "detection": 25.0, "regression": 30.0}


@dataclass(frozen=True)
class BuildBudget:
    """The budget a build's planner applies, and how it came about (``why``: for people)."""

    max_drop: float | None
    min_sqnr: float | None
    why: str

    def text(self) -> str:
        """ "top-1 drop <= 1.0 point (the default for labeled data)" and the like."""
        parts = []
        if self.max_drop is not None:
            parts.append(f"top-1 drop <= {self.max_drop:g} point{'' if self.max_drop == 1 else 's'}")
        if self.min_sqnr is not None:
            parts.append(f"worst-output SQNR >= {self.min_sqnr:g} dB")
        return f"{' and '.join(parts)} ({self.why})"

    def to_dict(self) -> dict[str, Any]:
        return {"max_drop": self.max_drop, "min_sqnr": self.min_sqnr, "why": self.why, "text": self.text()}


def build_budget(max_drop: float | None, min_sqnr: float | None, labeled: bool, task: str) -> BuildBudget:
    """The budget of a build's planner: the given one; else a top-1 drop of :data:`DEFAULT_MAX_DROP` points
    where the evaluation data has labels; else (unlabeled) the worst output's SQNR of
    :data:`DEFAULT_MIN_SQNR_DB` for the model's ``task``: never no budget at all."""
    if max_drop is not None or min_sqnr is not None:
        return BuildBudget(max_drop, min_sqnr, "given")
    if labeled:
        return BuildBudget(DEFAULT_MAX_DROP, None, "the default for labeled evaluation data; --max-drop sets it")
    sqnr = DEFAULT_MIN_SQNR_DB.get(task, max(DEFAULT_MIN_SQNR_DB.values()))
    why = f"the default for a {task} model with unlabeled evaluation data; --min-sqnr sets it, labels allow --max-drop"
    return BuildBudget(None, sqnr, why)


@dataclass(frozen=True)
class BuildConfig(_Dict):
    """``edgeq build``: the same keys as its options, and as ``edgeq.toml``."""

    targets: tuple[str, ...] = ("cpu",)
    model: str | None = None
    data: str | None = None
    eval_data: str | None = None
    train_data: str | None = None
    method: Method = Method.AUTO
    max_drop: float | None = None  # auto: defaults to 1 point (unless min_sqnr is given)
    min_sqnr: float | None = None  # auto: the budget for unlabeled evaluation data, in dB (worst output)
    out_dir: str = "edgeq-out"
    runs: int = 100
    warmup: int = 10
    threads: int = 1
    cache: bool = True
    # the all-integer techniques (None: not named; none named is the automatic choice)
    ranges: str | None = None
    cle: bool | None = None
    bias_correction: bool | None = None
    adaround: bool | None = None
    adaround_steps: int | None = None
    allow_cpu_fallback: bool = False
    trust_model: bool = False
    custom_objects: tuple[str, ...] = ()
    input_shape: tuple[str, ...] = ()  # --input-shape values (edgeq.toml: input-shape)
    # where independent stages run (the planner's candidates): edgeq.executor.ExecutorConfig's fields
    executor: str = "local"
    jobs: int | None = None  # local: the core count
    ray_address: str | None = None  # ray: RAY_ADDRESS when None
    # Target options (keys of the targets' TargetOption declarations, e.g. "board", "host", and "device"):
    # ``options`` go to every chosen target that declares each one (the command line); ``target_options``
    # to one target each (edgeq.toml's [targets.NAME] tables), overridden by ``options``. The build checks
    # them against the declarations once, before any stage runs (edgeq.build.options).
    options: dict[str, Any] = field(default_factory=dict)
    target_options: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _option_tables(self.options, self.target_options)
        object.__setattr__(self, "options", dict(self.options))
        object.__setattr__(self, "target_options", {k: dict(v) for k, v in self.target_options.items()})
        specs = self.custom_objects
        object.__setattr__(self, "custom_objects", (specs,) if isinstance(specs, str) else tuple(specs))
        shapes = self.input_shape
        object.__setattr__(self, "input_shape", (shapes,) if isinstance(shapes, str) else tuple(shapes))
        for s in input_shapes(self.input_shape):  # validates
            if s.name is None and len(s.dims) > 1 and s.dims[0] != 1:
                raise UsageError(
                    f"--input-shape {s.text()}: the build makes batch-1 models for edge targets",
                    "give batch 1 (e.g. --input-shape 1x" + "x".join(map(str, s.dims[1:])) + "), or use edgeq quantize",
                )
        targets = (self.targets,) if isinstance(self.targets, str) else tuple(self.targets)
        targets = tuple(t.strip() for part in targets for t in str(part).split(",") if t.strip())
        object.__setattr__(self, "targets", targets)
        if not targets:
            raise UsageError("no target given", "pass --target cpu (or several: --target coral,mcu)")
        try:
            object.__setattr__(self, "method", Method(self.method))
        except ValueError as exc:
            raise UsageError(f"unknown method {self.method!r}", "use ptq, qat or auto") from exc
        if self.method == Method.PTQ and self.max_drop is not None:
            raise UsageError(
                "--max-drop goes with --method auto (the planner), not ptq", "drop --max-drop or use --method auto"
            )
        DROP_POINTS.check("--max-drop", self.max_drop)
        SQNR_DB.check("--min-sqnr", self.min_sqnr)
        if self.method == Method.PTQ and self.min_sqnr is not None:
            raise UsageError(
                "--min-sqnr goes with --method auto (the planner), not ptq", "drop --min-sqnr or use --method auto"
            )
        BenchConfig(num_runs=self.runs, warmup_runs=self.warmup, num_threads=self.threads)  # validates
        _ = self.techniques  # validates; with --method auto the planner runs only where the shared model misses
        _ = self.executor_config  # validates
        if self.allow_cpu_fallback and self.method != Method.AUTO:
            raise UsageError("--allow-cpu-fallback goes with --method auto (the planner)", "drop it, or use auto")

    @property
    def techniques(self) -> TechniqueConfig:
        return TechniqueConfig.given(self.ranges, self.cle, self.bias_correction, self.adaround, self.adaround_steps)

    @property
    def bench(self) -> BenchConfig:
        return BenchConfig(num_runs=self.runs, warmup_runs=self.warmup, num_threads=self.threads)

    @property
    def executor_config(self) -> ExecutorConfig:
        from edgeq.executor import ExecutorConfig

        return ExecutorConfig(self.executor, self.jobs, self.ray_address)  # type: ignore[arg-type]

    @property
    def load(self) -> LoadConfig:
        return LoadConfig(
            custom_objects=self.custom_objects,
            trust_model=self.trust_model,
            input_shapes=input_shapes(self.input_shape),
        )


@dataclass(frozen=True)
class SweepConfig(_Dict):
    """``edgeq build MODEL MODEL ...`` (or edgeq.toml's ``models``): every model built for every target with
    ``build``'s settings, each into a folder of its own under ``build.out_dir`` (``build.model`` is unused).

    The model strings are paths as given: they name files and folders, and are never run or parsed as code.
    """

    models: tuple[str, ...]
    build: BuildConfig = field(default_factory=BuildConfig)

    def __post_init__(self) -> None:
        models = (self.models,) if isinstance(self.models, str) else tuple(self.models)
        object.__setattr__(self, "models", models)
        if not models:
            raise UsageError("no model given", "pass one or more models: edgeq build a.keras b.keras --target cpu")
        for m in models:
            if not isinstance(m, str) or not m.strip() or "\0" in m:
                raise UsageError(f"model {m!r} is not a path", "give each model as a file or folder path")


def _option_tables(options: Any, per_target: Any) -> None:
    """Refuse target options that are not a mapping of names (the values are checked by the build)."""
    from collections.abc import Mapping

    if not isinstance(options, Mapping) or not all(isinstance(k, str) for k in options):
        raise UsageError("target options must be a mapping of option names to values", 'e.g. {"board": "nrf52840"}')
    if not isinstance(per_target, Mapping) or not all(
        isinstance(k, str) and isinstance(v, Mapping) and all(isinstance(o, str) for o in v)
        for k, v in per_target.items()
    ):
        raise UsageError(
            "per-target options must map target names to tables of options", '[targets.mcu] board = "nrf52840"'
        )


# Every edgeq.toml key: the BuildConfig field it sets, its type, and an example for the hint.
# Types: "int", "float", "str", "bool", "path" (a non-empty string), "strs" (a string or an array of strings).
TOML_KEYS: dict[str, tuple[str, str, str]] = {
    "target": ("targets", "strs", 'target = ["cpu", "coral"]'),
    "model": ("model", "path", 'model = "model.keras"'),
    "models": ("models", "strs", 'models = ["a.keras", "b.keras"]'),  # a sweep: SweepConfig, not BuildConfig
    "data": ("data", "path", 'data = "calib.npz"'),
    "eval-data": ("eval_data", "path", 'eval-data = "eval.npz"'),
    "train-data": ("train_data", "path", 'train-data = "train.npz"'),
    "method": ("method", "str", 'method = "auto"'),
    "max-drop": ("max_drop", "float", "max-drop = 1.0"),
    "min-sqnr": ("min_sqnr", "float", "min-sqnr = 20.0"),
    "out-dir": ("out_dir", "path", 'out-dir = "edgeq-out"'),
    "runs": ("runs", "int", "runs = 100"),
    "warmup": ("warmup", "int", "warmup = 10"),
    "threads": ("threads", "int", "threads = 1"),
    "cache": ("cache", "bool", "cache = true"),
    "ranges": ("ranges", "str", 'ranges = "mse"'),
    "cle": ("cle", "bool", "cle = true"),
    "bias-correction": ("bias_correction", "bool", "bias-correction = true"),
    "adaround": ("adaround", "bool", "adaround = true"),
    "adaround-steps": ("adaround_steps", "int", "adaround-steps = 500"),
    "allow-cpu-fallback": ("allow_cpu_fallback", "bool", "allow-cpu-fallback = false"),
    "trust-model": ("trust_model", "bool", "trust-model = true"),
    "custom-objects": ("custom_objects", "strs", 'custom-objects = ["mylayers:CUSTOM_OBJECTS"]'),
    "input-shape": ("input_shape", "strs", 'input-shape = "1x320x320x3" (several inputs: ["a:1x16", "b:1x8"])'),
}

_TYPE_NAMES = {
    "int": "an integer",
    "float": "a finite number",
    "str": "a string",
    "bool": "true or false",
    "path": "a path (a non-empty string)",
    "strs": "a string or an array of strings",
}


def _toml_kind(value: Any) -> str:
    """What a parsed TOML value is, in TOML's words."""
    import datetime

    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, (datetime.date, datetime.time)):
        return "a date/time"
    return type(value).__name__


def _toml_literal(value: Any) -> str:
    """A short TOML-like rendering of a value for a message."""
    import json
    import math

    from edgeq.paths import printable

    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, (int, float, str, list, dict)):
        text = json.dumps(value, ensure_ascii=False, default=str)
    else:
        text = str(value)
    text = printable(text)
    return text if len(text) <= 60 else text[:57] + "..."


def _type_ok(kind: str, value: Any) -> bool:
    import math

    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "float":
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if kind == "str":
        return isinstance(value, str)
    if kind == "path":
        return isinstance(value, str) and value.strip() != "" and "\0" not in value
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "strs":
        items = value if isinstance(value, list) else [value]
        return bool(items) and all(isinstance(v, str) and v.strip() for v in items)
    raise AssertionError(f"unknown TOML key type {kind}")


def _unknown_key_hint(key: str) -> str:
    import difflib

    known = ", ".join(TOML_KEYS)
    close = difflib.get_close_matches(key.replace("_", "-"), TOML_KEYS, n=1)
    if not close:
        return f"known keys: {known}; a target's options go in its own table ([targets.mcu] board = ...)"
    # Suggest in the user's own spelling: both max-drop and max_drop are accepted.
    suggestion = close[0].replace("-", "_") if "_" in key else close[0]
    return f"did you mean {suggestion}? known keys: {known}"


def load_toml(path: str) -> dict:
    """Read ``edgeq.toml`` (a ``[build]`` table or top-level keys) with the keys of BuildConfig.

    Every key is checked against :data:`TOML_KEYS` (its name and its type) before any work.

    Raises:
        BadInput: missing or unreadable file, invalid TOML, ``build`` that is not a table, a key
            edgeq does not know, or a value of the wrong type (each named, with an example).
    """
    import tomllib

    from edgeq.errors import BadInput
    from edgeq.paths import shown

    name = shown(path)
    try:
        with open(path, "rb") as fh:
            doc = tomllib.load(fh)
    except FileNotFoundError as exc:
        raise BadInput(f"config file not found: {name}", "check the --config path") from exc
    except IsADirectoryError as exc:
        raise BadInput(f"config path is a folder: {name}", "pass the edgeq.toml file") from exc
    except OSError as exc:
        raise BadInput(f"cannot read {name} ({exc.strerror})", "check the file and its permissions") from exc
    except UnicodeDecodeError as exc:
        raise BadInput(f"{name} is not UTF-8 text", "save edgeq.toml as UTF-8") from exc
    except tomllib.TOMLDecodeError as exc:
        raise BadInput(f"{name} is not valid TOML ({exc})", "fix the syntax") from exc
    tables = None
    if "build" in doc:
        if not isinstance(doc["build"], dict):
            raise BadInput(
                f"{name}: `build` must be a table, got {_toml_literal(doc['build'])} ({_toml_kind(doc['build'])})",
                "write the keys under a [build] header, or at the top level without one",
            )
        # [targets.NAME] tables may sit beside [build] (or inside it, as [build.targets.NAME])
        outside = [k for k in doc if k != "build" and not (k == "targets" and isinstance(doc[k], dict))]
        if outside:
            raise BadInput(
                f"{name}: key `{outside[0]}` is outside the [build] table", "put every key under [build], or drop it"
            )
        tables = doc.get("targets")
        doc = doc["build"]
    out: dict[str, Any] = {}
    if tables is not None:
        if isinstance(doc.get("targets"), dict):
            raise BadInput(f"{name}: [targets.*] tables both inside and outside [build]", "keep them in one place")
        out["target_options"] = _target_tables(name, tables)
    for key, value in doc.items():
        if key == "targets" and isinstance(value, dict):
            out["target_options"] = _target_tables(name, value)
            continue
        spec = TOML_KEYS.get("target" if key == "targets" else key.replace("_", "-"))
        if spec is None:
            raise BadInput(f"unknown key {key!r} in {name}", _unknown_key_hint(key))
        field_name, kind, example = spec
        if not _type_ok(kind, value):
            raise BadInput(
                f"{name}: `{key}` must be {_TYPE_NAMES[kind]}, got {_toml_literal(value)} ({_toml_kind(value)})",
                f"e.g. {example}",
            )
        out[field_name] = tuple(value) if kind == "strs" and isinstance(value, list) else value
    if "model" in out and "models" in out:
        raise BadInput(
            f"{name}: `model` and `models` are both set", 'keep one: model = "a.keras", or models = ["a.keras", ...]'
        )
    return out


def _target_tables(name: str, tables: dict) -> dict[str, dict[str, Any]]:
    """edgeq.toml's ``[targets.NAME]`` tables, each a table (their keys and values are checked by the build
    against the target's option declarations, :mod:`edgeq.build.options`).

    Raises:
        BadInput: an entry that is not a table.
    """
    from edgeq.errors import BadInput

    for target, table in tables.items():
        if not isinstance(table, dict):
            raise BadInput(
                f"{name}: `targets.{target}` must be a table of options, got {_toml_literal(table)} "
                f"({_toml_kind(table)})",
                f'e.g. [targets.mcu] with board = "nrf52840" (the target is chosen with target = ["{target}"])',
            )
    return {target: dict(table) for target, table in tables.items()}
