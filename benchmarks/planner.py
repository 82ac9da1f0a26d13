"""The accuracy-budget planner's wall time and steps on a quantization-hostile model.

A section of run.py (``run.py --only planner`` runs it alone); see benchmarks/README.md.

The model is ``tests/hostile.py``'s CNN, trained here on real MNIST, whose first conv has two
output channels scaled up 1000x (and the next conv's matching inputs scaled down): the same float
function, but plain int8 loses accuracy. Built once, untimed.

Side by side in one process, after one untimed warm-up of each: ``edgeq.api.plan`` on the
``cpu`` target with a budget of at most 1 point of top-1 drop, and a single plain
``edgeq.api.quantize`` int8 conversion of the same model (the cost the planner is compared
with), interleaved A,B / B,A. Shims on ``edgeq.quantize.planner.run`` and
``Planner.evaluate`` split the planner's time into set-up (loading the model and data, the
float reference on the evaluation set), each step (building the candidate, then evaluating it)
and the final verified write.

Then once on ``coral`` (an integer-only target whose graph splits at the first CPU op, so the
planner tries QAT before selective float layers) with training data for the QAT candidate,
when coral is registered; a failure there is reported, not raised.
"""

from __future__ import annotations

import contextlib
import statistics
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

CALIB = "representative_data/mnist_calib.npz"
EVAL = "representative_data/mnist_eval.npz"
TRAIN = "representative_data/mnist_train.npz"
MAX_DROP = 1.0  # points of top-1
QAT_EPOCHS = 2
QAT_LEARNING_RATE = 1e-4


def _clock() -> tuple[float, float]:
    """Wall time, and this process's CPU time (all threads): a cross-check on a loaded run."""
    return time.perf_counter(), time.process_time()


def _s(seconds: float) -> float:
    return round(seconds, 3)


def summary_s(samples: list[float]) -> dict:
    return {
        "median_s": _s(statistics.median(samples)),
        "min_s": _s(min(samples)),
        "max_s": _s(max(samples)),
        "samples_s": [_s(v) for v in samples],
    }


@contextlib.contextmanager
def timed_planner(marks: dict) -> Iterator[None]:
    """Record when planner.run starts and ends and when each Planner.evaluate starts and ends.

    api.plan calls ``planner.run`` through the module and ``evaluate`` through the instance, so
    patching the module attribute and the class attribute reaches both.
    """
    from edgeq.quantize import planner

    run, evaluate = planner.run, planner.Planner.evaluate

    def timed_run(*args: Any, **kwargs: Any) -> Any:
        marks["run_start"] = time.perf_counter()
        try:
            return run(*args, **kwargs)
        finally:
            marks["run_end"] = time.perf_counter()

    def timed_evaluate(self: Any, step: Any, data: bytes) -> Any:
        t0 = time.perf_counter()
        try:
            return evaluate(self, step, data)
        finally:
            marks["evaluations"].append((t0, time.perf_counter()))

    planner.run, planner.Planner.evaluate = timed_run, timed_evaluate
    try:
        yield
    finally:
        planner.run, planner.Planner.evaluate = run, evaluate


def run_plan(model: Path, out: Path, target: str, root: Path, train: bool = False) -> dict:
    """One ``api.plan`` call, timed, with its steps; a plan that meets no budget is a result too."""
    from edgeq import api
    from edgeq.config import DataConfig, TrainConfig
    from edgeq.errors import QualityGateFailed
    from edgeq.quantize.planner import Budget

    extra: dict = {}
    if train:
        extra = {
            "train_data_cfg": DataConfig(path=str(root / TRAIN)),
            "train_cfg": TrainConfig(epochs=QAT_EPOCHS, learning_rate=QAT_LEARNING_RATE),
        }
    marks: dict = {"evaluations": []}
    with timed_planner(marks):
        t0 = _clock()
        try:
            doc = api.plan(
                str(model),
                str(out),
                target,
                Budget(max_drop=MAX_DROP),
                DataConfig(path=str(root / CALIB)),
                DataConfig(path=str(root / EVAL)),
                force=True,
                **extra,
            )
            plan, met = doc["plan"], True
        except QualityGateFailed as exc:  # no candidate met the budget: its details carry every step
            plan, met = exc.details, False
        t1 = _clock()
    # Steps that ran, in order, paired with their evaluate() calls; skipped steps have no timing.
    build_from = marks["run_start"]
    evaluations = iter(marks["evaluations"])
    steps = []
    for raw in plan["steps"]:
        step = dict(raw)
        if not step["skipped"]:
            start, end = next(evaluations)
            step["build_s"], step["evaluate_s"] = _s(start - build_from), _s(end - start)
            build_from = end
        steps.append(step)
    return {
        "target": target,
        "wall_s": t1[0] - t0[0],
        "cpu_s": t1[1] - t0[1],
        "setup_s": _s(marks["run_start"] - t0[0]),  # load model and data, float reference on eval data
        "write_s": _s(t1[0] - marks["run_end"]),  # verify and write the chosen model and its sidecar
        "met_budget": met,
        "chosen": plan["chosen"],
        "stopped_because": plan["stopped_because"],
        "profile": plan["profile"],
        "steps": steps,
    }


def run_ptq(model: Path, out: Path, root: Path) -> dict:
    """One plain int8 conversion (int8 I/O) of the same model, as ``edgeq quantize --ranges minmax`` makes it."""
    from edgeq import api
    from edgeq.config import PLAIN, DataConfig, QuantizeConfig

    t0 = _clock()
    q = api.quantize(
        str(model), str(out), QuantizeConfig(techniques=PLAIN), DataConfig(path=str(root / CALIB)), force=True
    )
    t1 = _clock()
    return {"wall_s": t1[0] - t0[0], "cpu_s": t1[1] - t0[1], "size_bytes": q.size_bytes}


