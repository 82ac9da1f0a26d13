"""The stages every target of a build shares: the float reference, the debugger's chart, the quantization
(one per conversion), the planner (per target, only where the shared PTQ misses the budget), other flavours."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgeq.artifacts import sha256_file
from edgeq.build import recipe
from edgeq.build.recipe import BuildInputs
from edgeq.cache import Cache
from edgeq.config import (
    BuildBudget,
    BuildConfig,
    DataConfig,
    IOType,
    Method,
    Mode,
    QuantizeConfig,
    TrainConfig,
    build_budget,
)
from edgeq.errors import QualityGateFailed
from edgeq.findings import Findings
from edgeq.targets.base import Target

if TYPE_CHECKING:
    from edgeq.quantize.planner import Budget

Say = Callable[[str], None]
Progress = Callable[[dict[str, Any]], None]  # a long stage's progress events (as edgeq.train's)


@dataclass(frozen=True)
class Reference:
    """The float baseline every target shares: its conversion, file, evaluation and host benchmark."""

    result: dict[str, Any]
    tflite: Path
    evaluation: dict[str, Any] | None
    bench: dict[str, Any]


@dataclass
class Announcer:
    """The build's steps for people: "[i/N] name ..." through ``say``; ``progress`` for a long stage's bar."""

    say: Say
    progress: Progress | None = None
    done: int = 0
    total: int = 0  # known up front but for planner runs, which add one each when they start

    def step(self, name: str, unplanned: bool = False) -> None:
        self.total += int(unplanned)
        self.done += 1
        self.say(f"[{self.done}/{max(self.total, self.done)}] {name} ...")


@dataclass
class Build:
    """One build's state: its fixed inputs (``given``), its cache, its announcer, and what the steps every
    target shares have made (the float reference, one quantization per conversion, other flavours)."""

    given: BuildInputs
    cache: Cache
    steps: Announcer
    host: Any  # the host CPU's runner: the float reference and every host figure
    reference: Reference | None = None
    # (mode, io) -> the shared quantization's (result, folder)
    quantized: dict[tuple[Mode, IOType], tuple[dict[str, Any], Path]] = field(default_factory=dict)
    extras: dict[Mode, tuple[dict[str, Any], Path]] = field(default_factory=dict)  # another flavour's (result, folder)

    @property
    def cfg(self) -> BuildConfig:
        return self.given.cfg

    @property
    def io(self) -> Mapping[str, str | None]:
        return self.given.io

    @property
    def out(self) -> Path:
        return self.given.out

    @property
    def eval_cfg(self) -> DataConfig | None:
        return self.given.eval_cfg

    @property
    def ref(self) -> Reference:
        """The float reference (built first, before any target)."""
        assert self.reference is not None, "float_reference runs before the targets"
        return self.reference

    def plan_steps(self, targets: Mapping[str, Any]) -> None:
        """How many steps this build announces: float reference and its benchmark, the debugger, one
        quantization per conversion, one conversion per extra flavour, check-and-compile and benchmark
        per target, the report."""
        conversions = {(t.build_mode, t.build_io) for t in targets.values()}
        extras = {m for t in targets.values() for m in getattr(t, "build_extra_modes", ())}
        debug = self.eval_cfg is not None or bool(self.io["data"])
        self.steps.total = 2 + int(debug) + len(conversions) + len(extras) + 2 * len(targets) + 1

    def step(self, name: str, unplanned: bool = False) -> None:
        """Announce the next step to people as "[i/N] name ..." (the CLI adds elapsed time on a terminal)."""
        self.steps.step(name, unplanned)

    @property
    def progress(self) -> Progress | None:
        return self.steps.progress

    def evaluate(self, tflite: Path, label: str) -> dict[str, Any] | None:
        from edgeq.stages.evaluate import evaluate

        eval_cfg, model = self.eval_cfg, self.given.model
        if eval_cfg is None:
            return None
        step = recipe.eval_step(self.given, sha256_file(tflite), label)
        ev, _ = recipe.run(self.cache, step, lambda _d: evaluate(str(tflite), model, eval_cfg, self.cfg.load))
        return ev

    def bench(
        self,
        tflite: Path,
        runner: Any,
        label: str,
        tools: Mapping[str, str] | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """``runner``'s benchmark of ``tflite``, cached by the model, the settings, the host, ``tools``
        (the versions of the tools the runner runs, beyond the host's LiteRT and TFLM) and ``options``
        (what the runner was made with: --board, --host, ...)."""
        bench_cfg = self.cfg.bench

        def fn(_d: Path) -> dict[str, Any]:
            return bench_doc(runner.benchmark(str(tflite), bench_cfg))

        return self.bench_with(tflite, label, fn, tools, options)

    def bench_with(
        self,
        tflite: Path,
        label: str,
        fn: Callable[[Path], dict[str, Any]],
        tools: Mapping[str, str] | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The benchmark step of :meth:`bench`, its result made by ``fn`` (here, or on a device's node)."""
        step = recipe.bench_step(
            tflite, sha256_file(tflite), label, self.cfg.bench.to_dict(), dict(options or {}), dict(tools or {})
        )
        res, _ = recipe.run(self.cache, step, fn)
        return res


def bench_doc(b: Any) -> dict[str, Any]:
    """A runner's benchmark result as the build records it."""
    stats = b.stats.to_dict()
    return {
        "latency_ms": stats["latency_ms"],
        "num_runs": stats["num_runs"],
        "first_invoke_ms": b.stats.first_invoke_ms,
        "on": f"{b.target} ({b.device})",
        "device": b.device,
        "environment": b.environment,
        "notes": list(b.notes),
        "via": b.via,
        # what the runner measured besides latency (instructions, proof, memory), typed
        "findings": b.findings.to_dict(),
    }


def bench_findings(bench: Mapping[str, Any]) -> Findings:
    """What a cached benchmark's runner found besides latency (none in a result without findings)."""
    doc = bench.get("findings")
    return Findings.from_dict(doc) if isinstance(doc, dict) else Findings()


def float_reference(b: Build) -> None:
    """The float .tflite, its accuracy and its host latency: the baseline every target shares."""
    from edgeq.stages.quantize import quantize

    b.step("float reference")
    model, name = b.given.model, f"{b.given.stem}_float.tflite"
    res, float_dir = recipe.run(
        b.cache,
        recipe.float_step(b.given),
        lambda d: (
            quantize(model, str(d / name), QuantizeConfig(mode=Mode.FLOAT), load_cfg=b.cfg.load).to_dict()
            | {"file": name}
        ),
    )
    tflite = float_dir / res["file"]
    evaluation = b.evaluate(tflite, "float")
    b.step("float reference: host benchmark")
    b.reference = Reference(res, tflite, evaluation, b.bench(tflite, b.host, "cpu"))


def debug_chart(b: Build) -> dict[str, Any] | None:
    """The per-layer error chart, shared by every target."""
    from edgeq.modelio import Format, detect_format
    from edgeq.stages.debug import debug

    if b.eval_cfg is None and not b.io["data"]:
        return None
    b.step("quantization debugger")
    if detect_format(b.given.model) == Format.TFLITE:  # the debugger works on the Keras/SavedModel model
        b.cache.notes.append("no per-layer debugger chart: the model is a .tflite (the debugger needs the Keras model)")
        return None
    model, data_cfg, eval_cfg = b.given.model, b.given.data_cfg, b.eval_cfg
    doc, folder = recipe.run(
        b.cache,
        recipe.debug_step(b.given),
        lambda d: relative_paths(debug(model, data_cfg, str(d), eval_cfg, b.cfg.load, force=True), d),
    )
    return doc | {"dir": str(folder)}


def budget_of(cfg: BuildConfig, ev: Mapping[str, Any]) -> BuildBudget:
    """The budget the build applies to an evaluation ``ev``: the given one, else the default for labeled
    data (a top-1 drop), else the task's default SQNR (unlabeled data: never skipped)."""
    labeled = (ev.get("quantized") or {}).get("accuracy") is not None
    return build_budget(cfg.max_drop, cfg.min_sqnr, labeled, str(ev.get("task") or "regression"))


def _budget(cfg: BuildConfig, ev: Mapping[str, Any]) -> Budget:
    from edgeq.quantize.planner import Budget

    chosen = budget_of(cfg, ev)
    return Budget(max_drop=chosen.max_drop, min_sqnr=chosen.min_sqnr)


def shared_quantize(b: Build, qcfg: QuantizeConfig, users: list[str]) -> tuple[dict[str, Any], Path]:
    """The quantization every target with this conversion (mode, I/O) shares: plain PTQ, or QAT.

    Its key holds no target profile, so coral, mcu, android and cpu (all int8) quantize once."""
    from edgeq.stages.quantize import quantize
    from edgeq.stages.quantize_aware import quantize_aware

    cfg, io = b.cfg, b.io
    method = "qat" if cfg.method == Method.QAT else "ptq"
    config = {"mode": qcfg.mode.value, "io": qcfg.io_type.value, "techniques": qcfg.techniques.to_dict()}
    config["method"] = method
    b.step(f"quantize ({method}) for {', '.join(users)}")

    def fn(d: Path) -> dict[str, Any]:
        out_file = d / f"{b.given.stem}_{qcfg.mode.value}.tflite"
        if method == "qat":
            doc = quantize_aware(
                b.given.model,
                str(out_file),
                qcfg,
                DataConfig(path=str(io["train_data"])),
                TrainConfig(epochs=2, learning_rate=1e-4),
                b.given.data_cfg,
                b.eval_cfg,
                cfg.load,
                progress=b.progress,
            )
        else:
            doc = quantize(
                b.given.model,
                str(out_file),
                qcfg,
                b.given.data_cfg,
                cfg.load,
                reference_size_bytes=b.ref.result["size_bytes"],
            ).to_dict()
        return relative_paths(doc, d) | {"file": out_file.name}

    return recipe.run(b.cache, recipe.quantize_step(b.given, config, ", ".join(users)), fn)


def planned_quantize(
    b: Build, name: str, tgt: Target, qcfg: QuantizeConfig, ptq_eval: dict[str, Any]
) -> tuple[dict[str, Any], Path] | None:
    """The planner for one target, run only when the shared PTQ misses the budget (None when it meets it).

    Keyed on the target's profile: what a float layer costs differs between targets."""
    from edgeq.quantize.planner import Profile, mixed_misses
    from edgeq.stages.plan import plan
    from edgeq.stages.quantize import quantize

    # a dead int8 output never passes, nor one whose channel groups one scale cannot hold (a YOLO head can read
    # 25 dB of SQNR, the boxes', with its scores destroyed)
    misses = _budget(b.cfg, ptq_eval).misses(ptq_eval) or ptq_eval.get("degenerate") or mixed_misses(ptq_eval)
    if b.cfg.method != Method.AUTO or b.eval_cfg is None or not misses:
        return None
    io = b.io
    config = {
        "mode": qcfg.mode.value,
        "io": qcfg.io_type.value,
        "profile": Profile.of(tgt).__dict__,
        "max_drop": b.cfg.max_drop,
        "allow_cpu_fallback": b.cfg.allow_cpu_fallback,
        "adaround_steps": b.cfg.techniques.adaround_steps,
        "min_sqnr": b.cfg.min_sqnr,
        "budget": budget_of(b.cfg, ptq_eval).to_dict(),  # the default one too: it depends on labels and task
    }
    b.step(f"{name}: the shared int8 model misses the budget; planner", unplanned=True)

    def fn(d: Path) -> dict[str, Any]:
        out_file = d / f"{b.given.stem}_{qcfg.mode.value}.tflite"
        train = DataConfig(path=str(io["train_data"])) if io["train_data"] else None
        if _is_tflite(b.given.model):  # the planner's candidates need the model the .tflite came from
            doc = quantize(b.given.model, str(out_file), qcfg, b.given.data_cfg, b.cfg.load).to_dict()
            return relative_paths(doc | {"gate_failed": _NO_PLANNER_FOR_TFLITE, "plan": None}, d) | {
                "file": out_file.name
            }
        try:
            doc = plan(
                b.given.model,
                str(out_file),
                name,
                _budget(b.cfg, ptq_eval),
                b.given.data_cfg,
                b.eval_cfg,
                qcfg.io_type.value,
                train,
                TrainConfig(epochs=2, learning_rate=1e-4),
                b.cfg.load,
                progress=b.progress,
                allow_cpu_fallback=b.cfg.allow_cpu_fallback,
                adaround_steps=b.cfg.techniques.adaround_steps,
                executor=b.cfg.executor_config,
            )
        except QualityGateFailed as exc:  # keep going with plain PTQ; the gate fails at the end
            doc = quantize(b.given.model, str(out_file), qcfg, b.given.data_cfg, b.cfg.load).to_dict() | {
                "gate_failed": exc.one_line(),
                "plan": exc.details,
            }
        return relative_paths(doc, d) | {"file": out_file.name}

    return recipe.run(b.cache, recipe.plan_step(b.given, name, config), fn)


_NO_PLANNER_FOR_TFLITE = (
    "plain int8 PTQ misses the budget, and the planner's other candidates need the Keras, SavedModel or ONNX "
    "model: a .tflite input gets plain int8 only (build from the model it came from, or set the budget with "
    "--max-drop/--min-sqnr)"
)


def _is_tflite(model: str) -> bool:
    from edgeq.modelio import Format, detect_format

    return detect_format(model) == Format.TFLITE


def ptq_plan_summary(
    qres: dict[str, Any], ev: dict[str, Any], qfile: Path, tgt: Target, budget: BuildBudget
) -> dict[str, Any]:
    """The plan record when the shared plain PTQ meets ``budget`` (kept in the record): the planner's first
    step, taken."""
    from edgeq.quantize.planner import Profile, ops_off_accelerator
    from edgeq.tflite import read_bytes

    info = read_bytes(qfile.read_bytes())
    applied = (qres.get("techniques") or {}).get("applied", "minmax")
    name = "int8 PTQ" if applied == "minmax" else f"int8 {applied}"
    step = {
        "name": name,
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
    because = (
        "plain int8 PTQ meets the budget" if applied == "minmax" else f"{name} meets the budget with every op int8"
    )
    constant = [str(o["name"]) for o in ev.get("outputs") or [] if o.get("constant_reference") is not None]
    if constant:  # any model meets a budget against a constant reference: said, not claimed
        because += f" on paper only: the float reference's output {constant[0]!r} is constant, so nothing was judged"
    return {"chosen": name, "stopped_because": because, "steps": [step], "budget": budget.to_dict()}


def extra_flavour(b: Build, mode: Mode) -> tuple[dict[str, Any], Path]:
    """Another conversion a target deploys beside its quantized model (Android's fp16 for the GPU
    delegate): converted once per build whatever the number of targets that want it."""
    from edgeq.stages.quantize import quantize

    model, name = b.given.model, f"{b.given.stem}_{mode.value}.tflite"
    b.step(f"convert ({mode.value})")
    return recipe.run(
        b.cache,
        recipe.convert_step(b.given, mode.value),
        lambda d: (
            relative_paths(quantize(model, str(d / name), QuantizeConfig(mode=mode), load_cfg=b.cfg.load).to_dict(), d)
            | {"file": name}
        ),
    )


def rel_path(path: str | None, folder: Path) -> str | None:
    if not path:
        return path
    p = Path(path)
    try:
        return str(p.relative_to(folder))
    except ValueError:
        return str(p)


def relative_paths(doc: dict[str, Any], folder: Path) -> dict[str, Any]:
    """Stage results are cached by folder: store the paths inside it as relative ones."""
    out = dict(doc)
    for key in ("output", "sidecar"):
        if isinstance(out.get(key), str):
            out[key] = rel_path(out[key], folder)
    if "artifacts" in out and isinstance(out["artifacts"], list):
        out["artifacts"] = [rel_path(a, folder) for a in out["artifacts"]]
    return out
