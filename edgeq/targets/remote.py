"""Benchmarking on a remote board over SSH: copy the model and a small runner, run, bring back JSON.

Works with any board reachable by ``ssh USER@HOST`` with key authentication (a Coral Dev
Board, a Raspberry Pi with a USB Accelerator); extra ssh options can be given in the
``EDGEQ_SSH_OPTIONS`` environment variable. Every ssh/scp call has a timeout, runs with
``BatchMode=yes`` (never prompts), and the remote temp folder is removed afterwards.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from edgeq import procs
from edgeq.bench.timing import LatencyStats, summarize
from edgeq.config import BenchConfig
from edgeq.errors import BadInput, Unavailable, UsageError
from edgeq.findings import Basis, Figure, Findings
from edgeq.targets.addresses import SshDestination, ssh_destination
from edgeq.targets.base import Availability, BenchResult

RUNNER_SCRIPT = Path(__file__).with_name("runner_script.py")
VIA = "over SSH"


def measured_latency(stats: LatencyStats, where: str, via: str) -> Figure:
    """The latency measured on ``where`` and brought back ``via``: p50 (the mean when there is none) of the
    timed runs, their min and max as the range."""
    value, what = (stats.p50, "p50") if stats.p50 is not None else (stats.mean, "mean")
    runs = "?" if stats.num_runs is None else stats.num_runs
    how = f"{what} of {runs} runs"
    return Figure(value, "ms", Basis.MEASURED, where=where, how=how, via=via, low=stats.min, high=stats.max)


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1][:200] if lines else "no message"


@dataclass
class SshRunner:
    """Runs ``runner_script.py`` on ``host`` (``[user@]board[:port]``, validated on construction).

    Every ssh and scp argv ends its options with ``--`` before the destination, so nothing from
    the command line is ever read as an ssh option.
    """

    host: str
    target: str = "cpu"
    port: int | None = None
    identity: str | None = None
    python: str = "python3"
    delegate: str | None = None  # e.g. libedgetpu.so.1
    device: str | None = None  # e.g. usb:0
    timeout_s: float = 120.0
    ssh_options: list[str] = field(default_factory=list)
    # where on the board the run makes its temp folder (an absolute path; a test points it at its own folder)
    remote_tmp: str = "/tmp"
    destination: SshDestination = field(init=False)

    def __post_init__(self) -> None:
        self.destination = ssh_destination(self.host, self.port)  # raises UsageError on a bad host
        if not self.remote_tmp.startswith("/"):
            raise UsageError(f"the board's temp folder must be an absolute path, not {self.remote_tmp!r}")

    def _ssh_base(self, scp: bool = False) -> list[str]:
        extra = shlex.split(os.environ.get("EDGEQ_SSH_OPTIONS", ""))  # e.g. "-o StrictHostKeyChecking=accept-new"
        cmd = ["scp" if scp else "ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10", *self.ssh_options, *extra]
        if self.destination.port:
            cmd += ["-P" if scp else "-p", str(self.destination.port)]
        if self.identity:
            cmd += ["-i", self.identity]
        return cmd

    def _run(self, cmd: list[str], what: str, timeout_s: float | None = None) -> subprocess.CompletedProcess:
        try:
            return procs.run(cmd, timeout_s or self.timeout_s, text=True)
        except FileNotFoundError as exc:
            raise Unavailable(
                f"{cmd[0]} is not installed", "install OpenSSH (Debian: apt-get install openssh-client)"
            ) from exc
        except subprocess.TimeoutExpired as exc:
            raise Unavailable(
                f"{what} on {self.host} timed out after {timeout_s or self.timeout_s:.0f} s",
                "check the board and the network, or raise --timeout-s",
            ) from exc

    def ssh(self, remote_command: str, what: str, timeout_s: float | None = None) -> subprocess.CompletedProcess:
        return self._run([*self._ssh_base(), "--", self.destination.login(), remote_command], what, timeout_s)

    def availability(self) -> Availability:
        try:
            p = self.ssh("true", "connecting", timeout_s=20)
        except Unavailable as exc:
            return Availability(False, exc.message)
        if p.returncode != 0:
            reason = (p.stderr.strip().splitlines() or ["ssh failed"])[-1]
            return Availability(False, f"cannot reach {self.host} over ssh: {reason}")
        return Availability(True)

    def load(self, model_path: str, cfg: BenchConfig) -> None:
        raise UsageError(
            "single invokes are not timed from this host over SSH",
            "the runner on the board times the runs: call benchmark() (edgeq bench --host)",
        )

    def invoke(self) -> None:
        self.load("", BenchConfig())

    def benchmark(self, model_path: str, cfg: BenchConfig) -> BenchResult:
        """Copy, run, fetch. Raises Unavailable when the board cannot be reached or the
        delegate does not load there; BadInput when the model does not run there."""
        model = Path(model_path)
        if not model.is_file():
            raise BadInput(f"model file not found: {model}", "check the path")
        available = self.availability()
        if not available.available:
            raise Unavailable(available.reason, "check `ssh USER@BOARD` works with a key, without a password prompt")
        prefix = f"{self.remote_tmp.rstrip('/')}/edgeq-bench."
        p = self.ssh(f"mktemp -d {shlex.quote(prefix + 'XXXXXX')}", "making a temp folder")
        remote_dir = p.stdout.strip()
        if p.returncode != 0 or not remote_dir.startswith(prefix) or "\n" in remote_dir:
            raise Unavailable(
                f"cannot make a temp folder on {self.host}: {p.stderr.strip()[:200]}",
                f"check the board's {self.remote_tmp}",
            )
        try:
            dest = f"{self.destination.scp_prefix()}:{remote_dir}/"
            # absolute local paths: scp would read a relative name with a ':' in it as host:path
            local = [os.path.abspath(model), os.path.abspath(RUNNER_SCRIPT)]
            p = self._run([*self._ssh_base(scp=True), "--", *local, dest], "copying the model")
            if p.returncode != 0:
                raise Unavailable(
                    f"cannot copy to {self.host}: {p.stderr.strip()[:200]}",
                    "check disk space and permissions on the board",
                )
            args = [
                self.python,
                f"{remote_dir}/{RUNNER_SCRIPT.name}",
                "--model", f"{remote_dir}/{model.name}",
                "--runs", str(cfg.num_runs),
                "--warmup", str(cfg.warmup_runs),
                "--threads", str(cfg.num_threads),
            ]  # fmt: skip
            if self.delegate:
                args += ["--delegate", self.delegate]
            if self.device:
                args += ["--device", self.device]
            p = self.ssh(shlex.join(args), "the benchmark")
        finally:
            self.ssh(f"rm -rf {shlex.quote(remote_dir)}", "cleaning up", timeout_s=30)
        try:
            doc = json.loads(p.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            last = (p.stderr.strip().splitlines() or ["no output"])[-1]
            raise BadInput(
                f"the benchmark failed on {self.host}: {last[:300]}", "run it there by hand to see why"
            ) from None
        if "error" in doc:
            raise Unavailable(
                f"on {self.host}: {doc['error']}", "install libedgetpu (the Edge TPU runtime) on the board"
            )
        stats = summarize(doc["first_invoke_ms"], doc["samples_ms"], doc["warmup_runs"])
        env = {k: doc.get(k) for k in ("machine", "node", "python", "runtime", "delegate", "device")}
        env["host"] = self.host
        device = f"{self.host}" + (f" {self.device}" if self.device else "")
        return BenchResult(
            target=self.target,
            device=device,
            stats=stats,
            num_threads=cfg.num_threads,
            environment=env,
            via=VIA,
            findings=Findings(latency=measured_latency(stats, device, VIA)),
        )
