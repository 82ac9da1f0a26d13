"""One target of a build: check, compile and bench its model, and write its folder (the artifacts people
deploy and its manifest), or, when it fails, its manifest with the error in place."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeq import SCHEMA_VERSION
from edgeq.artifacts import Outputs, sha256_file, sidecar_path
from edgeq.build import recipe
from edgeq.build.folder import MANIFEST
from edgeq.build.keys import target_tools
from edgeq.build.options import BUILD_STAGES, Chosen, TargetSettings
from edgeq.build.stages import (
    Build,
    bench_findings,
    budget_of,
    extra_flavour,
    planned_quantize,
    ptq_plan_summary,
    rel_path,
    shared_quantize,
)
from edgeq.config import BuildBudget, Method, QuantizeConfig
from edgeq.errors import EdgeqError, Unavailable
from edgeq.findings import Basis, Figure, Findings, Message, error, info, warning
from edgeq.targets.base import CompatReport, Stage, Target


@dataclass(frozen=True)
class Quantized:
    """A target's int8 model: the shared quantization of its conversion or its own plan."""

    result: dict[str, Any]
    file: Path
    evaluation: dict[str, Any] | None
    plan: dict[str, Any] | None
    budget: BuildBudget | None = None  # what the planner judged it by (None: --method ptq/qat, or no eval data)


@dataclass(frozen=True)
class Compiled:
    """A target's check and compile of its model: the check's report (what compile was given), the
    compile's ``to_dict()`` (its output relative to ``folder``) and the files it wrote, relative too."""

    check: CompatReport
    compile: dict[str, Any]
    folder: Path
    artifacts: tuple[str, ...]

    @property
    def findings(self) -> Findings:
        """The check's findings updated by the compile's (the compiler's placement over the prediction)."""
        found = self.check.findings.then(Findings.from_dict(self.compile.get("findings") or {}))
        if self.compile.get("skipped"):  # nothing to compile, or no compiler: a fact, not a failure
            found = found.then(Findings(messages=(info(f"compile step skipped: {self.compile.get('reason')}"),)))
        return found

    @property
    def deployed(self) -> Path | None:
        """The compiled .tflite the target runs, when the compile wrote one."""
        out = self.compile.get("output")
        path = self.folder / str(out) if out else None
        return path if path is not None and path.suffix == ".tflite" and path.is_file() else None


def build_target(b: Build, name: str, tgt: Target, chosen: Chosen) -> dict[str, Any]:
    """Quantize (shared where the conversion is the same), check, compile and bench one target, and
    write its folder: the artifacts people deploy and its manifest."""
    settings = chosen.settings[name]
    qcfg = QuantizeConfig(mode=tgt.build_mode, io=tgt.build_io, techniques=b.cfg.techniques)
    q = _quantized(b, name, tgt, qcfg, chosen.targets)
    compiled = _check_and_compile(b, name, tgt, settings, q.file)
    bench_file = compiled.deployed or q.file
    bench = _benchmark(b, name, tgt, chosen, bench_file, q.file)
    tfolder = b.out / name
    extras = _extra_flavours(b, tgt, tfolder)  # (row, file): measured on the host like the float reference
    variants = [
        float_row(b, tfolder),
        *(row for row, _ in extras),
        variant_row(
            qcfg.mode.value,
            q.result,
            q.evaluation,
            bench,
            tfolder / q.file.name,
            compiled.check.to_dict(),
            compiled.compile,
        ),
    ]
    found = target_findings(b, q, compiled, bench)
    slower = host_speed_note(variants[0], variants[-1], name)
    manifest = manifest_head(b, name, tgt, settings) | {
        "status": "ok",
        "error": None,
        "plan": q.plan,
        "qat": q.result.get("qat"),
        "budget": q.budget.to_dict() if q.budget else None,
        "variants": variants,
        "findings": (found.with_messages([slower]) if slower else found).to_dict(),
        "tools": _tools(tgt, settings),
        "gate_failed": q.result.get("gate_failed"),
        # the deployed model's outputs where they differ from the float model's (a split head), else None
        "interface": q.result.get("interface"),
    }
    models = (b.ref.tflite, *(f for _, f in extras), q.file)
    _write_folder(tfolder, manifest, models, bench_file if bench_file != q.file else None, compiled)
    return manifest


