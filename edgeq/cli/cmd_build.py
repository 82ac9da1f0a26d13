"""edgeq build: the whole chain for one or more targets, cached stage by stage."""

from __future__ import annotations

import click

from edgeq.cli.app import App, ms, pass_app, pct, table
from edgeq.cli.options import (
    build_target_options,
    executor_options,
    given_build_options,
    load_options,
    number_option,
    technique_options,
)
from edgeq.config import DROP_POINTS, RUNS, SQNR_DB, THREADS, WARMUP, BuildConfig, Method, SweepConfig, load_toml
from edgeq.paths import printable
from edgeq.report.verdict import Verdict, judge, quantized, short
from edgeq.targets.registry import names


def _variant_table(t: dict, v: Verdict) -> list[list[str]]:
    """One row per latency figure, with the size and fidelity of the variant it is about."""
    by_name = {row["variant"]: row for row in t["variants"]}
    rows = []
    for lat in v.latency_rows:
        row = by_name.get(lat.variant, {})
        rows.append(
            [
                lat.variant,
                f"{row['size_bytes']:,}" if row.get("size_bytes") is not None else "-",
                pct(row.get("accuracy")),
                pct(row.get("agreement")),
                "-" if row.get("sqnr_db") is None else f"{row['sqnr_db']:.1f}",
                ms(lat.p50),
                ms(lat.p99),
                ms(lat.mean),
                lat.kind,
                lat.where,
            ]
        )
    return rows


VARIANTS_HEADER = ["variant", "size_bytes", "accuracy", "agreement", "sqnr_db", "p50_ms", "p99_ms", "mean_ms", "latency", "on"]  # fmt: skip


def _outputs(q: dict) -> list[str]:
    """A multi-output model: each output's own figures (one output is the variant's row already)."""
    if len(q.get("outputs") or []) <= 1:
        return []
    lines = []
    for o in q["outputs"]:
        agree = f"  agreement {pct(o['agreement'])}" if o.get("agreement") is not None else ""
        dead = f"  DEGENERATE: {o['degenerate']}" if o.get("degenerate") else ""
        lines.append(
            f"  {q['variant']} output {o['name']} {tuple(o['shape'])} ({o['role'].replace('_', ' ')}): "
            f"SQNR {o['sqnr_db']:.1f} dB  cosine {o['cosine_similarity']:.4f}  "
            f"max abs err {o['max_abs_error']:.4g}{agree}{dead}"
        )
    return lines


def _steps(t: dict, v: Verdict) -> list[str]:
    """What the target's estimate rests on, its compile, its benchmark, its plan, and its notes."""
    lines = [f"  estimate for {lat.where}: {lat.note}" for lat in v.latency_rows if not lat.measured and lat.note]
    q = quantized(t) or {}
    comp = q.get("compile") or {}
    reason = comp.get("reason") or ""
    if comp:
        lines.append(f"  compile: {f'skipped: {short(reason, 100)}' if comp.get('skipped') else 'done'}")
    if v.not_benchmarked:
        lines.append(f"  not benchmarked on {v.target}: {short(v.not_benchmarked, 100)}")
    plan = t.get("plan")
    if plan and (plan.get("chosen") or plan.get("steps")):
        because = f" ({plan['stopped_because']})" if plan.get("stopped_because") else ""
        lines.append(f"  plan: {plan.get('chosen') or 'no step met the budget'}{because}")
    # a skip the compile line said in full is not repeated
    said = f"compile step skipped: {reason}" if comp.get("skipped") and short(reason, 100) == reason else None
    return lines + [f"  note: {i}" for i in v.notes() if i != said]


def _target(r: dict, t: dict, v: Verdict, threads: int) -> list[str]:
    name = t["target"]
    if v.failed:
        err = t.get("error") or {}
        return [f"{name}: failed: {err.get('message') or 'no reason recorded'}"] + (
            [f"  hint: {err['hint']}"] if err.get("hint") else []
        )
    n = t["variants"][0].get("num_eval_samples", 0) if t["variants"] else 0
    labeled = any(row.get("accuracy") is not None for row in t["variants"])
    figures = "accuracy" if labeled else "agreement and SQNR (no labels)"
    head = f"{name} build in {r['out_dir']}/{name} ({figures} on {n} held-out samples; {threads} thread(s))"
    return [head, table(_variant_table(t, v), VARIANTS_HEADER), *_outputs(quantized(t) or {}), *_steps(t, v)]


