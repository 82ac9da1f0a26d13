"""``edgeq build``: the stages of the public API chained, cached stage by stage, for several targets.

load -> float reference -> quantize once per conversion (the planner per target only where plain PTQ
misses the budget) -> debug -> check and compile per target -> bench where a runner is available ->
report. Every step is declared in :mod:`edgeq.build.recipe` with the content hashes of its inputs, its
config and the versions of the tools it runs, and cached under the key made from them (``edgeq.cache``),
so a re-run redoes only what changed (a newly installed compiler: its compile and what reads its output)
and a run interrupted with Ctrl-C resumes from its last completed step. A target that fails is reported in place; the others finish and the report is written. The
stages live in :mod:`edgeq.build`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeq import SCHEMA_VERSION
from edgeq.artifacts import write_json_atomic
from edgeq.build import options
from edgeq.build.folder import MANIFEST, MARKER, claim_dir, is_build_dir
from edgeq.build.inputs import resolve_inputs, sha_of
from edgeq.build.options import Chosen
from edgeq.build.recipe import BuildInputs
from edgeq.build.stages import Announcer, Build, Progress, Say, debug_chart, float_reference
from edgeq.build.target import build_target, failed_target
from edgeq.cache import Cache
from edgeq.config import BuildConfig
from edgeq.errors import EdgeqError, QualityGateFailed
from edgeq.findings import Findings, Level
from edgeq.targets.base import Stage

__all__ = ["MANIFEST", "MARKER", "BuildResult", "TargetsFailed", "claim_dir", "is_build_dir", "run"]


@dataclass
class BuildResult:
    out_dir: str
    targets: dict[str, dict[str, Any]]
    stages: list[dict[str, Any]]
    report: list[str]
    warnings: list[str] = field(default_factory=list)
    gate_failures: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class TargetsFailed(EdgeqError):
    """One or more targets of a build failed; the others finished and the report is written.

    The exit code is that of the first failure in target order (set per instance)."""

    kind = "targets_failed"

    def __init__(self, failures: dict[str, EdgeqError], report: str, details: dict[str, Any]) -> None:
        names = ", ".join(failures)
        first = next(iter(failures.values()))
        super().__init__(
            f"target(s) {names} failed ({'; '.join(f'{n}: {e.message}' for n, e in failures.items())})",
            (first.hint + "; " if first.hint else "") + f"the other targets finished: see {report}",
            details,
        )
        self.exit_code = first.exit_code


def run(cfg: BuildConfig, force: bool = False, say: Say | None = None, progress: Progress | None = None) -> BuildResult:
    """Run the build; see the module docstring.

    Raises:
        UsageError: unknown target, conflicting options.
        BadInput, ConversionFailed: as the stages raise.
        QualityGateFailed: the budget is missed (after everything else, report included, is written).
    """
    from edgeq.targets import registry

    say = say or (lambda _msg: None)
    targets = {name: registry.get(name) for name in cfg.targets}  # unknown target: fails before any work
    settings = options.resolve(cfg, targets)  # every target option checked once, before any work
    if cfg.executor_config.kind == "ray":  # Ray installed where it is asked for: said before any work
        from edgeq.executor.ray_pool import import_ray

        import_ray()
    # a runner is made from its options alone (no device is touched): one they do not make is refused now
    runners = {name: tgt.runner(settings[name].device, settings[name].of(Stage.BENCH)) for name, tgt in targets.items()}
    io = resolve_inputs(cfg)
    out = Path(cfg.out_dir)
    with claim_dir(out, force):
        return _run(cfg, Chosen(targets, settings, runners), io, out, say, progress)


def _run(
    cfg: BuildConfig, chosen: Chosen, io: dict[str, Any], out: Path, say: Say, progress: Progress | None
) -> BuildResult:
    from edgeq.targets import registry

    b = Build(
        given=BuildInputs(cfg, io, {k: sha_of(v) for k, v in io.items()}, out),
        cache=Cache(out / ".cache", cfg.cache),
        steps=Announcer(say, progress),
        host=registry.get("cpu").runner(),
    )
    targets = chosen.targets
    b.plan_steps(targets)
    float_reference(b)
    debug_doc = debug_chart(b)
    results: dict[str, dict[str, Any]] = {}
    failures: dict[str, EdgeqError] = {}
    gate_failures: list[str] = []
    for name, tgt in targets.items():
        try:
            results[name] = build_target(b, name, tgt, chosen)
        except EdgeqError as exc:
            failures[name] = exc
        except Exception as exc:  # noqa: BLE001 -- one target's defect must not cost the others their build
            failures[name] = EdgeqError(f"{type(exc).__name__}: {exc}", "a defect in edgeq: run with -v and report it")
            failures[name].__cause__ = exc
        if name in failures:
            results[name] = failed_target(b, name, tgt, failures[name], chosen.settings[name])
        elif results[name].get("gate_failed"):
            gate_failures.append(f"{name}: {results[name]['gate_failed']}")
    return finish(b, results, failures, gate_failures, debug_doc)


def finish(
    b: Build,
    results: dict[str, Any],
    failures: dict[str, Any],
    gate_failures: list[str],
    debug_doc: dict[str, Any] | None,
) -> BuildResult:
    """The top manifest and the report, then the build's verdict: a failed target, else a missed gate."""
    from edgeq.report import render

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
    warnings = list(b.cache.notes)
    for m in results.values():  # each target's problems (its findings' warnings and errors), each once
        found = Findings.from_dict(m["findings"])
        warnings += [x.text for x in found.messages if x.level != Level.INFO and x.text not in warnings]
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
