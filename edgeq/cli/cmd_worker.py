"""edgeq worker: offer this host's devices to a Ray cluster, one Ray resource per device."""

from __future__ import annotations

import click

from edgeq.cli.app import App, pass_app
from edgeq.cli.options import number_option
from edgeq.config import Bound

CPUS = Bound(0, 1024, example="2")


@click.command("worker")
@click.option(
    "--device",
    "devices",
    multiple=True,
    required=True,
    metavar="SPEC",
    help="A device on this host, as its target names it (coral: usb:0; android: the adb serial). Repeatable.",
)
@click.option(
    "--address",
    default=None,
    metavar="HOST:PORT",
    help="The Ray head to join (default: start a head on this host).",
)
@number_option(
    "--num-cpus", bound=CPUS, default=None, metavar="N", help="CPUs offered besides the devices (default: all)."
)
@pass_app
def command(app: App, devices: tuple[str, ...], address: str | None, num_cpus: int | None) -> None:
    """Run a Ray node on this host that offers each --device to the cluster's benchmarks.

    Each device is one unit of a Ray resource (edgeq-device-...), so the cluster runs one benchmark at a
    time on it, on this host. Runs until stopped: Ctrl-C (or SIGTERM) stops the node it started, and
    everything that node ran.
    """
    from edgeq.executor.devices import WorkerConfig, serve

    cfg = WorkerConfig(devices, address, num_cpus)
    for spec, name in cfg.resources.items():
        app.say(f"offering device {spec} as Ray resource {name}")
    app.say(f"{'joining ' + address if address else 'starting a Ray head here'}; Ctrl-C stops this node")
    status = serve(cfg)
    app.done({"devices": cfg.resources, "address": address, "exit_status": status}, f"Ray node ended ({status})")