def _judged(r: dict) -> list[tuple[dict, Verdict]]:
    targets = [{"target": name} | t for name, t in r["targets"].items()]
    return [(t, judge(t)) for t in targets]


def render(r: dict, threads: int) -> str:
    """The build for people, in the report's order: one verdict line per target, then the details."""
    judged = _judged(r)
    lines = ["Verdict per target:"] + [f"  {v.line()}" for _, v in judged]
    lines += [f"QUALITY GATE FAILED: {g}" for g in r.get("gate_failures") or []]
    for t, v in judged:
        lines += ["", *_target(r, t, v, threads)]
    cached = sum(1 for s in r["stages"] if s["cached"])
    lines += ["", f"{len(r['stages'])} stages ({cached} from the cache); report: {', '.join(r['report'])}"]
    return "\n".join(lines)


def problems(r: dict) -> list[str]:
    """The build's warnings, each once: WARNING and ERROR messages only (INFO goes in the notes)."""
    judged = _judged(r)
    found = [(v.target, w) for _, v in judged for w in v.warnings()]
    seen_in: dict[str, list[str]] = {}
    for name, w in found:
        seen_in.setdefault(w, []).append(name)
    # a warning of one target names it; one every target shares (the cache's) is said once, plainly
    per_target = [w if len(seen_in[w]) > 1 else f"{name}: {w}" for name, w in found]
    # the build's own warnings, unless a target's messages said them already
    mentioned = {m for _, v in judged for m in v.notes() + v.warnings()}
    own = [w for w in r.get("warnings") or [] if w not in mentioned]
    return list(dict.fromkeys(own + per_target))


def _say_toml_trust(app: App, path: str, settings: dict, given: dict) -> None:
    """One line on stderr when edgeq.toml (say, in a cloned folder), not the command line, turns safe mode
    off: ``custom-objects`` imports and runs a module, ``trust-model`` runs the model's own code."""
    import json

    from edgeq.paths import shown

    keys = [
        f"{key} = {json.dumps(list(value))}" if key == "custom-objects" else f"{key} = true"
        for key, field_name, value in (
            ("custom-objects", "custom_objects", settings.get("custom_objects")),
            ("trust-model", "trust_model", settings.get("trust_model")),
        )
        if value and given.get(field_name) is None
    ]
    if keys and app.verbosity >= 0:
        click.echo(
            printable(
                f"WARNING: {shown(path)} sets {' and '.join(keys)}: safe mode is off, Python code runs "
                "(drop the key unless you trust that folder)"
            ),
            err=True,
        )


def _sweep(app: App, cfg: SweepConfig, force: bool) -> None:
    """Several models: each built into its folder, the summary across them; the worst model's exit code."""
    from edgeq import api
    from edgeq.build.sweep import SweepFailed
    from edgeq.cli.progress import build_steps, reporter
    from edgeq.report.summary import to_text

    with build_steps(app, reporter(app)) as (say, progress):
        r = api.build_many(cfg, force=force, say=say, progress=progress)
    artifacts = list(r.files)
    found: list[str] = []
    for o in r.outcomes:
        if o.build is None:
            continue
        artifacts += [v["output"] for t in o.build["targets"].values() for v in t.get("variants") or []]
        artifacts += list(o.build.get("report") or [])
        found += [f"{o.folder}: {w}" for w in problems(o.build)]
    human = to_text(r.summary)
    app.done(r.to_dict(), human, artifacts, found)
    if not r.ok:
        if not app.json_mode and app.verbosity >= 0:  # the table, with each failed model in place, then the error
            click.echo(printable(human))
        raise SweepFailed(r)