def target_findings(b: Build, q: Quantized, compiled: Compiled, bench: Mapping[str, Any]) -> Findings:
    """The deployed variant's findings: the check's, then the compile's, then, where the benchmark ran on
    the target, the measured latency and the runner's findings; and the build's own messages about this
    target (the quantization's warnings, dead int8 outputs, the cache's notes)."""
    found = compiled.findings
    if not bench.get("skipped_on_target"):
        # the runner's own latency figure, where it gives one, over its timing: a runner that times a
        # stand-in (TFLM on the host for a board) says what the board's latency is, and on what basis
        found = found.then(Findings(latency=measured_latency(bench))).then(bench_findings(bench))
    notes: list[Message] = [warning(str(w)) for w in q.result.get("warnings") or []]
    dead = (q.evaluation or {}).get("degenerate") or []  # an int8 output that carries no signal is never a footnote
    notes += [warning(f"int8 output {d['output']!r} is {d['why']}: it carries no signal") for d in dead]
    notes += evaluation_messages(q.evaluation, q.budget)
    notes += interface_messages(q.result.get("interface"))
    notes += [info(n) for n in b.cache.notes]
    return found.then(Findings(messages=tuple(notes)))


def interface_messages(interface: Mapping[str, Any] | None) -> list[Message]:
    """The deployed model's outputs where they are not the float model's (a head split into parts, one int8
    scale each): what the application must do with them."""
    if not interface or not interface.get("text"):
        return []
    return [
        warning(
            f"interface changed: {interface['text']} (the head's parts need different int8 scales; every"
            " figure here compares the merged output with the float model)"
        )
    ]


def evaluation_messages(ev: Mapping[str, Any] | None, budget: BuildBudget | None) -> list[Message]:
    """What the evaluation of the deployed model says beside its figures: the budget it was judged by
    (a default one named as such), each output whose float reference is constant over the evaluation
    data (an untrained network: none of its figures means anything), each output whose channel groups
    one int8 scale cannot hold, and too few samples to judge."""
    from edgeq.bench import stats, tasks

    if not ev:
        return []
    out = [info(f"budget: {budget.text()}")] if budget is not None else []
    for o in ev.get("outputs") or []:
        if o.get("constant_reference") is not None:
            out.append(warning(tasks.constant_warning(str(o["name"]), float(o["constant_reference"]))))
        if o.get("mixed_ranges_warning"):  # channel groups one int8 scale cannot hold (a YOLO head)
            out.append(warning(str(o["mixed_ranges_warning"])))
    small = stats.too_few(int(ev.get("num_samples") or 0))
    if small and ev.get("num_samples"):
        out.append(warning(small))
    return out


SLOWER = 1.1  # int8 this much slower than float on the host is said (less is within run-to-run noise)


def host_speed_note(float_row: Mapping[str, Any], row: Mapping[str, Any], target: str) -> Message | None:
    """A note when the deployed model runs slower than float on the host CPU: LiteRT's XNNPACK often has
    faster float kernels than int8 ones on a desktop CPU, which says nothing of ``target``'s. A warning
    where the host is the target (its figure is the verdict's), else a note: the target's figure counts."""
    f = (float_row.get("latency_ms") or {}).get("p50")
    q = (row.get("latency_ms") or {}).get("p50")
    on_host = row.get("latency_where") == "host" and float_row.get("latency_where") == "host"
    if not (f and q and on_host and q > SLOWER * f):
        return None
    said = (
        f"{row['variant']} runs {q / f:.1f}x slower than float on this host's CPU ({q:.3f} vs {f:.3f} ms p50):"
        " LiteRT's XNNPACK runs float faster than int8 on this CPU"
    )
    if row.get("bench_skipped") is None and target == "cpu":
        return warning(f"{said}; deployed on this CPU, the float model is the faster one")
    return info(f"{said}; the host's figure says nothing of {target}: its own latency is what counts")


def measured_latency(bench: Mapping[str, Any]) -> Figure | None:
    """The latency a benchmark measured: its p50 (the mean where the runner gives no percentiles)."""
    lat = bench.get("latency_ms") or {}
    n = bench.get("num_runs")
    runs = f" of {n} runs" if n else ""
    if lat.get("p50") is not None:
        value, how = lat["p50"], "p50" + runs
    elif lat.get("mean") is not None:
        value, how = lat["mean"], "mean" + runs
    else:
        return None
    return Figure(
        value,
        "ms",
        Basis.MEASURED,
        where=str(bench.get("device") or "host"),
        how=how,
        via=str(bench.get("via") or ""),
        low=lat.get("min"),
        high=lat.get("max"),
    )


def _tools(tgt: Target, settings: TargetSettings) -> dict[str, str]:
    """The versions of the tools the target's steps run (check, compile, bench), for the manifest."""
    return target_tools(tgt, BUILD_STAGES, {s: settings.of(s) for s in BUILD_STAGES})


def _extra_flavours(b: Build, tgt: Target, tfolder: Path) -> list[tuple[dict[str, Any], Path]]:
    """The target's other flavours (Android's fp16), each a row measured on the host, and its file."""
    extras = []
    for mode in getattr(tgt, "build_extra_modes", ()):
        if mode not in b.extras:
            b.extras[mode] = extra_flavour(b, mode)
        xres, xdir = b.extras[mode]
        xfile = xdir / xres["file"]
        xrow = variant_row(
            mode.value, xres, b.evaluate(xfile, mode.value), b.bench(xfile, b.host, "cpu"), tfolder / xfile.name
        )
        extras.append((xrow, xfile))
    return extras