def _step_key(step: dict) -> tuple:
    return step["name"], step["accuracy"], step["size_bytes"], step["skipped"]


def planner_time(
    root: Path,
    tmp: Path,
    repeats: int,
    log: Callable[[str], None],
    quiet: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
) -> dict:
    """Build the hostile model, then time the planner against one PTQ conversion; coral once.

    ``quiet`` wraps every TensorFlow call here (start-up and converter chatter), both sides alike.
    """
    if str(root) not in sys.path:
        sys.path.append(str(root))  # tests.hostile; appended, so it shadows no installed package
    from edgeq.targets import registry
    from tests.hostile import make_hostile_model

    model = tmp / "hostile.keras"
    with quiet():
        t0 = time.perf_counter()
        make_hostile_model(model)
        build_s = time.perf_counter() - t0
    log(f"  hostile model trained and saved in {build_s:.1f} s; warm-up of each side")
    ptq_out, plan_out = tmp / "hostile_ptq.tflite", tmp / "hostile_plan.tflite"
    with quiet():  # first conversion, debugger session and interpreter in this process
        run_ptq(model, ptq_out, root)
        run_plan(model, plan_out, "cpu", root)
    ptq_runs: list[dict] = []
    plan_runs: list[dict] = []
    for i in range(repeats):
        # A,B then B,A: a drift in background load cancels out instead of favouring one side.
        for side in ("ptq", "plan") if i % 2 == 0 else ("plan", "ptq"):
            with quiet():
                if side == "ptq":
                    ptq_runs.append(run_ptq(model, ptq_out, root))
                else:
                    plan_runs.append(run_plan(model, plan_out, "cpu", root))
        log(f"  {i + 1}/{repeats}: planner {plan_runs[-1]['wall_s']:.2f} s, one PTQ {ptq_runs[-1]['wall_s']:.2f} s")

    med = statistics.median
    plan_wall, ptq_wall = [r["wall_s"] for r in plan_runs], [r["wall_s"] for r in ptq_runs]
    plan_cpu, ptq_cpu = [r["cpu_s"] for r in plan_runs], [r["cpu_s"] for r in ptq_runs]
    last = plan_runs[-1]
    # The same steps with the same results in every run (the planner is seeded), so the step
    # table is the last run's with each step's median time over the runs.
    same = all([_step_key(s) for s in r["steps"]] == [_step_key(s) for s in last["steps"]] for r in plan_runs)
    steps = [dict(s) for s in last["steps"]]
    if same:
        for i, s in enumerate(steps):
            for key in ("build_s", "evaluate_s"):
                if key in s:
                    s[key] = _s(med(r["steps"][i][key] for r in plan_runs))
    first = next(s for s in steps if s["method"] == "ptq")
    cpu_section = {
        "target": "cpu",
        "repeats": repeats,
        "planner": summary_s(plan_wall) | {"cpu_median_s": _s(med(plan_cpu))},
        "ptq": summary_s(ptq_wall) | {"cpu_median_s": _s(med(ptq_cpu)), "size_bytes": ptq_runs[-1]["size_bytes"]},
        "ratio_median": round(med(plan_wall) / med(ptq_wall), 3),
        "ratio_min": round(min(plan_wall) / min(ptq_wall), 3),
        "ratio_cpu_median": round(med(plan_cpu) / med(ptq_cpu), 3),
        "setup_s": _s(med(r["setup_s"] for r in plan_runs)),
        "write_s": _s(med(r["write_s"] for r in plan_runs)),
        "steps_identical_across_runs": same,
        **{k: last[k] for k in ("met_budget", "chosen", "stopped_because", "profile")},
        "steps": steps,
    }
    doc: dict = {
        "model": "tests/hostile.py make_hostile_model (trained here on representative_data/mnist_train.npz)",
        "model_build_s": _s(build_s),
        "calibration_data": CALIB,
        "eval_data": EVAL,
        "budget": {"max_drop": MAX_DROP},
        # the plain int8 step's accuracy plus its drop: the float model's top-1 on the eval data
        "float_top1": round(first["accuracy"] + first["drop_points"] / 100, 4)
        if first["drop_points"] is not None
        else None,
        "cpu": cpu_section,
    }

    if "coral" not in registry.names():
        doc["coral"] = {"skipped": f"coral is not a registered target (registry: {', '.join(registry.names())})"}
        return doc
    log(f"  coral, with {TRAIN} for the QAT candidate ({QAT_EPOCHS} epochs), once")
    try:
        with quiet():
            import tensorflow_model_optimization  # noqa: F401  (its import is not the planner's cost)

            r = run_plan(model, tmp / "hostile_plan_coral.tflite", "coral", root, train=True)
    except Exception as exc:  # the section reports it; the rest of the benchmark still runs
        doc["coral"] = {
            "skipped": f"api.plan(..., 'coral', ...) failed: {type(exc).__name__}: {exc}",
            "traceback": traceback.format_exc(limit=6),
        }
        return doc
    doc["coral"] = r | {
        "runs": 1,
        "train_data": TRAIN,
        "train": {"epochs": QAT_EPOCHS, "learning_rate": QAT_LEARNING_RATE},
        "wall_s": _s(r["wall_s"]),
        "cpu_s": _s(r["cpu_s"]),
        "ratio_to_ptq_median": round(r["wall_s"] / med(ptq_wall), 3),
    }
    return doc
