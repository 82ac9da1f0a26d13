"""Independent tasks run in parallel: a local process pool, or Ray tasks on a cluster.

One function, :func:`run` (and its streaming form :func:`stream`): a list of independent, picklable
:class:`Task` in, one typed :class:`Outcome` per task out, in input order, whatever order they finished in.
A task that raises is an outcome with its error; it never loses the others. Each outcome says where it ran
(host, node, process) and how many attempts it took (a worker that died has its task retried, up to
:attr:`ExecutorConfig.max_retries`).

- ``local`` (the default): a process pool of ``jobs`` workers (default: the core count), started with
  ``spawn`` (the parent has TensorFlow loaded; a forked copy of it is not safe). ``jobs=1`` runs every
  task in this process, one after another, each only when asked for: no pool, no copy of anything.
- ``ray``: Ray tasks on a cluster (``ray.init(address=...)``: ``RAY_ADDRESS``, ``ray://HOST:PORT`` or the
  head's ``HOST:PORT``), each with ``max_retries`` (Ray re-runs a task whose worker died); Ctrl-C or a
  consumer that stops reading cancels the tasks still running (``ray.cancel``). Ray is an optional extra:
  without it, :class:`edgeq.errors.Unavailable` names ``pip install edgeq[ray]``. edgeq does not schedule:
  Ray does.

This package is core: it imports nothing of edgeq above :mod:`edgeq.errors`.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from edgeq.errors import UsageError

RAY_INSTALL = "pip install edgeq[ray]"
JOBS_ENV = "EDGEQ_JOBS"  # the default of --jobs where it is set (else the core count)


class Kind(enum.StrEnum):
    """Where tasks run."""

    LOCAL = "local"
    RAY = "ray"


@dataclass(frozen=True)
class ExecutorConfig:
    """How independent tasks run.

    Args:
        kind: ``local`` (a process pool on this machine) or ``ray`` (Ray tasks on a cluster).
        jobs: local workers at once (None: ``$EDGEQ_JOBS``, else the core count; 1: in this process, no
            pool). Ray: unused
            (the cluster's CPUs decide).
        address: the Ray cluster (``ray://HOST:PORT`` or ``HOST:PORT``); None: ``RAY_ADDRESS``, else what
            ``ray.init()`` finds on this machine. Only with ``kind="ray"``.
        max_retries: how many times a task whose worker died is run again (Ray's ``max_retries``; the local
            pool resubmits what a dead worker took down). An exception raised by a task is never retried:
            it is its outcome.
    """

    kind: Kind = Kind.LOCAL
    jobs: int | None = None
    address: str | None = None
    max_retries: int = 2

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "kind", Kind(self.kind))
        except ValueError:
            raise UsageError(f"unknown executor {self.kind!r}", "use --executor local or --executor ray") from None
        if self.jobs is not None and (isinstance(self.jobs, bool) or not isinstance(self.jobs, int) or self.jobs < 1):
            raise UsageError(f"--jobs must be a whole number of 1 or more, got {self.jobs!r}", "e.g. --jobs 2")
        if self.address is not None and self.kind is not Kind.RAY:
            raise UsageError("a Ray address needs the ray executor", "add --executor ray (or drop the address)")
        if self.address is not None and (not self.address.strip() or any(c.isspace() for c in self.address)):
            raise UsageError(f"bad Ray address {self.address!r}", "give ray://HOST:PORT or HOST:PORT")
        if self.max_retries < 0:
            raise UsageError(f"max_retries must be 0 or more, got {self.max_retries}", "e.g. 2")
        _ = self.workers  # validates $EDGEQ_JOBS

    @property
    def workers(self) -> int:
        """Local workers at once: ``jobs``, else ``$EDGEQ_JOBS``, else the core count."""
        if self.jobs is not None:
            return self.jobs
        env = os.environ.get(JOBS_ENV, "").strip()
        if not env:
            return max(1, os.cpu_count() or 1)
        if not env.isdigit() or int(env) < 1:
            raise UsageError(f"{JOBS_ENV}={env!r} is not a number of jobs", f"set {JOBS_ENV} to 1 or more, or unset it")
        return int(env)

    @property
    def sequential(self) -> bool:
        """True where tasks run one after another in this process (local, one job)."""
        return self.kind is Kind.LOCAL and self.workers == 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "jobs": self.workers if self.kind is Kind.LOCAL else None,
            "address": self.address,
            "max_retries": self.max_retries,
        }


@dataclass(frozen=True)
class Task:
    """One independent piece of work: ``fn(*args)``. ``fn`` is a module-level function and ``args`` are
    picklable (they travel to another process or host); the value returned must be picklable too."""

    name: str
    fn: Callable[..., Any]
    args: tuple[Any, ...] = ()


@dataclass(frozen=True)
class Outcome:
    """What one task came to: its value, or the failure (exception type and message), and where it ran."""

    name: str
    value: Any = field(default=None, repr=False)
    error: str = ""  # the exception's message ("" when the task returned)
    error_type: str = ""  # the exception's class name ("WorkerDied" where the worker died every attempt)
    host: str = ""
    node: str = ""  # the Ray node id; "in-process" or "pool" locally
    pid: int = 0
    attempts: int = 1  # 2 or more: a worker died and the task was run again
    seconds: float = 0.0  # wall time of the attempt that finished

    @property
    def ok(self) -> bool:
        return not self.error_type

    def failure(self) -> str:
        """The failure in one line ("ValueError: bad"), or ""."""
        if self.ok:
            return ""
        return f"{self.error_type}: {self.error}" if self.error else self.error_type

    def to_dict(self) -> dict[str, Any]:
        """The record (without the value) for reports and provenance."""
        return {k: v for k, v in self.__dict__.items() if k != "value"} | {"ok": self.ok}


def stream(cfg: ExecutorConfig, tasks: Sequence[Task]) -> Iterator[Outcome]:
    """Run ``tasks`` as ``cfg`` says; yield their outcomes in input order, each once it and every task
    before it have finished. Closing the iterator early (or Ctrl-C) cancels the tasks not yet read.

    Raises:
        Unavailable: ``ray`` without Ray installed, or a cluster that cannot be joined.
    """
    if cfg.kind is Kind.RAY:
        from edgeq.executor import ray_pool

        return ray_pool.stream(cfg, list(tasks))
    from edgeq.executor import local

    if cfg.sequential:
        return local.in_process(list(tasks))
    return local.pool(cfg, list(tasks))


def run(cfg: ExecutorConfig, tasks: Sequence[Task]) -> list[Outcome]:
    """Run ``tasks`` as ``cfg`` says and return one outcome per task, in input order.

    Args:
        cfg: local (``jobs`` processes) or ray.
        tasks: independent tasks; one that raises does not stop the others.

    Returns:
        An :class:`Outcome` per task, in the order of ``tasks``.

    Raises:
        Unavailable: ``ray`` without Ray installed, or a cluster that cannot be joined.
    """
    it = stream(cfg, tasks)
    try:
        return list(it)
    finally:
        close = getattr(it, "close", None)
        if close is not None:
            close()
