"""Device pools on Ray: a host offers its devices as Ray custom resources; a benchmark asks for its device.

A host that has a device (an Edge TPU ``usb:0``, a phone by its adb serial, a board on a serial port) runs
``edgeq worker --device SPEC --address HEAD:PORT``: a Ray node on that host offering one unit of the
resource :func:`resource_name` derives from each device spec. A benchmark submitted by :func:`run` asks for
one unit of its device's resource (and no CPU: the device is what it holds), so Ray runs it only on a node
that offers that device, and never two at once on one device. Several hosts offering the same spec make a
pool of that device: Ray gives each benchmark one of them, and the outcome names the host that measured.

A device nobody offers is a failed outcome at once (Ray would wait forever for a resource no node has);
a device that vanishes (the benchmark raises :class:`edgeq.errors.Unavailable`, or the node offering it
leaves the cluster) fails that benchmark's outcome, never the run.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from edgeq.errors import Unavailable, UsageError
from edgeq.executor import ExecutorConfig, Kind, Outcome, Task

PREFIX = "edgeq-device-"
MAX_SPEC_CHARS = 200
POLL_S = 1.0  # how often a waiting benchmark checks that its device is still offered
STOP_WAIT_S = 10.0  # how long a stopped worker node gets to end before it is killed
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
WORKER_HINT = "on the host that has it, run: edgeq worker --device {spec} --address HEAD:PORT"


def resource_name(device: str) -> str:
    """The Ray resource a device spec is offered as: ``edgeq-device-`` + a readable slug + a hash.

    The slug keeps letters, digits, ``.``, ``_`` and ``-`` (anything else becomes ``_``); the hash of the
    exact spec keeps two specs apart that slug alike (``usb:0`` and ``usb_0``). The name is only ever a
    string handed to Ray (a dict key, or JSON), never a shell word.

    Raises:
        UsageError: an empty spec, one with control characters, or one over 200 characters.
    """
    if not isinstance(device, str) or not device.strip():
        raise UsageError("a device spec is empty", "name the device as its target does, e.g. --device usb:0")
    if len(device) > MAX_SPEC_CHARS:
        raise UsageError(f"a device spec is {len(device)} characters long", f"keep it to {MAX_SPEC_CHARS}")
    if any(ord(c) < 32 or ord(c) == 127 for c in device):
        raise UsageError(f"device spec {device!r} has control characters", "e.g. --device usb:0 or an adb serial")
    slug = _UNSAFE.sub("_", device.strip())[:48].strip("_") or "device"
    digest = hashlib.sha256(device.encode("utf-8", "surrogatepass")).hexdigest()[:10]
    return f"{PREFIX}{slug}-{digest}"


def node_args(devices: Sequence[str]) -> list[str]:
    """``ray start`` arguments offering one unit of each device's resource (one argument, JSON)."""
    names = [resource_name(d) for d in devices]
    if len(set(names)) != len(names):
        raise UsageError("a device is given twice", "give each --device once")
    return ["--resources=" + json.dumps(dict.fromkeys(names, 1), sort_keys=True)]


@dataclass(frozen=True)
class WorkerConfig:
    """One ``edgeq worker``: the devices this host offers and the cluster it joins.

    Args:
        devices: device specs as their targets name them (``usb:0``, an adb serial, a serial port).
        address: the head's ``HOST:PORT``; None: this host starts a head of its own.
        num_cpus: CPUs the node offers to other tasks (None: Ray counts them).
    """

    devices: tuple[str, ...]
    address: str | None = None
    num_cpus: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "devices", tuple(self.devices))
        if not self.devices:
            raise UsageError("edgeq worker offers no device", "give one or more --device SPEC, e.g. --device usb:0")
        _ = self.resources
        if self.address is not None and (not self.address.strip() or any(c.isspace() for c in self.address)):
            raise UsageError(f"bad Ray address {self.address!r}", "give the head's HOST:PORT")
        if self.num_cpus is not None and self.num_cpus < 0:
            raise UsageError(f"--num-cpus must be 0 or more, got {self.num_cpus}", "e.g. --num-cpus 1")

    @property
    def resources(self) -> dict[str, str]:
        """Device spec -> the Ray resource it is offered as."""
        node_args(self.devices)  # validates (one resource per spec, no spec twice)
        return {d: resource_name(d) for d in self.devices}

    def command(self) -> list[str]:
        """The ``ray start --block`` argument list (never a shell line)."""
        cmd = [sys.executable, "-m", "ray.scripts.scripts", "start", "--block", "--disable-usage-stats"]
        cmd += [f"--address={self.address}"] if self.address else ["--head"]
        if self.num_cpus is not None:
            cmd.append(f"--num-cpus={self.num_cpus}")
        return cmd + node_args(self.devices)


