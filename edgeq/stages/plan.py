"""``plan``: the cheapest quantization that meets an accuracy budget on a target."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgeq.artifacts import check_output, write_artifact
from edgeq.config import PLAIN, DataConfig, IOType, LoadConfig, Mode, QuantizeConfig, TechniqueConfig, TrainConfig
from edgeq.errors import BadInput, UsageError
from edgeq.stages.common import calibration, expected_input_range, input_paths, load_data, load_model
from edgeq.stages.plan_cache import open_cache
from edgeq.stages.quantize import float_size, verified
from edgeq.stages.quantize_aware import quantize_aware

if TYPE_CHECKING:
    import numpy as np

    from edgeq.data import Dataset
    from edgeq.executor import ExecutorConfig
    from edgeq.modelio import LoadedModel
    from edgeq.quantize.planner import Budget, Candidates, Planner, PlanResult, SplitHead, Step


def plan(
    model_path: str,
    output: str,
    target: str,
    budget: Budget,
    data_cfg: DataConfig,
    eval_cfg: DataConfig | None,
    io: IOType | str | None = None,
    train_data_cfg: DataConfig | None = None,
    train_cfg: TrainConfig | None = None,
    load_cfg: LoadConfig = LoadConfig(),
    force: bool = False,
    progress: Callable[[dict], None] | None = None,
    allow_cpu_fallback: bool = False,
    adaround_steps: int = 500,
    executor: ExecutorConfig | None = None,
) -> dict:
    """Find the cheapest quantization of ``model_path`` that meets ``budget`` on ``target``.

    Args:
        budget: an :class:`edgeq.quantize.planner.Budget` (max drop in points, min SQNR,
            max per-class drop).
        data_cfg: calibration data. eval_cfg: evaluation data (labeled for --max-drop).
        io: I/O type of the result (int8 by default; float leaves the I/O in float).
        train_data_cfg, train_cfg: enable the QAT candidate.
        allow_cpu_fallback: on integer-only targets, let a plan keep layers in float.
        adaround_steps: steps per op of the AdaRound candidate.
        executor: builds the candidates known up front in parallel (:mod:`edgeq.stages.plan_parallel`), same plan.

    Returns:
        The chosen plan and its output, and every step tried with accuracy, size, float-op
        count and ops that leave the accelerator; with an executor, where each candidate ran.

    Raises:
        UsageError: --max-drop without evaluation data.
        Unavailable: ``executor`` is ray and Ray is not installed, or its cluster cannot be joined.
        BadInput: unlabeled evaluation data without --min-sqnr.
        QualityGateFailed: no candidate meets the budget (details carry every step), or the evaluation
            data has fewer than :data:`edgeq.bench.stats.MIN_SAMPLES` samples (no budget can be judged).
    """
    import tempfile

    from edgeq.quantize import planner
    from edgeq.targets import registry

    io = IOType(io) if io else IOType.INT8
    _executor_ready(executor)
    if eval_cfg is None:
        raise UsageError("the planner needs evaluation data", "pass --eval-data PATH (labeled for --max-drop)")
    tgt = registry.get(target)
    out = check_output(output, force, input_paths(model_path, data_cfg, eval_cfg, train_data_cfg))
    model = load_model(model_path, load_cfg)
    calib, warnings = calibration(model, QuantizeConfig(), data_cfg)
    ev, more = load_data(eval_cfg, tuple(calib.x.shape[1:]), expected_input_range(model), "evaluation data")
    warnings += more
    reference = model.predict_outputs(ev.x)
    _check_evaluation(model_path, ev, reference, budget)
    p = planner.Planner(reference, ev.x, ev.y, budget, planner.Profile.of(tgt), allow_cpu_fallback)
    p.on_step = _step_events(progress, p.profile.integer_only)
    session_holder: dict = {}
    p.cache = open_cache(model, calib, session_holder, io, adaround_steps, load_cfg, train_data_cfg, train_cfg)
    build = Builders(io, calib, adaround_steps, data_cfg, train_data_cfg, train_cfg, load_cfg, progress)
    int16_io = IOType.INT16 if io in (IOType.INT8, IOType.UINT8) else IOType.FLOAT
    with tempfile.TemporaryDirectory(prefix="edgeq-plan-split-") as tmp:
        f = build.candidates(model, model_path, session_holder)
        split_head = _split_head(build, model, model_path, ev.x, session_holder, Path(tmp))
        with _ahead(executor, p, (model_path, model), f, build, session_holder) as ran:
            result = planner.run(p, f.ptq, f.integer, f.selective, f.sensitivity, f.int16, f.qat, split_head=split_head)
        profile = planner.Profile.of(tgt).__dict__
        summary = result.to_dict() | {"target": target, "budget": budget.to_dict(), "profile": profile}
        summary |= {"executor": ran} if executor is not None else {}  # where each candidate was built
        if result.chosen is None:
            raise _no_plan(result, p.profile.integer_only, model_path, target, allow_cpu_fallback, summary)
        chosen = result.chosen
        split = session_holder.get("split") if chosen.interface else None  # the split model and its records
        written_model = split["model"] if split else model
        args = (chosen, io, int16_io, summary, session_holder, calib, data_cfg, warnings)
        written = _write_chosen(written_model, out, *args)
    warnings += p.cache.notes if p.cache else []  # damaged cache entries, rebuilt
    return written | {"plan": summary}


def _executor_ready(executor: ExecutorConfig | None) -> None:
    """Ray installed where it is asked for: said before any model is loaded."""
    if executor is not None and executor.kind == "ray":
        from edgeq.executor.ray_pool import import_ray

        import_ray()


@contextlib.contextmanager
def _ahead(
    executor: ExecutorConfig | None,
    p: Planner,
    model: tuple[str, LoadedModel],
    f: Candidates,
    build: Builders,
    holder: dict,
) -> Iterator[dict]:
    """With an executor (not one local job), the candidates known up front built ahead on it while the
    planner runs (:class:`edgeq.stages.plan_parallel.Ahead`); what it never asked for is cancelled at the
    end. Yields the record of where they ran (filled as the planner reads them)."""
    from edgeq.stages import plan_parallel

    record: dict[str, Any] = {"config": executor.to_dict() if executor else None, "candidates": []}
    if executor is None or executor.sequential:
        yield record
        return
    todo = plan_parallel.specs(*model, build.calib, build.io, build.load_cfg, f, p.profile.int16_activations)
    ahead = plan_parallel.Ahead(executor, todo, p.cache, holder)  # type: ignore[arg-type]
    p.cache = ahead
    try:
        yield record
    finally:
        ahead.close()
        record["candidates"] = ahead.runs


@dataclass(frozen=True)
class Builders:
    """What the planner's candidates are built with, whatever the model (the float one, or its split head)."""

    io: IOType
    calib: Dataset
    adaround_steps: int
    data_cfg: DataConfig
    train_data_cfg: DataConfig | None
    train_cfg: TrainConfig | None
    load_cfg: LoadConfig
    progress: Callable[[dict], None] | None

    def candidates(self, model: LoadedModel, model_path: str | Callable[[], str], holder: dict) -> Candidates:
        """Every candidate after plain PTQ built on ``model`` (read again from ``model_path`` for QAT; a
        callable where it is written only if QAT runs); technique and QAT records go to ``holder``."""
        import functools

        from edgeq.debug import debugger
        from edgeq.quantize.planner import Candidates
        from edgeq.stages import plan_parallel

        io, calib = self.io, self.calib

        def session() -> Any:
            if "s" not in holder:
                holder["s"] = debugger.calibrate(model, calib)
            return holder["s"]

        path = model_path if isinstance(model_path, str) else ""
        build_qat = _qat_candidate(model_path, io, self.data_cfg, self.train_cfg, self.load_cfg, self.progress, holder)
        return Candidates(
            ptq=lambda: plan_parallel.convert(model, calib, io, "ptq"),
            integer=integer_candidates(model, calib, io, self.adaround_steps, holder, path, self.progress),
            selective=lambda nodes: session().quantized_model(nodes, [], io),
            sensitivity=lambda: debugger.sensitivity_groups(session()),
            int16=lambda: plan_parallel.convert(model, calib, io, "int16x8"),
            qat=functools.partial(build_qat, self.train_data_cfg) if self.train_data_cfg is not None else None,
        )


