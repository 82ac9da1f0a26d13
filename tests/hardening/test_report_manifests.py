"""edgeq report on damaged manifests: exit 3 naming the file and the field, nothing written."""

from __future__ import annotations

import copy
import json

import pytest

from edgeq.findings import Basis, Figure, Findings, info

TOP = {
    "schema_version": 1,
    "config": {"method": "auto", "max_drop": None, "targets": ["cpu"]},
    "inputs": {"model": "m.keras", "data": "calib.npz", "eval_data": "eval.npz", "train_data": None},
    "targets": ["cpu"],
    "stages": [{"name": "float", "key": "k", "cached": False, "seconds": 1.5}],
    "gate_failures": [],
}
VARIANT = {
    "variant": "int8",
    "output": "cpu/m_int8.tflite",
    "size_bytes": 29696,
    "accuracy": None,  # no accuracy: the report has no plot, which keeps the test fast
    "worst_class_drop_points": None,
    "float_ops": 0,
    "check": None,
    "compile": None,
    "latency_ms": {"p50": 0.03, "p90": 0.04, "p99": 0.05},
    "latency_on": "cpu (host)",
    "bench_skipped": None,
}
STEP = {
    "name": "int8 PTQ",
    "skipped": "",
    "meets": True,
    "misses": [],
    "accuracy": 0.97,
    "size_bytes": 29696,
    "num_ops": 9,
    "num_float_ops": 0,
    "ops_off_accelerator": 0,
}
FINDINGS = Findings(
    no_accelerator="all ops on the CPU",
    latency=Figure(0.03, "ms", Basis.MEASURED, where="host", how="p50 of 100 runs"),
    memory={"model": Figure(29696, "bytes", Basis.MEASURED, where="the .tflite file")},
    messages=(info("the cache was reused"),),
)
TARGET = {
    "schema_version": 1,
    "target": "cpu",
    "description": "host CPU",
    "plan": {"chosen": "int8 PTQ", "stopped_because": "meets", "steps": [STEP]},
    "variants": [VARIANT],
    "findings": FINDINGS.to_dict(),
}


def _write(run_dir, top, target):
    (run_dir / "cpu").mkdir(parents=True, exist_ok=True)
    for path, doc in ((run_dir / "build.json", top), (run_dir / "cpu" / "build.json", target)):
        path.write_text(doc if isinstance(doc, str) else json.dumps(doc))


def test_a_well_formed_manifest_renders(run_cli, tmp_path):
    _write(tmp_path, TOP, TARGET)
    r = run_cli("report", tmp_path)
    assert r.exit_code == 0, r.stderr
    md = (tmp_path / "report.md").read_text()
    assert "| cpu | int8 | 29,696 | - | - | - | - | - | 0 |" in md
    assert "| cpu | int8 | 0.030 | 0.050 | - | measured | cpu (host) | - |" in md
    assert (
        "- cpu: fidelity not measured (no evaluation data); all ops on the CPU; latency 0.030 ms p50 of 100 runs" in md
    )
    assert "| model | 29,696 bytes | measured (the .tflite file) |" in md and "cpu: the cache was reused" in md


def _top(**changes):
    doc = copy.deepcopy(TOP)
    doc.update(changes)
    return doc


def _findings(**changes):
    doc = copy.deepcopy(TARGET)
    for path, value in changes.items():  # latency__basis="x": findings["latency"]["basis"] = "x"
        *keys, last = path.split("__")
        at = doc["findings"]
        for k in keys:
            at = at[k]
        at[last] = value
    return doc


def _variant(**changes):
    doc = copy.deepcopy(TARGET)
    doc["variants"][0].update(changes)
    return doc


# (top manifest, target manifest, the file, what the message says)
DAMAGED = [
    ("[]", TARGET, "build.json", "the document must be an object, got [] (an array)"),
    ("{}", TARGET, "build.json", "`config` is missing"),
    (_top(config="auto"), TARGET, "build.json", '`config` must be an object, got "auto" (a string)'),
    (_top(stages="abc"), TARGET, "build.json", '`stages` must be an array, got "abc"'),
    (_top(stages=[{"name": "float", "cached": "no", "seconds": 1}]), TARGET, "build.json", "`stages[0].cached`"),
    (_top(targets=[]), TARGET, "build.json", "`targets` is empty"),
    (_top(targets=["../../etc"]), TARGET, "build.json", "`targets[0]` is not a target name"),
    (_top(targets=[3]), TARGET, "build.json", "`targets[0]` must be a string, got 3 (an integer)"),
    (_top(debug={"dir": 5}), TARGET, "build.json", "`debug.dir` must be a string"),
    (TOP, {"target": "cpu"}, "cpu/build.json", "`variants` is missing"),
    (TOP, dict(TARGET, variants=[]), "cpu/build.json", "`variants` is empty"),
    (TOP, "5", "cpu/build.json", "the document must be an object, got 5"),
    (TOP, _variant(size_bytes="big"), "cpu/build.json", '`variants[0].size_bytes` must be an integer, got "big"'),
    (TOP, _variant(size_bytes=True), "cpu/build.json", "`variants[0].size_bytes` must be an integer, got true"),
    (TOP, _variant(latency_ms={"p50": "x"}), "cpu/build.json", "`variants[0].latency_ms.p50` must be a number"),
    (TOP, _variant(accuracy=[1]), "cpu/build.json", "`variants[0].accuracy` must be a number, got [1]"),
    (TOP, dict(TARGET, plan={"steps": [{}]}), "cpu/build.json", "`plan.steps[0].name` is missing"),
    (TOP, dict(TARGET, findings="w"), "cpu/build.json", "`findings` must be an object"),
    (TOP, _findings(latency__value="1"), "cpu/build.json", '`findings.latency.value` must be a number, got "1"'),
    (TOP, _findings(memory={"arena": 5}), "cpu/build.json", "`findings.memory.arena` must be an object, got 5"),
    (TOP, _findings(memory__model__unit=None), "cpu/build.json", "`findings.memory.model.unit` must be a string"),
    (TOP, _findings(placement={"on": 3}), "cpu/build.json", "`findings.placement.accelerator` is missing"),
    (TOP, _findings(messages=["fits"]), "cpu/build.json", "`findings.messages[0]` must be an object"),
    ("[" * 100000, TARGET, "build.json", "is not valid JSON"),
    (b"\xff\xfe{}", TARGET, "build.json", "is not valid JSON"),
]

