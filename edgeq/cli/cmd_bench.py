"""edgeq bench: the benchmark harness for one target."""

from __future__ import annotations

import click

from edgeq.cli.app import App, pass_app
from edgeq.cli.options import device_option, given_target_options, number_option, target_options
from edgeq.config import BATCH, RUNS, THREADS, WARMUP, BenchConfig
from edgeq.targets.base import Stage
from edgeq.targets.registry import names


@click.command("bench")
@click.argument("model", type=click.Path(path_type=str))
@click.option("--target", default="cpu", show_default=True, help=f"One of: {', '.join(names())}.")
@number_option("--runs", bound=RUNS, default=100, show_default=True, help="Timed runs.")
@number_option(
    "--warmup", bound=WARMUP, default=10, show_default=True, help="Untimed warm-up runs (after the first invoke)."
)
@number_option("--threads", bound=THREADS, default=1, show_default=True, help="Interpreter threads.")
@number_option("--batch", bound=BATCH, default=None, help="Batch size for a model with a dynamic batch.")
@device_option
@target_options(Stage.BENCH)
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
    **kw,
) -> None:
    """Time MODEL.tflite on TARGET: first invoke apart, warm-up excluded, p50/p90/p99.

    With --host, the model and a small runner are copied to the board over SSH and run there.
    Options marked (T) apply to target T only.
    """
    from edgeq import api
    from edgeq.cli import render

    cfg = BenchConfig(num_runs=runs, warmup_runs=warmup, num_threads=threads, batch=batch)
    r = api.bench(model, target, cfg, device, given_target_options(Stage.BENCH, target, kw))
    app.done(r.to_dict(), render.bench(r, model))