def _split_head(
    build: Builders, model: LoadedModel, model_path: str, x: np.ndarray, holder: dict, tmp: Path
) -> SplitHead:
    """The planner's split-head step: ``model`` split at the output's concatenation, and every candidate
    built on the split model (its records in ``holder["split"]``, with the model under ``"model"``)."""
    from edgeq.quantize.split_head import split_model

    def split_head(output: str, mixed: dict) -> tuple[dict, Candidates] | str:
        made = split_model(model, model_path, output, mixed, x, build.load_cfg)
        if isinstance(made, str):
            return made
        split_loaded, split = made
        holder["split"] = {"model": split_loaded}

        def saved() -> str:  # QAT reads the model from a file: the split Keras model, written when it runs
            if not split_loaded.is_keras:
                return split_loaded.path
            path = tmp / "split.keras"  # tf_keras and Keras 3 both write and read it
            if not path.exists():
                split_loaded.obj.save(path)
            return str(path)

        return split.to_dict(), build.candidates(split_loaded, saved, holder["split"])

    return split_head


def _step_events(progress: Callable[[dict], None] | None, integer_only: bool) -> Callable[[Step], None] | None:
    """Each finished step as a ``plan_step`` progress event (the step's record, as in the plan's steps)."""
    if progress is None:
        return None
    return lambda st: progress({"event": "plan_step", "step": st.to_dict(), "integer_only": integer_only})


