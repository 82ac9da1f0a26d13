"""The build as a recipe: every cached step declared here, with what it reads and what it runs.

A :class:`Step` names its kind, the content hashes of its inputs, its config and the versions of the tools
it runs; its cache key is computed from those alone, in one place (:func:`edgeq.build.keys.step_key`, which
adds edgeq's own version). Nothing else makes a key: a step that is not declared here is not cached.

    float      the model                    -> float .tflite        TensorFlow's converter
    eval       a .tflite, the model, eval   -> accuracy, SQNR       LiteRT, TensorFlow
    debug      the model, data, eval        -> per-layer chart      TensorFlow, LiteRT
    quantize   the model, data (train)      -> int8 .tflite         TensorFlow's converter
    plan       the model, data, eval, train -> the target's .tflite TensorFlow's converter (the target's profile)
    convert    the model                    -> another flavour      TensorFlow's converter
    check      the target's .tflite         -> CompatReport         the target's check tools
    compile    the .tflite, its check       -> CompileResult        the target's compiler
    bench      the deployed .tflite         -> latency, findings    the host's runtimes and the target's runner

Installing or upgrading a tool changes the keys of exactly the steps that run it, and of the steps that read
their output (whose input hashes change): installing edgetpu_compiler redoes coral's compile, not its check.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import platform
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeq.build.keys import step_key
from edgeq.cache import Cache
from edgeq.config import BuildConfig, DataConfig

ABSENT = "absent"


@dataclass(frozen=True)
class Step:
    """One cached step: what it is, what it reads (name -> content hash), what it is asked, what it runs.

    Args:
        kind: the step's kind ("quantize", "check", ...): its cache folders' prefix.
        label: the step for people ("compile [coral]"), as the manifest's ``stages`` lists it.
        inputs: the content hashes of what it reads (None for an input not given).
        config: what it is asked to do (target, options, settings).
        tools: the versions of the tools it runs, by name.
    """

    kind: str
    label: str
    inputs: Mapping[str, str | None]
    config: Mapping[str, Any] = field(default_factory=dict)
    tools: Mapping[str, str] = field(default_factory=dict)

    def key(self) -> dict[str, Any]:
        """The parts of its cache key (the only place they are put together is :func:`step_key`)."""
        return step_key(self.inputs, self.config, self.tools)


StepFn = Callable[[Path], dict[str, Any]]


def run(cache: Cache, step: Step, fn: StepFn) -> tuple[dict[str, Any], Path]:
    """``fn(folder)``'s result for ``step``, from the cache when its entry is there and whole; (result, folder)."""
    result, folder = cache.run(step.kind, step.key(), fn, step.label)
    return dict(result), folder


def doc_hash(doc: Mapping[str, Any]) -> str:
    """The content hash of a step's JSON result, for a step that reads it (compile reads its check)."""
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()


def package(*names: str) -> str:
    """The installed version of the first of ``names`` that is installed, else "absent"."""
    for name in names:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return ABSENT


def converter_tools() -> dict[str, str]:
    """What converts and quantizes a model: TensorFlow (its converter) and LiteRT (reading the result back)."""
    return {"tensorflow": package("tensorflow", "tensorflow-cpu"), "ai-edge-litert": package("ai-edge-litert")}


def runtime_tools() -> dict[str, str]:
    """What runs a .tflite on this machine: LiteRT, and TFLM for a board's reference kernels."""
    return {"ai-edge-litert": package("ai-edge-litert"), "tflite-micro": package("tflite-micro")}


def host() -> dict[str, str]:
    """The machine a benchmark measures on: a cached timing from another machine is not this one's."""
    return {"node": platform.node(), "machine": platform.machine(), "cpu": platform.processor()}


