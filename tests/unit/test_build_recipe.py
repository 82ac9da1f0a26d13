"""The build as a recipe, with a tiny fake target (its check, compile and runner count their calls):

- every step's key comes from its declared inputs, config and tools (and edgeq's version);
- the check runs once and compile is given its report (``checked``) instead of analysing again;
- a compiler installed since the last build redoes the compile and the benchmark of its output, not the
  check nor the shared steps;
- the manifest carries the merged typed findings (check, compile, bench, measured latency; every message
  with its level) and the tools' versions, and no "verdict", "info" or "warnings".
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from edgeq.bench.timing import summarize
from edgeq.build import recipe
from edgeq.build.keys import step_key
from edgeq.config import BenchConfig, BuildConfig, IOType, Mode
from edgeq.findings import Basis, Figure, Findings, Level, Placement, info, warning
from edgeq.targets import registry
from edgeq.targets.base import NO_OPTIONS, Availability, BenchResult, CompatReport, CompileResult, Stage

OPTIONS: tuple = ()  # the fake target's declarations (the registry reads them from this module)
ABSENT = "absent"


@dataclass(frozen=True)
class FakeReport(CompatReport):
    in_memory: object = None  # what a target keeps of its check for its compile, beyond to_dict (Vela's outputs)


@dataclass(frozen=True)
class FakeCompiled(CompileResult):
    def artifacts(self) -> list[str]:
        return [] if self.skipped else [self.output]


class FakeRunner:
    def __init__(self, target: FakeTarget) -> None:
        self.target = target

    def availability(self) -> Availability:
        return Availability(True)

    def benchmark(self, model_path: str, cfg: BenchConfig) -> BenchResult:
        self.target.calls.append(("bench", Path(model_path).name))
        stats = summarize(2.0, [1.0, 2.0, 3.0], cfg.warmup_runs)
        found = Findings(instructions=Figure(1234, "instructions", Basis.MEASURED, where="a stand-in board"))
        return BenchResult("fake", "fake board", stats, 1, {}, via="over SSH", findings=found)


class FakeTarget:
    name = "fake"
    description = "a stand-in accelerator"
    build_mode = Mode.INT8
    build_io = IOType.INT8
    profile = {"integer_only": True, "int16_activations": False, "cpu_fallback_splits_graph": True}
    options = OPTIONS
    max_models = 1
    device_help = None

    def __init__(self) -> None:
        self.compiler = ABSENT
        self.calls: list[tuple[str, str]] = []
        self.checked: list[Sequence[CompatReport]] = []

    def check(self, model: str, options: Mapping[str, Any] = NO_OPTIONS) -> CompatReport:
        self.calls.append(("check", Path(model).name))
        found = Findings(
            placement=Placement("Fake NPU", 5, 1, Basis.PREDICTED, "MEAN: not on the NPU"),
            messages=(info("arena fits"), warning("MEAN runs on the CPU")),
        )
        return FakeReport("fake", True, ({"op": "MEAN", "count": 1},), found, {"analysis": 42}, in_memory=model)

    def compile(
        self,
        models: Sequence[str],
        out_dir: str,
        options: Mapping[str, Any] = NO_OPTIONS,
        checked: Sequence[CompatReport] = (),
    ) -> CompileResult:
        self.calls.append(("compile", Path(models[0]).name))
        self.checked.append(checked)
        if self.compiler == ABSENT:
            return FakeCompiled("fake", models[0], skipped=True, reason="fakec is not installed")
        out = Path(out_dir) / (Path(models[0]).stem + "_fake.tflite")
        out.write_bytes(Path(models[0]).read_bytes() + b"fakec")  # another model than the one given
        found = Findings(placement=Placement("Fake NPU", 6, 0, Basis.COMPILED), messages=(info("compiled by fakec"),))
        return FakeCompiled("fake", str(out), findings=found, details={"fakec": self.compiler})

    def runner(self, device: str | None = None, options: Mapping[str, Any] = NO_OPTIONS) -> FakeRunner:
        return FakeRunner(self)

    def tool_versions(self, stage: Stage, options: Mapping[str, Any] = NO_OPTIONS) -> dict[str, str]:
        return {"fakec": self.compiler} if stage == Stage.COMPILE else {}


TARGET = FakeTarget()


def test_a_steps_key_is_its_inputs_config_tools_and_edgeqs_version(monkeypatch):
    step = recipe.Step("check", "check [x]", {"tflite": "a" * 64}, {"target": "x"}, {"vela": "4.0"})
    assert step.key() == step_key({"tflite": "a" * 64}, {"target": "x"}, {"vela": "4.0"})
    assert step.key()["edgeq"]
    other_tool = recipe.Step("check", "check [x]", {"tflite": "a" * 64}, {"target": "x"}, {"vela": "4.1"})
    assert other_tool.key() != step.key()
    import edgeq.build.keys as keys

    before = step.key()
    monkeypatch.setattr(keys, "__version__", "99.0")
    assert step.key() != before  # another edgeq: another key for every step


def test_compile_reads_its_check_by_content():
    check = {"target": "x", "ok": True, "findings": {}}
    a = recipe.compile_step("x", "a" * 64, check, {}, {})
    b = recipe.compile_step("x", "a" * 64, check | {"ok": False}, {}, {})
    assert a.key() != b.key() and a.key()["inputs"]["check"] == recipe.doc_hash(dict(check))


@pytest.fixture
def fake(monkeypatch):
    target = FakeTarget()
    monkeypatch.setitem(registry.TARGETS, "fake", registry.Entry(__name__, __name__, "a stand-in accelerator"))
    monkeypatch.setattr(sys.modules[__name__], "TARGET", target)
    return target


def _build(out: Path, model: Path, calib: Path, evaluation: Path) -> tuple[dict, dict]:
    from edgeq import pipeline

    cfg = BuildConfig(
        targets=("fake",),
        model=str(model),
        data=str(calib),
        eval_data=str(evaluation),
        method="ptq",
        out_dir=str(out),
        runs=3,
        warmup=1,
    )
    result = pipeline.run(cfg)
    top = json.loads((out / "build.json").read_text())
    assert top["stages"] == result.stages
    return top, json.loads((out / "fake" / "build.json").read_text())


def _recomputed(top: dict) -> list[str]:
    return [s["name"] for s in top["stages"] if not s["cached"]]


@pytest.mark.slow
def test_check_once_compile_given_it_and_a_new_compiler_redoes_only_compile(
    fake, tmp_path, tf_keras_model, digits_calib, digits_eval
):
    out = tmp_path / "out"
    top, manifest = _build(out, tf_keras_model, digits_calib, digits_eval)
    assert [c for c, _ in fake.calls] == ["check", "compile", "bench"]
    [given] = fake.checked
    assert len(given) == 1 and given[0].details == {"analysis": 42}  # the check's analysis, not redone
    assert isinstance(given[0], FakeReport) and given[0].in_memory  # the report itself, as the check made it
    assert given[0].findings.placement is not None and given[0].findings.placement.basis == Basis.PREDICTED
    assert not {"verdict", "info", "warnings"} & set(manifest)
    assert manifest["tools"] == {"fakec": ABSENT}
    found = Findings.from_dict(manifest["findings"])
    assert found.placement == Placement("Fake NPU", 5, 1, Basis.PREDICTED, "MEAN: not on the NPU")
    levels = {m.text: m.level for m in found.messages}
    assert levels["arena fits"] == Level.INFO and levels["MEAN runs on the CPU"] == Level.WARNING
    assert levels["compile step skipped: fakec is not installed"] == Level.INFO
    assert found.instructions is not None and found.instructions.value == 1234
    lat = found.latency
    assert lat is not None and lat.basis == Basis.MEASURED and lat.where == "fake board" and lat.via == "over SSH"
    row = manifest["variants"][-1]
    assert lat.value == row["latency_ms"]["p50"] and lat.how == "p50 of 3 runs"
    assert (lat.low, lat.high) == (row["latency_ms"]["min"], row["latency_ms"]["max"])
    assert row["check"]["findings"] == given[0].to_dict()["findings"] and row["compile"]["skipped"] is True
    first = {s["name"]: s["key"] for s in top["stages"]}
    assert {"check [fake]", "compile [fake]"} <= set(first)

    # the compiler is installed: compile and the benchmark of what it made run again, nothing else
    fake.calls.clear()
    fake.compiler = "1.0"
    top, manifest = _build(out, tf_keras_model, digits_calib, digits_eval)
    assert [c for c, _ in fake.calls] == ["compile", "bench"] and fake.calls[1][1].endswith("_fake.tflite")
    assert _recomputed(top) == ["compile [fake]", "bench [tiny_tfkeras_int8_fake on fake]"]
    cached = fake.checked[-1][0]
    assert cached.details == {"analysis": 42} and not isinstance(cached, FakeReport)  # the cached check, rebuilt
    assert cached.to_dict() == given[0].to_dict()
    changed = {s["name"] for s in top["stages"] if first.get(s["name"]) != s["key"]}
    assert changed == set(_recomputed(top))
    found = Findings.from_dict(manifest["findings"])
    assert found.placement == Placement("Fake NPU", 6, 0, Basis.COMPILED)
    assert not any("skipped" in m.text for m in found.messages)
    assert manifest["tools"] == {"fakec": "1.0"} and manifest["variants"][-1]["compile"]["fakec"] == "1.0"
    assert "tiny_tfkeras_int8_fake.tflite" in manifest["artifacts"]

    # the same tools again: every step from the cache, no target call
    fake.calls.clear()
    top, _ = _build(out, tf_keras_model, digits_calib, digits_eval)
    assert _recomputed(top) == [] and fake.calls == []


@pytest.mark.slow
def test_a_failed_target_has_findings_with_the_error(fake, tmp_path, tf_keras_model, digits_calib, digits_eval):
    from edgeq.errors import ConversionFailed
    from edgeq.pipeline import TargetsFailed

    def broken(*_a: Any, **_k: Any) -> CompileResult:
        raise ConversionFailed("fakec crashed", "reinstall fakec")

    fake.compile = broken
    with pytest.raises(TargetsFailed):
        _build(tmp_path / "out", tf_keras_model, digits_calib, digits_eval)
    manifest = json.loads((tmp_path / "out" / "fake" / "build.json").read_text())
    found = Findings.from_dict(manifest["findings"])
    assert manifest["status"] == "failed" and found.placement is None
    assert [m for m in found.messages if m.level == Level.ERROR] == [found.messages[0]] and found.messages[
        0
    ].text == "fakec crashed; reinstall fakec"
    assert manifest["tools"] == {"fakec": ABSENT}
