"""The protocols every target implements, and the result types they share.

Pipeline code talks to targets only through these; no ``if target == ...`` outside
``edgeq/targets``.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Protocol, runtime_checkable

from edgeq.bench.timing import LatencyStats
from edgeq.config import BenchConfig, Bound, IOType, Mode
from edgeq.errors import UsageError
from edgeq.findings import NONE as NO_FINDINGS
from edgeq.findings import Findings

NO_OPTIONS: Mapping[str, Any] = MappingProxyType({})


class Stage(enum.StrEnum):
    """The stages a target option can apply to (the CLI commands ``check``, ``compile``, ``bench``)."""

    CHECK = "check"
    COMPILE = "compile"
    BENCH = "bench"


_KEY = re.compile(r"[a-z][a-z0-9_]*")
_FLAG = re.compile(r"--[a-z][a-z0-9-]*")


@dataclass(frozen=True)
class TargetOption:
    """One option a target takes, as data: the CLI builds its flags and its "does not apply" error from it.

    Args:
        key: the name in the ``options`` mapping a target method receives (snake_case).
        flag: the command-line flag (``--runtime-version``).
        stages: the stages that use it.
        help: one line for ``--help`` (the CLI prefixes the targets that take it).
        type: the value's Python type (str, int, float; bool with ``is_flag``).
        choices: the allowed values, when a fixed list.
        is_flag: a switch without a value.
        multiple: may be repeated; the value is a tuple.
        metavar: the placeholder ``--help`` shows.
        short: a one-letter alias (``-m``), as the wrapped tool spells it.
        path: "file", "dir" or "any" (either) when the value is a path.
        cli_default: what the CLI passes when the flag is absent (``--force`` absent means
            overwrite=False, unlike a library caller that leaves it unset); None: nothing.
        bound: the range of an int or float value (required for them: no unbounded count or
            timeout, no NaN); the CLI checks it and ``--help`` says it.
        in_build: ``edgeq build`` takes it (flag and edgeq.toml key); False for what the build sets
            itself (its own ``--force`` and ``--data``) or what applies only to an input the build never
            passes (android's flavours of a Keras model: the build passes the quantized .tflite).
    """

    key: str
    flag: str
    stages: frozenset[Stage]
    help: str
    type: type = str
    choices: tuple[str, ...] = ()
    is_flag: bool = False
    multiple: bool = False
    metavar: str | None = None
    short: str | None = None
    path: str | None = None
    cli_default: Any = None
    bound: Bound | None = None
    in_build: bool = True

    def __post_init__(self) -> None:
        if not _KEY.fullmatch(self.key):
            raise ValueError(f"option key {self.key!r} is not snake_case")
        if not _FLAG.fullmatch(self.flag):
            raise ValueError(f"option flag {self.flag!r} is not --kebab-case")
        if not self.stages or not all(isinstance(s, Stage) for s in self.stages):
            raise ValueError(f"option {self.flag} needs one or more Stage values")
        if self.short is not None and not re.fullmatch(r"-[A-Za-z]", self.short):
            raise ValueError(f"short alias {self.short!r} of {self.flag} is not -X")
        if self.path not in (None, "file", "dir", "any"):
            raise ValueError(f"path of {self.flag} must be 'file', 'dir' or 'any'")
        if self.is_flag and (self.type is not bool or self.multiple or self.choices):
            raise ValueError(f"{self.flag} is a switch: type bool, no choices, not multiple")
        if (self.type in (int, float)) != (self.bound is not None):
            raise ValueError(f"{self.flag}: an int or float option declares its bound, and only those")

    def applies_to(self, stage: Stage) -> bool:
        return stage in self.stages

    def shape(self) -> tuple:
        """What must agree between targets declaring the same key: one flag, one type."""
        return (self.flag, self.type, self.choices, self.is_flag, self.multiple, self.short, self.path, self.bound)


def option(key: str, flag: str, stages: str, help: str, **kw: Any) -> TargetOption:
    """A :class:`TargetOption`; ``stages`` is space-separated stage names ("check compile")."""
    return TargetOption(key, flag, frozenset(Stage(s) for s in stages.split()), help, **kw)


# Every target that writes into an output folder declares the same --force.
OVERWRITE = option(
    "overwrite",
    "--force",
    "compile",
    "Overwrite existing outputs.",
    type=bool,
    is_flag=True,
    cli_default=False,
    in_build=False,  # the build replaces its own steps' folders; its --force is about -o
)


@dataclass(frozen=True)
class Availability:
    available: bool
    reason: str = ""  # the concrete cause when not available ("no Edge TPU on usb")


@dataclass(frozen=True)
class CompatReport:
    """A check's result: whether the model can run on the target, and what the check found.

    ``findings`` is what the build, the report and the CLI read (placement on the accelerator, fit against
    the board, figures with their basis, messages with their level); ``details`` is the target's own
    data for its own rendering and ``--json`` (nothing outside ``edgeq/targets`` reads its keys)."""

    target: str
    ok: bool
    ops: tuple[dict, ...] = ()
    findings: Findings = NO_FINDINGS
    details: dict = field(default_factory=dict)

    @property
    def messages(self) -> tuple[str, ...]:
        """The findings' messages as text, in order."""
        return tuple(m.text for m in self.findings.messages)

    def describe(self, model: str) -> list[str]:
        """The check for people (``edgeq check``): a target whose result has more to say overrides it."""
        head = f"{model} on {self.target}"
        p = self.findings.placement
        if p is not None:
            head += f": {p.on} op(s) on the {p.accelerator}, {p.off} on the CPU"
        return [head, *ops_table(self.ops), *self.messages]

    def to_dict(self) -> dict:
        return {
            "target": self.target,
            "ok": self.ok,
            "ops": list(self.ops),
            "messages": list(self.messages),
            "findings": self.findings.to_dict(),
            "details": dict(self.details),
        }


def ops_table(ops: Sequence[Mapping[str, Any]]) -> list[str]:
    """The per-op table of a check, as lines (none without ops)."""
    from edgeq.report.fmt import table

    rows = list(ops)
    if not rows:
        return []
    cols = [c for c in ("op", "count", "status", "on_tpu", "basis") if any(c in r for r in rows)]
    return [table([[r.get(c) for c in cols] for r in rows], cols)]


@dataclass(frozen=True)
class CompileResult:
    """What a compile made. Targets return a subclass naming their result's shape; ``findings`` is what
    the build and the report read, ``details`` the target's own figures (its rendering and ``--json``)."""

    target: str
    output: str
    skipped: bool = False
    reason: str = ""
    findings: Findings = NO_FINDINGS
    details: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "target": self.target,
            "output": self.output,
            "skipped": self.skipped,
            "reason": self.reason,
            "findings": self.findings.to_dict(),
            **self.details,
        }

    def artifacts(self) -> list[str]:
        """The files this compile wrote (none for a skipped compile)."""
        return []

    def describe(self) -> list[str]:
        """The compile for people (``edgeq compile``): a target whose result has more to say overrides it."""
        if self.skipped:
            return [f"compile for {self.target}: skipped ({self.reason})"]
        return [f"compiled for {self.target}: {self.output}", *(f"  {f}" for f in self.artifacts())]

    def warnings(self) -> list[str]:
        notes = self.findings.warnings()
        return [f"compile step skipped: {self.reason}", *notes] if self.skipped else notes


