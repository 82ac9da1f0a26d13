"""The planner's candidates built in parallel on the executor: the same steps, figures and choice as one
after another, every candidate byte-identical, the cache written by the parent, and where each ran said."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgeq import api
from edgeq.errors import QualityGateFailed
from edgeq.executor import ExecutorConfig
from edgeq.quantize import planner
from edgeq.stages import plan_cache
from tests.integration.test_plan_cache import BUILT, CALIB, EVAL, tiny  # noqa: F401 - the seeded model fixture

pytestmark = pytest.mark.slow


def plan_on(model: Path, out: Path, cache: Path, min_sqnr: float, executor: ExecutorConfig | None) -> dict:
    """One plan on coral with its own candidate cache: the record (also when no candidate meets)."""
    cache.mkdir(parents=True, exist_ok=True)
    old = plan_cache.cache_home
    plan_cache.cache_home = lambda: cache  # type: ignore[assignment]
    try:
        return api.plan(
            str(model), str(out), "coral", planner.Budget(min_sqnr=min_sqnr), CALIB, EVAL, force=True,
            adaround_steps=2, executor=executor,
        )  # fmt: skip
    except QualityGateFailed as exc:
        return {"plan": exc.details}
    finally:
        plan_cache.cache_home = old  # type: ignore[assignment]


def figures(doc: dict) -> list[tuple]:
    return [
        (s["name"], s["sqnr_db"], s["accuracy"], s["size_bytes"], s["meets"], s["skipped"], s["failed"])
        for s in doc["plan"]["steps"]
    ]


def candidates(cache: Path) -> dict[str, bytes]:
    """Every candidate the cache holds, by its entry's name (the key of what built it)."""
    return {p.parent.name: p.read_bytes() for p in cache.glob(f"{plan_cache.STAGE}-*/{plan_cache.MODEL_FILE}")}


def test_two_jobs_measure_and_choose_as_one_with_identical_bytes(tiny, tmp_path):  # noqa: F811
    one = plan_on(tiny, tmp_path / "one.tflite", tmp_path / "c1", 200.0, ExecutorConfig(jobs=1))
    two = plan_on(tiny, tmp_path / "two.tflite", tmp_path / "c2", 200.0, ExecutorConfig(jobs=2))
    assert [s["name"] for s in one["plan"]["steps"] if s["size_bytes"]] == list(BUILT)
    assert figures(two) == figures(one)
    built_one, built_two = candidates(tmp_path / "c1"), candidates(tmp_path / "c2")
    assert len(built_one) == len(BUILT) and built_two == built_one  # same keys, same bytes, written by the parent
    # every candidate known up front ran in a worker, once, and says where
    runs = {r["name"]: r for r in two["plan"]["executor"]["candidates"]}
    assert set(runs) == set(BUILT) and all(r["ok"] and r["attempts"] == 1 and r["host"] for r in runs.values())
    assert two["plan"]["executor"]["config"] == {"kind": "local", "jobs": 2, "address": None, "max_retries": 2}


def test_the_choice_is_the_cheapest_that_meets_not_the_first_to_finish(tiny, tmp_path):  # noqa: F811
    """A bar the first candidate beating every cheaper one meets: the sequential planner takes it (not a later
    one, however fast it finishes), and the parallel plan writes the same model."""
    full = plan_on(tiny, tmp_path / "full.tflite", tmp_path / "c1", 200.0, None)
    sqnr = [next(s["sqnr_db"] for s in full["plan"]["steps"] if s["name"] == n) for n in BUILT]
    k = next((i for i in range(1, len(sqnr)) if sqnr[i] > max(sqnr[:i])), None)
    if k is None:
        pytest.skip(f"no technique beats the candidates before it on this model: {sqnr}")
    bar = (sqnr[k] + max(sqnr[:k])) / 2
    seq = plan_on(tiny, tmp_path / "seq.tflite", tmp_path / "c1", bar, None)  # read from the cache: quick
    par = plan_on(tiny, tmp_path / "par.tflite", tmp_path / "c2", bar, ExecutorConfig(jobs=2))
    assert seq["plan"]["chosen"] == par["plan"]["chosen"] == BUILT[k]
    assert (tmp_path / "par.tflite").read_bytes() == (tmp_path / "seq.tflite").read_bytes()
    assert figures(par) == figures(seq)
    # what the planner never asked for was cancelled, not read: only the steps it took are recorded
    assert [r["name"] for r in par["plan"]["executor"]["candidates"]] == list(BUILT[: k + 1])
