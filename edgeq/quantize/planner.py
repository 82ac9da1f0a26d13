"""The accuracy-budget planner: the cheapest quantization that meets a budget on a target.

Candidates, cheapest first: plain int8 PTQ; selective quantization, keeping the most
sensitive layers (by the debugger's rmse/scale) in float one at a time; int16 activations
where the target runs them; QAT. Each candidate is built, read back and evaluated. The
target's profile decides what a float layer costs: on integer-only hardware it is a CPU
fallback, and where the accelerator partitions at the first CPU op (the Edge TPU) every op
after it leaves the accelerator too, so there the planner prefers QAT and shows that cost.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from edgeq.bench import fidelity
from edgeq.errors import UsageError
from edgeq.flatbuffer import ModelInfo, read_bytes


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

    def misses(self, ev: dict) -> list[str]:
        """Why an evaluation misses the budget (empty when it meets it)."""
        out = []
        if self.max_drop is not None and ev.get("accuracy_drop_points", 0) > self.max_drop:
            out.append(f"accuracy drop {ev['accuracy_drop_points']:.2f} > {self.max_drop} points")
        if self.min_sqnr is not None and ev["sqnr_db"] < self.min_sqnr:
            out.append(f"SQNR {ev['sqnr_db']:.2f} < {self.min_sqnr} dB")
        if self.max_class_drop is not None and ev.get("worst_class_drop_points", 0) > self.max_class_drop:
            out.append(
                f"class {ev['per_class'][0]['class']} drops {ev['worst_class_drop_points']:.2f} > {self.max_class_drop} points"
            )
        return out


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
    outputs: list[dict] = field(default_factory=list)  # per-output fidelity, by name (fidelity.compare)
    data: bytes | None = field(default=None, repr=False)

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


@dataclass
class Planner:
    """Evaluates candidates against the float reference outputs on the evaluation set."""

    reference_outputs: dict[str, np.ndarray]  # by output name (LoadedModel.predict_outputs)
    x: np.ndarray
    labels: np.ndarray | None
    budget: Budget
    profile: Profile
    steps: list[Step] = field(default_factory=list)

    def evaluate(self, step: Step, data: bytes) -> Step:
        from edgeq.runtime import open_session

        ev = fidelity.compare_session(self.reference_outputs, open_session(data, batch=1), self.x, self.labels)
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
        step.misses += [f"int8 output {d['output']!r} is {d['why']}" for d in ev["degenerate"]]  # never a pass
        step.meets = not step.misses
        step.data = data
        self.steps.append(step)
        return step

    def skip(self, name: str, method: str, why: str) -> None:
        self.steps.append(Step(name=name, method=method, skipped=why))


@dataclass(frozen=True)
class PlanResult:
    steps: list[Step]
    chosen: Step | None
    stopped_because: str

    @property
    def best(self) -> Step | None:
        run = [s for s in self.steps if not s.skipped]
        key = (lambda s: s.accuracy) if run and run[0].accuracy is not None else (lambda s: s.sqnr_db)
        return max(run, key=key) if run else None

    def to_dict(self) -> dict:
        return {
            "chosen": self.chosen.name if self.chosen else None,
            "stopped_because": self.stopped_because,
            "steps": [s.to_dict() for s in self.steps],
        }


def run(
    planner: Planner,
    ptq: Callable[[], bytes],
    selective: Callable[[list[str]], bytes] | None,
    sensitivity: Callable[[], list[list[str]]] | None,
    int16: Callable[[], bytes],
    qat: Callable[[], bytes] | None,
    max_selective_steps: int = 8,
    max_float_fraction: float = 0.25,
) -> PlanResult:
    """Try candidates, cheapest first for the target's profile; stop at the first that meets
    the budget.

    Args:
        ptq, int16, qat: build the int8, int16x8 and QAT models (``qat`` None without training data).
        selective: builds the int8 model with the given tensors left in float.
        sensitivity: groups of tensors to add to the float set, most sensitive first.
    """
    prof = planner.profile

    def done(step: Step, why: str) -> PlanResult:
        return PlanResult(planner.steps, step, why)

    step = planner.evaluate(Step("int8 PTQ", "ptq"), ptq())
    if step.meets:
        return done(step, "plain int8 PTQ meets the budget")

    def try_qat() -> PlanResult | None:
        if qat is None:
            planner.skip("QAT", "qat", "no --train-data given")
            return None
        s = planner.evaluate(Step("QAT", "qat"), qat())
        return done(s, "QAT meets the budget") if s.meets else None

    # Where a float layer splits the graph (Edge TPU), QAT keeps everything on the accelerator.
    if prof.cpu_fallback_splits_graph and (r := try_qat()):
        return r

    chosen_selective = None
    if selective is not None and sensitivity is not None:
        denied: list[str] = []
        for group in sensitivity()[:max_selective_steps]:
            denied = denied + [t for t in group if t not in denied]
            s = planner.evaluate(
                Step(f"selective ({len(denied)} tensors float)", "selective", list(denied)), selective(denied)
            )
            if s.num_ops and s.num_float_ops is not None and s.num_float_ops / s.num_ops > max_float_fraction:
                s.misses.append(f"{s.num_float_ops} of {s.num_ops} ops in float is more than {max_float_fraction:.0%}")
                s.meets = False
                break
            if s.meets:
                chosen_selective = s
                break
    if chosen_selective is not None and not prof.cpu_fallback_splits_graph:
        return done(chosen_selective, "selective quantization meets the budget")

    if prof.int16_activations:
        s = planner.evaluate(Step("int16x8", "int16x8"), int16())
        if s.meets:
            return done(s, "int16 activations meet the budget")
    else:
        planner.skip("int16x8", "int16x8", "the target has no int16 activation kernels")

    if not prof.cpu_fallback_splits_graph and (r := try_qat()):
        return r
    if chosen_selective is not None:  # on a splitting target: QAT was not possible or not enough
        return done(
            chosen_selective,
            f"only selective quantization meets the budget ({chosen_selective.ops_off_accelerator} ops leave the accelerator)",
        )
    return PlanResult(planner.steps, None, "no candidate meets the budget")