@dataclass(frozen=True)
class BenchResult:
    target: str
    device: str
    stats: LatencyStats
    num_threads: int
    environment: dict
    notes: tuple[str, ...] = ()
    via: str = ""  # how the figures reached this machine, when not measured here ("over SSH")
    findings: Findings = NO_FINDINGS  # what the runner measured besides time (instructions, proof, memory)

    def describe(self, model: str) -> list[str]:
        """The benchmark for people (``edgeq bench``): where and how it ran, the first invoke apart, the
        latency distribution (when the runner timed the model), the notes; a runner with more overrides it."""
        from edgeq.report.fmt import ms

        s = self.stats
        threads = f", {self.num_threads} thread(s)" if self.num_threads is not None else ""
        runs = f"{_count(s.num_runs)} runs after {_count(s.warmup_runs)} warm-up"
        lines = [f"{model} on {self.target} ({self.device}{threads}, {runs})"]
        if any(x is not None for x in (s.p50, s.mean)):  # a runner that counts instructions times nothing
            lines.append(
                f"first invoke {ms(s.first_invoke_ms)} ms; latency ms p50 {ms(s.p50)}  p90 {ms(s.p90)}  "
                f"p99 {ms(s.p99)}  mean {ms(s.mean)}  std {ms(s.std)}"
            )
        return [*lines, *self.notes]

    def to_dict(self) -> dict:
        doc = {"target": self.target, "device": self.device, "num_threads": self.num_threads}
        doc.update(self.stats.to_dict())
        doc["environment"] = self.environment
        doc["notes"] = list(self.notes)
        doc["via"] = self.via
        doc["findings"] = self.findings.to_dict()
        return doc


def _count(n: int | None) -> str:
    return "?" if n is None else str(n)  # a count the measuring tool did not print


class Runner(Protocol):
    def availability(self) -> Availability: ...

    def load(self, model_path: str, cfg: BenchConfig) -> None: ...

    def invoke(self) -> None: ...

    def benchmark(self, model_path: str, cfg: BenchConfig) -> BenchResult: ...


class Declares(Protocol):
    """What option checking needs of a target: its name and its declarations."""

    @property
    def name(self) -> str: ...

    @property
    def options(self) -> tuple[TargetOption, ...]: ...

    @property
    def max_models(self) -> int | None: ...

    @property
    def device_help(self) -> str | None: ...