def _write_chosen(
    model: LoadedModel,
    out: Path,
    chosen: Step,
    io: IOType,
    int16_io: IOType,
    summary: dict,
    holder: dict,
    calib: Dataset,
    data_cfg: DataConfig,
    warnings: list[str],
) -> dict:
    """Write the chosen plan's model, verified like every output, with the plan in its sidecar."""
    cfg = QuantizeConfig(
        mode=Mode.INT16X8 if chosen.method == "int16x8" else Mode.INT8,
        io=int16_io if chosen.method == "int16x8" else io,
        allow_float_ops=chosen.method == "selective",
        techniques=PLAIN,
    )
    from edgeq.quantize.planner import split_suffix

    extra: dict[str, Any] = {"plan": summary}
    # a candidate on the split model keeps its records in holder["split"], under its name without the suffix
    # (a candidate cache restoring one may put it under the step's own name)
    own = holder.get("split") or {} if chosen.interface else holder
    name = chosen.name.removesuffix(split_suffix(chosen.interface))
    technique = own.get("techniques", {}).get(name) or holder.get("techniques", {}).get(chosen.name)
    if technique is not None:
        extra["techniques"] = technique
    if chosen.interface:  # the model's outputs are not the float model's: said, and how to restore them
        extra["interface"] = {"split": chosen.interface, "text": chosen.interface["text"]}
    if "qat" in own and chosen.method == "qat":
        extra["qat"] = own["qat"]
    assert chosen.data is not None
    float_bytes = float_size(model, cfg.batch)  # the plan reports size_ratio; one float conversion among many
    res, doc = verified(
        model, out, cfg, chosen.data, "", calib, data_cfg, warnings, float_bytes, "quantize --max-drop", extra
    )
    write_artifact(out, chosen.data, doc)
    return res.to_dict() | ({"interface": extra["interface"]} if "interface" in extra else {})


def _qat_candidate(
    model_path: str | Callable[[], str],
    io: IOType,
    data_cfg: DataConfig,
    train_cfg: TrainConfig | None,
    load_cfg: LoadConfig,
    progress: Callable[[dict], None] | None,
    holder: dict,
) -> Callable[[DataConfig], bytes]:
    """The QAT candidate: fine-tunes on the training data given; its QAT record goes to ``holder["qat"]``."""
    import tempfile

    def build_qat(train_data: DataConfig) -> bytes:
        with tempfile.TemporaryDirectory(prefix="edgeq-plan-") as tmp:
            doc = quantize_aware(
                model_path if isinstance(model_path, str) else model_path(),
                f"{tmp}/qat.tflite",
                QuantizeConfig(io=io, techniques=PLAIN),
                train_data,
                train_cfg or TrainConfig(epochs=2, learning_rate=1e-4),
                data_cfg,
                None,
                load_cfg,
                progress=progress,
            )
            holder["qat"] = doc["qat"]
            return Path(doc["output"]).read_bytes()

    return build_qat


