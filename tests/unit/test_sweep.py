"""Several models in one build (issue 23, item 1), without converting anything: folder names, the sweep's
exit code, the summary's escaping, edgeq.toml's ``models``, the task's picklability, and the failures that
stop a sweep before any model (or that one model meets) reported with their codes."""

from __future__ import annotations

import json
import pickle
import re

import pytest

from edgeq.build.sweep import SUMMARY_FILES, BuildOutcome, BuildSpec, TargetSummary, build_one, folder_names
from edgeq.config import BuildConfig, SweepConfig, load_toml
from edgeq.errors import BadInput, UsageError, worst_exit_code
from tests.conftest import DATA

SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def test_folder_names_are_safe_unique_and_derived_from_the_file_name():
    models = [
        "a/net.keras",
        "b/net.keras",
        "NET.onnx",  # differs only in case: a clash on a case-insensitive disk
        "nets/resnet/",  # a SavedModel folder
        "../../etc/passwd",
        "$(rm -rf ~);`id`.keras",
        "..keras",
        "x/..",
        "モデル.keras",
        "summary.json.keras",  # would be the summary's own file
        "n" * 300 + ".keras",
        "net-2.keras",  # the name the second net.keras took
    ]
    names = folder_names(models)
    assert names[:4] == ["net", "net-2", "NET-3", "resnet"]
    assert names[4] == "passwd" and names[5] == "rm_-rf_id"
    assert names[6] == names[7].removesuffix("-2") == "model" and names[8] == "model-3"
    assert names[9] == "summary.json-2" and len(names[10]) == 64
    assert names[11] == "net-2-2"
    assert all(SAFE.match(n) for n in names), names
    assert len({n.casefold() for n in names} | {f.casefold() for f in SUMMARY_FILES}) == len(names) + 3


@pytest.mark.parametrize(
    ("codes", "worst"),
    [([], 0), ([0, 0], 0), ([0, 6, 3, 4], 3), ([6, 5], 5), ([0, 6], 6), ([4, 1, 3], 1), ([0, 130, 1], 130), ([42], 1)],
)
def test_a_sweep_exits_with_its_worst_models_code(codes, worst):
    assert worst_exit_code(codes) == worst


def _doc(model: str) -> dict:
    built = TargetSummary("cpu", "ok", "top-1 drop 0.10 points", "all ops on the CPU", "-", "0.1 ms p50, measured")
    good = BuildOutcome(model, "x", 0, None, (built,), {"targets": {}})
    bad = BuildOutcome(
        "[evil](javascript:alert(1))",
        "evil",
        3,
        {"type": "bad_input", "message": f"model file not found: {model}", "hint": "check the path", "exit_code": 3},
        (TargetSummary("cpu", "failed", failure=f"model file not found: {model}"),),
    )
    from edgeq.build.sweep import summary_doc

    return summary_doc(__import__("pathlib").Path("out"), ["cpu"], [good, bad])


def test_the_summary_escapes_a_model_name_with_html_and_markdown_in_it():
    from edgeq.report.summary import to_html, to_markdown

    name = "<script>alert(1)</script>|**bold**_`x`.keras"
    doc = _doc(name)
    md = to_markdown(doc)
    assert "<script>" not in md and "**bold**" not in md and "](javascript" not in md
    assert r"| \<script\>alert\(1\)\</script\>\|\*\*bold\*\*\_\`x\`.keras | cpu |" in md
    assert r"| \[evil\]\(javascript:alert\(1\)\) | cpu | FAILED \(exit 3\): model file not found: \<script" in md
    for row in [ln for ln in md.splitlines() if ln.startswith("| ") and "cpu" in ln]:
        assert len(re.findall(r"(?<!\\)\|", row)) == 7, row  # six cells: no name ends a cell
    page = to_html(doc)
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;|**bold**" in page
    assert "javascript" not in page.split("<h2>Build folders")[1].split("href")[0]  # no link made of a name
    assert doc["exit_code"] == 3 and doc["failed_models"] == ["[evil](javascript:alert(1))"]


