"""One target of a build: check, compile and bench its model, and write its folder (the artifacts people
deploy and its manifest), or, when it fails, its manifest with the error in place."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from edgeq import SCHEMA_VERSION
from edgeq.artifacts import Outputs, sha256_file, sidecar_path
from edgeq.build.folder import MANIFEST
from edgeq.build.keys import step_key, target_tools
from edgeq.build.options import Chosen, TargetSettings
from edgeq.build.stages import (
    Build,
    extra_flavour,
    planned_quantize,
    ptq_plan_summary,
    rel_path,
    shared_quantize,
)
from edgeq.build.verdict import verdict
from edgeq.config import Method, QuantizeConfig
from edgeq.errors import EdgeqError, Unavailable
from edgeq.targets.base import Stage, Target

# A check or compile message that reports a problem, not a neutral fact.
_PROBLEM_WORDS = ("warning", "not ", "cannot", "fail", "unsupported", "exceed", "too ")


def split_messages(check: dict, compiled: dict) -> tuple[list[str], list[str]]:
    """(info, warnings) of a target's check and compile: a passing check's facts (fits, bit-exact)
    and a skipped compile (nothing to compile, or no compiler installed) are info; the rest are warnings."""
    info: list[str] = []
    warnings: list[str] = []
    for msg in check.get("messages", []):
        problem = not check.get("ok", True) or any(w in msg.lower() for w in _PROBLEM_WORDS)
        (warnings if problem else info).append(msg)
    if compiled.get("skipped"):  # a target skips only when there is nothing to do or no compiler; a failure raises
        info.append(f"compile step skipped: {compiled.get('reason')}")
    info += [str(m) for m in (compiled.get("details") or {}).get("info") or []]
    warnings += [str(w) for w in (compiled.get("details") or {}).get("warnings") or []]
    return info, warnings


def build_target(b: Build, name: str, tgt: Target, chosen: Chosen) -> dict:
    """Quantize (shared where the conversion is the same), check, compile and bench one target, and
    write its folder: the artifacts people deploy and its manifest."""
    from edgeq.quantize.planner import Profile

    settings = chosen.settings[name]
    qcfg = QuantizeConfig(mode=tgt.build_mode, io=tgt.build_io, techniques=b.cfg.techniques)
    qres, qfile, qeval, plan_doc = _quantized(b, name, tgt, qcfg, chosen.targets)
    tres, tdir = _check_and_compile(b, name, tgt, settings, qfile)
    compiled_out = tres["compile"]["output"]
    bench_file = (
        (tdir / compiled_out)
        if compiled_out and str(compiled_out).endswith(".tflite") and (tdir / compiled_out).is_file()
        else qfile
    )
    qbench = _benchmark(b, name, tgt, chosen, bench_file, qfile)
    info, warnings = split_messages(tres["check"], tres["compile"])
    warnings = list(qres.get("warnings", [])) + warnings
    dead = (qeval or {}).get("degenerate") or []  # an int8 output that carries no signal is never a footnote
    warnings += [f"int8 output {d['output']!r} is {d['why']}: it carries no signal" for d in dead]

    tfolder = b.out / name
    extras = []  # (row, file): the target's other flavours, measured on the host like the float reference
    for mode in getattr(tgt, "build_extra_modes", ()):
        if mode not in b.extras:
            b.extras[mode] = extra_flavour(b, mode)
        xres, xdir = b.extras[mode]
        xfile = xdir / xres["file"]
        xrow = variant_row(
            mode.value, xres, b.evaluate(xfile, mode.value), b.bench(xfile, b.host, "cpu"), tfolder / xfile.name
        )
        extras.append((xrow, xfile))
    variants = [
        float_row(b, tfolder),
        *(row for row, _ in extras),
        variant_row(qcfg.mode.value, qres, qeval, qbench, tfolder / qfile.name, tres["check"], tres["compile"]),
    ]
    manifest = manifest_head(b, name, tgt, Profile.of(tgt), settings) | {
        "status": "ok",
        "error": None,
        "plan": plan_doc,
        "qat": qres.get("qat"),
        "variants": variants,
        "verdict": verdict(variants[-1]),
        "info": info,
        "warnings": b.cache.notes + warnings,
        "gate_failed": qres.get("gate_failed"),
    }
    # copies, never hard links into the cache: editing a deployed model must not damage a later build;
    # sidecars first and the manifest last, all moved into place together
    artifacts: list[str] = []
    with Outputs(tfolder) as staged:
        models = (b.float_tflite, *(f for _, f in extras), qfile)
        for src in models:
            if sidecar_path(src).exists():
                staged.copy(sidecar_path(src).name, sidecar_path(src))
        for src in models + ((bench_file,) if bench_file != qfile else ()):
            staged.copy(src.name, src)
            if src.name not in artifacts:
                artifacts.append(src.name)
        for top in _top_level(tres["compile"].get("artifacts") or []):
            src = tdir / top
            if src.is_file() and top not in artifacts:
                staged.copy(top, src)
                artifacts.append(top)
            elif src.is_dir():
                _copy_folder(src, tfolder / top)
                artifacts.append(top + "/")
        manifest["artifacts"] = artifacts
        _point_at_deployed(variants[-1], artifacts)
        staged.write_json(MANIFEST, manifest)
    return manifest


def _quantized(
    b: Build, name: str, tgt: Target, qcfg: QuantizeConfig, targets: Mapping[str, Target]
) -> tuple[dict, Path, dict | None, dict | None]:
    """The target's int8 model: the shared quantization of its conversion, or its own plan where that misses
    the budget. Returns (result, file, evaluation, plan record)."""
    conversion = (tgt.build_mode, tgt.build_io)
    if conversion not in b.quantized:  # once per conversion, for every target that wants it
        users = [n for n, t in targets.items() if (t.build_mode, t.build_io) == conversion]
        b.quantized[conversion] = shared_quantize(b, qcfg, users)
    qres, qdir = b.quantized[conversion]
    qfile = qdir / qres["file"]
    qeval = b.evaluate(qfile, name)
    plan_doc = None
    if b.cfg.method == Method.AUTO and b.eval_cfg is not None and qeval is not None:
        planned = planned_quantize(b, name, tgt, qcfg, qeval)
        if planned is None:
            plan_doc = ptq_plan_summary(qres, qeval, qfile, tgt, b.cfg.min_sqnr)
        else:
            qres, qdir = planned
            qfile = qdir / qres["file"]
            qeval = b.evaluate(qfile, name)
            plan_doc = qres.get("plan")
    return qres, qfile, qeval, plan_doc


def _check_and_compile(b: Build, name: str, tgt: Target, settings: TargetSettings, qfile: Path) -> tuple[dict, Path]:
    """The target's check and compile of ``qfile`` with its options, cached; (result, its folder)."""
    b.step(f"{name}: check and compile")

    def target_fn(d: Path) -> dict:
        report = tgt.check(str(qfile), settings.of(Stage.CHECK))
        compiled = tgt.compile([str(qfile)], str(d), settings.of(Stage.COMPILE))
        return {
            "check": report.to_dict(),
            "compile": {
                "output": rel_path(compiled.output, d),
                "skipped": compiled.skipped,
                "reason": compiled.reason,
                "details": compiled.details,
                "artifacts": [rel_path(a, d) for a in compiled.artifacts()],
            },
        }

    # check and compile run the target's tools: their versions are in the key (a compiler installed since
    # the last build redoes this step, and what takes its output), and so are their options (--board)
    both = (Stage.CHECK, Stage.COMPILE)
    tools = target_tools(tgt, both, {s: settings.of(s) for s in both})
    key = step_key({"tflite": sha256_file(qfile)}, {"target": name, "options": settings.key(*both)}, tools)
    return b.cache.run("target", key, target_fn, f"check and compile [{name}]")


