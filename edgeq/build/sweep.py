"""Several models in one build (a sweep): every model built for every target, one build folder each, and a
summary across them.

    edgeq build a.keras b.onnx --target cpu,mcu -o out
        out/a/...            a's build, exactly as ``edgeq build a.keras -o out/a`` makes it
        out/b/...
        out/summary.json     the model x target table of verdicts (summary.md and summary.html render it)

Each model's build is one task, :func:`build_one` (a picklable :class:`BuildSpec` in, a picklable
:class:`BuildOutcome` out, never raising for the model's own failure), and :func:`run_builds` maps the
tasks in order: it is the one place an executor (a process pool, Ray) plugs in. A model that fails is an
outcome like the others, reported in place; the sweep's exit code is the worst of its models'
(:func:`edgeq.errors.worst_exit_code`).

Model strings are paths as given: they name files, and a folder name is derived from them by keeping
letters, digits, ``.``, ``_`` and ``-`` (:func:`folder_names`); they are never run, and the summary escapes
them for each output language (:mod:`edgeq.report.summary`).
"""

from __future__ import annotations

import dataclasses
import errno
import os
import re
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any

from edgeq import SCHEMA_VERSION
from edgeq.build.stages import Progress, Say
from edgeq.config import BuildConfig, SweepConfig
from edgeq.errors import BAD_INPUT, EXIT_CODES, INTERNAL, OK, BadInput, EdgeqError, OutputExists, worst_exit_code

SWEEP_MARKER = ".edgeq-sweep.json"  # edgeq's mark on a sweep folder (its models' folders carry their own)
SWEEP_KIND = "edgeq-sweep"
SUMMARY_FILES = ("summary.json", "summary.md", "summary.html")
MAX_FOLDER_NAME = 64
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
# where a model's output cannot go (a full or read-only disk, no permission): the machine, so exit 3 as the CLI
_ENVIRONMENT = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.ENAMETOOLONG, errno.ENOTDIR}


def _safe_stem(model: str) -> str:
    """A folder name from a model's file name: its stem, every run of other characters one ``_``."""
    stem = PurePath(model.rstrip("/\\") or "model").stem  # a SavedModel folder "nets/resnet/" -> "resnet"
    stem = _UNSAFE.sub("_", stem).strip("._-")[:MAX_FOLDER_NAME].strip("._-")
    return stem or "model"


def folder_names(models: Sequence[str]) -> list[str]:
    """One folder name per model, in order: its safe stem, ``-2``, ``-3``... after the first that shares it
    (compared without case, for file systems that ignore it); never a summary file's name."""
    taken = {n.casefold() for n in SUMMARY_FILES}
    names = []
    for model in models:
        base = _safe_stem(model)
        name, n = base, 1
        while name.casefold() in taken:
            n += 1
            name = f"{base}-{n}"
        taken.add(name.casefold())
        names.append(name)
    return names


@dataclass(frozen=True)
class BuildSpec:
    """One model's build, as a task: everything it needs, picklable (no callbacks, no open files).

    Args:
        number: its place in the sweep (1-based), of ``total``.
        model: the model's path as given.
        folder: its folder's name under the sweep's folder.
        cfg: the build's config, its ``model`` and ``out_dir`` set.
        force: write into a folder that is not an earlier edgeq build.
    """

    number: int
    total: int
    model: str
    folder: str
    cfg: BuildConfig
    force: bool = False


@dataclass(frozen=True)
class TargetSummary:
    """One cell of the model x target table: the target's verdict as the model's own report shows it, each
    figure's text carrying its basis, and the bases apart for programs."""

    target: str
    status: str  # "ok", "failed", "gate failed"
    fidelity: str = "-"
    accelerator: str = "-"
    fit: str = "-"
    latency: str = "-"
    latency_basis: str | None = None  # measured, predicted, estimated (None: no figure)
    fit_basis: str | None = None
    placement_basis: str | None = None
    failure: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class BuildOutcome:
    """What one model's build came to: its exit code, its error (type, message, hint), its verdict per
    target, the build's own result document (None when it stopped before any target), and where its task
    ran (``ran``: host, node, pid, attempts -- 2 or more where a worker died and it was retried -- and
    seconds; set by :func:`run_builds`)."""

    model: str
    folder: str
    exit_code: int
    error: dict[str, Any] | None = None
    targets: tuple[TargetSummary, ...] = ()
    build: dict[str, Any] | None = None
    ran: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return self.exit_code == OK

    def reason(self) -> str:
        """The failure in one line ("" when it built)."""
        if self.error is None:
            return ""
        hint = f"; {self.error['hint']}" if self.error.get("hint") else ""
        return " ".join(f"{self.error['message']}{hint}".split())

    def to_dict(self, with_build: bool = False) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "model": self.model,
            "folder": self.folder,
            "ok": self.ok,
            "exit_code": self.exit_code,
            "error": self.error,
            "reason": self.reason(),
            "report": f"{self.folder}/report.html" if self.build is not None else None,
            "targets": [t.to_dict() for t in self.targets],
            "ran": self.ran,
        }
        if with_build:
            doc["build"] = self.build
        return doc


