"""edgeq bench: the benchmark harness for one target."""

from __future__ import annotations

import click

from edgeq.cli.app import App, ms, pass_app, table
from edgeq.config import BenchConfig
from edgeq.targets.registry import names


def _count(n: int | None) -> str:
    return "?" if n is None else str(n)  # a count the measuring tool did not print


@click.command("bench")
@click.argument("model", type=click.Path(path_type=str))
@click.option("--target", default="cpu", show_default=True, help=f"One of: {', '.join(names())}.")
@click.option("--runs", type=int, default=100, show_default=True, help="Timed runs.")
@click.option(
    "--warmup", type=int, default=10, show_default=True, help="Untimed warm-up runs (after the first invoke)."
)
@click.option("--threads", type=int, default=1, show_default=True, help="Interpreter threads.")
@click.option("--batch", type=int, default=None, help="Batch size for a model with a dynamic batch.")
@click.option("--device", default=None, help="Device string, e.g. usb:0 or pci:0 for a Coral Edge TPU.")
@click.option("--host", default=None, metavar="USER@BOARD", help="Run on a board over SSH (key authentication).")
@click.option("--port", type=int, default=None, help="SSH port for --host.")
@click.option(
    "--identity", default=None, type=click.Path(dir_okay=False, path_type=str), help="SSH private key for --host."
)
@click.option("--remote-python", "python", default=None, help="Python on the board for --host (default python3).")
@click.option(
    "--timeout-s",
    type=float,
    default=None,
    help="Timeout of each remote call (--host) or of one benchmark run (android).",
)
@click.option("--board", default=None, help="(mcu) Board profile for the latency estimate (stm32h7a3).")
@click.option("--serial", default=None, help="(android) adb serial of the phone; needed when several are attached.")
@click.option(
    "--delegate",
    "delegates",
    default=None,
    metavar="LIST",
    help="(android) Delegates run one after another: cpu, xnnpack, gpu, nnapi.",
)
@click.option("--nnapi-accelerator", default=None, help="(android) NNAPI device name, e.g. qti-dsp.")
@click.option("--op-profiling", is_flag=True, default=None, help="(android) Per-op timings from benchmark_model.")
@click.option(
    "--benchmark-binary",
    default=None,
    type=click.Path(dir_okay=False, path_type=str),
    help="(android) benchmark_model for the phone's ABI (default: $EDGEQ_BENCHMARK_MODEL).",
)
@click.option("--cpu-mask", default=None, metavar="HEX", help="(android) Pin to these cores with taskset, e.g. f0.")
@click.option(
    "--benchmark-arg",
    "extra_args",
    multiple=True,
    metavar="FLAG",
    help="(android) Extra benchmark_model flag, e.g. --min_secs=0.",
)
@click.option("--adb", default=None, help="(android) adb to use (default: on PATH).")
@click.option("--adb-timeout-s", type=float, default=None, help="(android) Limit for every other adb call (60).")
@click.option(
    "--log-dir",
    default=None,
    type=click.Path(file_okay=False, path_type=str),
    help="(android) Keep each run's benchmark_model output here.",
)
@pass_app
def command(
    app: App,
    model: str,
    target: str,
    runs: int,
    warmup: int,
    threads: int,
    batch: int | None,
    device: str | None,
    **options,
) -> None:
    """Time MODEL.tflite on TARGET: first invoke apart, warm-up excluded, p50/p90/p99.

    With --host, the model and a small runner are copied to the board over SSH and run there.
    """
    from edgeq import api

    cfg = BenchConfig(num_runs=runs, warmup_runs=warmup, num_threads=threads, batch=batch)
    options = {k: v for k, v in options.items() if v not in (None, False, ())}  # only what was given
    if "extra_args" in options:
        options["extra_args"] = tuple(options["extra_args"])
    if options.get("delegates"):
        options["delegates"] = tuple(d.strip() for d in options["delegates"].split(",") if d.strip())
    r = api.bench(model, target, cfg, device, options)
    if hasattr(r, "table"):  # several delegates side by side (android)
        rows = [
            [
                x["delegate"],
                x["status"],
                x["ran_on"],
                ms(x["mean_ms"]),
                ms(x["std_ms"]),
                ms(x["init_ms"]),
                ms(x["first_ms"]),
                x["speedup_vs_cpu"] or "-",
                x["note"],
            ]
            for x in r.table()
        ]
        human = "\n".join(
            [
                f"{model} on {r.target} ({r.device})",
                table(
                    rows, ["delegate", "status", "ran on", "mean ms", "std ms", "init ms", "first ms", "vs cpu", "note"]
                ),
                *r.notes,
            ]
        )
        app.done(r.to_dict(), human)
        return
    s = r.stats
    human = (
        f"{model} on {r.target} ({r.device}, {r.num_threads} thread(s), {_count(s.num_runs)} runs after {_count(s.warmup_runs)} warm-up)\n"
        f"first invoke {ms(s.first_invoke_ms)} ms; latency ms p50 {ms(s.p50)}  p90 {ms(s.p90)}  p99 {ms(s.p99)}  mean {ms(s.mean)}  std {ms(s.std)}"
    )
    notes = list(getattr(r, "notes", ()) or ())
    app.done(r.to_dict(), "\n".join([human, *notes]))
