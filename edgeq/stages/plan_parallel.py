"""The planner's independent candidates built ahead, in parallel, on an executor (:mod:`edgeq.executor`).

The candidates whose recipe is known before any of them is measured (plain int8 PTQ, the all-integer
techniques, int16x8 where the target runs it) are submitted at once, each as a task that loads the model
and builds that one candidate's bytes. The planner itself is unchanged: it asks for its candidates in its
own order and evaluates them here, one after another, stopping at the first that meets the budget, so the
plan chosen is the one the sequential planner chooses (the cheapest that meets it), not the first to
finish; what it never asks for is cancelled. Selective steps (they follow the debugger's sensitivity), the
split head and QAT are built here as before.

Workers only build: the bytes (and a technique's record) come back, and this process writes them to the
candidate cache (:mod:`edgeq.stages.plan_cache`), which stays on this machine. A candidate the cache holds
is not submitted. A task gets the model's path and content hash and the calibration samples themselves;
a worker on another host must see the model at the same path (a shared folder), and one that reads other
bytes fails its candidates, saying so.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from edgeq.config import PLAIN, IOType, LoadConfig, Mode, QuantizeConfig, TechniqueConfig
from edgeq.errors import BadInput, UsageError

if TYPE_CHECKING:
    from edgeq.data import Dataset
    from edgeq.executor import ExecutorConfig, Outcome
    from edgeq.modelio import LoadedModel
    from edgeq.quantize.planner import Candidates, Step
    from edgeq.stages.plan_cache import PlanCache

PTQ, INT16 = "int8 PTQ", "int16x8"


def int16_io(io: IOType) -> IOType:
    return IOType.INT16 if io in (IOType.INT8, IOType.UINT8) else IOType.FLOAT


def convert(model: LoadedModel, calib: Dataset, io: IOType, kind: str) -> bytes:
    """Plain int8 PTQ (``kind`` "ptq") or int16x8: the one recipe, here or in a worker."""
    from edgeq.quantize import ptq

    if kind == "int16x8":
        return ptq.convert(model, QuantizeConfig(mode=Mode.INT16X8, io=int16_io(io)), calib)[0]
    return ptq.convert(model, QuantizeConfig(io=io, techniques=PLAIN), calib)[0]


def technique(
    model: LoadedModel, calib: Dataset, io: IOType, tc: TechniqueConfig, said: Callable[[dict], None] | None = None
) -> tuple[bytes | str, dict | None]:
    """An all-integer technique candidate: its bytes and record, or why it does not apply (a skip)."""
    from edgeq.quantize import techniques

    try:
        result = techniques.int8(model, calib, QuantizeConfig(io=io, techniques=tc), said)
    except BadInput as exc:  # a technique this model does not admit is a skipped step, not the end
        return f"{tc.label} does not apply: {exc.one_line()}", None
    return result.model, result.to_dict()


@dataclass(frozen=True)
class Spec:
    """One candidate to build in a worker: everything it needs, picklable."""

    name: str
    kind: str  # "ptq" | "int16x8" | "technique"
    model_path: str
    model_sha256: str
    load_cfg: LoadConfig
    calib: Dataset
    io: IOType
    techniques: TechniqueConfig | None = None


def build(spec: Spec) -> dict[str, Any]:
    """A worker's task: load the model, check it is the one planned, build the candidate.

    Returns:
        ``{"data": bytes | str (why it does not apply), "techniques": record or None}``.

    Raises:
        BadInput: the model this worker reads is not the one planned (another file at that path).
    """
    from edgeq.stages.common import load_model

    model = load_model(spec.model_path, spec.load_cfg)
    if model.sha256 != spec.model_sha256:
        raise BadInput(
            f"the model at {spec.model_path} on this worker is not the one planned (its sha256 differs)",
            "give every worker the same model file at the same path (a shared folder)",
        )
    if spec.kind == "technique":
        assert spec.techniques is not None
        data, record = technique(model, spec.calib, spec.io, spec.techniques)
        return {"data": data, "techniques": record}
    return {"data": convert(model, spec.calib, spec.io, spec.kind), "techniques": None}


def specs(
    model_path: str,
    model: LoadedModel,
    calib: Dataset,
    io: IOType,
    load_cfg: LoadConfig,
    cands: Candidates,
    int16: bool,
) -> list[Spec]:
    """The candidates known before any is measured, in the planner's order: plain PTQ, the techniques that
    apply (their builders say which), int16x8 where the target runs it. A worker loads ``model_path`` (the
    path given, as the planner did: an ONNX file is converted there too) and checks its hash."""
    common = (model_path, model.sha256, load_cfg, calib, io)
    out = [Spec(PTQ, "ptq", *common)]
    for name, builder in cands.integer:
        tc = getattr(builder, "techniques", None)
        if isinstance(tc, TechniqueConfig):
            out.append(Spec(name, "technique", *common, techniques=tc))
    if int16:
        out.append(Spec(INT16, "int16x8", *common))
    return out


class Ahead:
    """The planner's candidate cache (:class:`edgeq.quantize.planner.CandidateCache`) over the candidates
    built ahead: the planner asks in its order and gets each as soon as it is built; a candidate not built
    ahead goes to the candidate cache (or is built here) as before. :meth:`close` cancels what was not
    asked for."""

    def __init__(self, cfg: ExecutorConfig, todo: list[Spec], inner: PlanCache | None, holder: dict) -> None:
        from edgeq.executor import Task, stream

        self.inner = inner
        self.holder = holder
        # a candidate the cache already holds is read from it, not built again
        todo = [s for s in todo if inner is None or not inner.holds(_step(s))]
        self.kinds = {s.name: s for s in todo}
        self.ready: dict[str, Outcome] = {}
        self.runs: list[dict[str, Any]] = []
        self.outcomes: Iterator[Outcome] = stream(cfg, [Task(s.name, build, (s,)) for s in todo])

    @property
    def notes(self) -> list[str]:
        return self.inner.notes if self.inner is not None else []

    def build(self, step: Step, build: Callable[[], bytes | str]) -> tuple[bytes | str, bool]:
        spec = self.kinds.get(step.name)
        if spec is None or step.interface or step.denylist:
            return self.inner.build(step, build) if self.inner is not None else (build(), False)
        out = self._get(step.name)
        self.runs.append(out.to_dict())
        if not out.ok:
            if out.error_type == UsageError.__name__:
                raise UsageError(out.error)
            raise type(out.error_type, (Exception,), {})(out.error)  # the step's failure reads as it would here
        data, record = out.value["data"], out.value["techniques"]
        if record is not None:
            self.holder.setdefault("techniques", {})[step.name] = record
        if isinstance(data, str) or self.inner is None:
            return data, False
        return self.inner.build(step, lambda: data)[0], False  # written to the cache here

    def _get(self, name: str) -> Outcome:
        while name not in self.ready:
            got = next(self.outcomes)
            self.ready[got.name] = got
        return self.ready.pop(name)

    def close(self) -> None:
        close = getattr(self.outcomes, "close", None)
        if close is not None:
            close()


def _step(spec: Spec) -> Step:
    from edgeq.quantize.planner import Step

    return Step(spec.name, "int16x8" if spec.kind == "int16x8" else "ptq")
