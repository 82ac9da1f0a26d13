"""The accuracy-budget planner: the cheapest quantization that meets a budget on a target.

Candidates, cheapest first: plain int8 PTQ; where one of its outputs has channel groups one int8
scale cannot hold (a YOLO head's boxes and scores), that output split into its parts, one scale
each (:mod:`edgeq.quantize.split_head`; every later candidate is built on the split model); the all-integer techniques (cross-layer
equalization, then MSE ranges with bias correction, then AdaRound), which keep every op int8;
selective quantization, keeping the most sensitive layers (by the debugger's rmse/scale) in
float one at a time; int16 activations where the target runs them; QAT. Each candidate is
built, read back and evaluated. The target's profile decides what a float layer costs: on
integer-only hardware (coral, ethos-u, mcu) it is a CPU fallback, and where the accelerator
partitions at the first CPU op (the Edge TPU) every op after it leaves the accelerator too.
There a plan with ops off the accelerator does not meet the budget unless the user allows it
(``--allow-cpu-fallback``), and where a float layer splits the graph QAT is tried first.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from edgeq.bench import fidelity
from edgeq.errors import UsageError
from edgeq.tflite import ModelInfo, read_bytes


@dataclass(frozen=True)
class Budget:
    """What the plan must meet: accuracy drop in points (labels), or output SQNR (no labels),
    and optionally the worst per-class drop."""

    max_drop: float | None = None
    min_sqnr: float | None = None
    max_class_drop: float | None = None

    def __post_init__(self) -> None:
        if self.max_drop is None and self.min_sqnr is None:
            raise UsageError("the planner needs a budget", "pass --max-drop POINTS (labeled data) or --min-sqnr DB")
        for name, value in (("--max-drop", self.max_drop), ("--max-class-drop", self.max_class_drop)):
            if value is not None and value < 0:
                raise UsageError(f"{name} must be 0 or more, got {value}", f"e.g. {name} 1")

    def to_dict(self) -> dict:
        return dict(self.__dict__)

    def undecided(self, intervals: dict) -> list[str]:
        """Budgets inside the noise of the evaluation set: their 95% interval spans the bound."""
        from edgeq.bench import stats

        checks = (("accuracy_drop_points", self.max_drop), ("sqnr_db", self.min_sqnr))
        notes = [
            stats.noise_note(stats.Interval.from_dict(intervals[what]), bound)
            for what, bound in checks
            if bound is not None and intervals.get(what)
        ]
        return [n for n in notes if n]

    def misses(self, ev: dict) -> list[str]:
        """Why an evaluation misses the budget (empty when it meets it). A budget judged on fewer than
        :data:`edgeq.bench.stats.MIN_SAMPLES` samples is never met, whatever they say."""
        from edgeq.bench import stats

        out = []
        judged = (self.max_drop is not None and ev.get("accuracy_drop_points") is not None) or self.min_sqnr is not None
        if judged and ev.get("num_samples", stats.MIN_SAMPLES) < stats.MIN_SAMPLES:
            out.append(too_few_samples(ev["num_samples"]))
        if self.max_drop is not None and ev.get("accuracy_drop_points", 0) > self.max_drop:
            out.append(f"accuracy drop {ev['accuracy_drop_points']:.2f} > {self.max_drop} points")
        if self.min_sqnr is not None and ev["sqnr_db"] < self.min_sqnr:
            out.append(f"SQNR {ev['sqnr_db']:.2f} < {self.min_sqnr} dB")
        if self.max_class_drop is not None and ev.get("worst_class_drop_points", 0) > self.max_class_drop:
            out.append(
                f"class {ev['per_class'][0]['class']} drops {ev['worst_class_drop_points']:.2f} > {self.max_class_drop} points"
            )
        return out


def too_few_samples(n: int) -> str:
    """Why no budget is met on ``n`` evaluation samples, fewer than :data:`edgeq.bench.stats.MIN_SAMPLES`."""
    from edgeq.bench import stats

    return f"{n} evaluation samples are fewer than the {stats.MIN_SAMPLES} needed to judge a budget"


@dataclass(frozen=True)
class Profile:
    """How a target treats float ops (read from the target's ``profile``)."""

    integer_only: bool = False
    int16_activations: bool = True
    cpu_fallback_splits_graph: bool = False

    @classmethod
    def of(cls, target) -> Profile:
        raw = getattr(target, "profile", None) or {}
        if not isinstance(raw, dict):
            raw = dict(raw.__dict__)
        return cls(**{k: v for k, v in raw.items() if k in cls.__dataclass_fields__})


@dataclass
class Step:
    name: str
    method: str  # ptq | selective | int16x8 | qat
    denylist: list[str] = field(default_factory=list)
    accuracy: float | None = None
    drop_points: float | None = None
    worst_class_drop_points: float | None = None
    sqnr_db: float | None = None
    size_bytes: int | None = None
    num_ops: int | None = None
    num_float_ops: int | None = None
    ops_off_accelerator: int | None = None
    meets: bool = False
    misses: list[str] = field(default_factory=list)
    skipped: str = ""
    failed: str = ""  # the candidate raised: why, in one line (the plan went on with the next)
    intervals: dict | None = None  # 95% intervals of the drop, agreement and SQNR (edgeq.bench.stats)
    noise: list[str] = field(default_factory=list)  # budgets the evaluation set cannot decide
    outputs: list[dict] = field(default_factory=list)  # per-output fidelity, by name (fidelity.compare)
    # the model's interface where it differs from the float model's: a Split's dict (split_head.Split.to_dict),
    # its outputs merged before they are compared with the float reference; None: the same outputs
    interface: dict | None = None
    data: bytes | None = field(default=None, repr=False)
    cached: bool = False  # built by an earlier run (the candidate cache), evaluated again in this one

    def to_dict(self) -> dict:
        d = {k: v for k, v in self.__dict__.items() if k != "data"}
        d["float_op_fraction"] = (
            round(self.num_float_ops / self.num_ops, 4) if self.num_ops and self.num_float_ops is not None else None
        )
        return d


def ops_off_accelerator(info: ModelInfo, profile: Profile) -> int:
    """Ops an integer-only accelerator would not run: float/conversion ops, or, where the graph
    is partitioned at the first CPU op, that op and every op after it."""
    cpu = [i for i, op in enumerate(info.ops) if op.compute in ("float", "hybrid", "conversion")]
    if not profile.integer_only or not cpu:
        return 0
    return len(info.ops) - cpu[0] if profile.cpu_fallback_splits_graph else len(cpu)


def profile_misses(info: ModelInfo, profile: Profile) -> list[str]:
    """Why a candidate cannot run as built on the target, whatever its accuracy."""
    int16 = [op for op in info.ops if op.compute == "int16"]
    if int16 and not profile.int16_activations:
        return [f"{len(int16)} op(s) compute with int16 activations, which the target does not run"]
    return []


class CandidateCache(Protocol):
    """Candidates kept across runs (``edgeq.stages.plan_cache.PlanCache``): a rerun does not rebuild them."""

    def build(self, step: Step, build: Callable[[], bytes | str]) -> tuple[bytes | str, bool]:
        """``build()``'s result for ``step``, from the cache when it holds it whole, and whether it did."""
        ...


@dataclass
class Planner:
    """Evaluates candidates against the float reference outputs on the evaluation set."""

    reference_outputs: dict[str, np.ndarray]  # by output name (LoadedModel.predict_outputs)
    x: np.ndarray
    labels: np.ndarray | None
    budget: Budget
    profile: Profile
    allow_cpu_fallback: bool = False
    steps: list[Step] = field(default_factory=list)
    on_step: Callable[[Step], None] | None = None  # told of each step as it finishes (progress; never prints)
    cache: CandidateCache | None = None  # built candidates kept across runs; None builds every one
    interface: dict | None = None  # the split every later candidate is built on (run() sets it), or None

    def _add(self, step: Step) -> Step:
        self.steps.append(step)
        if self.on_step is not None:
            self.on_step(step)
        return step

    def attempt(self, step: Step, build: Callable[[], bytes | str]) -> Step:
        """Build and evaluate ``step``; a builder's reason it does not apply (a string) is a skip, and a
        candidate that raises (not a usage error) is a failed step with its reason: the plan goes on.
        With a :attr:`cache`, a candidate an earlier run built is read from it (``step.cached``) and
        evaluated again; one built now is kept there as soon as it is built."""
        try:
            if self.cache is None:
                data = build()
            else:
                data, step.cached = self.cache.build(step, build)
            if isinstance(data, str):
                step.skipped = data
                return self._add(step)
            return self.evaluate(step, data)
        except UsageError:
            raise
        except Exception as exc:  # noqa: BLE001 - one candidate's failure must not lose the steps measured
            return self.fail(step, exc)

    def fail(self, step: Step, exc: BaseException) -> Step:
        text = " ".join(str(exc).split())
        step.failed = f"{type(exc).__name__}: {text[:200]}" if text else type(exc).__name__
        step.meets = False
        step.misses = [f"failed: {step.failed}"]
        return self._add(step)

    def evaluate(self, step: Step, data: bytes) -> Step:
        from edgeq.quantize.split_head import Split
        from edgeq.runtime import open_session

        merge = Split.from_dict(step.interface).merge if step.interface else None  # against the original outputs
        ev = fidelity.compare_session(
            self.reference_outputs, open_session(data, batch=1), self.x, self.labels, merge=merge
        )
        info = read_bytes(data)
        step.accuracy = ev["quantized"]["accuracy"]
        step.drop_points = ev.get("accuracy_drop_points")
        step.worst_class_drop_points = ev.get("worst_class_drop_points")
        step.sqnr_db = ev["sqnr_db"]
        step.outputs = ev["outputs"]
        step.size_bytes = len(data)
        step.num_ops = len(info.ops)
        step.num_float_ops = len(info.float_ops)
        step.ops_off_accelerator = ops_off_accelerator(info, self.profile)
        step.misses = profile_misses(info, self.profile) + self.budget.misses(ev)
        if step.ops_off_accelerator and not self.allow_cpu_fallback:
            step.misses.append(
                f"{step.ops_off_accelerator} of {step.num_ops} ops leave the accelerator (--allow-cpu-fallback accepts it)"
            )
        step.misses += [f"int8 output {d['output']!r} is {d['why']}" for d in ev["degenerate"]]  # never a pass
        step.misses += mixed_misses(ev)  # never a pass either: the SQNR is the boxes', the scores are lost
        step.meets = not step.misses
        step.intervals = ev.get("intervals")
        step.noise = self.budget.undecided(step.intervals or {})
        step.data = data
        return self._add(step)

    def skip(self, name: str, method: str, why: str) -> None:
        self._add(Step(name + split_suffix(self.interface), method, skipped=why, interface=self.interface))

    def new(self, name: str, method: str, denylist: list[str] | None = None) -> Step:
        """A step of the plan on the current interface (named so where the head is split)."""
        return Step(name + split_suffix(self.interface), method, list(denylist or []), interface=self.interface)


def split_suffix(interface: dict | None) -> str:
    """What the names of the steps built on a split model end with ("" on the float model's interface)."""
    return f" on the split {interface['output']}" if interface else ""


def mixed_misses(ev: dict) -> list[str]:
    """Why an evaluation with an int8 output whose channel groups one scale cannot hold misses any budget
    (:func:`edgeq.bench.tasks.mixed_ranges`): its SQNR is the wide group's, and the narrow ones are lost."""
    out = []
    for row in ev.get("outputs") or []:
        mixed = row.get("mixed_ranges")
        if not mixed:
            continue
        narrow = [g for g in mixed["groups"] if g["narrow"]]
        lost = ", ".join(f"{mixed['axis']} {g['first']}-{g['last']} keep {g['steps']:.2g} steps" for g in narrow)
        out.append(f"int8 output {row['name']!r} mixes ranges one int8 scale cannot hold ({lost})")
    return out


@dataclass(frozen=True)
class PlanResult:
    steps: list[Step]
    chosen: Step | None
    stopped_because: str

    @property
    def best(self) -> Step | None:
        return _best([s for s in self.steps if not s.skipped and not s.failed])

    @property
    def best_integer(self) -> Step | None:
        """The best plan that keeps every op on the accelerator (all int8 on integer-only targets)."""
        measured = [s for s in self.steps if not s.skipped and not s.failed]
        return _best([s for s in measured if not s.ops_off_accelerator and not s.num_float_ops])

    def to_dict(self) -> dict:
        return {
            "chosen": self.chosen.name if self.chosen else None,
            "stopped_because": self.stopped_because,
            # said plainly: the chosen plan meets the budget on these samples, but not by more than their noise
            "noise": self.chosen.noise if self.chosen else [],
            # the chosen model's outputs where they are not the float model's (a split head), else None
            "interface": self.chosen.interface if self.chosen else None,
            "steps": [s.to_dict() for s in self.steps],
        }


def _best(run: list[Step]) -> Step | None:
    """The most accurate step (labels), its SQNR breaking a tie; the highest SQNR without labels."""

    def key(s: Step) -> tuple[float, float]:
        sqnr = s.sqnr_db if s.sqnr_db is not None else float("-inf")
        return (s.accuracy if s.accuracy is not None else float("-inf"), sqnr)

    return max(run, key=key) if run else None


# A builder of an all-integer candidate returns the model, or why it does not apply (a skip).
Candidate = tuple[str, Callable[[], "bytes | str"]]


@dataclass(frozen=True)
class Candidates:
    """The builders of every candidate after plain PTQ, made from one model (the float model, or the model
    with its head split): see :func:`run`."""

    ptq: Callable[[], bytes]
    integer: list[Candidate]
    selective: Callable[[list[str]], bytes] | None
    sensitivity: Callable[[], list[list[str]]] | None
    int16: Callable[[], bytes]
    qat: Callable[[], bytes] | None


# Given an output whose channel groups one int8 scale cannot hold (its name and mixed_ranges), the split's
# record (split_head.Split.to_dict) and the candidates built on the split model, or why it cannot be split.
SplitHead = Callable[[str, dict], "tuple[dict, Candidates] | str"]
SPLIT_STEP = "split head"


def run(
    planner: Planner,
    ptq: Callable[[], bytes],
    integer: list[Candidate],
    selective: Callable[[list[str]], bytes] | None,
    sensitivity: Callable[[], list[list[str]]] | None,
    int16: Callable[[], bytes],
    qat: Callable[[], bytes] | None,
    max_selective_steps: int = 8,
    max_float_fraction: float = 0.25,
    split_head: SplitHead | None = None,
) -> PlanResult:
    """Try candidates, cheapest first for the target's profile; stop at the first that meets
    the budget.

    Args:
        ptq, int16, qat: build the int8, int16x8 and QAT models (``qat`` None without training data).
        integer: the all-integer techniques, cheapest first, as (name, builder).
        selective: builds the int8 model with the given tensors left in float.
        sensitivity: groups of tensors to add to the float set, most sensitive first.
        split_head: where plain PTQ has an output whose channel groups one int8 scale cannot hold, the
            next step splits it (all int8, on the accelerator) before anything else; its outputs are merged
            before they are compared with the float reference, and if it misses the budget every later
            candidate is built on the split model (None: never split).
    """
    cands = Candidates(ptq, integer, selective, sensitivity, int16, qat)
    step = planner.attempt(planner.new("int8 PTQ", "ptq"), ptq)
    if step.meets:
        return PlanResult(planner.steps, step, "plain int8 PTQ meets the budget")
    mixed = next((r for r in step.outputs if r.get("mixed_ranges")), None)
    if mixed is not None and split_head is not None:
        split = _try_split(planner, split_head, str(mixed["name"]), mixed["mixed_ranges"])
        if isinstance(split, PlanResult):
            return split
        cands = split or cands
    return _after_split(planner, cands, max_selective_steps, max_float_fraction)


def _try_split(planner: Planner, split_head: SplitHead, output: str, mixed: dict) -> PlanResult | Candidates | None:
    """The split-head step: a PlanResult where it meets the budget, else the candidates on the split model
    to go on with (None where it was skipped or failed: the plan goes on with the float model's)."""
    try:
        made = split_head(output, mixed)
    except UsageError:
        raise
    except Exception as exc:  # noqa: BLE001 - a failed split is a failed step; the plan goes on unsplit
        planner.fail(Step(SPLIT_STEP, "ptq"), exc)
        return None
    if isinstance(made, str):
        planner.skip(SPLIT_STEP, "ptq", made)
        return None
    interface, cands = made
    step = planner.attempt(Step(SPLIT_STEP, "ptq", interface=interface), cands.ptq)
    if step.meets:
        why = f"the head split into outputs with one int8 scale each meets the budget: {interface['text']}"
        return PlanResult(planner.steps, step, why)
    if step.failed or step.skipped:
        return None
    planner.interface = interface
    return cands


def _after_split(
    planner: Planner, cands: Candidates, max_selective_steps: int, max_float_fraction: float
) -> PlanResult:
    """The candidates after plain PTQ (and the split head), cheapest first for the target's profile."""
    prof = planner.profile

    def done(step: Step, why: str) -> PlanResult:
        return PlanResult(planner.steps, step, why)

    for name, build in cands.integer:
        step = planner.attempt(planner.new(name, "ptq"), build)
        if step.meets:
            return done(step, f"{step.name} meets the budget with every op int8")

    def try_selective() -> Step | None:
        return _try_selective(planner, cands.selective, cands.sensitivity, max_selective_steps, max_float_fraction)

    if prof.integer_only:
        # Integer-only hardware: whatever keeps every op integer (int16 where it runs, QAT) comes
        # before a float layer, which is a CPU fallback (and, on the Edge TPU, takes every op after it).
        if (r := _try_int16(planner, cands.int16)) or (r := _try_qat(planner, cands.qat)):
            return r
        chosen = try_selective()
        if chosen is not None:
            return done(
                chosen,
                f"selective quantization meets the budget ({chosen.ops_off_accelerator} ops leave the accelerator, allowed)",
            )
        return PlanResult(planner.steps, None, "no candidate meets the budget")
    chosen = try_selective()
    if chosen is not None:
        return done(chosen, "selective quantization meets the budget")
    if (r := _try_int16(planner, cands.int16)) or (r := _try_qat(planner, cands.qat)):
        return r
    return PlanResult(planner.steps, None, "no candidate meets the budget")


def _try_qat(planner: Planner, qat: Callable[[], bytes] | None) -> PlanResult | None:
    if qat is None:
        planner.skip("QAT", "qat", "no --train-data given")
        return None
    s = planner.attempt(planner.new("QAT", "qat"), qat)
    return PlanResult(planner.steps, s, "QAT meets the budget") if s.meets else None


def _try_int16(planner: Planner, int16: Callable[[], bytes]) -> PlanResult | None:
    if not planner.profile.int16_activations:
        planner.skip("int16x8", "int16x8", "the target has no int16 activation kernels")
        return None
    s = planner.attempt(planner.new("int16x8", "int16x8"), int16)
    return PlanResult(planner.steps, s, "int16 activations meet the budget") if s.meets else None


def _try_selective(
    planner: Planner,
    selective: Callable[[list[str]], bytes] | None,
    sensitivity: Callable[[], list[list[str]]] | None,
    max_selective_steps: int,
    max_float_fraction: float,
) -> Step | None:
    """Leave the most sensitive tensors in float, a group at a time, until the budget is met (or too many ops
    are float)."""
    if selective is None or sensitivity is None:
        return None
    if planner.profile.integer_only and not planner.allow_cpu_fallback:
        planner.skip(
            "selective",
            "selective",
            "a float layer leaves the accelerator on this integer-only target (--allow-cpu-fallback tries it)",
        )
        return None
    denied: list[str] = []
    for group in sensitivity()[:max_selective_steps]:
        denied = denied + [t for t in group if t not in denied]
        s = planner.attempt(
            planner.new(f"selective ({len(denied)} tensors float)", "selective", denied),
            lambda d=list(denied): selective(d),  # type: ignore[misc]
        )
        if s.num_ops and s.num_float_ops is not None and s.num_float_ops / s.num_ops > max_float_fraction:
            s.misses.append(f"{s.num_float_ops} of {s.num_ops} ops in float is more than {max_float_fraction:.0%}")
            s.meets = False
            return None
        if s.meets:
            return s
    return None
