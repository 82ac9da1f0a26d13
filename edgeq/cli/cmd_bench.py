"""edgeq bench: the benchmark harness for one target."""

from __future__ import annotations

import click

from edgeq.cli.app import App, pass_app
from edgeq.config import BenchConfig
from edgeq.targets.registry import names


@click.command("bench")
@click.argument("model", type=click.Path(path_type=str))
@click.option("--target", default="cpu", show_default=True, help=f"One of: {', '.join(names())}.")
@click.option("--runs", type=int, default=100, show_default=True, help="Timed runs.")
@click.option(
    "--warmup", type=int, default=10, show_default=True, help="Untimed warm-up runs (after the first invoke)."
)
@click.option("--threads", type=int, default=1, show_default=True, help="Interpreter threads.")
@click.option("--batch", type=int, default=None, help="Batch size for a model with a dynamic batch.")
@pass_app
def command(app: App, model: str, target: str, runs: int, warmup: int, threads: int, batch: int | None) -> None:
    """Time MODEL.tflite on TARGET: first invoke apart, warm-up excluded, p50/p90/p99."""
    from edgeq import api

    cfg = BenchConfig(num_runs=runs, warmup_runs=warmup, num_threads=threads, batch=batch)
    r = api.bench(model, target, cfg)
    s = r.stats
    human = (
        f"{model} on {r.target} ({r.device}, {r.num_threads} thread(s), {s.num_runs} runs after {s.warmup_runs} warm-up)\n"
        f"first invoke {s.first_invoke_ms:.3f} ms; latency ms p50 {s.p50:.3f}  p90 {s.p90:.3f}  p99 {s.p99:.3f}  mean {s.mean:.3f}  std {s.std:.3f}"
    )
    app.done(r.to_dict(), human)
