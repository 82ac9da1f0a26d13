"""A real Ray cluster on this machine for the tests and the benchmark: a head and a second node, both here.

Both nodes listen on this machine's own address (Ray resolves 127.0.0.1 to it when a driver connects, so
a cluster pinned to 127.0.0.1 cannot be joined).

Each node is ``ray start --block`` in a process group of its own, so stopping the cluster ends exactly the
processes it started (their group, by id), never another Ray on the machine (``ray stop`` would end every
one). Every port is picked free, the session folder is private, and every wait is bounded.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 90.0
_SESSIONS: set[int] = set()  # the running clusters' nodes: each its own session (and process group), by id


def ray_missing() -> str:
    """Why Ray cannot run here ("" when it can)."""
    try:
        import ray  # noqa: F401
    except ImportError as exc:
        return f"ray is not installed ({exc.msg}): pip install edgeq[ray]"
    return ""


def host_ip() -> str:
    """The address Ray gives this machine's nodes (it replaces 127.0.0.1 by it when it connects)."""
    import ray.util

    return str(ray.util.get_node_ip_address())


def free_ports(n: int) -> list[int]:
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def _node(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    while True:  # the worker port range must not hold another of the node's ports (Ray refuses to start)
        nm, om, agent_grpc, agent_http, metrics, renv, lo = free_ports(7)
        if not any(lo <= p <= lo + 40 for p in (nm, om, agent_grpc, agent_http, metrics, renv)):
            break
    cmd = [sys.executable, "-m", "ray.scripts.scripts", "start", "--block", "--num-cpus=1", "--disable-usage-stats"]
    cmd += [f"--node-manager-port={nm}", f"--object-manager-port={om}"]
    cmd += [f"--dashboard-agent-grpc-port={agent_grpc}", f"--dashboard-agent-listen-port={agent_http}"]
    cmd += [f"--metrics-export-port={metrics}", f"--runtime-env-agent-port={renv}"]
    cmd += [f"--min-worker-port={lo}", f"--max-worker-port={lo + 40}"]
    with log.open("ab") as out:
        return subprocess.Popen(cmd + args, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def _stop(proc: subprocess.Popen) -> None:
    """End the node's process group (the raylet, its workers, the head's GCS), then make sure."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        deadline = time.monotonic() + 10.0
        while time.monotonic() < deadline and _group_running(proc.pid):
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=0.2)
        if not _group_running(proc.pid):
            return


def _group_running(pgid: int) -> bool:
    """Whether a process of group ``pgid`` still runs (zombies, already ended, do not count)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid and fields[0] != "Z":
                return True
    return False


def running_task(name: str) -> list[int]:
    """The pids of this module's clusters' workers now running the Ray task ``name``: a worker's process
    title is ``ray::NAME`` while it runs a task of that name (``ray::IDLE`` between tasks), and only the
    processes of the nodes started here count, never another Ray on the machine."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[3]) not in _SESSIONS or fields[0] == "Z":
                continue
            title = (stat.parent / "cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
            if title.split()[:1] == [f"ray::{name}"]:
                pids.append(int(stat.parent.name))
    return pids


def _wait_for_nodes(n: int, procs: list[subprocess.Popen], log: Path) -> None:
    """Until ``n`` nodes said they started (``ray start`` prints it once its node is up), bounded."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in procs):
            raise RuntimeError(f"a Ray node exited while starting: {log.read_text(errors='replace')[-2000:]}")
        if log.read_text(errors="replace").count("Ray runtime started") >= n:
            return
        time.sleep(0.5)
    raise TimeoutError(f"{n} Ray nodes not up in {START_TIMEOUT_S:.0f} s: {log.read_text(errors='replace')[-2000:]}")


@contextlib.contextmanager
def two_nodes(head_extra: Sequence[str] = (), node_extra: Sequence[str] = ()) -> Iterator[str]:
    """A head and a second node (1 CPU each) on this machine; yields the head's address (HOST:PORT).
    ``head_extra`` and ``node_extra``: more ``ray start`` arguments for each (e.g. the resources a device
    worker offers)."""
    tmp = Path(tempfile.mkdtemp(prefix="eqray-", dir="/tmp"))  # short: Ray's socket paths have a length limit
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(":"))
    env["RAY_USAGE_STATS_ENABLED"] = "0"
    gcs, client = free_ports(2)  # the client server's own port too: two test clusters at once never share 10001
    address = f"{host_ip()}:{gcs}"
    log = tmp / "nodes.log"
    procs: list[subprocess.Popen] = []
    try:
        head = ["--head", f"--port={gcs}", f"--ray-client-server-port={client}", "--include-dashboard=false"]
        head.append(f"--temp-dir={tmp / 'r'}")
        procs.append(_node(head + list(head_extra), env, log))
        _SESSIONS.add(procs[-1].pid)
        _wait_for_nodes(1, procs, log)
        procs.append(_node([f"--address={address}", *node_extra], env, log))
        _SESSIONS.add(procs[-1].pid)
        _wait_for_nodes(2, procs, log)
        yield address
    finally:
        for p in reversed(procs):
            _stop(p)
            _SESSIONS.discard(p.pid)
        shutil.rmtree(tmp, ignore_errors=True)
