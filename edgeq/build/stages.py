"""The stages every target of a build shares: the float reference, the debugger's chart, the quantization
(one per conversion), the planner (per target, only where the shared PTQ misses the budget), other flavours."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeq.artifacts import sha256_file
from edgeq.build.keys import step_key
from edgeq.cache import Cache
from edgeq.config import BuildConfig, DataConfig, Method, Mode, QuantizeConfig, TrainConfig, build_max_drop
from edgeq.errors import QualityGateFailed

Say = Callable[[str], None]


@dataclass
class Build:
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

    steps_done: int = 0
    steps_total: int = 0  # known up front but for planner runs, which add one each when they start

    @property
    def model_key(self) -> dict:
        """The model's part of a stage's cache key: its content and how it is loaded (custom objects and
        trust change what the same file computes)."""
        return {"model": self.shas["model"], "load": self.cfg.load.to_dict()}

    def plan_steps(self, targets: Mapping[str, Any]) -> None:
        """How many steps this build announces: float reference and its benchmark, the debugger, one
        quantization per conversion, one conversion per extra flavour, check-and-compile and benchmark
        per target, the report."""
        conversions = {(t.build_mode, t.build_io) for t in targets.values()}
        extras = {m for t in targets.values() for m in getattr(t, "build_extra_modes", ())}
        debug = self.eval_cfg is not None or bool(self.io["data"])
        self.steps_total = 2 + int(debug) + len(conversions) + len(extras) + 2 * len(targets) + 1

    def step(self, name: str, unplanned: bool = False) -> None:
        """Announce the next step to people as "[i/N] name ..." (the CLI adds elapsed time on a terminal)."""
        self.steps_total += int(unplanned)
        self.steps_done += 1
        self.say(f"[{self.steps_done}/{max(self.steps_total, self.steps_done)}] {name} ...")

    def evaluate(self, tflite: Path, label: str) -> dict | None:
        from edgeq.stages.evaluate import evaluate

        if self.eval_cfg is None:
            return None
        eval_cfg, model = self.eval_cfg, self.io["model"]
        ev, _ = self.cache.run(
            "eval",
            # format 2: results carry 95% intervals; older cached ones are evaluated again
            {"tflite": sha256_file(tflite), **self.model_key, "eval": self.shas["eval_data"], "format": 2},
            lambda _d: evaluate(str(tflite), model, eval_cfg, self.cfg.load),
            f"eval [{label}]",
        )
        return ev

    def bench(
        self,
        tflite: Path,
        runner: Any,
        label: str,
        tools: Mapping[str, str] | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> dict:
        """``runner``'s benchmark of ``tflite``, cached by the model, the settings, the host, ``tools``
        (the versions of the tools the runner runs, beyond the host's LiteRT and TFLM) and ``options``
        (what the runner was made with: --board, --host, ...)."""
        bench_cfg = self.cfg.bench

        def fn(_d: Path) -> dict:
            b = runner.benchmark(str(tflite), bench_cfg)
            doc = b.to_dict()
            return {
                "latency_ms": b.stats.to_dict()["latency_ms"],
                "first_invoke_ms": b.stats.first_invoke_ms,
                "on": f"{b.target} ({b.device})",
                "device": b.device,
                "environment": b.environment,
                "notes": list(b.notes),
                "via": b.via,
                # what the runner measured besides latency (the generated C's instructions, memory, proof)
                "figures": {k: v for k, v in doc.items() if k not in _BENCH_BASE_KEYS},
            }

        config = {"runner": label, "bench": bench_cfg.to_dict(), "host": bench_host_key()}
        if options and any(options.values()):  # none given: the key of a build before target options
            config["options"] = dict(options)
        res, _ = self.cache.run(
            "bench",
            step_key({"tflite": sha256_file(tflite)}, config, tools or {}),
            fn,
            f"bench [{tflite.stem} on {label}]",
        )
        return res


# BenchResult.to_dict's own keys (LatencyStats' and the base class's): the rest are a runner's own figures
_BENCH_BASE_KEYS = frozenset(
    {"target", "device", "num_threads", "environment", "notes", "via", "first_invoke_ms", "num_runs", "warmup_runs"}
    | {"latency_ms"}
)


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


def float_reference(b: Build) -> None:
    """The float .tflite, its accuracy and its host latency: the baseline every target shares."""
    from edgeq.stages.quantize import quantize

    b.step("float reference")
    model, name = b.io["model"], f"{b.stem}_float.tflite"
    b.float_res, float_dir = b.cache.run(
        "float",
        b.model_key,
        lambda d: (
            quantize(model, str(d / name), QuantizeConfig(mode=Mode.FLOAT), load_cfg=b.cfg.load).to_dict()
            | {"file": name}
        ),
    )
    b.float_tflite = float_dir / b.float_res["file"]
    b.float_eval = b.evaluate(b.float_tflite, "float")
    b.step("float reference: host benchmark")
    b.float_bench = b.bench(b.float_tflite, b.host, "cpu")


def debug_chart(b: Build) -> dict | None:
    """The per-layer error chart, shared by every target."""
    from edgeq.modelio import Format, detect_format
    from edgeq.stages.debug import debug

    if b.eval_cfg is None and not b.io["data"]:
        return None
    b.step("quantization debugger")
    if detect_format(b.io["model"]) == Format.TFLITE:  # the debugger works on the Keras/SavedModel model
        b.cache.notes.append("no per-layer debugger chart: the model is a .tflite (the debugger needs the Keras model)")
        return None
    model, data_cfg, eval_cfg = b.io["model"], b.data_cfg, b.eval_cfg
    doc, folder = b.cache.run(
        "debug",
        {**b.model_key, "data": b.shas["data"], "eval": b.shas["eval_data"]},
        lambda d: relative_paths(debug(model, data_cfg, str(d), eval_cfg, b.cfg.load, force=True), d),
    )
    return doc | {"dir": str(folder)}


def _budget(cfg: BuildConfig):
    from edgeq.quantize.planner import Budget

    # unlabeled data: the SQNR budget alone, unless a drop is asked for too
    return Budget(max_drop=build_max_drop(cfg.max_drop, cfg.min_sqnr), min_sqnr=cfg.min_sqnr)


def shared_quantize(b: Build, qcfg: QuantizeConfig, users: list[str]) -> tuple[dict, Path]:
    """The quantization every target with this conversion (mode, I/O) shares: plain PTQ, or QAT.

    Its key holds no target profile, so coral, mcu, android and cpu (all int8) quantize once."""
    from edgeq.stages.quantize import quantize
    from edgeq.stages.quantize_aware import quantize_aware

    cfg, io = b.cfg, b.io
    parts = {**b.model_key, "data": b.shas["data"], "mode": qcfg.mode.value, "io": qcfg.io_type.value}
    parts["techniques"] = qcfg.techniques.to_dict()
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
                cfg.load,
                progress=b.progress,
            )
        else:
            doc = quantize(
                io["model"], str(out_file), qcfg, b.data_cfg, cfg.load, reference_size_bytes=b.float_res["size_bytes"]
            ).to_dict()
        return relative_paths(doc, d) | {"file": out_file.name}

    return b.cache.run("quantize", parts, fn, f"quantize [{', '.join(users)}]")


def planned_quantize(b: Build, name: str, tgt, qcfg: QuantizeConfig, ptq_eval: dict) -> tuple[dict, Path] | None:
    """The planner for one target, run only when the shared PTQ misses the budget (None when it meets it).

    Keyed on the target's profile: what a float layer costs differs between targets."""
    from edgeq.quantize.planner import Profile
    from edgeq.stages.plan import plan
    from edgeq.stages.quantize import quantize

    misses = _budget(b.cfg).misses(ptq_eval) or ptq_eval.get("degenerate")  # a dead int8 output never passes
    if b.cfg.method != Method.AUTO or b.eval_cfg is None or not misses:
        return None
    io = b.io
    parts = {
        **b.model_key,
        "data": b.shas["data"],
        "eval": b.shas["eval_data"],
        "train": b.shas["train_data"],
        "mode": qcfg.mode.value,
        "io": qcfg.io_type.value,
        "profile": Profile.of(tgt).__dict__,
        "max_drop": b.cfg.max_drop,
        "allow_cpu_fallback": b.cfg.allow_cpu_fallback,
        "adaround_steps": b.cfg.techniques.adaround_steps,
        "min_sqnr": b.cfg.min_sqnr,
    }
    b.step(f"{name}: the shared int8 model misses the budget; planner", unplanned=True)

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
                b.cfg.load,
                progress=b.progress,
                allow_cpu_fallback=b.cfg.allow_cpu_fallback,
                adaround_steps=b.cfg.techniques.adaround_steps,
            )
        except QualityGateFailed as exc:  # keep going with plain PTQ; the gate fails at the end
            doc = quantize(io["model"], str(out_file), qcfg, b.data_cfg, b.cfg.load).to_dict() | {
                "gate_failed": exc.one_line(),
                "plan": exc.details,
            }
        return relative_paths(doc, d) | {"file": out_file.name}

    return b.cache.run("plan", parts, fn, f"plan [{name}]")


