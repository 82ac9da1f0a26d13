"""edgeq build: the whole chain for one target."""

from __future__ import annotations

import click

from edgeq.cli.app import App, pass_app, table
from edgeq.config import BenchConfig
from edgeq.targets.registry import names


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.2f}%"


@click.command("build")
@click.argument("model", required=False, type=click.Path(path_type=str))
@click.option("--target", required=True, help=f"One of: {', '.join(names())}.")
@click.option(
    "--data",
    "data_path",
    type=click.Path(path_type=str),
    default=None,
    help="Calibration data (default: the bundled MNIST calibration set).",
)
@click.option(
    "--eval-data",
    "eval_data_path",
    type=click.Path(path_type=str),
    default=None,
    help="Labeled evaluation data (default: the bundled held-out set).",
)
@click.option(
    "-o",
    "--out-dir",
    default="edgeq-out",
    show_default=True,
    type=click.Path(file_okay=False, path_type=str),
    help="Build folder; TARGET gets a subfolder.",
)
@click.option("--runs", type=int, default=100, show_default=True, help="Timed benchmark runs.")
@click.option("--warmup", type=int, default=10, show_default=True, help="Untimed warm-up runs.")
@click.option("--threads", type=int, default=1, show_default=True, help="Interpreter threads.")
@click.option("--force", is_flag=True, help="Write into an -o folder that is not an earlier edgeq build.")
@pass_app
def command(
    app: App,
    model: str | None,
    target: str,
    data_path: str | None,
    eval_data_path: str | None,
    out_dir: str,
    runs: int,
    warmup: int,
    threads: int,
    force: bool,
) -> None:
    """Build MODEL (default: the bundled MNIST CNN) for TARGET: quantize, verify, evaluate, benchmark."""
    from edgeq import api

    cfg = BenchConfig(num_runs=runs, warmup_runs=warmup, num_threads=threads)
    app.say(f"building {model or 'the bundled MNIST CNN'} for {target} ...")
    r = api.build(target, model, data_path, eval_data_path, out_dir, cfg, force=force)
    rows = []
    notes = []
    for v in r.variants:
        lat = v["latency_ms"] or {}
        rows.append(
            [
                v["variant"],
                f"{v['size_bytes']:,}",
                _pct(v["accuracy"]),
                "-" if not lat else f"{lat['p50']:.3f}",
                "-" if not lat else f"{lat['p99']:.3f}",
                v["float_ops"],
                v["latency_on"] or "-",
            ]
        )
        if v["check"] is not None:
            counts = v["check"].get("counts") or {}
            verdict = "ok" if v["check"]["ok"] else "problems"
            notes.append(f"check ({target}): {verdict}" + (f", {counts}" if counts else ""))
        if v["compile"] is not None and v["compile"]["skipped"]:
            notes.append(f"compile ({target}): skipped: {v['compile']['reason']}")
        elif v["compile"] is not None:
            notes.append(f"compile ({target}): {v['compile']['output']}")
        if v.get("bench_skipped"):
            notes.append(f"bench on {target} skipped ({v['bench_skipped']}); measured on the host instead")
    n = r.variants[0]["num_eval_samples"] if r.variants else 0
    human = "\n".join(
        [
            f"{target} build in {r.out_dir} (accuracy on {n} held-out samples; {threads} thread(s))",
            table(rows, ["variant", "size_bytes", "accuracy", "p50_ms", "p99_ms", "float_ops", "latency_on"]),
            *notes,
        ]
    )
    app.done(r.to_dict(), human, r.artifacts, r.warnings)