def serve(cfg: WorkerConfig) -> int:
    """Run the Ray node ``cfg`` describes until it ends or Ctrl-C (or SIGTERM as KeyboardInterrupt) stops
    it: the node runs in a process group of its own, which is ended (SIGTERM, then SIGKILL after 10 s) on
    the way out, so nothing it started outlives it. Returns the node's exit status.

    Raises:
        Unavailable: Ray is not installed, or the head is not reachable.
    """
    from edgeq.executor.ray_pool import import_ray, reachable

    import_ray()
    if cfg.address is not None:
        reachable(cfg.address)
    proc = subprocess.Popen(cfg.command(), start_new_session=True)  # noqa: S603 - an argument list, no shell
    try:
        return proc.wait()
    finally:
        _stop_group(proc)


def _stop_group(proc: subprocess.Popen) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=STOP_WAIT_S)
            return


@dataclass(frozen=True)
class DeviceTask:
    """A benchmark on one device: ``fn(*args)`` on the node that offers ``device`` (module-level ``fn``,
    picklable ``args`` and value, as for :class:`edgeq.executor.Task`)."""

    name: str
    device: str
    fn: Callable[..., Any]
    args: tuple[Any, ...] = ()


def run(cfg: ExecutorConfig, tasks: Sequence[DeviceTask]) -> list[Outcome]:
    """Each task on a node offering its device, one at a time per device; one outcome per task, in order.

    Args:
        cfg: a ``ray`` executor (its address and ``max_retries``).
        tasks: benchmarks, each naming its device.

    Returns:
        An :class:`Outcome` per task (host and node say where it ran). A device no node offers, a task
        that raised (``Unavailable`` where the device vanished), a node that left: a failed outcome.

    Raises:
        UsageError: ``cfg`` is not the ray executor, or a device spec is malformed.
        Unavailable: no Ray, or a cluster that cannot be joined.
    """
    from edgeq.executor.ray_pool import connect

    if cfg.kind is not Kind.RAY:
        raise UsageError("device pools need the ray executor", "add --executor ray --ray-address HEAD:PORT")
    names = [resource_name(t.device) for t in tasks]
    ray, joined = connect(cfg)
    try:
        return list(_outcomes(ray, cfg, list(tasks), names))
    finally:
        if joined:
            ray.shutdown()


def _outcomes(ray: Any, cfg: ExecutorConfig, tasks: list[DeviceTask], names: list[str]) -> Iterator[Outcome]:
    from edgeq.executor.local import outcome
    from edgeq.executor.ray_pool import Attempts, run_task

    offered = ray.cluster_resources()
    counter = ray.remote(num_cpus=0)(Attempts).remote()
    remote = ray.remote(run_task)
    refs: dict[int, Any] = {}
    try:
        for i, (task, name) in enumerate(zip(tasks, names, strict=True)):
            if offered.get(name, 0) >= 1:
                opts = remote.options(
                    num_cpus=0,
                    resources={name: 1},
                    max_retries=cfg.max_retries,
                    retry_exceptions=False,
                    name=task.name[:100],
                )
                refs[i] = opts.remote(task.fn, task.args, counter, str(i))
        for i, task in enumerate(tasks):
            if i not in refs:
                yield _unavailable(task, f"no node of the Ray cluster offers device {task.device!r} ({names[i]})")
                continue
            try:
                raw = _get(ray, refs.pop(i), names[i])
            except Unavailable as exc:
                yield _unavailable(task, exc.message, ray.get(counter.count.remote(str(i))))
            except ray.exceptions.RayError as exc:  # its node died on every attempt, or it was cancelled
                attempts = ray.get(counter.count.remote(str(i)))
                yield Outcome(task.name, error=_one_line(exc), error_type=type(exc).__name__, attempts=attempts)
            else:
                yield outcome(Task(task.name, task.fn, task.args), raw, "", raw.pop("attempts"))
    finally:
        for ref in refs.values():
            ray.cancel(ref, force=True)


def _get(ray: Any, ref: Any, name: str) -> dict[str, Any]:
    """The task's result; Unavailable (the task cancelled) once no node offers its device any more, where
    Ray would keep it waiting for that resource forever."""
    while True:
        ready, _ = ray.wait([ref], timeout=POLL_S)
        if ready:
            return dict(ray.get(ref))
        if ray.cluster_resources().get(name, 0) < 1:
            ray.cancel(ref, force=True)
            raise Unavailable("the node offering this device left the Ray cluster before the benchmark finished")


def _unavailable(task: DeviceTask, message: str, attempts: int = 0) -> Outcome:
    hint = WORKER_HINT.format(spec=task.device)
    return Outcome(task.name, error=f"{message}; {hint}", error_type="Unavailable", attempts=attempts)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300]
