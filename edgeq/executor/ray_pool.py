"""The ray executor: each task a Ray task on a cluster, as Ray documents it.

``ray.init(address=...)`` joins the cluster, ``ray.remote(...).options(max_retries=...)`` submits, ``ray.get``
reads each result in input order, ``ray.cancel`` stops what is left (Ctrl-C, or a reader that stopped).
Ray re-runs a task whose worker or node died, up to ``max_retries``; a small actor counts the attempts
(Ray's task context does not say which attempt it is), so an outcome says how many it took.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from edgeq.errors import Unavailable

if TYPE_CHECKING:
    from edgeq.executor import ExecutorConfig, Outcome, Task


def import_ray() -> Any:
    """The ``ray`` module, or why it cannot be had.

    Raises:
        Unavailable: Ray is not installed (the hint names the extra).
    """
    from edgeq.executor import RAY_INSTALL

    try:
        import ray
    except ImportError as exc:
        raise Unavailable(
            f"--executor ray needs Ray, which is not installed ({exc.msg})", f"{RAY_INSTALL}, or use --executor local"
        ) from None
    return ray


class Attempts:
    """How many times each task has started (a Ray actor; a retried task starts again)."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def start(self, key: str) -> int:
        self.counts[key] = self.counts.get(key, 0) + 1
        return self.counts[key]

    def count(self, key: str) -> int:
        return self.counts.get(key, 0)


def run_task(fn: Callable[..., Any], args: tuple[Any, ...], attempts: Any, key: str) -> dict[str, Any]:
    """The body of every Ray task: count the attempt, run ``fn(*args)`` with its failure caught, say where."""
    import ray

    from edgeq.executor.local import call

    attempt = ray.get(attempts.start.remote(key))
    return call(fn, args) | {"node": ray.get_runtime_context().get_node_id(), "attempts": attempt}


def connect(cfg: ExecutorConfig) -> tuple[Any, bool]:
    """``ray`` joined to the cluster, and whether this call joined it (so it leaves it at the end).

    Raises:
        Unavailable: no Ray, or a cluster that cannot be joined.
    """
    ray = import_ray()
    if ray.is_initialized():
        return ray, False
    address = cfg.address or os.environ.get("RAY_ADDRESS") or None
    if address is not None:
        reachable(address)
    try:
        ray.init(address=address, log_to_driver=False, logging_level="ERROR")
    except Exception as exc:  # noqa: BLE001 - ConnectionError, RuntimeError, ValueError: the cluster is not there
        where = address or "this machine (no RAY_ADDRESS)"
        raise Unavailable(
            f"cannot join the Ray cluster at {where}: {' '.join(str(exc).split())[:300]}",
            "start one (ray start --head) and pass --ray-address HOST:PORT or set RAY_ADDRESS, or use --executor local",
        ) from None
    return ray, True


def reachable(address: str, timeout_s: float = 5.0) -> None:
    """Something listens at ``address`` (``ray://HOST:PORT`` or ``HOST:PORT``): said in seconds, where
    ``ray.init`` would retry its connection for minutes.

    Raises:
        Unavailable: nothing answers there (or the address has no port).
    """
    import socket

    host, _, port = address.removeprefix("ray://").rpartition(":")
    hint = "check --ray-address or RAY_ADDRESS (ray://HOST:PORT or the head's HOST:PORT), or use --executor local"
    if not host or not port.isdigit():
        raise Unavailable(f"the Ray address {address!r} names no HOST:PORT", hint)
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise Unavailable(f"no Ray cluster answers at {address}: {exc.strerror or exc}", hint) from None


def stream(cfg: ExecutorConfig, tasks: list[Task]) -> Iterator[Outcome]:
    """Every task submitted at once; outcomes in input order. A task that failed every attempt (its worker
    or node died) is the outcome of that failure; closing the iterator or Ctrl-C cancels the rest."""
    ray, joined = connect(cfg)
    return _outcomes(ray, joined, cfg, tasks)


def _outcomes(ray: Any, joined: bool, cfg: ExecutorConfig, tasks: list[Task]) -> Iterator[Outcome]:
    from edgeq.executor.local import outcome

    refs: list[Any] = []
    read = 0
    try:
        counter = ray.remote(num_cpus=0)(Attempts).remote()
        remote = ray.remote(run_task)
        for i, task in enumerate(tasks):
            opts = remote.options(max_retries=cfg.max_retries, retry_exceptions=False, name=task.name[:100])
            refs.append(opts.remote(task.fn, task.args, counter, str(i)))
        for i, ref in enumerate(refs):
            try:
                raw = ray.get(ref)
            except ray.exceptions.RayError as exc:  # the worker or node died on every attempt, or cancelled
                yield _lost(tasks[i], exc, ray.get(counter.count.remote(str(i))))
            else:
                yield outcome(tasks[i], raw, "", raw.pop("attempts"))
            read = i + 1
    finally:
        for ref in refs[read:]:
            ray.cancel(ref, force=True)
        if joined:
            ray.shutdown()


def _lost(task: Task, exc: BaseException, attempts: int) -> Outcome:
    from edgeq.executor import Outcome

    text = " ".join(str(exc).split())[:300]
    return Outcome(task.name, error=text, error_type=type(exc).__name__, attempts=attempts, node="ray")