@click.command("build")
@click.argument("models", nargs=-1, type=click.Path(path_type=str))
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
@number_option(
    "--max-drop",
    bound=DROP_POINTS,
    kind=float,
    default=None,
    metavar="POINTS",
    help="Accuracy budget for --method auto (default 1).",
)
@number_option(
    "--min-sqnr",
    bound=SQNR_DB,
    kind=float,
    default=None,
    metavar="DB",
    help="Budget for --method auto on unlabeled evaluation data: SQNR of the worst output, in dB.",
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
@number_option("--runs", bound=RUNS, default=None, help="Timed benchmark runs (default 100).")
@number_option("--warmup", bound=WARMUP, default=None, help="Untimed warm-up runs (default 10).")
@number_option("--threads", bound=THREADS, default=None, help="Interpreter threads (default 1).")
@technique_options
@executor_options
@click.option(
    "--allow-cpu-fallback",
    is_flag=True,
    default=None,
    help="Planner: on integer-only targets, let a plan keep layers in float (they leave the accelerator).",
)
@click.option("--no-cache", is_flag=True, help="Redo every stage.")
@click.option("--force", is_flag=True, help="Write into an -o folder that is not an earlier edgeq build.")
@load_options
@build_target_options
@pass_app
def command(
    app: App,
    models,
    targets,
    data_path,
    eval_data_path,
    train_data_path,
    method,
    max_drop,
    min_sqnr,
    out_dir,
    config_path,
    runs,
    warmup,
    threads,
    no_cache,
    force,
    allow_cpu_fallback,
    trust_model,
    custom_objects,
    **techniques,
) -> None:
    """Build MODEL (default: the bundled MNIST CNN) for each target: quantize, debug, check,
    compile, benchmark, report. Stages are cached; a re-run redoes only what changed.

    Several models (edgeq build a.keras b.onnx --target cpu,mcu, or models = [...] in edgeq.toml) are a
    sweep: each is built into a folder of its own under -o, named after its file, and summary.md,
    summary.html and summary.json there hold the model x target table of verdicts. A model that fails
    is reported in place and the others finish; the exit code is the worst of the models'.

    Target options (--board, --host, --runtime, ...) go to every chosen target that takes them; in
    edgeq.toml, a [targets.NAME] table holds one target's (board = "nrf52840"), the command line winning."""
    from pathlib import Path

    from edgeq import api
    from edgeq.cli.progress import build_steps, reporter

    settings: dict = {}
    if config_path or Path("edgeq.toml").is_file():
        settings = load_toml(config_path or "edgeq.toml")
    target_opts = given_build_options(techniques)  # before the techniques are spread below
    # several models (on the command line, else edgeq.toml's `models`) are a sweep; one is today's build
    listed = settings.pop("models", None) or ()
    models = tuple(models) or ((listed,) if isinstance(listed, str) else tuple(listed))
    given = {
        "model": models[0] if len(models) == 1 else None,
        "targets": targets,
        "data": data_path,
        "eval_data": eval_data_path,
        "train_data": train_data_path,
        "method": method,
        "max_drop": max_drop,
        "min_sqnr": min_sqnr,
        "out_dir": out_dir,
        "runs": runs,
        "warmup": warmup,
        "threads": threads,
        "allow_cpu_fallback": allow_cpu_fallback,
        **techniques,
        "trust_model": trust_model or None,  # a flag not given leaves edgeq.toml's value
        "custom_objects": tuple(custom_objects) or None,
        "options": target_opts or None,  # each to every chosen target that takes it
    }
    _say_toml_trust(app, config_path or "edgeq.toml", settings, given)
    settings |= {k: v for k, v in given.items() if v is not None}  # options win over edgeq.toml
    if no_cache:
        settings["cache"] = False
    if "targets" not in settings:
        from edgeq.errors import UsageError

        raise UsageError("no target given", f"pass --target (one or more of: {', '.join(names())})")
    if len(models) > 1:
        _sweep(app, SweepConfig(models=models, build=BuildConfig(**settings)), force)
        return
    cfg = BuildConfig(**settings)
    with build_steps(app, reporter(app)) as (say, progress):  # on a terminal: step i/N, its elapsed time ticking
        r = api.build(cfg, force=force, say=say, progress=progress)
    doc = r.to_dict()
    artifacts = [v["output"] for t in doc["targets"].values() for v in t.get("variants") or []] + doc["report"]
    app.done(doc, render(doc, cfg.threads), artifacts, problems(doc))