def _summaries(build: dict[str, Any] | None, targets: Sequence[str], reason: str) -> tuple[TargetSummary, ...]:
    """Each target's verdict from the build's result, judged as its report judges it; a target the build did
    not reach carries the model's reason."""
    from edgeq.report.verdict import judge

    done = (build or {}).get("targets") or {}
    gate = {g.split(":", 1)[0] for g in (build or {}).get("gate_failures") or []}
    out = []
    for name in targets:
        if name not in done:
            out.append(TargetSummary(name, "failed", failure=reason or "not built"))
            continue
        v = judge({"target": name} | done[name])
        cells = v.cells()
        if v.failed:
            out.append(TargetSummary(name, "failed", failure=v.failure))
            continue
        f = v.findings
        basis = None
        if f is not None and f.instructions is not None:
            basis = f.instructions.basis.value
        elif f is not None and f.latency is not None:
            basis = f.latency.basis.value
        elif v.host_latency is not None:
            basis = v.host_latency.basis.value
        fit = f.fit if f is not None else None
        fit_basis = None
        if fit is not None:  # as the report says it: one basis, or each's
            ram, flash = fit.ram.basis.value, fit.flash.basis.value
            fit_basis = ram if ram == flash else f"RAM {ram}, flash {flash}"
        placement = f.placement if f is not None else None
        status = "gate failed" if name in gate else "ok"
        out.append(
            TargetSummary(
                name,
                status,
                fidelity=cells[1],
                accelerator=cells[2],
                fit=cells[3],
                latency=cells[4],
                latency_basis=basis,
                fit_basis=fit_basis,
                placement_basis=None if placement is None else placement.basis.value,
            )
        )
    return tuple(out)


def _error_doc(exc: EdgeqError) -> dict[str, Any]:
    return {"type": exc.kind, "message": exc.message, "hint": exc.hint, "exit_code": exc.exit_code}


def build_one(spec: BuildSpec, say: Say | None = None, progress: Progress | None = None) -> BuildOutcome:
    """Build one model of a sweep into its folder (:func:`edgeq.pipeline.run`), its failure an outcome.

    A task of the sweep: a module-level function of a picklable spec, returning a picklable outcome, so a
    process pool or Ray can run it as ``functools.partial(build_one, spec)``. ``say`` and ``progress`` are
    for a run in this process only (they are not picklable). Ctrl-C (KeyboardInterrupt) is not caught.
    """
    from edgeq import pipeline

    build: dict[str, Any] | None = None
    try:
        build = pipeline.run(spec.cfg, force=spec.force, say=say, progress=progress).to_dict()
        code, error = OK, None
    except EdgeqError as exc:  # TargetsFailed and QualityGateFailed carry the build's result
        code, error = exc.exit_code, _error_doc(exc)
        build = exc.details if isinstance(exc.details.get("targets"), dict) else None
    except MemoryError:
        code, error = BAD_INPUT, {"type": "environment", "message": "out of memory", "hint": "use a smaller model"}
    except OSError as exc:
        code = BAD_INPUT if exc.errno in _ENVIRONMENT else INTERNAL
        where = f": {exc.filename}" if exc.filename else ""
        error = {"type": "environment" if code == BAD_INPUT else "internal", "message": f"{exc.strerror}{where}"}
        error["hint"] = "check the disk and permissions of -o" if code == BAD_INPUT else "rerun this model with -v"
    except Exception as exc:  # noqa: BLE001 -- one model's defect must not cost the others their build
        code = INTERNAL
        error = {"type": "internal", "message": f"{type(exc).__name__}: {exc}", "hint": "rerun this model with -v"}
    if error is not None:
        error["exit_code"] = code
    reason = "" if error is None else " ".join(str(error["message"]).split())
    return BuildOutcome(spec.model, spec.folder, code, error, _summaries(build, spec.cfg.targets, reason), build)


