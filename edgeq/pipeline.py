"""``edgeq build``: the stages of the public API chained, cached stage by stage, for several targets.

load -> float reference -> quantize (PTQ, QAT, or the planner) -> debug -> check and compile per
target -> bench where a runner is available -> report. Targets that want the same model share
one quantization (the cache key is the same). Every stage's result is cached by the content
hash of its inputs and config (``edgeq.cache``), so a re-run redoes only what changed and a run
interrupted with Ctrl-C resumes from its last completed stage.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from edgeq import SCHEMA_VERSION, bundled
from edgeq.artifacts import (
    Outputs,
    check_name_length,
    check_writable,
    clean_stale,
    sha256_file,
    sidecar_path,
    write_json_atomic,
)
from edgeq.cache import Cache
from edgeq.config import BuildConfig, DataConfig, Method, Mode, QuantizeConfig, TrainConfig
from edgeq.errors import BadInput, EdgeqError, OutputExists, QualityGateFailed

MANIFEST = "build.json"
MARKER = ".edgeq-build.json"  # edgeq's own mark on its build folders: "build.json" is too common a name to tell
MARKER_KIND = "edgeq-build"
LOCK = ".edgeq-build.lock"
Say = Callable[[str], None]


@dataclass
class BuildResult:
    out_dir: str
    targets: dict[str, dict]
    stages: list[dict]
    report: list[str]
    warnings: list[str] = field(default_factory=list)
    gate_failures: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def is_build_dir(out_dir: Path) -> bool:
    """Whether ``out_dir`` carries edgeq's own marker (a common name like build.json proves nothing)."""
    try:
        doc = json.loads((out_dir / MARKER).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(doc, dict) and doc.get("kind") == MARKER_KIND and isinstance(doc.get("schema_version"), int)


def _refuse_foreign(out_dir: Path, force: bool) -> None:
    if force or not out_dir.is_dir() or is_build_dir(out_dir):
        return
    if [e for e in os.listdir(out_dir) if e != LOCK]:
        raise OutputExists(
            f"{out_dir} exists and is not an edgeq build folder (it has no {MARKER})",
            "choose another -o, or pass --force to add edgeq's files to it (the other files are left alone)",
        )


@contextlib.contextmanager
def claim_dir(out_dir: Path, force: bool) -> Iterator[None]:
    """Hold the build folder for the duration of a build.

    A folder with edgeq's marker is reused (a re-run resumes from its cache); a new or empty one
    gets the marker; anything else is refused unless ``force``, and then only edgeq's own files
    are written into it. A lock (``flock`` on ``.edgeq-build.lock``) makes a second build into the
    same folder refuse at once instead of interleaving its writes.

    Raises:
        OutputExists: a folder that is not an edgeq build, without ``force``.
        BadInput: a file, not a folder; not writable; another build holds the lock.
    """
    import fcntl

    check_name_length(out_dir / MARKER)
    if out_dir.exists() and not out_dir.is_dir():
        raise BadInput(f"build output {out_dir} is a file", "choose a folder with -o")
    _refuse_foreign(out_dir, force)
    check_writable(out_dir, "build folder")
    created_dir = not out_dir.exists()
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        created_lock = not (out_dir / LOCK).exists()
        lock = open(out_dir / LOCK, "a+")  # noqa: SIM115 -- held open for the whole build
    except OSError as exc:
        raise BadInput(f"cannot create build folder {out_dir} ({exc.strerror})", "choose another -o location") from exc
    claimed = False
    try:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            pid = lock.read().strip() or "unknown"
            raise BadInput(
                f"another edgeq build is running in {out_dir} (pid {pid})", "wait for it or choose another -o"
            ) from None
        _refuse_foreign(out_dir, force)  # again, now that no other build can be starting
        lock.seek(0)
        lock.truncate()
        lock.write(f"{os.getpid()}\n")
        lock.flush()
        clean_stale(out_dir)
        if not is_build_dir(out_dir):  # marked now, so an interrupted run can resume
            write_json_atomic(out_dir / MARKER, {"schema_version": SCHEMA_VERSION, "kind": MARKER_KIND})
        if not (out_dir / MANIFEST).exists():  # `edgeq report` then says the build has not finished
            write_json_atomic(
                out_dir / MANIFEST, {"schema_version": SCHEMA_VERSION, "status": "running", "targets": []}
            )
        claimed = True
        yield
    finally:
        lock.close()
        if not claimed and created_lock:
            with contextlib.suppress(OSError):
                (out_dir / LOCK).unlink()
                if created_dir:
                    out_dir.rmdir()


def _inputs(cfg: BuildConfig) -> dict[str, str | None]:
    bundled_model = cfg.model is None
    model = cfg.model or bundled.require(bundled.MODEL)
    data = cfg.data or (bundled.require(bundled.CALIB) if bundled_model else None)
    if data is None:
        raise BadInput("no calibration data", "pass --data PATH (or data = ... in edgeq.toml)")
    eval_data = cfg.eval_data or (bundled.require(bundled.EVAL) if bundled_model else None)
    train = cfg.train_data or (bundled.require(bundled.TRAIN) if bundled_model and cfg.method == Method.QAT else None)
    if cfg.method == Method.QAT and train is None:
        raise BadInput("--method qat needs training data", "pass --train-data PATH")
    io = {"model": model, "data": data, "eval_data": eval_data, "train_data": train}
    _check_inputs(io)
    return io


def _check_inputs(io: dict[str, str | None]) -> None:
    """Every input exists and is readable, before any folder is made."""
    from edgeq.modelio import detect_format

    for what, path in io.items():
        if path is None:
            continue
        label = "model file" if what == "model" else "data file"
        if not Path(path).exists():
            raise BadInput(f"{label} not found: {path}", "check the path")
        try:
            if Path(path).is_file():
                with open(path, "rb") as fh:
                    fh.read(1)
            else:
                os.listdir(path)
        except OSError as exc:
            raise BadInput(f"cannot read {label} {path} ({exc.strerror})", "check its permissions") from exc
    detect_format(io["model"])  # a corrupt or unknown model fails here too, not inside a stage


def _sha(path: str | None) -> str | None:
    return sha256_file(path) if path else None


def run(cfg: BuildConfig, force: bool = False, say: Say | None = None, progress=None) -> BuildResult:
    """Run the build; see the module docstring.

    Raises:
        UsageError: unknown target, conflicting options.
        BadInput, ConversionFailed: as the stages raise.
        QualityGateFailed: the budget is missed (after everything else, report included, is written).
    """
    from edgeq.targets import registry

    say = say or (lambda _msg: None)
    targets = {name: registry.get(name) for name in cfg.targets}  # unknown target: fails before any work
    io = _inputs(cfg)
    out = Path(cfg.out_dir)
    with claim_dir(out, force):
        return _run(cfg, targets, io, out, say, progress)


def bench_host_key() -> dict:
    """What a benchmark's figures depend on besides the model and the settings: the machine and the
    runtime versions. A cached timing from another host or another LiteRT is not this one's."""
    import importlib.metadata
    import platform

    from edgeq import __version__

    versions: dict[str, str | None] = {"edgeq": __version__}
    for pkg in ("ai-edge-litert", "tflite-micro"):
        try:
            versions[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            versions[pkg] = None
    return {"node": platform.node(), "machine": platform.machine(), "cpu": platform.processor(), "tools": versions}


class TargetsFailed(EdgeqError):
    """One or more targets of a build failed; the others finished and the report is written.

    The exit code is that of the first failure in target order (set per instance)."""

    kind = "targets_failed"

    def __init__(self, failures: dict[str, EdgeqError], report: str, details: dict) -> None:
        names = ", ".join(failures)
        first = next(iter(failures.values()))
        super().__init__(
            f"target(s) {names} failed ({'; '.join(f'{n}: {e.message}' for n, e in failures.items())})",
            (first.hint + "; " if first.hint else "") + f"the other targets finished: see {report}",
            details,
        )
        self.exit_code = first.exit_code


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
    warnings += [str(w) for w in (compiled.get("details") or {}).get("warnings") or []]
    return info, warnings


@dataclass
class _Build:
    """What every target of one build shares: inputs, cache, the float reference and its figures."""

    cfg: BuildConfig
    io: dict
    out: Path
    say: Say
    progress: object
    cache: Cache
    shas: dict
    stem: str
    data_cfg: DataConfig
    eval_cfg: DataConfig | None
    host: object
    float_res: dict = field(default_factory=dict)
    float_tflite: Path = Path()
    float_eval: dict | None = None
    float_bench: dict = field(default_factory=dict)
    quantized: dict = field(default_factory=dict)  # (mode, io) -> the shared quantization's (result, folder)
    extras: dict = field(default_factory=dict)  # Mode -> another flavour's (result, folder)

    def step(self, name: str) -> None:
        self.say(f"[{name}] ...")

    def evaluate(self, tflite: Path, label: str) -> dict | None:
        from edgeq.stages.evaluate import evaluate

        if self.eval_cfg is None:
            return None
        eval_cfg, model = self.eval_cfg, self.io["model"]
        ev, _ = self.cache.run(
            "eval",
            {"tflite": sha256_file(tflite), "model": self.shas["model"], "eval": self.shas["eval_data"]},
            lambda _d: evaluate(str(tflite), model, eval_cfg),
            f"eval [{label}]",
        )
        return ev

    def bench(self, tflite: Path, runner, label: str) -> dict:
        bench_cfg = self.cfg.bench

        def fn(_d: Path) -> dict:
            b = runner.benchmark(str(tflite), bench_cfg)
            return {
                "latency_ms": b.stats.to_dict()["latency_ms"],
                "first_invoke_ms": b.stats.first_invoke_ms,
                "on": f"{b.target} ({b.device})",
                "device": b.device,
                "environment": b.environment,
            }

        res, _ = self.cache.run(
            "bench",
            {"tflite": sha256_file(tflite), "runner": label, "bench": bench_cfg.to_dict(), "host": bench_host_key()},
            fn,
            f"bench [{tflite.stem} on {label}]",
        )
        return res


def extra_flavour(b: _Build, mode: Mode) -> tuple[dict, Path]:
    """Another conversion a target deploys beside its quantized model (Android's fp16 for the GPU
    delegate): converted once per build whatever the number of targets that want it."""
    from edgeq.stages.quantize import quantize

    model, name = b.io["model"], f"{b.stem}_{mode.value}.tflite"
    b.step(f"convert ({mode.value})")
    return b.cache.run(
        "convert",
        {"model": b.shas["model"], "mode": mode.value},
        lambda d: _relative(quantize(model, str(d / name), QuantizeConfig(mode=mode)).to_dict(), d) | {"file": name},
        f"convert [{mode.value}]",
    )


def _run(cfg: BuildConfig, targets: dict, io: dict, out: Path, say: Say, progress) -> BuildResult:
    from edgeq.report import render
    from edgeq.targets import registry

    b = _Build(
        cfg=cfg,
        io=io,
        out=out,
        say=say,
        progress=progress,
        cache=Cache(out / ".cache", cfg.cache),
        shas={k: _sha(v) for k, v in io.items()},
        stem=Path(io["model"]).stem,
        data_cfg=DataConfig(path=io["data"]),
        eval_cfg=DataConfig(path=io["eval_data"]) if io["eval_data"] else None,
        host=registry.get("cpu").runner(),
    )
    float_reference(b)
    debug_doc = debug_chart(b)
    results: dict[str, dict] = {}
    failures: dict[str, EdgeqError] = {}
    gate_failures: list[str] = []
    for name, tgt in targets.items():
        try:
            results[name] = build_target(b, name, tgt, targets)
        except EdgeqError as exc:
            failures[name] = exc
        except Exception as exc:  # noqa: BLE001 -- one target's defect must not cost the others their build
            failures[name] = EdgeqError(f"{type(exc).__name__}: {exc}", "a defect in edgeq: run with -v and report it")
            failures[name].__cause__ = exc
        if name in failures:
            results[name] = failed_target(b, name, tgt, failures[name])
        elif results[name].get("gate_failed"):
            gate_failures.append(f"{name}: {results[name]['gate_failed']}")
    return finish(b, results, failures, gate_failures, debug_doc, render)


def float_reference(b: _Build) -> None:
    """The float .tflite, its accuracy and its host latency: the baseline every target shares."""
    from edgeq.stages.quantize import quantize

    b.step("float reference")
    model, name = b.io["model"], f"{b.stem}_float.tflite"
    b.float_res, float_dir = b.cache.run(
        "float",
        {"model": b.shas["model"]},
        lambda d: quantize(model, str(d / name), QuantizeConfig(mode=Mode.FLOAT)).to_dict() | {"file": name},
    )
    b.float_tflite = float_dir / b.float_res["file"]
    b.float_eval = b.evaluate(b.float_tflite, "float")
    b.step("float reference: host benchmark")
    b.float_bench = b.bench(b.float_tflite, b.host, "cpu")


def debug_chart(b: _Build) -> dict | None:
    """The per-layer error chart, shared by every target."""
    from edgeq.stages.debug import debug

    if b.eval_cfg is None and not b.io["data"]:
        return None
    b.step("quantization debugger")
    model, data_cfg, eval_cfg = b.io["model"], b.data_cfg, b.eval_cfg
    doc, folder = b.cache.run(
        "debug",
        {"model": b.shas["model"], "data": b.shas["data"], "eval": b.shas["eval_data"]},
        lambda d: _relative(debug(model, data_cfg, str(d), eval_cfg, force=True), d),
    )
    return doc | {"dir": str(folder)}


def _budget(cfg: BuildConfig):
    from edgeq.quantize.planner import Budget

    return Budget(max_drop=1.0 if cfg.max_drop is None else cfg.max_drop)


def shared_quantize(b: _Build, qcfg: QuantizeConfig, users: list[str]) -> tuple[dict, Path]:
    """The quantization every target with this conversion (mode, I/O) shares: plain PTQ, or QAT.

    Its key holds no target profile, so coral, mcu, android and cpu (all int8) quantize once."""
    from edgeq.stages.quantize import quantize
    from edgeq.stages.quantize_aware import quantize_aware

    cfg, io = b.cfg, b.io
    parts = {"model": b.shas["model"], "data": b.shas["data"], "mode": qcfg.mode.value, "io": qcfg.io_type.value}
    method = "qat" if cfg.method == Method.QAT else "ptq"
    parts["method"] = method
    if method == "qat":
        parts["train"] = b.shas["train_data"]
    b.step(f"quantize ({method}) for {', '.join(users)}")

    def fn(d: Path) -> dict:
        out_file = d / f"{b.stem}_{qcfg.mode.value}.tflite"
        if method == "qat":
            doc = quantize_aware(
                io["model"],
                str(out_file),
                qcfg,
                DataConfig(path=io["train_data"]),
                TrainConfig(epochs=2, learning_rate=1e-4),
                b.data_cfg,
                b.eval_cfg,
                progress=b.progress,
            )
        else:
            doc = quantize(
                io["model"], str(out_file), qcfg, b.data_cfg, reference_size_bytes=b.float_res["size_bytes"]
            ).to_dict()
        return _relative(doc, d) | {"file": out_file.name}

    return b.cache.run("quantize", parts, fn, f"quantize [{', '.join(users)}]")


def planned_quantize(b: _Build, name: str, tgt, qcfg: QuantizeConfig, ptq_eval: dict) -> tuple[dict, Path] | None:
    """The planner for one target, run only when the shared PTQ misses the budget (None when it meets it).

    Keyed on the target's profile: what a float layer costs differs between targets."""
    from edgeq.quantize.planner import Profile
    from edgeq.stages.plan import plan
    from edgeq.stages.quantize import quantize

    if b.cfg.method != Method.AUTO or b.eval_cfg is None or not _budget(b.cfg).misses(ptq_eval):
        return None
    io = b.io
    parts = {
        "model": b.shas["model"],
        "data": b.shas["data"],
        "eval": b.shas["eval_data"],
        "train": b.shas["train_data"],
        "mode": qcfg.mode.value,
        "io": qcfg.io_type.value,
        "profile": Profile.of(tgt).__dict__,
        "max_drop": b.cfg.max_drop,
    }
    b.step(f"{name}: plain PTQ misses the budget; planner")

    def fn(d: Path) -> dict:
        out_file = d / f"{b.stem}_{qcfg.mode.value}.tflite"
        train = DataConfig(path=io["train_data"]) if io["train_data"] else None
        try:
            doc = plan(
                io["model"],
                str(out_file),
                name,
                _budget(b.cfg),
                b.data_cfg,
                b.eval_cfg,
                qcfg.io_type.value,
                train,
                TrainConfig(epochs=2, learning_rate=1e-4),
                progress=b.progress,
            )
        except QualityGateFailed as exc:  # keep going with plain PTQ; the gate fails at the end
            doc = quantize(io["model"], str(out_file), qcfg, b.data_cfg).to_dict() | {
                "gate_failed": exc.one_line(),
                "plan": exc.details,
            }
        return _relative(doc, d) | {"file": out_file.name}

    return b.cache.run("plan", parts, fn, f"plan [{name}]")


def ptq_plan_summary(qres: dict, ev: dict, qfile: Path, tgt) -> dict:
    """The plan record when the shared plain PTQ meets the budget: the planner's first step, taken."""
    from edgeq.flatbuffer import read_bytes
    from edgeq.quantize.planner import Profile, ops_off_accelerator

    info = read_bytes(qfile.read_bytes())
    step = {
        "name": "int8 PTQ",
        "method": "ptq",
        "accuracy": ev["quantized"]["accuracy"],
        "drop_points": ev.get("accuracy_drop_points"),
        "worst_class_drop_points": ev.get("worst_class_drop_points"),
        "sqnr_db": ev["sqnr_db"],
        "size_bytes": qres["size_bytes"],
        "num_ops": len(info.ops),
        "num_float_ops": len(info.float_ops),
        "ops_off_accelerator": ops_off_accelerator(info, Profile.of(tgt)),
        "meets": True,
        "misses": [],
        "skipped": "",
    }
    return {"chosen": "int8 PTQ", "stopped_because": "plain int8 PTQ meets the budget", "steps": [step]}


def build_target(b: _Build, name: str, tgt, targets: dict) -> dict:
    """Quantize (shared where the conversion is the same), check, compile and bench one target, and
    write its folder: the artifacts people deploy and its manifest."""
    from edgeq.quantize.planner import Profile

    qcfg = QuantizeConfig(mode=tgt.build_mode, io=tgt.build_io)
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
            plan_doc = ptq_plan_summary(qres, qeval, qfile, tgt)
        else:
            qres, qdir = planned
            qfile = qdir / qres["file"]
            qeval = b.evaluate(qfile, name)
            plan_doc = qres.get("plan")
    b.step(f"{name}: check and compile")

    def target_fn(d: Path) -> dict:
        report = tgt.check(str(qfile))
        compiled = tgt.compile([str(qfile)], str(d))
        return {
            "check": report.to_dict(),
            "compile": {
                "output": _rel(compiled.output, d),
                "skipped": compiled.skipped,
                "reason": compiled.reason,
                "details": compiled.details,
                "artifacts": [_rel(a, d) for a in compiled.artifacts()],
            },
        }

    tres, tdir = b.cache.run(
        "target", {"tflite": sha256_file(qfile), "target": name, "format": 2}, target_fn, f"check and compile [{name}]"
    )
    compiled_out = tres["compile"]["output"]
    bench_file = (
        (tdir / compiled_out)
        if compiled_out and str(compiled_out).endswith(".tflite") and (tdir / compiled_out).is_file()
        else qfile
    )
    runner = tgt.runner()
    available = runner.availability()
    b.step(f"{name}: benchmark")
    if available.available:
        qbench = b.bench(bench_file, runner, name)
    else:
        qbench = b.bench(qfile, b.host, "cpu") | {"skipped_on_target": available.reason, "where": "host"}
    info, warnings = split_messages(tres["check"], tres["compile"])
    warnings = list(qres.get("warnings", [])) + warnings

    tfolder = b.out / name
    extras = []  # (row, file): the target's other flavours, measured on the host like the float reference
    for mode in getattr(tgt, "build_extra_modes", ()):
        if mode not in b.extras:
            b.extras[mode] = extra_flavour(b, mode)
        xres, xdir = b.extras[mode]
        xfile = xdir / xres["file"]
        xrow = _row(
            mode.value, xres, b.evaluate(xfile, mode.value), b.bench(xfile, b.host, "cpu"), tfolder / xfile.name
        )
        extras.append((xrow, xfile))
    variants = [
        _float_row(b, tfolder),
        *(row for row, _ in extras),
        _row(qcfg.mode.value, qres, qeval, qbench, tfolder / qfile.name, tres["check"], tres["compile"]),
    ]
    manifest = _manifest(b, name, tgt, Profile.of(tgt)) | {
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


def _accelerator(check: dict, compiled: dict) -> dict | None:
    """Ops on and off the accelerator: from the compiler where it ran and reported them, else the check's
    prediction; None for a target with no accelerator split (cpu, mcu, android)."""
    details = compiled.get("details") or {}
    if not compiled.get("skipped"):
        counts = details.get("counts")
        if not counts:
            counts = next(
                (m["compiler"]["counts"] for m in details.get("models") or [] if m.get("compiler", {}).get("counts")),
                None,
            )
        if isinstance(counts, dict) and "cpu" in counts and len(counts) == 2:
            return {"on": sum(v for k, v in counts.items() if k != "cpu"), "off": counts["cpu"], "basis": "compiled"}
    counts = check.get("counts") or {}
    if "cpu" in counts and len(counts) == 2:
        return {"on": sum(v for k, v in counts.items() if k != "cpu"), "off": counts["cpu"], "basis": "predicted"}
    return None


def _fits(check: dict) -> dict | None:
    """Arena and flash against the board (the MCU check): flash counts an estimated runtime, so the basis
    is "estimated"."""
    fit = (check.get("details") or {}).get("fit")
    if not isinstance(fit, dict) or "ram" not in fit or "flash" not in fit:
        return None
    return {
        "ram_bytes": fit["ram"]["needed_bytes"],
        "ram_limit": fit["ram"]["available_bytes"],
        "flash_bytes": fit["flash"]["needed_bytes"],
        "flash_limit": fit["flash"]["available_bytes"],
        "basis": "estimated",
        "ok": bool(fit["ram"]["fits"] and fit["flash"]["fits"]),
    }


def _latency(row: dict, check: dict) -> dict | None:
    """Latency on the target: measured there; else the board estimate; else the host figure, labelled."""
    lat = row.get("latency_ms") or {}
    p50 = lat.get("p50") if lat.get("p50") is not None else lat.get("mean")  # benchmark_model may print no p50
    est = (check.get("details") or {}).get("latency_estimate") or {}
    on_host = row["latency_where"].startswith("host")
    if est.get("latency_ms") is not None and (row.get("bench_skipped") or on_host):
        from edgeq.targets.mcu import estimate

        where = est.get("board") or "board"
        note = estimate.basis(est) + (f"; measured on {row['latency_where']}: {p50} ms" if p50 is not None else "")
        return {"value": est["latency_ms"], "kind": "estimated", "where": where, "note": note}
    if p50 is None:
        return None
    if row.get("bench_skipped"):
        note = f"not measured on the target ({row['bench_skipped']}); this is the host's figure"
        return {"value": p50, "kind": "measured", "where": "host", "note": note}
    return {"value": p50, "kind": "measured", "where": row["latency_where"], "note": ""}


def verdict(row: dict) -> dict:
    """The target's verdict line, from its quantized variant row (see the manifest contract)."""
    check, compiled = row.get("check") or {}, row.get("compile") or {}
    return {"accelerator": _accelerator(check, compiled), "fits": _fits(check), "latency_ms": _latency(row, check)}


def _float_row(b: _Build, tfolder: Path) -> dict:
    return _row("float", b.float_res, b.float_eval, b.float_bench, tfolder / b.float_tflite.name)


def _manifest(b: _Build, name: str, tgt, profile) -> dict:
    return {
        "schema_version": SCHEMA_VERSION,
        "target": name,
        "description": tgt.description,
        "profile": profile.__dict__,
        "model": {"path": b.io["model"], "sha256": b.shas["model"]},
        "data": b.io["data"],
        "eval_data": b.io["eval_data"],
        "method": b.cfg.method.value,
        "bench": b.cfg.bench.to_dict(),
    }


def failed_target(b: _Build, name: str, tgt, exc: EdgeqError) -> dict:
    """The manifest of a target that failed: its error in place, no artifacts; the others go on."""
    from edgeq.quantize.planner import Profile

    error = {"type": exc.kind, "message": exc.message, "hint": exc.hint, "exit_code": exc.exit_code}
    manifest = _manifest(b, name, tgt, Profile.of(tgt)) | {
        "status": "failed",
        "error": error,
        "plan": None,
        "qat": None,
        # the float reference was built before any target ran, so a failed target still has its baseline
        # (and the report, which wants at least one variant, renders)
        "variants": [_float_row(b, b.out / name)],
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


def finish(b: _Build, results: dict, failures: dict, gate_failures: list, debug_doc: dict | None, render):
    """The top manifest and the report, then the build's verdict: a failed target, else a missed gate."""
    top = {
        "schema_version": SCHEMA_VERSION,
        "config": b.cfg.to_dict(),
        "inputs": b.io,
        "targets": list(results),
        "failed_targets": list(failures),
        "stages": b.cache.to_list(),
        "debug": debug_doc,
        "gate_failures": gate_failures,
        "notes": b.cache.notes,
    }
    write_json_atomic(b.out / MANIFEST, top)
    b.step("report")
    report_files = render.write(b.out)
    warnings = b.cache.notes + [w for m in results.values() for w in m.get("warnings", []) if w not in b.cache.notes]
    result = BuildResult(
        str(b.out), results, b.cache.to_list(), [str(p) for p in report_files], warnings, gate_failures
    )
    if failures:
        raise TargetsFailed(failures, str(report_files[0]), result.to_dict())
    if gate_failures:
        raise QualityGateFailed(
            "the accuracy budget is missed: " + "; ".join(gate_failures),
            f"see {report_files[0]}",
            details=result.to_dict(),
        )
    return result


def _rel(path: str | None, folder: Path) -> str | None:
    if not path:
        return path
    p = Path(path)
    try:
        return str(p.relative_to(folder))
    except ValueError:
        return str(p)


def _relative(doc: dict, folder: Path) -> dict:
    """Stage results are cached by folder: store the paths inside it as relative ones."""
    out = dict(doc)
    for key in ("output", "sidecar"):
        if isinstance(out.get(key), str):
            out[key] = _rel(out[key], folder)
    if "artifacts" in out and isinstance(out["artifacts"], list):
        out["artifacts"] = [_rel(a, folder) for a in out["artifacts"]]
    return out


def _row(
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
        "worst_class_drop_points": ev.get("worst_class_drop_points") if ev else None,
        "num_eval_samples": ev["num_samples"] if ev else 0,
        "float_ops": len(q["float_ops"]),
        "inputs": q["inputs"],
        "check": check,
        "compile": compiled,
        "latency_ms": b["latency_ms"],
        "latency_kind": "measured",
        "latency_where": "host" if b.get("skipped_on_target") else str(b.get("device") or "host"),
        "first_invoke_ms": b["first_invoke_ms"],
        "latency_on": b["on"],
        "bench_skipped": b.get("skipped_on_target"),
        "bench_environment": b["environment"],
    }
