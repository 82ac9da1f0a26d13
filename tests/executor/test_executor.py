"""The executor: outcomes in input order, one task's failure isolated, one job in this process, a dead
worker's task retried, and the configs a user can get wrong refused with the fix."""

from __future__ import annotations

import os
import sys

import pytest

from edgeq.errors import Unavailable, UsageError
from edgeq.executor import ExecutorConfig, Task, run, stream
from tests.executor import tasks as t


def test_outcomes_come_back_in_input_order_whatever_finishes_first() -> None:
    # the first task is the slowest: in a pool of 2 the later ones finish before it
    jobs = [Task(f"sq{i}", t.square_after, (i, 1.5 if i == 0 else 0.0)) for i in range(4)]
    out = run(ExecutorConfig(jobs=2), jobs)
    assert [o.name for o in out] == ["sq0", "sq1", "sq2", "sq3"]
    assert [o.value for o in out] == [0, 1, 4, 9]
    assert all(o.ok and o.attempts == 1 and o.pid != os.getpid() and o.host for o in out)


def test_a_failing_task_is_its_outcome_and_the_others_finish() -> None:
    jobs = [Task("a", t.square_after, (3, 0.0)), Task("b", t.fail, ("no good",)), Task("c", t.square_after, (4, 0.0))]
    for cfg in (ExecutorConfig(jobs=1), ExecutorConfig(jobs=2)):
        a, b, c = run(cfg, jobs)
        assert (a.value, c.value) == (9, 16)
        assert not b.ok and b.error_type == "ValueError" and b.error == "no good"
        assert b.failure() == "ValueError: no good" and b.to_dict()["ok"] is False


def test_one_job_runs_in_this_process_only_when_asked() -> None:
    it = stream(ExecutorConfig(jobs=1), [Task("p", t.pid), Task("boom", t.fail, ("never run",))])
    first = next(it)
    assert first.value == os.getpid() and first.node == "in-process"
    it.close()  # the second task never runs: nothing ahead of the reader


def test_a_killed_worker_has_its_task_retried_in_a_fresh_pool(tmp_path) -> None:
    jobs = [Task("dies", t.die_once, (str(tmp_path / "marker"), 7)), Task("ok", t.square_after, (2, 0.0))]
    dies, ok = run(ExecutorConfig(jobs=2, max_retries=1), jobs)
    assert dies.ok and dies.value == 7 and dies.attempts == 2
    assert ok.ok and ok.value == 4


def test_a_worker_that_always_dies_fails_its_task_after_the_bound(tmp_path) -> None:
    marker = tmp_path / "marker"
    jobs = [Task("dies", t.die_once, (str(marker), 7))]
    (out,) = run(ExecutorConfig(jobs=2, max_retries=0), jobs)
    assert not out.ok and out.error_type == "WorkerDied" and out.attempts == 1


@pytest.mark.parametrize(
    ("kw", "fix"),
    [
        ({"jobs": 0}, "--jobs 2"),
        ({"kind": "slurm"}, "--executor local"),
        ({"address": "ray://h:1"}, "--executor ray"),
        ({"kind": "ray", "address": "ray://h:1; rm -rf /"}, "ray://HOST:PORT"),
    ],
)
def test_configs_a_user_can_get_wrong_are_refused_with_the_fix(kw: dict, fix: str) -> None:
    with pytest.raises(UsageError) as e:
        ExecutorConfig(**kw)
    assert fix in e.value.hint


def test_ray_without_ray_installed_names_the_extra(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(Unavailable) as e:
        run(ExecutorConfig(kind="ray"), [Task("p", t.pid)])
    assert e.value.exit_code == 5 and "pip install edgeq[ray]" in e.value.hint


def test_the_default_jobs_come_from_edgeq_jobs_else_the_core_count(monkeypatch) -> None:
    monkeypatch.setenv("EDGEQ_JOBS", "3")
    assert ExecutorConfig().workers == 3 and ExecutorConfig(jobs=2).workers == 2
    monkeypatch.delenv("EDGEQ_JOBS")
    assert ExecutorConfig().workers == (os.cpu_count() or 1)
    monkeypatch.setenv("EDGEQ_JOBS", "two")
    with pytest.raises(UsageError) as e:
        ExecutorConfig()
    assert "EDGEQ_JOBS" in e.value.hint