@dataclass(frozen=True)
class BuildInputs:
    """What a build is given, fixed before its first step: its config, its input files and their hashes."""

    cfg: BuildConfig
    io: Mapping[str, str | None]
    shas: Mapping[str, str | None]
    out: Path

    @property
    def model(self) -> str:
        return str(self.io["model"])

    @property
    def stem(self) -> str:
        return Path(self.model).stem

    @property
    def data_cfg(self) -> DataConfig:
        return DataConfig(path=str(self.io["data"]))  # always given (resolve_inputs refuses a build without)

    @property
    def eval_cfg(self) -> DataConfig | None:
        return DataConfig(path=self.io["eval_data"]) if self.io["eval_data"] else None

    @property
    def load(self) -> dict[str, Any]:
        """How the model is loaded (custom objects and trust change what the same file computes)."""
        doc: dict[str, Any] = self.cfg.load.to_dict()
        return doc

    def hashes(self, *names: str) -> dict[str, str | None]:
        return {name: self.shas[name] for name in names}


# the steps every target shares


def float_step(given: BuildInputs) -> Step:
    return Step("float", "float", given.hashes("model"), {"load": given.load}, converter_tools())


def eval_step(given: BuildInputs, tflite_sha: str, label: str) -> Step:
    # results: 2, they carry 95% intervals
    config = {"load": given.load, "results": 2}
    inputs = {"tflite": tflite_sha, **given.hashes("model", "eval_data")}
    return Step("eval", f"eval [{label}]", inputs, config, converter_tools())


def debug_step(given: BuildInputs) -> Step:
    return Step("debug", "debug", given.hashes("model", "data", "eval_data"), {"load": given.load}, converter_tools())


def quantize_step(given: BuildInputs, config: Mapping[str, Any], users: str) -> Step:
    """The quantization of one conversion; ``config`` holds mode, I/O, techniques and method."""
    names = ("model", "data", "train_data") if config.get("method") == "qat" else ("model", "data")
    return Step(
        "quantize", f"quantize [{users}]", given.hashes(*names), {"load": given.load, **config}, converter_tools()
    )


def plan_step(given: BuildInputs, target: str, config: Mapping[str, Any]) -> Step:
    """The planner for one target; ``config`` holds the target's profile and the budget."""
    inputs = given.hashes("model", "data", "eval_data", "train_data")
    return Step("plan", f"plan [{target}]", inputs, {"load": given.load, **config}, converter_tools())


def convert_step(given: BuildInputs, mode: str) -> Step:
    config = {"load": given.load, "mode": mode}
    return Step("convert", f"convert [{mode}]", given.hashes("model"), config, converter_tools())


# one target's steps: the versions of its tools come from the target (Target.tool_versions, per stage)


def check_step(target: str, tflite_sha: str, options: Mapping[str, Any], tools: Mapping[str, str]) -> Step:
    return Step("check", f"check [{target}]", {"tflite": tflite_sha}, {"target": target, "options": options}, tools)


def compile_step(
    target: str, tflite_sha: str, check: Mapping[str, Any], options: Mapping[str, Any], tools: Mapping[str, str]
) -> Step:
    """Compile reads the model and its check (the analysis it reuses): a check that changes redoes it."""
    inputs = {"tflite": tflite_sha, "check": doc_hash(check)}
    return Step("compile", f"compile [{target}]", inputs, {"target": target, "options": options}, tools)


def bench_step(
    tflite: Path,
    tflite_sha: str,
    runner: str,
    bench: Mapping[str, Any],
    options: Mapping[str, Any],
    tools: Mapping[str, str],
) -> Step:
    """A benchmark of ``tflite`` on ``runner`` ("cpu" for the host); ``options`` what the runner was made
    with (--board, --host, ...), ``tools`` the versions of the tools the runner runs beyond the host's."""
    config: dict[str, Any] = {"runner": runner, "bench": dict(bench), "host": host()}
    if options and any(options.values()):
        config["options"] = dict(options)
    label = f"bench [{tflite.stem} on {runner}]"
    return Step("bench", label, {"tflite": tflite_sha}, config, {**runtime_tools(), **tools})