def _check_evaluation(model_path: str, ev: Dataset, reference: dict[str, np.ndarray], budget: Budget) -> None:
    """Evaluation data that can judge ``budget``: labels where it needs them, fitting the outputs, and enough
    samples. Checked now, not after the first candidate."""
    from edgeq.bench import fidelity, stats, tasks
    from edgeq.errors import QualityGateFailed
    from edgeq.quantize import planner

    if ev.y is None and budget.max_drop is not None:
        raise BadInput(
            f"evaluation data {ev.source} has no labels, so --max-drop cannot be measured",
            "give labels (y), or use --min-sqnr DB",
        )
    if ev.y is None and budget.max_class_drop is not None:
        raise BadInput(f"evaluation data {ev.source} has no labels for --max-class-drop", "give labels (y)")
    if ev.y is not None:  # labels that do not fit the outputs
        roles = tasks.roles(reference, None, labeled=True)
        fidelity.check_labels(reference[next(n for n, r in roles.items() if r == tasks.CLASS)], ev.y, ev.source)
    if len(ev.x) < stats.MIN_SAMPLES:  # judged on a handful of samples, every candidate would "meet" by luck
        raise QualityGateFailed(
            f"no plan for {model_path} can meet the budget: {planner.too_few_samples(len(ev.x))} (evaluation"
            f" data {ev.source})",
            f"give at least {stats.MIN_SAMPLES} evaluation samples (--eval-data)",
            details={"num_eval_samples": len(ev.x), "min_samples": stats.MIN_SAMPLES},
        )


def _no_plan(
    result: PlanResult, integer_only: bool, model_path: str, target: str, allow_cpu_fallback: bool, summary: dict
) -> Exception:
    """The error when no candidate met the budget, naming the best one tried and what it missed."""
    from edgeq.errors import QualityGateFailed

    best = result.best_integer if integer_only else result.best
    what = "best all-integer plan" if integer_only else "best"
    return QualityGateFailed(
        f"no quantization of {model_path} meets the budget on {target}"
        + (f"; {what}: {best.name} ({'; '.join(best.misses)})" if best else ""),
        "raise the budget, give --train-data for QAT"
        + (", or --allow-cpu-fallback for float layers" if integer_only and not allow_cpu_fallback else "")
        + " (--json shows every step)",
        details=summary,
    )


def integer_candidates(
    model,
    calib,
    io,
    adaround_steps: int,
    holder: dict,
    model_path: str = "",
    progress: Callable[[dict], None] | None = None,
) -> list:
    """The all-integer techniques as planner candidates, cheapest first: CLE, then MSE ranges with bias
    correction (after CLE where it equalizes anything), then AdaRound on top.

    Whether CLE applies is decided once, up front (a Keras model with at least one layer pair): where
    it does not, its step is a skip with the reason and the later steps are named without it. Each
    builder returns the model, or why it does not apply; the technique record of what was built is
    kept in ``holder["techniques"]`` for the chosen plan's sidecar."""
    from edgeq.errors import BadInput
    from edgeq.quantize import cle
    from edgeq.stages import plan_parallel

    why_not = ""
    not_keras = cle.not_keras(model_path) if model_path else None
    if not_keras is not None or not model.is_keras:
        why_not = "cross-layer equalization needs a Keras model" + (f": {not_keras[0]}" if not_keras else "")
    else:
        try:
            if not cle.equalize(model).pairs:
                why_not = "no layer pair to equalize: the same model as plain int8 PTQ"
        except BadInput as exc:
            why_not = f"the model cannot be equalized: {exc.one_line()}"
    with_cle = not why_not
    combos = [
        TechniqueConfig(cle=with_cle, ranges="mse", bias_correction=True),
        TechniqueConfig(cle=with_cle, ranges="mse", bias_correction=True, adaround=True, adaround_steps=adaround_steps),
    ]
    holder.setdefault("techniques", {})

    def builder(tc: TechniqueConfig):
        name = f"int8 {tc.label}"

        def build() -> bytes | str:
            said = (lambda ev: progress(ev | {"step_name": name})) if progress else None
            data, record = plan_parallel.technique(model, calib, io, tc, said)
            if record is not None:
                holder["techniques"][name] = record
            return data

        build.techniques = tc  # type: ignore[attr-defined] # what it builds: a worker can build it too
        return name, build

    first = builder(TechniqueConfig(cle=True)) if with_cle else ("int8 cle", lambda: why_not)
    return [first, *(builder(tc) for tc in combos)]