def test_edgeq_toml_lists_models(tmp_path):
    toml = tmp_path / "edgeq.toml"
    toml.write_text('[build]\nmodels = ["a.keras", "b/c.onnx"]\ntarget = ["cpu"]\n')
    settings = load_toml(str(toml))
    assert settings["models"] == ("a.keras", "b/c.onnx")
    toml.write_text('models = ["a.keras"]\nmodel = "b.keras"\n')
    with pytest.raises(BadInput, match="`model` and `models` are both set"):
        load_toml(str(toml))
    toml.write_text("models = 3\n")
    with pytest.raises(BadInput, match="`models` must be a string or an array of strings"):
        load_toml(str(toml))


def test_a_sweep_config_checks_its_models():
    assert SweepConfig("a.keras").models == ("a.keras",)
    with pytest.raises(UsageError, match="no model given"):
        SweepConfig(())
    with pytest.raises(UsageError, match="is not a path"):
        SweepConfig(("a.keras", "b\0.keras"))


def test_a_models_build_is_a_picklable_task_whose_failure_is_its_outcome(tmp_path):
    model, out = str(tmp_path / "missing.keras"), str(tmp_path / "out" / "m")
    cfg = BuildConfig(targets=("cpu",), model=model, data=str(DATA / "digits_calib.npz"), out_dir=out)
    spec = BuildSpec(1, 1, cfg.model or "", "m", cfg)
    assert pickle.loads(pickle.dumps(spec)) == spec
    outcome = build_one(spec)
    assert pickle.loads(pickle.dumps(outcome)) == outcome
    assert outcome.exit_code == 3 and not outcome.ok and outcome.build is None
    assert outcome.reason().startswith("model file not found") and outcome.targets[0].status == "failed"


def test_a_sweep_of_missing_models_reports_each_in_place(run_cli, tmp_path):
    out = tmp_path / "out"
    a, b = tmp_path / "a.keras", tmp_path / "b" / "a.keras"
    r = run_cli("--json", "build", a, b, "--target", "cpu,mcu", "--data", DATA / "digits_calib.npz", "-o", out)
    assert r.exit_code == 3, r.stderr
    doc = r.json  # exactly one document
    assert doc["ok"] is False and doc["error"]["exit_code"] == 3 and doc["error"]["type"] == "models_failed"
    models = doc["result"]["models"]
    assert [m["folder"] for m in models] == ["a", "a-2"] and all(m["exit_code"] == 3 for m in models)
    assert models[0]["reason"].startswith("model file not found") and models[0]["report"] is None
    assert [t["target"] for t in models[1]["targets"]] == ["cpu", "mcu"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["failed_models"] == [str(tmp_path / "a.keras"), str(tmp_path / "b" / "a.keras")]
    assert sorted(p.name for p in out.iterdir()) == [".edgeq-sweep.json", "summary.html", "summary.json", "summary.md"]


def test_what_every_model_would_refuse_is_refused_before_any(run_cli, tmp_path):
    out = tmp_path / "out"
    r = run_cli("build", tmp_path / "a.keras", tmp_path / "b.keras", "--target", "cpu,nosuch", "-o", out)
    assert r.exit_code == 2 and "nosuch" in r.stderr and not out.exists()
    r = run_cli("build", tmp_path / "a.keras", tmp_path / "b.keras", "--target", "cpu", "--board", "x", "-o", out)
    assert r.exit_code == 2 and "--board" in r.stderr and not out.exists()
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep")
    r = run_cli("build", tmp_path / "a.keras", tmp_path / "b.keras", "--target", "cpu", "-o", foreign)
    assert r.exit_code == 3 and "not an edgeq sweep folder" in r.stderr
    assert sorted(p.name for p in foreign.iterdir()) == ["notes.txt"]


def test_the_summary_says_where_a_model_was_built_and_whether_it_was_retried():
    from edgeq.report.summary import ran_text

    assert ran_text(None) == "" and ran_text({"host": "", "node": "ray", "attempts": 3}) == ""  # never ran
    assert ran_text({"host": "pi", "node": "in-process", "attempts": 1}) == " on pi"
    node = "5a2220a9b7da" + "0" * 44
    assert ran_text({"host": "lab", "node": node, "attempts": 1}) == " on lab (node 5a2220a9b7da)"
    said = ran_text({"host": "lab", "node": node, "attempts": 2})
    assert said == " on lab (node 5a2220a9b7da), retried: 2 attempts (a worker died)"