def _benchmark(b: Build, name: str, tgt: Target, chosen: Chosen, bench_file: Path, qfile: Path) -> dict:
    """The target's runner's benchmark of ``bench_file``, cached; where the runner cannot run it, the host's
    figure for ``qfile``, with the reason (``skipped_on_target``)."""
    runner, settings = chosen.runners[name], chosen.settings[name]
    available = runner.availability()
    b.step(f"{name}: benchmark")
    skipped = available.reason
    if available.available:
        tools = target_tools(tgt, (Stage.BENCH,), {Stage.BENCH: settings.of(Stage.BENCH)})
        try:
            return b.bench(bench_file, runner, name, tools, settings.key(Stage.BENCH))
        except Unavailable as exc:  # reached, but cannot run there (no libedgetpu on the board): said, not fatal
            skipped = exc.message
    return b.bench(qfile, b.host, "cpu") | {"skipped_on_target": skipped, "where": "host"}


def failed_target(b: Build, name: str, tgt: Target, exc: EdgeqError, settings: TargetSettings) -> dict:
    """The manifest of a target that failed: its error in place, no artifacts; the others go on."""
    from edgeq.quantize.planner import Profile

    error = {"type": exc.kind, "message": exc.message, "hint": exc.hint, "exit_code": exc.exit_code}
    manifest = manifest_head(b, name, tgt, Profile.of(tgt), settings) | {
        "status": "failed",
        "error": error,
        "plan": None,
        "qat": None,
        # the float reference was built before any target ran, so a failed target still has its baseline
        # (and the report, which wants at least one variant, renders)
        "variants": [float_row(b, b.out / name)],
        "verdict": {"accelerator": None, "fits": None, "latency_ms": None},
        "info": [],
        "warnings": list(b.cache.notes),
        "artifacts": [],
        "gate_failed": None,
    }
    with Outputs(b.out / name) as staged:
        if sidecar_path(b.float_tflite).exists():
            staged.copy(sidecar_path(b.float_tflite).name, sidecar_path(b.float_tflite))
        staged.copy(b.float_tflite.name, b.float_tflite)
        manifest["artifacts"] = [b.float_tflite.name]
        staged.write_json(MANIFEST, manifest)
    return manifest


