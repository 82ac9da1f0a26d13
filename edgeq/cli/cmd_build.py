"""edgeq build: the whole chain for one or more targets, cached stage by stage."""

from __future__ import annotations

import click

from edgeq.cli.app import App, ms, pass_app, pct, table
from edgeq.config import BuildConfig, Method, load_toml
from edgeq.targets.registry import names


def render(r: dict, threads: int) -> str:
    lines = []
    for name, t in r["targets"].items():
        rows, notes = [], []
        for v in t["variants"]:
            lat = v["latency_ms"] or {}
            rows.append(
                [
                    v["variant"],
                    f"{v['size_bytes']:,}",
                    pct(v["accuracy"]),
                    ms(lat.get("p50")),
                    ms(lat.get("p99")),
                    v["float_ops"],
                    v["latency_on"] or "-",
                ]
            )
            if v["check"] is not None:
                counts = v["check"].get("counts") or {}
                notes.append(
                    f"check ({name}): {'ok' if v['check']['ok'] else 'problems'}" + (f", {counts}" if counts else "")
                )
            if v["compile"] is not None:
                c = v["compile"]
                notes.append(f"compile ({name}): " + (f"skipped: {c['reason']}" if c["skipped"] else str(c["output"])))
            if v.get("bench_skipped"):
                notes.append(f"bench on {name} skipped ({v['bench_skipped']}); measured on the host instead")
        if t.get("plan"):
            notes.append(f"plan: {t['plan'].get('chosen')} ({t['plan'].get('stopped_because')})")
        n = t["variants"][0]["num_eval_samples"]
        lines += [f"{name} build in {r['out_dir']}/{name} (accuracy on {n} held-out samples; {threads} thread(s))"]
        lines += [
            table(rows, ["variant", "size_bytes", "accuracy", "p50_ms", "p99_ms", "float_ops", "latency_on"]),
            *notes,
            "",
        ]
    cached = sum(1 for s in r["stages"] if s["cached"])
    lines.append(f"{len(r['stages'])} stages ({cached} from the cache); report: {', '.join(r['report'])}")
    return "\n".join(lines)


@click.command("build")
@click.argument("model", required=False, type=click.Path(path_type=str))
@click.option("--target", "targets", default=None, help=f"One or more, comma-separated: {', '.join(names())}.")
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
    "--train-data",
    "train_data_path",
    type=click.Path(path_type=str),
    default=None,
    help="Training data for QAT (method qat, or the planner's QAT step).",
)
@click.option(
    "--method",
    type=click.Choice([m.value for m in Method]),
    default=None,
    help="ptq, qat, or auto: the planner (default).",
)
@click.option(
    "--max-drop", type=float, default=None, metavar="POINTS", help="Accuracy budget for --method auto (default 1)."
)
@click.option(
    "-o",
    "--out-dir",
    default=None,
    type=click.Path(file_okay=False, path_type=str),
    help="Build folder (default: edgeq-out).",
)
@click.option(
    "--config",
    "config_path",
    default=None,
    type=click.Path(dir_okay=False, path_type=str),
    help="edgeq.toml with the same keys (default: ./edgeq.toml if present).",
)
@click.option("--runs", type=int, default=None, help="Timed benchmark runs (default 100).")
@click.option("--warmup", type=int, default=None, help="Untimed warm-up runs (default 10).")
@click.option("--threads", type=int, default=None, help="Interpreter threads (default 1).")
@click.option("--no-cache", is_flag=True, help="Redo every stage.")
@click.option("--force", is_flag=True, help="Write into an -o folder that is not an earlier edgeq build.")
@pass_app
def command(
    app: App,
    model,
    targets,
    data_path,
    eval_data_path,
    train_data_path,
    method,
    max_drop,
    out_dir,
    config_path,
    runs,
    warmup,
    threads,
    no_cache,
    force,
) -> None:
    """Build MODEL (default: the bundled MNIST CNN) for each target: quantize, debug, check,
    compile, benchmark, report. Stages are cached; a re-run redoes only what changed."""
    from pathlib import Path

    from edgeq import api
    from edgeq.cli.progress import build_steps, reporter

    settings: dict = {}
    if config_path or Path("edgeq.toml").is_file():
        settings = load_toml(config_path or "edgeq.toml")
    given = {
        "model": model,
        "targets": targets,
        "data": data_path,
        "eval_data": eval_data_path,
        "train_data": train_data_path,
        "method": method,
        "max_drop": max_drop,
        "out_dir": out_dir,
        "runs": runs,
        "warmup": warmup,
        "threads": threads,
    }
    settings |= {k: v for k, v in given.items() if v is not None}  # options win over edgeq.toml
    if no_cache:
        settings["cache"] = False
    if "targets" not in settings:
        from edgeq.errors import UsageError

        raise UsageError("no target given", f"pass --target (one or more of: {', '.join(names())})")
    cfg = BuildConfig(**settings)
    with build_steps(app, reporter(app)) as (say, progress):  # on a terminal: step i/N, its elapsed time ticking
        r = api.build(cfg, force=force, say=say, progress=progress)
    doc = r.to_dict()
    artifacts = [v["output"] for t in doc["targets"].values() for v in t["variants"]] + doc["report"]
    app.done(doc, render(doc, cfg.threads), artifacts, doc["warnings"])
