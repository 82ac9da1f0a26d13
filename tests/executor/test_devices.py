"""Device pools: each node of a real two-node Ray cluster offers its own stand-in device as ``edgeq worker``
offers it; each benchmark runs on the node that has its device, never two at once on one device; a device
nobody offers, or one that vanished, is a failed benchmark, never a failed run. Unit tests of the
resource names (hostile device strings) and of the wait that notices a node gone."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from edgeq.errors import Unavailable, UsageError
from edgeq.executor import ExecutorConfig, Outcome
from edgeq.executor import devices as dv
from tests.executor import cluster
from tests.executor import tasks as t

HOSTILE = [
    "usb:0",
    "usb_0",
    "pci:0",
    "/dev/ttyACM0",
    "192.168.1.7:5555",
    "emulator-5554",
    "R58M12ABCDE",
    "ssh://pi@rpi4.local:22",
    "$(rm -rf ~)",
    "a; reboot",
    "`id`",
    "x' --resources='{\"CPU\": 99}",
    "CPU",
    "node:10.0.0.1",
    "  usb:0  ",
    "ü-📱",
    "../../etc/passwd",
    "x" * 200,
]


@pytest.mark.parametrize("spec", HOSTILE)
def test_a_resource_name_is_safe_whatever_the_spec(spec: str) -> None:
    name = dv.resource_name(spec)
    assert name.startswith(dv.PREFIX) and len(name) <= 80
    assert all(c.isascii() and (c.isalnum() or c in "._-") for c in name), name
    assert dv.resource_name(spec) == name  # stable: the worker and the build derive the same name


def test_specs_that_slug_alike_get_different_resources() -> None:
    names = {dv.resource_name(s) for s in HOSTILE}
    assert len(names) == len(HOSTILE)
    assert dv.resource_name("usb:0") != dv.resource_name("usb_0")


@pytest.mark.parametrize("spec", ["", "   ", "usb:0\n--head", "a\x00b", "x" * 201])
def test_a_malformed_spec_is_a_usage_error_naming_the_fix(spec: str) -> None:
    with pytest.raises(UsageError) as e:
        dv.resource_name(spec)
    assert e.value.exit_code == 2 and e.value.hint


def test_the_worker_command_is_an_argument_list_offering_one_unit_per_device() -> None:
    cfg = dv.WorkerConfig(("usb:0", "a; reboot"), "10.0.0.2:6379")
    cmd = cfg.command()
    assert "--block" in cmd and "--address=10.0.0.2:6379" in cmd and "--head" not in cmd
    (res,) = [a for a in cmd if a.startswith("--resources=")]
    assert json.loads(res.removeprefix("--resources=")) == {
        dv.resource_name("usb:0"): 1,
        dv.resource_name("a; reboot"): 1,
    }
    assert "--head" in dv.WorkerConfig(("usb:0",)).command()
    with pytest.raises(UsageError):
        dv.WorkerConfig(("usb:0", "usb:0"))
    with pytest.raises(UsageError):
        dv.WorkerConfig(())


def test_device_pools_need_the_ray_executor() -> None:
    with pytest.raises(UsageError) as e:
        dv.run(ExecutorConfig(jobs=1), [dv.DeviceTask("b", "usb:0", t.pid)])
    assert "--executor ray" in e.value.hint


class _GoneRay:
    """A Ray whose device left: the task never gets ready and the resource is no longer offered."""

    def __init__(self) -> None:
        self.cancelled: list[Any] = []

    def wait(self, refs: list[Any], timeout: float) -> tuple[list[Any], list[Any]]:
        return [], refs

    def cluster_resources(self) -> dict[str, float]:
        return {"CPU": 2.0}

    def cancel(self, ref: Any, force: bool) -> None:
        self.cancelled.append(ref)


def test_a_benchmark_waiting_for_a_device_that_left_is_cancelled_not_waited_for_forever() -> None:
    ray = _GoneRay()
    with pytest.raises(Unavailable, match="left the Ray cluster"):
        dv._get(ray, "ref", dv.resource_name("usb:0"))
    assert ray.cancelled == ["ref"]


def test_the_worker_command_rejects_a_bad_device_with_exit_2(run_cli: Any) -> None:
    r = run_cli("worker", "--device", "", "--address", "127.0.0.1:1")
    assert r.exit_code == 2 and "device spec is empty" in r.stderr


# -- on a real two-node cluster ---------------------------------------------------------------------------

A, B = "usb:0", "emulator-5554"  # stand-in devices: one on the head, one on the second node


@pytest.fixture(scope="module")
def device_cluster() -> Iterator[str]:
    if cluster.ray_missing():
        pytest.skip(cluster.ray_missing())
    with cluster.two_nodes(dv.node_args([A]), dv.node_args([B])) as address:
        yield address


def _overlaps(runs: list[Outcome]) -> list[tuple[str, str]]:
    spans = sorted((o.value["start"], o.value["end"], o.name) for o in runs)
    return [(x[2], y[2]) for x, y in itertools.pairwise(spans) if y[0] < x[1]]


@pytest.mark.slow
def test_each_benchmark_runs_on_its_devices_node_one_at_a_time(device_cluster: str) -> None:
    jobs = [dv.DeviceTask(f"{d}#{i}", d, t.stand_in_bench, (d, 0.4)) for i in range(4) for d in (A, B)]
    t0 = time.monotonic()
    outs = dv.run(ExecutorConfig("ray", address=device_cluster), jobs)
    assert time.monotonic() - t0 < 120
    assert [o.name for o in outs] == [j.name for j in jobs] and all(o.ok for o in outs), outs
    by_device = {d: [o for o in outs if o.value["device"] == d] for d in (A, B)}
    nodes = {d: {o.node for o in runs} for d, runs in by_device.items()}
    assert all(len(n) == 1 for n in nodes.values()) and nodes[A] != nodes[B], nodes  # each on its own node
    assert all(o.host for o in outs)  # the report can name the host that measured
    for d, runs in by_device.items():
        assert _overlaps(runs) == [], (d, [(o.name, o.value) for o in runs])
    # the two devices did work at the same time (the resource, not a lack of CPUs, serialised each)
    assert _overlaps(outs), [(o.name, o.value) for o in outs]


@pytest.mark.slow
def test_a_device_nobody_offers_fails_its_benchmark_at_once(device_cluster: str) -> None:
    jobs = [dv.DeviceTask("ghost", "usb:7", t.stand_in_bench, ("usb:7", 0.1))]
    jobs.append(dv.DeviceTask("real", A, t.stand_in_bench, (A, 0.1)))
    t0 = time.monotonic()
    ghost, real = dv.run(ExecutorConfig("ray", address=device_cluster), jobs)
    assert time.monotonic() - t0 < 60
    assert not ghost.ok and ghost.error_type == "Unavailable" and ghost.attempts == 0
    assert "no node of the Ray cluster offers device 'usb:7'" in ghost.error
    assert "edgeq worker --device usb:7" in ghost.error
    assert real.ok and real.value["device"] == A


@pytest.mark.slow
def test_a_device_that_vanished_fails_its_benchmark_not_the_run(device_cluster: str) -> None:
    jobs = [dv.DeviceTask("gone", B, t.vanished_bench, (B,)), dv.DeviceTask("fine", B, t.stand_in_bench, (B, 0.1))]
    gone, fine = dv.run(ExecutorConfig("ray", address=device_cluster, max_retries=1), jobs)
    assert not gone.ok and gone.error_type == "Unavailable" and "unplugged" in gone.error
    assert gone.attempts == 1 and gone.node  # an exception is its outcome, not retried
    assert fine.ok and fine.node == gone.node


@pytest.mark.slow
def test_a_build_benchmarks_on_the_node_offering_its_device_and_a_vanished_device_fails_only_that(
    device_cluster: str, tf_keras_model: Any, tmp_path: Any
) -> None:
    """``edgeq build --target coral --device usb:0 --executor ray``: the benchmark is routed to the head
    (the node offering usb:0); there is no Edge TPU behind the stand-in, so the coral runner says it is not
    available there, the benchmark fails, and the build finishes with the host figure and the reason,
    naming the host that tried."""
    import contextlib
    import io

    from edgeq.cli.app import run
    from edgeq.cli.main import cli
    from tests.conftest import DATA

    out, stdout = tmp_path / "out", io.StringIO()
    args = ["--json", "build", str(tf_keras_model), "--target", "coral", "--device", A, "-o", str(out)]
    args += ["--executor", "ray", "--ray-address", device_cluster, "--method", "ptq", "--runs", "2", "--warmup", "0"]
    args += ["--data", str(DATA / "digits_calib.npz")]
    with contextlib.redirect_stdout(stdout):
        code = run(cli, args)
    doc = json.loads(stdout.getvalue())
    assert code == 0, doc["error"]
    row = json.loads((out / "coral" / "build.json").read_text())["variants"][1]
    skipped = row["bench_skipped"]
    assert skipped.startswith(f"the benchmark on {A} on host ") and "not available" in skipped, skipped
    assert row["latency_where"] == "host"


@pytest.mark.slow
def test_edgeq_worker_offers_its_device_until_ctrl_c_stops_its_node(device_cluster: str, tmp_path: Any) -> None:
    import os
    import signal
    import subprocess
    import sys

    import ray

    spec = "/dev/ttyACM0"  # a third stand-in device, offered by a third node: the worker's
    name = dv.resource_name(spec)
    env = dict(os.environ, PYTHONPATH=str(cluster.ROOT), RAY_USAGE_STATS_ENABLED="0")
    cmd = [sys.executable, "-m", "edgeq", "worker", "--device", spec, "--address", device_cluster, "--num-cpus", "0"]
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        worker = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    ray.init(address=device_cluster, log_to_driver=False, logging_level="ERROR")
    try:
        assert _until(lambda: ray.cluster_resources().get(name, 0) == 1, 90), log.read_text()
        (ran,) = dv.run(ExecutorConfig("ray"), [dv.DeviceTask("on-worker", spec, t.stand_in_bench, (spec, 0.1))])
        assert ran.ok and ran.host, ran
        worker.send_signal(signal.SIGINT)  # Ctrl-C reaches edgeq (its node runs in a group of its own)
        assert worker.wait(timeout=60) == 130, log.read_text()
        assert _until(lambda: name not in ray.cluster_resources(), 60)  # the node it started is gone
    finally:
        ray.shutdown()
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(timeout=10)
    assert f"offering device {spec} as Ray resource {name}" in log.read_text()


def _until(cond: Any, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.5)
    return False


class _FakeBuild:
    """What device_bench needs of a Build: its config (executor, bench settings) and the cached step."""

    def __init__(self, tmp: Any) -> None:
        from types import SimpleNamespace

        from edgeq.config import BenchConfig

        self.cfg = SimpleNamespace(executor_config=ExecutorConfig("ray"), bench=BenchConfig())
        self.tmp = tmp

    def bench_with(self, tflite: Any, label: str, fn: Any, tools: Any, key: Any) -> dict[str, Any]:
        return dict(fn(self.tmp)) | {"key": dict(key)}


def test_a_pooled_build_benchmark_names_the_host_and_node_that_measured(monkeypatch: Any, tmp_path: Any) -> None:
    from edgeq.build import device_bench

    sent: list[dv.DeviceTask] = []

    def fake_run(cfg: ExecutorConfig, tasks: list[dv.DeviceTask]) -> list[Outcome]:
        sent.extend(tasks)
        return [Outcome(tasks[0].name, value={"on": "coral (usb:0)", "latency_ms": {}}, host="pi4", node="n1")]

    monkeypatch.setattr(dv, "run", fake_run)
    model = tmp_path / "m.tflite"
    model.write_bytes(b"TFL3 bytes")
    doc = device_bench.bench(_FakeBuild(tmp_path), "coral", "usb:0", {}, model, {}, {"device": "usb:0"})  # type: ignore[arg-type]
    assert doc["on"] == "coral (usb:0) on host pi4" and doc["host"] == "pi4" and doc["node"] == "n1"
    (task,) = sent
    assert task.device == "usb:0" and task.fn is device_bench.on_device and task.args[3] == b"TFL3 bytes"

    def vanished(cfg: ExecutorConfig, tasks: list[dv.DeviceTask]) -> list[Outcome]:
        return [Outcome(tasks[0].name, error="unplugged", error_type="Unavailable", host="pi4")]

    monkeypatch.setattr(dv, "run", vanished)
    with pytest.raises(Unavailable, match="the benchmark on usb:0 on host pi4 failed: Unavailable: unplugged"):
        device_bench.bench(_FakeBuild(tmp_path), "coral", "usb:0", {}, model, {}, {})  # type: ignore[arg-type]


def test_on_a_host_without_the_device_the_node_side_benchmark_says_unavailable() -> None:
    from edgeq.build import device_bench
    from edgeq.config import BenchConfig

    with pytest.raises(Unavailable, match="coral device usb:0 is not available"):  # no Edge TPU here
        device_bench.on_device("coral", "usb:0", {}, b"not read", "m.tflite", BenchConfig())