def float_row(b: Build, tfolder: Path) -> dict:
    return variant_row("float", b.float_res, b.float_eval, b.float_bench, tfolder / b.float_tflite.name)


def manifest_head(b: Build, name: str, tgt: Target, profile: Any, settings: TargetSettings) -> dict:
    return {
        "schema_version": SCHEMA_VERSION,
        "target": name,
        "description": tgt.description,
        "options": settings.to_dict(),  # what the target was given (--board, --host, ...), per stage
        "profile": profile.__dict__,
        "model": {"path": b.io["model"], "sha256": b.shas["model"]},
        "data": b.io["data"],
        "eval_data": b.io["eval_data"],
        "method": b.cfg.method.value,
        "bench": b.cfg.bench.to_dict(),
    }


def variant_row(
    label: str,
    q: dict,
    ev: dict | None,
    b: dict,
    path: Path,
    check: dict | None = None,
    compiled: dict | None = None,
) -> dict:
    return {
        "variant": label,
        "output": str(path),
        "size_bytes": q["size_bytes"],
        "accuracy": ev["quantized"]["accuracy"] if ev else None,
        "reference_accuracy": ev["reference"]["accuracy"] if ev else None,
        "agreement": ev["agreement"] if ev else None,
        "sqnr_db": ev["sqnr_db"] if ev else None,
        "worst_output": ev.get("worst_output") if ev else None,
        "outputs": ev.get("outputs") if ev else None,  # per-output fidelity, by name
        "detection": ev.get("detection") if ev else None,
        "worst_class_drop_points": ev.get("worst_class_drop_points") if ev else None,
        "intervals": ev.get("intervals") if ev else None,
        "num_eval_samples": ev["num_samples"] if ev else 0,
        "float_ops": len(q["float_ops"]),
        "inputs": q["inputs"],
        "check": check,
        "compile": compiled,
        "latency_ms": b["latency_ms"],
        "latency_kind": "measured",
        "latency_via": b.get("via") or "",  # "over SSH": measured on a board, brought back over SSH
        "latency_where": "host" if b.get("skipped_on_target") else str(b.get("device") or "host"),
        "first_invoke_ms": b["first_invoke_ms"],
        "latency_on": b["on"],
        "bench_skipped": b.get("skipped_on_target"),
        "bench_environment": b["environment"],
        "bench_figures": b.get("figures") or None,  # a runner's figures besides latency (instructions)
    }


def _point_at_deployed(row: dict, artifacts: list[str]) -> None:
    """A compile output that is a cache path (a target that keeps the model as given) names the
    deployed copy instead: people are never sent into .cache."""
    compiled = row.get("compile") or {}
    output = compiled.get("output")
    if output and (Path(output).is_absolute() or ".cache" in Path(output).parts) and Path(output).name in artifacts:
        compiled["output"] = Path(output).name


def _top_level(paths: list[str]) -> list[str]:
    """The first component of each relative path, once each, in order: a firmware folder's files
    deploy as the folder."""
    seen: list[str] = []
    for p in paths:
        if p and not Path(p).is_absolute():
            top = Path(p).parts[0]
            if top not in seen:
                seen.append(top)
    return seen


def _copy_folder(src: Path, dest: Path) -> None:
    """Copy a folder (no links into the cache), replacing ``dest`` only once the copy is whole."""
    import shutil

    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.parent / f".{dest.name}.tmp{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(src, tmp, symlinks=False)
    old = dest.parent / f".{dest.name}.old{os.getpid()}"
    if dest.exists():
        os.replace(dest, old)
    os.replace(tmp, dest)
    shutil.rmtree(old, ignore_errors=True)