_IV = {
    "what": "accuracy_drop_points",
    "estimate": 1.0,
    "low": -1.0,
    "high": 3.0,
    "n": 100,
    "confidence": 0.95,
    "method": "-",
}
# issue 19, defect 10: a hand-edited enum made `report` exit 1 (ValueError: unknown interval kind); every enum
# the report reads is refused as bad input naming the file, the key and the allowed values
ENUMS = [
    (_top(config={"method": "fast", "max_drop": None}), TARGET, "build.json", "`config.method` must be one of ptq, qat, auto, got \"fast\""),
    (_top(status="done"), TARGET, "build.json", "`status` must be one of running, ok, failed"),
    (TOP, dict(TARGET, status="meh"), "cpu/build.json", "`status` must be one of ok, failed, got \"meh\""),
    (TOP, _variant(latency_kind="guessed"), "cpu/build.json", "`variants[0].latency_kind` must be one of measured, predicted, estimated"),
    (TOP, _findings(latency__basis="guessed"), "cpu/build.json",
     "`findings.latency.basis` must be one of measured, compiled, predicted, estimated, got \"guessed\""),
    (TOP, _findings(messages=[{"level": "note", "text": "x"}]), "cpu/build.json",
     "`findings.messages[0].level` must be one of info, warning, error"),
    (TOP, _variant(intervals={"accuracy_drop_points": dict(_IV, what="bogus")}), "cpu/build.json",
     "`variants[0].intervals.accuracy_drop_points.what` must be one of accuracy_drop_points, got \"bogus\""),
    (TOP, _variant(intervals={"agreement": _IV}), "cpu/build.json", "`variants[0].intervals.agreement.what` must be one of agreement"),
    (TOP, _variant(intervals={"accuracy_drop_points": dict(_IV, estimate=5.0)}), "cpu/build.json",
     "`variants[0].intervals.accuracy_drop_points` is not an interval (estimate 5.0 outside its interval"),
    (TOP, _variant(intervals={"accuracy_drop_points": {"what": "accuracy_drop_points"}}), "cpu/build.json",
     "`variants[0].intervals.accuracy_drop_points.estimate` is missing"),
    (TOP, _variant(outputs=[{"name": "a", "role": "logits"}]), "cpu/build.json", "`variants[0].outputs[0].role` must be one of class_scores"),
]  # fmt: skip
DAMAGED += ENUMS


@pytest.mark.parametrize(("top", "target", "file", "says"), DAMAGED, ids=[d[3][:40] for d in DAMAGED])
def test_damaged_manifest_is_bad_input(run_cli, tmp_path, top, target, file, says):
    if isinstance(top, bytes):
        _write(tmp_path, "{}", target)
        (tmp_path / "build.json").write_bytes(top)
    else:
        _write(tmp_path, top, target)
    r = run_cli("report", tmp_path)
    assert r.exit_code == 3, r.stderr
    assert r.stderr.startswith(f"error: {tmp_path / file}") and says in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and r.stderr.count("\n") == 1
    assert not (tmp_path / "report.html").exists() and not (tmp_path / "report.md").exists()


def test_target_manifest_that_is_a_folder(run_cli, tmp_path):
    (tmp_path / "cpu" / "build.json").mkdir(parents=True)
    (tmp_path / "build.json").write_text(json.dumps(TOP))
    r = run_cli("--json", "report", tmp_path)
    assert r.exit_code == 3
    assert r.json["error"]["message"].startswith(f"cannot read {tmp_path / 'cpu' / 'build.json'}")


def test_debug_plot_found_when_reported_from_another_folder(run_cli, tmp_path, monkeypatch):
    """The debugger's folder is recorded relative to where the build ran."""
    import base64

    png = base64.b64decode(
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
    )
    run_dir = tmp_path / "edgeq-out"
    (run_dir / ".cache" / "debug-abc").mkdir(parents=True)
    (run_dir / ".cache" / "debug-abc" / "rmse_over_scale.png").write_bytes(png)
    _write(run_dir, _top(debug={"dir": "edgeq-out/.cache/debug-abc", "worst_layers": []}), TARGET)
    monkeypatch.chdir(tmp_path / "edgeq-out" / "cpu")
    r = run_cli("report", run_dir)
    assert r.exit_code == 0, r.stderr
    assert "![rmse/scale per layer]" in (run_dir / "report.md").read_text()