def _announce(say: Say, spec: BuildSpec, outcome: BuildOutcome | None) -> None:
    from edgeq.report.summary import ran_text

    where = f"model {spec.number}/{spec.total} {spec.model}"
    if outcome is None:
        say(f"{where}: building into {spec.cfg.out_dir}")
    elif outcome.ok:
        say(f"{where}: built{ran_text(outcome.ran)}")
    else:
        say(f"{where}: FAILED (exit {outcome.exit_code}): {outcome.reason()}")


def _tagged(say: Say, tag: str) -> Say:
    """``say`` with each line naming the model it is about (its folder's name)."""

    def tagged(text: str) -> None:
        say(f"[{tag}] {text}")

    return tagged


def run_builds(specs: Sequence[BuildSpec], say: Say, progress: Progress | None = None) -> list[BuildOutcome]:
    """Every spec's outcome, in the specs' order, run where the build's executor says (``--executor``,
    ``--jobs``): one after the other in this process (one job), or as tasks of a process pool or a Ray
    cluster (:mod:`edgeq.executor`). The models' folders are disjoint and each build holds its own folder's
    lock and cache, so the tasks are independent; each task's own planner then runs its candidates one
    after the other (the models are what runs in parallel). A task whose worker died on every attempt is a
    failed model, reported in place like any other."""
    from edgeq.executor import Task, stream

    if not specs:
        return []
    exe = specs[0].cfg.executor_config
    if exe.sequential:
        outcomes = []
        for spec in specs:
            _announce(say, spec, None)
            t0 = time.perf_counter()
            outcome = build_one(spec, say=_tagged(say, spec.folder), progress=progress)
            here = {"host": socket.gethostname(), "node": "in-process", "pid": os.getpid(), "attempts": 1}
            outcome = dataclasses.replace(outcome, ran=here | {"seconds": round(time.perf_counter() - t0, 3)})
            _announce(say, spec, outcome)
            outcomes.append(outcome)
        return outcomes
    tasks = [
        Task(spec.folder, build_one, (dataclasses.replace(spec, cfg=dataclasses.replace(spec.cfg, jobs=1)),))
        for spec in specs
    ]
    for spec in specs:
        _announce(say, spec, None)
    outcomes = []
    for spec, done in zip(specs, stream(exe, tasks), strict=True):
        outcome = done.value if done.ok else _lost(spec, done.failure(), done.attempts)
        ran = {k: getattr(done, k) for k in ("host", "node", "pid", "attempts", "seconds")}
        outcome = dataclasses.replace(outcome, ran=ran)
        _announce(say, spec, outcome)
        outcomes.append(outcome)
    return outcomes


def _lost(spec: BuildSpec, failure: str, attempts: int) -> BuildOutcome:
    """The outcome of a model whose task never returned (its worker died on every attempt)."""
    message = f"its build task failed after {attempts} attempt(s): {failure}"
    error: dict[str, Any] = {
        "type": "internal",
        "message": message,
        "hint": "rerun the sweep: finished steps are read from the cache",
        "exit_code": INTERNAL,
    }
    reason = " ".join(message.split())
    return BuildOutcome(spec.model, spec.folder, INTERNAL, error, _summaries(None, spec.cfg.targets, reason), None)


@dataclass
class SweepResult:
    """A sweep: its folder, every model's outcome in order, the summary document and its files."""

    out_dir: str
    outcomes: list[BuildOutcome]
    summary: dict[str, Any]
    files: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return int(self.summary["exit_code"])

    @property
    def ok(self) -> bool:
        return self.exit_code == OK

    def to_dict(self) -> dict[str, Any]:
        """The summary, each model with its build's own result document, and the summary's files."""
        models = [o.to_dict(with_build=True) for o in self.outcomes]
        return self.summary | {"models": models, "files": list(self.files)}