class Target(Protocol):
    """What every target implements. Options arrive as one mapping, keyed by :attr:`TargetOption.key`;
    a target accepts exactly the options it declares for that stage (see :func:`resolve`)."""

    name: str
    description: str
    # What `build` makes for this target: the quantization it runs best and its I/O type.
    build_mode: Mode
    build_io: IOType
    # The hardware as data for the quantization planner: integer_only, int16_activations,
    # cpu_fallback_splits_graph (an op off the accelerator drags what follows it onto the CPU).
    profile: dict

    @property
    def options(self) -> tuple[TargetOption, ...]:
        """The options the target takes, as data (declared in a light module beside it)."""
        ...

    @property
    def max_models(self) -> int | None:
        """How many models one compile takes: 1, or None for any number (co-compiled in one call)."""
        ...

    @property
    def device_help(self) -> str | None:
        """What ``runner(device=...)`` takes ("usb, usb:0, pci:0"); None: the target takes no device."""
        ...

    def check(self, model: str, options: Mapping[str, Any] = NO_OPTIONS) -> CompatReport: ...

    def compile(
        self,
        models: Sequence[str],
        out_dir: str,
        options: Mapping[str, Any] = NO_OPTIONS,
        checked: Sequence[CompatReport] = (),
    ) -> CompileResult:
        """Compile ``models``; ``checked`` is the check of each (same options) where the caller has it: a
        target whose compile needs the check's analysis (Vela's, TFLM's arena) takes it from there instead
        of running it again. Empty: the target checks what it needs itself."""
        ...

    def runner(self, device: str | None = None, options: Mapping[str, Any] = NO_OPTIONS) -> Runner: ...

    def tool_versions(self, stage: Stage, options: Mapping[str, Any] = NO_OPTIONS) -> dict[str, str]:
        """The versions of the tools ``stage`` runs with these options, by tool name (a tool that is not
        installed is ``"absent"``, see :mod:`edgeq.targets.toolversions`); empty when the stage runs none.
        A build keys the stage's cached result on them: installing or upgrading a tool redoes its stages."""
        ...


@runtime_checkable
class ListsOps(Protocol):
    """A target whose accelerator runs a known set of ops (``edgeq targets --supported-ops``)."""

    ops_source: str  # where the table's entries are documented (a docs/ page)
    other_ops: str  # what becomes of an op not in the table ("runs on the CPU")

    def supported_ops(self, runtime_version: int | None = None) -> list[dict]: ...

    def requirements(self) -> list[dict]: ...


def not_applicable(flag: str, target: str, stage: Stage | str, takers: Sequence[str] = ()) -> UsageError:
    """The one "does not apply" error; ``flag`` is a real flag of the command, ``target`` the target (or
    the targets, comma-separated) it was given for, ``takers`` the targets that take it (said in the hint)."""
    where = stage.value if isinstance(stage, Stage) else stage
    plural = "s" if "," in target else ""
    hint = f"drop {flag}" + (f", or choose a target that takes it: {', '.join(takers)}" if takers else "")
    return UsageError(f"{flag} does not apply to target{plural} {target} for {where}", hint)


def check_models(target: Declares, models: Sequence[str]) -> list[str]:
    """``models`` as a list of paths, refused when empty or more than the target compiles at once."""
    if isinstance(models, str):
        raise TypeError("compile takes a sequence of model paths, not one string")
    paths = [str(m) for m in models]
    if not paths:
        raise UsageError("no model to compile", "pass one or more .tflite files")
    if target.max_models is not None and len(paths) > target.max_models:
        n = target.max_models
        many = "one model" if n == 1 else f"at most {n} models"
        raise UsageError(f"target {target.name} compiles {many} at a time", f"pass {many}")
    return paths


# The protocol's methods and their parameters, in order: every target takes exactly these.
PROTOCOL: dict[str, tuple[str, ...]] = {
    "check": ("model", "options"),
    "compile": ("models", "out_dir", "options", "checked"),
    "runner": ("device", "options"),
    "tool_versions": ("stage", "options"),
}


def protocol_problems(target: object) -> list[str]:
    """How ``target`` departs from :class:`Target` (empty when it conforms): a missing method or
    attribute, other parameters than the protocol's, or option declarations that are not TargetOptions."""
    import inspect

    problems = []
    for attr in ("name", "description", "build_mode", "build_io", "profile", "options", "max_models", "device_help"):
        if not hasattr(target, attr):
            problems.append(f"no attribute {attr}")
    for method, params in PROTOCOL.items():
        fn = getattr(target, method, None)
        if not callable(fn):
            problems.append(f"no method {method}")
            continue
        got = tuple(inspect.signature(fn).parameters)
        if got != params:
            problems.append(f"{method}{got} is not {method}{params}")
    opts = getattr(target, "options", ())
    if not all(isinstance(o, TargetOption) for o in opts):
        problems.append("options must be TargetOption declarations")
    for stage in Stage:
        keys = [o.key for o in opts if stage in o.stages]
        if len(keys) != len(set(keys)):
            problems.append(f"an option key is declared twice for {stage.value}")
    max_models = getattr(target, "max_models", None)
    if max_models is not None and (not isinstance(max_models, int) or max_models < 1):
        problems.append("max_models must be None or a positive int")
    return problems