def _write_folder(
    tfolder: Path, manifest: dict[str, Any], models: Sequence[Path], compiled_model: Path | None, compiled: Compiled
) -> None:
    """The target's folder: copies, never hard links into the cache (editing a deployed model must not
    damage a later build); sidecars first and the manifest last, all moved into place together."""
    artifacts: list[str] = []
    with Outputs(tfolder) as staged:
        for src in models:
            if sidecar_path(src).exists():
                staged.copy(sidecar_path(src).name, sidecar_path(src))
        for src in (*models, *((compiled_model,) if compiled_model else ())):
            staged.copy(src.name, src)
            if src.name not in artifacts:
                artifacts.append(src.name)
        for top in _top_level(list(compiled.artifacts)):
            src = compiled.folder / top
            if src.is_file() and top not in artifacts:
                staged.copy(top, src)
                artifacts.append(top)
            elif src.is_dir():
                _copy_folder(src, tfolder / top)
                artifacts.append(top + "/")
        manifest["artifacts"] = artifacts
        _point_at_deployed(manifest["variants"][-1], artifacts)
        staged.write_json(MANIFEST, manifest)


def _quantized(b: Build, name: str, tgt: Target, qcfg: QuantizeConfig, targets: Mapping[str, Target]) -> Quantized:
    """The target's int8 model: the shared quantization of its conversion, or its own plan where that misses
    the budget."""
    conversion = (tgt.build_mode, tgt.build_io)
    if conversion not in b.quantized:  # once per conversion, for every target that wants it
        users = [n for n, t in targets.items() if (t.build_mode, t.build_io) == conversion]
        b.quantized[conversion] = shared_quantize(b, qcfg, users)
    qres, qdir = b.quantized[conversion]
    qfile = qdir / qres["file"]
    qeval = b.evaluate(qfile, name)
    plan_doc, budget = None, None
    if b.cfg.method == Method.AUTO and b.eval_cfg is not None and qeval is not None:
        budget = budget_of(b.cfg, qeval)
        planned = planned_quantize(b, name, tgt, qcfg, qeval)
        if planned is None:
            plan_doc = ptq_plan_summary(qres, qeval, qfile, tgt, budget_of(b.cfg, qeval))
        else:
            qres, qdir = planned
            qfile = qdir / qres["file"]
            qeval = b.evaluate(qfile, name)
            plan_doc = qres.get("plan")
    return Quantized(qres, qfile, qeval, plan_doc, budget)


def report_of(doc: Mapping[str, Any]) -> CompatReport:
    """A check's report from its ``to_dict()`` (as cached): what compile is given as ``checked``."""
    return CompatReport(
        target=str(doc["target"]),
        ok=bool(doc["ok"]),
        ops=tuple(doc.get("ops") or ()),
        findings=Findings.from_dict(doc.get("findings") or {}),
        details=dict(doc.get("details") or {}),
    )


def _check_and_compile(b: Build, name: str, tgt: Target, settings: TargetSettings, qfile: Path) -> Compiled:
    """The target's check of ``qfile``, then its compile given that check (``checked``): two cached steps,
    each keyed on the versions of the tools it runs (a compiler installed since the last build redoes
    the compile and what takes its output, not the check) and on its options (--board)."""
    b.step(f"{name}: check and compile")
    sha = sha256_file(qfile)
    check_opts, compile_opts = settings.of(Stage.CHECK), settings.of(Stage.COMPILE)
    check_tools = target_tools(tgt, (Stage.CHECK,), {Stage.CHECK: check_opts})
    check_step = recipe.check_step(name, sha, settings.key(Stage.CHECK), check_tools)
    ran: list[CompatReport] = []

    def check_fn(_d: Path) -> dict[str, Any]:
        ran.append(tgt.check(str(qfile), check_opts))
        return ran[0].to_dict()

    check_doc, _ = recipe.run(b.cache, check_step, check_fn)
    # the check's own report where it ran now (with what the target keeps of it in memory: Vela's outputs),
    # else the cached one rebuilt from its to_dict() (the target finds its analysis in its details)
    report = ran[0] if ran else report_of(check_doc)

    def compile_fn(d: Path) -> dict[str, Any]:
        compiled = tgt.compile([str(qfile)], str(d), compile_opts, checked=(report,))
        return {
            "compile": compiled.to_dict() | {"output": rel_path(compiled.output, d)},
            "artifacts": [rel_path(a, d) for a in compiled.artifacts()],
        }

    compile_tools = target_tools(tgt, (Stage.COMPILE,), {Stage.COMPILE: compile_opts})
    compile_step = recipe.compile_step(name, sha, check_doc, settings.key(Stage.COMPILE), compile_tools)
    doc, folder = recipe.run(b.cache, compile_step, compile_fn)
    return Compiled(report, dict(doc["compile"]), folder, tuple(a for a in doc["artifacts"] if a))