class SweepFailed(EdgeqError):
    """One or more models of a sweep failed; the others finished and the summary is written.

    The exit code is the worst of the models' (:func:`edgeq.errors.worst_exit_code`, set per instance)."""

    kind = "models_failed"

    def __init__(self, result: SweepResult) -> None:
        failed = [o for o in result.outcomes if not o.ok]
        said = "; ".join(f"{o.model}: {o.error['message'] if o.error else ''}" for o in failed)
        summary = next((f for f in result.files if f.endswith(".md")), result.out_dir)
        super().__init__(
            f"{len(failed)} of {len(result.outcomes)} models failed ({' '.join(said.split())})",
            f"the others finished: see {summary}" if len(failed) < len(result.outcomes) else f"see {summary}",
            {"failed_models": list(result.summary["failed_models"]), "exit_code": result.exit_code},
        )
        self.exit_code = result.exit_code


def summary_doc(out: Path, targets: Sequence[str], outcomes: Sequence[BuildOutcome]) -> dict[str, Any]:
    """summary.json: every model's row, in order, and the sweep's exit code and its meaning."""
    code = worst_exit_code(o.exit_code for o in outcomes)
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": SWEEP_KIND,
        "out_dir": str(out),
        "targets": list(targets),
        "ok": code == OK,
        "exit_code": code,
        "exit_meaning": EXIT_CODES.get(code, "internal error"),
        "failed_models": [o.model for o in outcomes if not o.ok],
        "models": [o.to_dict() for o in outcomes],
    }


def claim_sweep_dir(out: Path, force: bool) -> None:
    """Make (or reuse) the sweep's folder: one with edgeq's sweep marker, or new or empty; anything else is
    refused unless ``force`` (then only edgeq's own files and folders are written into it).

    Raises:
        BadInput: a file, not a folder; cannot be made.
        OutputExists: a folder with other files, without ``force``.
    """
    from edgeq.artifacts import check_name_length, check_writable, write_json_atomic

    check_name_length(out / SWEEP_MARKER)
    if out.exists() and not out.is_dir():
        raise BadInput(f"build output {out} is a file", "choose a folder with -o")
    if not force and out.is_dir() and not (out / SWEEP_MARKER).is_file() and os.listdir(out):
        raise OutputExists(
            f"{out} exists and is not an edgeq sweep folder (it has no {SWEEP_MARKER})",
            "choose another -o, or pass --force to add edgeq's files to it (the other files are left alone)",
        )
    check_writable(out, "build folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BadInput(f"cannot create build folder {out} ({exc.strerror})", "choose another -o location") from exc
    if not (out / SWEEP_MARKER).is_file():
        write_json_atomic(out / SWEEP_MARKER, {"schema_version": SCHEMA_VERSION, "kind": SWEEP_KIND})


def _check_once(cfg: BuildConfig) -> None:
    """What every model's build would refuse alike, refused once before any work: unknown targets, target
    options that apply to none, runners their options cannot make (as :func:`edgeq.pipeline.run` does)."""
    from edgeq.build import options
    from edgeq.targets import registry
    from edgeq.targets.base import Stage

    targets = {name: registry.get(name) for name in cfg.targets}
    settings = options.resolve(cfg, targets)
    for name, tgt in targets.items():
        tgt.runner(settings[name].device, settings[name].of(Stage.BENCH))


def run(cfg: SweepConfig, force: bool = False, say: Say | None = None, progress: Progress | None = None) -> SweepResult:
    """Build every model of ``cfg`` for every target, each into its folder under ``cfg.build.out_dir``, then
    write the summary (summary.json, .md, .html) there. A model that fails is reported in place.

    Returns:
        The :class:`SweepResult`; its ``exit_code`` is the worst of the models' (the CLI exits with it).

    Raises:
        UsageError: unknown target, an option no chosen target takes (before any model is built).
        BadInput, OutputExists: the sweep's folder cannot be used.
    """
    from edgeq.report import summary

    say = say or (lambda _msg: None)
    _check_once(cfg.build)
    out = Path(cfg.build.out_dir)
    claim_sweep_dir(out, force)
    specs = [
        BuildSpec(
            i,
            len(cfg.models),
            model,
            folder,
            dataclasses.replace(cfg.build, model=model, out_dir=str(out / folder)),
            force,
        )
        for i, (model, folder) in enumerate(zip(cfg.models, folder_names(cfg.models), strict=True), 1)
    ]
    outcomes = run_builds(specs, say, progress)
    doc = summary_doc(out, cfg.build.targets, outcomes)
    files = summary.write(out, doc)
    return SweepResult(str(out), outcomes, doc, [str(p) for p in files])