def ptq_plan_summary(qres: dict, ev: dict, qfile: Path, tgt, min_sqnr: float | None = None) -> dict:
    """The plan record when the shared plain PTQ meets the budget: the planner's first step, taken."""
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
    if ev["quantized"]["accuracy"] is None and min_sqnr is None:  # no labels: a drop cannot be measured
        because = f"{name} taken unmeasured: the evaluation data has no labels (give --min-sqnr DB)"
        step |= {"meets": False, "misses": ["accuracy budget not measured (no labels)"]}
    return {"chosen": name, "stopped_because": because, "steps": [step]}


def extra_flavour(b: Build, mode: Mode) -> tuple[dict, Path]:
    """Another conversion a target deploys beside its quantized model (Android's fp16 for the GPU
    delegate): converted once per build whatever the number of targets that want it."""
    from edgeq.stages.quantize import quantize

    model, name = b.io["model"], f"{b.stem}_{mode.value}.tflite"
    b.step(f"convert ({mode.value})")
    return b.cache.run(
        "convert",
        {**b.model_key, "mode": mode.value},
        lambda d: (
            relative_paths(quantize(model, str(d / name), QuantizeConfig(mode=mode), load_cfg=b.cfg.load).to_dict(), d)
            | {"file": name}
        ),
        f"convert [{mode.value}]",
    )


def rel_path(path: str | None, folder: Path) -> str | None:
    if not path:
        return path
    p = Path(path)
    try:
        return str(p.relative_to(folder))
    except ValueError:
        return str(p)


def relative_paths(doc: dict, folder: Path) -> dict:
    """Stage results are cached by folder: store the paths inside it as relative ones."""
    out = dict(doc)
    for key in ("output", "sidecar"):
        if isinstance(out.get(key), str):
            out[key] = rel_path(out[key], folder)
    if "artifacts" in out and isinstance(out["artifacts"], list):
        out["artifacts"] = [rel_path(a, folder) for a in out["artifacts"]]
    return out
