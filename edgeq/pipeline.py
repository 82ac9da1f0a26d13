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
from edgeq.errors import BadInput, OutputExists, QualityGateFailed

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


def _run(cfg: BuildConfig, targets: dict, io: dict, out: Path, say: Say, progress) -> BuildResult:
    from edgeq.quantize.planner import Budget, Profile
    from edgeq.report import render
    from edgeq.stages.debug import debug
    from edgeq.stages.evaluate import evaluate
    from edgeq.stages.plan import plan
    from edgeq.stages.quantize import quantize
    from edgeq.stages.quantize_aware import quantize_aware
    from edgeq.targets import registry

    cache = Cache(out / ".cache", cfg.cache)
    shas = {k: _sha(v) for k, v in io.items()}
    stem = Path(io["model"]).stem
    data_cfg = DataConfig(path=io["data"])
    eval_cfg = DataConfig(path=io["eval_data"]) if io["eval_data"] else None
    host = registry.get("cpu").runner()
    warnings: list[str] = []
    gate_failures: list[str] = []

    def step(name: str) -> None:
        say(f"[{name}] ...")

    def evaluate_cached(tflite: Path, label: str) -> dict | None:
        if eval_cfg is None:
            return None
        ev, _ = cache.run("eval", {"tflite": sha256_file(tflite), "model": shas["model"], "eval": shas["eval_data"]},
                          lambda _d: evaluate(str(tflite), io["model"], eval_cfg), f"eval [{label}]")  # fmt: skip
        return ev

    def bench(tflite: Path, runner, label: str) -> dict:
        def fn(_d: Path) -> dict:
            b = runner.benchmark(str(tflite), cfg.bench)
            return {
                "latency_ms": b.stats.to_dict()["latency_ms"],
                "first_invoke_ms": b.stats.first_invoke_ms,
                "on": f"{b.target} ({b.device})",
                "environment": b.environment,
            }

        res, _ = cache.run(
            "bench",
            {"tflite": sha256_file(tflite), "runner": label, "bench": cfg.bench.to_dict()},
            fn,
            f"bench [{tflite.stem} on {label}]",
        )
        return res

    # the float reference, shared by every target
    step("float reference")
    float_res, float_dir = cache.run(
        "float", {"model": shas["model"]},
        lambda d: quantize(io["model"], str(d / f"{stem}_float.tflite"), QuantizeConfig(mode=Mode.FLOAT)).to_dict() | {"file": f"{stem}_float.tflite"},
    )  # fmt: skip
    float_tflite = float_dir / float_res["file"]
    float_eval = evaluate_cached(float_tflite, "float")
    step("float reference: host benchmark")
    float_bench = bench(float_tflite, host, "cpu")

    # the per-layer error chart, shared by every target
    debug_doc = None
    if eval_cfg is not None or io["data"]:
        step("quantization debugger")
        debug_doc, debug_dir = cache.run(
            "debug", {"model": shas["model"], "data": shas["data"], "eval": shas["eval_data"]},
            lambda d: _relative(debug(io["model"], data_cfg, str(d), eval_cfg, force=True), d),
        )  # fmt: skip
        debug_doc = debug_doc | {"dir": str(debug_dir)}

    results: dict[str, dict] = {}
    for name, tgt in targets.items():
        profile = Profile.of(tgt)
        qcfg = QuantizeConfig(mode=tgt.build_mode, io=tgt.build_io)
        parts = {
            "model": shas["model"],
            "data": shas["data"],
            "method": cfg.method.value,
            "mode": qcfg.mode.value,
            "io": qcfg.io_type.value,
        }
        if cfg.method == Method.AUTO:
            parts |= {
                "eval": shas["eval_data"],
                "train": shas["train_data"],
                "profile": profile.__dict__,
                "max_drop": cfg.max_drop,
            }
        if cfg.method == Method.QAT:
            parts |= {"train": shas["train_data"]}
        step(f"{name}: quantize ({cfg.method.value})")

        def quantize_fn(d: Path, qcfg=qcfg, name=name) -> dict:
            out_file = d / f"{stem}_{qcfg.mode.value}.tflite"
            if cfg.method == Method.QAT:
                doc = quantize_aware(
                    io["model"],
                    str(out_file),
                    qcfg,
                    DataConfig(path=io["train_data"]),
                    TrainConfig(epochs=2, learning_rate=1e-4),
                    data_cfg,
                    eval_cfg,
                    progress=progress,
                )
            elif cfg.method == Method.AUTO and eval_cfg is not None:
                budget = Budget(max_drop=1.0 if cfg.max_drop is None else cfg.max_drop)
                train = DataConfig(path=io["train_data"]) if io["train_data"] else None
                try:
                    doc = plan(
                        io["model"],
                        str(out_file),
                        name,
                        budget,
                        data_cfg,
                        eval_cfg,
                        qcfg.io_type.value,
                        train,
                        TrainConfig(epochs=2, learning_rate=1e-4),
                        progress=progress,
                    )
                except QualityGateFailed as exc:  # keep going with plain PTQ; the gate fails at the end
                    doc = quantize(io["model"], str(out_file), qcfg, data_cfg).to_dict() | {
                        "gate_failed": exc.one_line(),
                        "plan": exc.details,
                    }
            else:
                doc = quantize(
                    io["model"], str(out_file), qcfg, data_cfg, reference_size_bytes=float_res["size_bytes"]
                ).to_dict()
            return _relative(doc, d) | {"file": out_file.name}

        qres, qdir = cache.run("quantize", parts, quantize_fn, f"quantize [{name}]")
        if qres.get("gate_failed"):
            gate_failures.append(f"{name}: {qres['gate_failed']}")
        qfile = qdir / qres["file"]
        qeval = evaluate_cached(qfile, name)
        step(f"{name}: check and compile")

        def target_fn(d: Path, tgt=tgt, qfile=qfile) -> dict:
            report = tgt.check(str(qfile))
            compiled = tgt.compile([str(qfile)], str(d))
            return {
                "check": report.to_dict(),
                "compile": {
                    "output": _rel(compiled.output, d),
                    "skipped": compiled.skipped,
                    "reason": compiled.reason,
                    "details": compiled.details,
                },
            }

        tres, tdir = cache.run(
            "target", {"tflite": sha256_file(qfile), "target": name}, target_fn, f"check and compile [{name}]"
        )
        compiled_out = tres["compile"]["output"]
        bench_file = (
            (tdir / compiled_out)
            if compiled_out and str(compiled_out).endswith(".tflite") and (tdir / compiled_out).is_file()
            else qfile
        )
        runner = tgt.runner()
        available = runner.availability()
        step(f"{name}: benchmark")
        if available.available:
            qbench = bench(bench_file, runner, name)
        else:
            qbench = bench(qfile, host, "cpu") | {"skipped_on_target": available.reason}
        warnings += list(qres.get("warnings", [])) + list(tres["check"].get("messages", []))

        # the target's folder: the artifacts people deploy, and its manifest
        tfolder = out / name
        variants = [
            _row("float", float_res, float_eval, float_bench, tfolder / float_tflite.name, None, None),
            _row(qcfg.mode.value, qres, qeval, qbench, tfolder / qfile.name, tres["check"], tres["compile"]),
        ]
        manifest = {
            "schema_version": SCHEMA_VERSION,
            "target": name,
            "description": tgt.description,
            "profile": profile.__dict__,
            "model": {"path": io["model"], "sha256": shas["model"]},
            "data": io["data"],
            "eval_data": io["eval_data"],
            "method": cfg.method.value,
            "plan": qres.get("plan"),
            "qat": qres.get("qat"),
            "bench": cfg.bench.to_dict(),
            "variants": variants,
            "warnings": cache.notes + warnings,
            "gate_failed": qres.get("gate_failed"),
        }
        # copies, never hard links into the cache: editing a deployed model must not damage a later build;
        # sidecars first and the manifest last, all moved into place together
        with Outputs(tfolder) as staged:
            for src in (float_tflite, qfile):
                if sidecar_path(src).exists():
                    staged.copy(sidecar_path(src).name, sidecar_path(src))
            for src in (float_tflite, qfile) + ((bench_file,) if bench_file != qfile else ()):
                staged.copy(src.name, src)
            staged.write_json(MANIFEST, manifest)
        results[name] = manifest

    top = {
        "schema_version": SCHEMA_VERSION,
        "config": cfg.to_dict(),
        "inputs": io,
        "targets": list(results),
        "stages": cache.to_list(),
        "debug": debug_doc,
        "gate_failures": gate_failures,
        "notes": cache.notes,
    }
    write_json_atomic(out / MANIFEST, top)
    step("report")
    report_files = render.write(out)
    result = BuildResult(
        str(out), results, cache.to_list(), [str(p) for p in report_files], cache.notes + warnings, gate_failures
    )
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


def _row(label: str, q: dict, ev: dict | None, b: dict, path: Path, check: dict | None, compiled: dict | None) -> dict:
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
        "first_invoke_ms": b["first_invoke_ms"],
        "latency_on": b["on"],
        "bench_skipped": b.get("skipped_on_target"),
        "bench_environment": b["environment"],
    }
