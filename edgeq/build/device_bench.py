"""A build's benchmark on a device pool: with ``--executor ray`` and a ``--device``, the benchmark runs as a
Ray task on the node that offers that device (``edgeq worker --device SPEC``), one at a time per device.

The model travels as bytes; the node makes the target's runner for the device itself (the driver's host
need not have it), checks it is there, and benchmarks. The result is cached like any benchmark and names
the host and node that measured. A device nobody offers, or one that vanished, is an
:class:`edgeq.errors.Unavailable` the build's benchmark step turns into a host figure with the reason,
never a failed build.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgeq.build.stages import bench_doc
from edgeq.config import BenchConfig
from edgeq.errors import Unavailable

if TYPE_CHECKING:
    from edgeq.build.stages import Build


def on_device(
    target: str, device: str, options: Mapping[str, Any], model: bytes, name: str, cfg: BenchConfig
) -> dict[str, Any]:
    """Runs on the device's node: ``target``'s runner for ``device`` benchmarks ``model`` (saved as ``name``).

    Raises:
        Unavailable: the device is not there (any more) on this host.
    """
    from edgeq.targets import registry

    runner = registry.get(target).runner(device, options)
    available = runner.availability()
    if not available.available:
        raise Unavailable(f"{target} device {device} is not available: {available.reason}", "check the device")
    with tempfile.TemporaryDirectory(prefix="edgeq-bench-") as tmp:
        path = Path(tmp) / Path(name).name
        path.write_bytes(model)
        return bench_doc(runner.benchmark(str(path), cfg))


def bench(
    b: Build,
    target: str,
    device: str,
    options: Mapping[str, Any],
    tflite: Path,
    tools: Mapping[str, str],
    key: Mapping[str, Any],
) -> dict[str, Any]:
    """The benchmark of ``tflite`` on ``target``'s ``device``, run on the node offering it, cached.

    Raises:
        Unavailable: no node offers the device, or it vanished (the benchmark failed there).
    """
    from edgeq.executor import devices

    def fn(_d: Path) -> dict[str, Any]:
        args = (target, device, dict(options), tflite.read_bytes(), tflite.name, b.cfg.bench)
        (out,) = devices.run(b.cfg.executor_config, [devices.DeviceTask(target, device, on_device, args)])
        if not out.ok:
            where = f" on host {out.host}" if out.host else ""
            raise Unavailable(f"the benchmark on {device}{where} failed: {out.failure()}", "see edgeq worker --help")
        doc: dict[str, Any] = out.value
        return doc | {"on": f"{doc['on']} on host {out.host}", "host": out.host, "node": out.node}

    return b.bench_with(tflite, target, fn, tools, key)
