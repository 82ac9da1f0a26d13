"""The local executor: tasks in this process (one job) or in a pool of spawned processes."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from concurrent.futures import Future, ProcessPoolExecutor

    from edgeq.executor import ExecutorConfig, Outcome, Task

WORKER_DIED = "WorkerDied"


def call(fn: Callable[..., Any], args: tuple[Any, ...]) -> dict[str, Any]:
    """``fn(*args)`` with its failure caught: the fields of an Outcome (where it ran, how long it took).
    Runs in the worker; only ``Exception`` is caught (Ctrl-C still stops the worker)."""
    t0 = time.perf_counter()
    where = {"host": socket.gethostname(), "pid": os.getpid()}
    try:
        value = fn(*args)
    except Exception as exc:  # noqa: BLE001 - a task's failure is its outcome, never the others'
        text = " ".join(str(exc).split())
        return where | {"error": text, "error_type": type(exc).__name__, "seconds": _since(t0)}
    return where | {"value": value, "seconds": _since(t0)}


def _since(t0: float) -> float:
    return round(time.perf_counter() - t0, 3)


def outcome(task: Task, raw: dict[str, Any], node: str, attempts: int) -> Outcome:
    from edgeq.executor import Outcome

    return Outcome(name=task.name, node=raw.pop("node", node), attempts=attempts, **raw)


def in_process(tasks: list[Task]) -> Iterator[Outcome]:
    """Each task run here, when its outcome is asked for (nothing runs ahead of the reader)."""
    for task in tasks:
        yield outcome(task, call(task.fn, task.args), "in-process", 1)


def pool(cfg: ExecutorConfig, tasks: list[Task]) -> Iterator[Outcome]:
    """The tasks in a pool of ``cfg.workers`` spawned processes, outcomes in input order.

    A worker that dies (killed, out of memory, a crash in native code) breaks a ``ProcessPoolExecutor``:
    every task it had not finished is submitted again to a fresh pool, up to ``cfg.max_retries`` times
    each; past that, the task's outcome is the failure ``WorkerDied``. Closing the iterator (or Ctrl-C)
    cancels what has not started and stops the workers."""
    from concurrent.futures.process import BrokenProcessPool

    attempts = [0] * len(tasks)
    ready: dict[int, Outcome] = {}
    futures: dict[int, Future] = {}
    executor: ProcessPoolExecutor | None = None
    try:
        for i in range(len(tasks)):
            while i not in ready:
                if executor is None:
                    executor = _submit(cfg, tasks, ready, attempts, futures)
                try:
                    ready[i] = outcome(tasks[i], futures[i].result(), "pool", attempts[i])
                except BrokenProcessPool:
                    _salvage(cfg, tasks, ready, attempts, futures)
                    _stop(executor)
                    executor = None
                except Exception as exc:  # noqa: BLE001 - the result could not come back (not picklable)
                    ready[i] = _failed(tasks[i], type(exc).__name__, str(exc), attempts[i])
            yield ready[i]
    finally:
        if executor is not None:
            _stop(executor)


def _submit(
    cfg: ExecutorConfig, tasks: list[Task], ready: dict[int, Outcome], attempts: list[int], futures: dict
) -> ProcessPoolExecutor:
    """A fresh pool with every task not finished yet submitted (its attempt counted)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    todo = [i for i in range(len(tasks)) if i not in ready]
    executor = ProcessPoolExecutor(min(cfg.workers, max(1, len(todo))), multiprocessing.get_context("spawn"))
    for i in todo:
        attempts[i] += 1
        futures[i] = executor.submit(call, tasks[i].fn, tasks[i].args)
    return executor


def _salvage(
    cfg: ExecutorConfig, tasks: list[Task], ready: dict[int, Outcome], attempts: list[int], futures: dict
) -> None:
    """After a worker died: keep what finished, fail what has used up its retries; the rest goes again."""
    for i, f in list(futures.items()):
        if i in ready:
            continue
        if f.done() and not f.cancelled() and f.exception() is None:
            ready[i] = outcome(tasks[i], f.result(), "pool", attempts[i])
        elif attempts[i] > cfg.max_retries:
            why = f"the worker running it died, {attempts[i]} attempt(s)"
            ready[i] = _failed(tasks[i], WORKER_DIED, why, attempts[i])
    for i in list(futures):
        if i not in ready:
            del futures[i]


def _failed(task: Task, error_type: str, error: str, attempts: int) -> Outcome:
    from edgeq.executor import Outcome

    return Outcome(task.name, error=" ".join(error.split()), error_type=error_type, attempts=attempts, node="pool")


def _stop(executor: ProcessPoolExecutor) -> None:
    """Cancel what has not started and stop the workers now (a running task is not waited for)."""
    procs = list((getattr(executor, "_processes", None) or {}).values())  # no public handle before 3.14
    executor.shutdown(wait=False, cancel_futures=True)
    for p in procs:
        if p.is_alive():
            p.terminate()
    for p in procs:
        p.join(timeout=5)
