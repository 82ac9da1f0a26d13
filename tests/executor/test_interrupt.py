"""Issue 23, faults: Ctrl-C cancels the cluster's tasks, and the build resumes from the cache like any build.

``edgeq build m1 m2 m3`` runs as a process of its own (``python -m edgeq``) so a real SIGINT reaches it, sent
once a model's build is running on the executor: the sweep exits 130 within seconds with one line on stderr
and no traceback, nothing of it is left running (no Ray task on the cluster; no pool worker), and nothing
half-written is left as a finished artifact. The same command run again finishes, reads from the cache
what had been built before the interrupt, and gives the bytes of an uninterrupted ``--jobs 1`` sweep."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.executor import cluster
from tests.executor.test_ray_sweep import MODELS, args, artifacts, models, one_job, same_bytes

__all__ = ["models", "one_job"]  # the fixtures, shared with the sweep's tests
pytestmark = pytest.mark.slow
EXIT_S = 30.0  # from SIGINT to the process gone
CANCEL_S = 30.0  # from its exit to no task of it left running


def start(argv: list[str], log: Path) -> subprocess.Popen:
    """``python -m edgeq ARGV`` with this checkout first on the path, stderr to ``log``."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(cluster.ROOT), os.environ.get("PYTHONPATH", "")]))
    env["RAY_USAGE_STATS_ENABLED"] = "0"
    with log.open("wb") as err:
        return subprocess.Popen(
            [sys.executable, "-m", "edgeq", *argv], env=env, stdout=subprocess.DEVNULL, stderr=err, cwd=cluster.ROOT
        )


def wait_for(cond: Callable[[], bool], timeout_s: float, what: str, proc: subprocess.Popen | None = None) -> float:
    """Poll ``cond`` until true (bounded); the seconds it took."""
    t0 = time.monotonic()
    while not cond():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"edgeq exited ({proc.returncode}) before {what}")
        if time.monotonic() - t0 > timeout_s:
            raise AssertionError(f"not {what} within {timeout_s:.0f} s")
        time.sleep(0.2)
    return time.monotonic() - t0


def finished(out: Path, m: str) -> bool:
    """The model's build has ended (its manifest no longer says it is running)."""
    try:
        return json.loads((out / m / "build.json").read_text()).get("status", "ok") != "running"
    except (OSError, ValueError):
        return False


def any_finished(out: Path) -> bool:
    return any(finished(out, m) for m in MODELS)