def _benchmark(b: Build, name: str, tgt: Target, chosen: Chosen, bench_file: Path, qfile: Path) -> dict[str, Any]:
    """The target's runner's benchmark of ``bench_file``, cached; where the runner cannot run it, the host's
    figure for ``qfile``, with the reason (``skipped_on_target``). With ``--executor ray`` and a device, the
    benchmark runs on the node offering that device (:mod:`edgeq.build.device_bench`), not here."""
    runner, settings = chosen.runners[name], chosen.settings[name]
    pooled = b.cfg.executor_config.kind == "ray" and settings.device is not None
    available = None if pooled else runner.availability()  # a pooled device is checked on its node
    b.step(f"{name}: benchmark")
    skipped = "" if available is None else available.reason
    if available is None or available.available:
        tools = target_tools(tgt, (Stage.BENCH,), {Stage.BENCH: settings.of(Stage.BENCH)})
        try:
            if pooled and settings.device is not None:
                from edgeq.build import device_bench

                key = settings.key(Stage.BENCH) | {"executor": "ray"}  # another host's device: not this one's
                return device_bench.bench(b, name, settings.device, settings.of(Stage.BENCH), bench_file, tools, key)
            return b.bench(bench_file, runner, name, tools, settings.key(Stage.BENCH))
        except Unavailable as exc:  # reached, but cannot run there (no libedgetpu on the board): said, not fatal
            skipped = exc.message
    return b.bench(qfile, b.host, "cpu") | {"skipped_on_target": skipped, "where": "host"}


def failed_target(b: Build, name: str, tgt: Target, exc: EdgeqError, settings: TargetSettings) -> dict[str, Any]:
    """The manifest of a target that failed: its error in place (an ERROR message in its findings), no
    artifacts; the others go on."""
    err = {"type": exc.kind, "message": exc.message, "hint": exc.hint, "exit_code": exc.exit_code}
    found = Findings(messages=(error(exc.one_line()), *(info(n) for n in b.cache.notes)))
    try:
        tools = _tools(tgt, settings)
    except Exception:  # noqa: BLE001 -- the failure may be the target's own; its manifest is still written
        tools = {}
    manifest = manifest_head(b, name, tgt, settings) | {
        "status": "failed",
        "error": err,
        "plan": None,
        "qat": None,
        # the float reference was built before any target ran, so a failed target still has its baseline
        # (and the report, which wants at least one variant, renders)
        "variants": [float_row(b, b.out / name)],
        "findings": found.to_dict(),
        "tools": tools,
        "artifacts": [],
        "gate_failed": None,
        "interface": None,
    }
    ref = b.ref.tflite
    with Outputs(b.out / name) as staged:
        if sidecar_path(ref).exists():
            staged.copy(sidecar_path(ref).name, sidecar_path(ref))
        staged.copy(ref.name, ref)
        manifest["artifacts"] = [ref.name]
        staged.write_json(MANIFEST, manifest)
    return manifest


def float_row(b: Build, tfolder: Path) -> dict[str, Any]:
    ref = b.ref
    return variant_row("float", ref.result, ref.evaluation, ref.bench, tfolder / ref.tflite.name)


def manifest_head(b: Build, name: str, tgt: Target, settings: TargetSettings) -> dict[str, Any]:
    from edgeq.quantize.planner import Profile

    return {
        "schema_version": SCHEMA_VERSION,
        "target": name,
        "description": tgt.description,
        "options": settings.to_dict(),  # what the target was given (--board, --host, ...), per stage
        "profile": Profile.of(tgt).__dict__,
        "model": {"path": b.given.model, "sha256": b.given.shas["model"]},
        "data": b.io["data"],
        "eval_data": b.io["eval_data"],
        "method": b.cfg.method.value,
        "bench": b.cfg.bench.to_dict(),
    }


def variant_row(
    label: str,
    q: dict[str, Any],
    ev: dict[str, Any] | None,
    b: dict[str, Any],
    path: Path,
    check: dict[str, Any] | None = None,
    compiled: dict[str, Any] | None = None,
) -> dict[str, Any]:
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
        # what the runner found besides latency (instructions, a proof), typed; None on the host
        "bench_findings": b.get("findings") if not b.get("skipped_on_target") else None,
    }


def _point_at_deployed(row: dict[str, Any], artifacts: list[str]) -> None:
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
