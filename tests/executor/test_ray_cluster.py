"""On a real Ray cluster started here (a head and a second node, 1 CPU each, both stopped at the end): the
planner chooses as the local one with byte-identical candidates, and a worker killed mid-task has its task
retried by Ray and the run finishes, the outcome saying it took two attempts."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest

from edgeq.executor import ExecutorConfig, Task, run
from tests.executor import cluster
from tests.executor import tasks as t
from tests.integration.test_plan_cache import BUILT, tiny  # noqa: F401 - the seeded model fixture
from tests.integration.test_plan_parallel import candidates, figures, plan_on

pytestmark = [pytest.mark.slow, pytest.mark.skipif(bool(cluster.ray_missing()), reason=cluster.ray_missing())]


def test_the_planner_on_two_ray_nodes_chooses_as_one_local_job_with_identical_bytes(
    ray_cluster: str,
    tiny: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    one = plan_on(tiny, tmp_path / "one.tflite", tmp_path / "c1", 200.0, ExecutorConfig(jobs=1))
    ray = plan_on(tiny, tmp_path / "ray.tflite", tmp_path / "c2", 200.0, ExecutorConfig("ray", address=ray_cluster))
    assert figures(ray) == figures(one) and ray["plan"]["chosen"] == one["plan"]["chosen"]
    built_one, built_ray = candidates(tmp_path / "c1"), candidates(tmp_path / "c2")
    assert len(built_one) == len(BUILT) and built_ray == built_one  # written here, by the driver
    runs = ray["plan"]["executor"]["candidates"]
    assert [r["name"] for r in runs] == list(BUILT) and all(r["ok"] for r in runs)
    assert len({r["node"] for r in runs}) == 2, runs  # both nodes built candidates


def test_a_worker_killed_mid_task_is_retried_and_the_run_finishes(ray_cluster: str, tmp_path: Path) -> None:
    pid_file = tmp_path / "victim.pid"
    killed: list[int] = []

    def kill_first_attempt() -> None:  # from outside, as the OOM killer or a crash would
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not pid_file.exists():
            time.sleep(0.1)
        if pid_file.exists():
            time.sleep(0.5)  # mid-task
            killed.append(int(pid_file.read_text()))
            os.kill(killed[0], signal.SIGKILL)

    killer = threading.Thread(target=kill_first_attempt, daemon=True)
    killer.start()
    jobs = [Task("victim", t.slow_with_pid, (str(pid_file), 3.0, 11)), Task("other", t.square_after, (5, 0.5))]
    victim, other = run(ExecutorConfig("ray", address=ray_cluster, max_retries=2), jobs)
    killer.join(timeout=5)
    assert killed, "the victim never started"
    assert victim.ok and victim.value == 11 and victim.attempts == 2, victim
    assert victim.pid != killed[0]  # the retry ran in another worker
    assert other.ok and other.value == 25 and other.attempts == 1


def test_a_task_failing_every_attempt_is_its_outcome(ray_cluster: str, tmp_path: Path) -> None:
    (out,) = run(
        ExecutorConfig("ray", address=ray_cluster, max_retries=0), [Task("dies", t.die_once, (str(tmp_path / "m"), 1))]
    )
    assert not out.ok and out.attempts == 1 and "Worker" in out.error_type + out.error, out


def test_a_cluster_that_is_not_there_is_exit_5_at_once() -> None:
    from edgeq.errors import Unavailable

    (port,) = cluster.free_ports(1)  # nothing listens there
    t0 = time.monotonic()
    with pytest.raises(Unavailable) as e:
        run(ExecutorConfig("ray", address=f"ray://127.0.0.1:{port}"), [Task("p", t.pid)])
    assert time.monotonic() - t0 < 30 and e.value.exit_code == 5
    assert "--ray-address" in e.value.hint