def interrupt(proc: subprocess.Popen, log: Path) -> tuple[float, str]:
    """SIGINT to ``proc``: the seconds until it exited 130, and its stderr."""
    t0 = time.monotonic()
    proc.send_signal(signal.SIGINT)
    try:
        code = proc.wait(timeout=EXIT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
        raise AssertionError(f"edgeq still running {EXIT_S:.0f} s after SIGINT") from None
    took = time.monotonic() - t0
    stderr = log.read_text(errors="replace")
    assert code == 130, stderr[-2000:]
    assert "Traceback" not in stderr, stderr[-3000:]
    said = [line for line in stderr.splitlines() if "interrupt" in line.lower()]
    assert len(said) == 1, stderr[-2000:]
    return took, stderr


def nothing_half_written(out: Path, reference: Path) -> None:
    """Every target file left in the interrupted sweep's folders is the finished file (the bytes of the
    uninterrupted sweep's): a write cut short never stands as an artifact."""
    for m in MODELS:
        if (out / m).is_dir():
            want, got = artifacts(reference / m), artifacts(out / m)
            assert set(got) <= set(want), (m, sorted(set(got) - set(want)))
            assert [n for n in got if got[n] != want[n]] == [], m


def resumed(out: Path, argv: list[str], log: Path, done_before: list[str], reference: Path) -> float:
    """The same command again: exit 0, every stage of a model finished before the interrupt read from the
    cache, the bytes of the uninterrupted sweep. The seconds it took."""
    t0 = time.monotonic()
    proc = start(argv, log)
    code = proc.wait(timeout=600)
    took = time.monotonic() - t0
    assert code == 0, log.read_text(errors="replace")[-3000:]
    for m in done_before:
        stages = json.loads((out / m / "build.json").read_text())["stages"]
        assert stages and all(s["cached"] for s in stages), (m, stages)
    same_bytes(out, reference)
    return took


@pytest.mark.skipif(bool(cluster.ray_missing()), reason=cluster.ray_missing())
def test_ctrl_c_cancels_the_clusters_tasks_and_the_sweep_resumes_from_the_cache(
    ray_cluster: str, models: Path, one_job: Path, tmp_path: Path
) -> None:
    out, log = tmp_path / "out", tmp_path / "stderr.txt"
    argv = args(models, out, "--executor", "ray", "--ray-address", ray_cluster)
    proc = start(argv, log)
    running = lambda: [m for m in MODELS if cluster.running_task(m)]  # noqa: E731
    try:  # once a model is built and another is still building on the cluster
        wait_for(lambda: any_finished(out) and bool(running()), 300, "a model built, another building", proc)
    finally:
        took, _ = interrupt(proc, log)
    cancel = wait_for(lambda: not running(), CANCEL_S, f"the tasks cancelled (running: {running()})")
    done_before = [m for m in MODELS if finished(out, m)]
    assert done_before and len(done_before) < len(MODELS), done_before  # one built, one cut short
    nothing_half_written(out, one_job)
    again = resumed(out, argv, tmp_path / "again.txt", done_before, one_job)
    print(
        f"ray: exit 130 {took:.1f} s after SIGINT, tasks gone {cancel:.1f} s later; {done_before} resumed from "
        f"the cache, the re-run took {again:.1f} s"
    )


def descendants(pid: int) -> set[int]:
    """The live processes under ``pid`` (children, theirs, ...; zombies, already ended, do not count)."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if fields[0] != "Z":
                parents[int(stat.parent.name)] = int(fields[1])
    found: set[int] = set()
    todo = [pid]
    while todo:
        p = todo.pop()
        kids = {c for c, pp in parents.items() if pp == p} - found
        found |= kids
        todo += kids
    return found


def alive(pids: set[int]) -> set[int]:
    """Those of ``pids`` still running (not gone, not zombies)."""
    left = set()
    for p in pids:
        with contextlib.suppress(OSError, IndexError):
            if (Path("/proc") / str(p) / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
                left.add(p)
    return left


def test_ctrl_c_stops_the_local_pool_and_the_sweep_resumes_from_the_cache(
    models: Path, one_job: Path, tmp_path: Path
) -> None:
    out, log = tmp_path / "out", tmp_path / "stderr.txt"
    argv = args(models, out, "--jobs", "2")
    proc = start(argv, log)
    workers: set[int] = set()
    try:  # two workers: m1 and m2 build first; m3 starts once one of them has finished
        wait_for(lambda: any_finished(out) and (out / "m3").is_dir(), 300, "a model built, m3 building", proc)
        workers = descendants(proc.pid)
    finally:
        took, _ = interrupt(proc, log)
    assert len(workers) >= 2, workers  # the pool's two workers (and multiprocessing's resource tracker)
    gone = wait_for(lambda: not alive(workers), CANCEL_S, f"the workers gone (left: {alive(workers)})")
    done_before = [m for m in MODELS if finished(out, m)]
    assert done_before and len(done_before) < len(MODELS), done_before  # one built, one cut short
    nothing_half_written(out, one_job)
    again = resumed(out, argv, tmp_path / "again.txt", done_before, one_job)
    print(
        f"pool: exit 130 {took:.1f} s after SIGINT, workers gone {gone:.1f} s later; {done_before} resumed from "
        f"the cache, the re-run took {again:.1f} s"
    )
