"""report.html of `edgeq build` on a detector with UNLABELED evaluation data, laid out by a real browser.

Two Keras detectors (tests/integration/test_yolo_head.py's `_yolo`): a YOLOv5/v8-style head (one
[4+C, N] output: boxes in pixels and scores under one int8 scale) and the same network with separate
boxes and scores outputs, built for coral and cpu on 64 calibration and 60 evaluation MNIST digits
(images only: no labels, so the build applies the default budget for a detection model). The verdict must
carry the fidelity figure with its interval, the detection metrics and which default budget applied; the
mixed-ranges warning sits under the verdict; headless Chromium at 1280 px finds no table past the page's
edge, none scrolling inside its box and no block over another.

Before: the build ended with "error: .../coral/build.json: `variants[0].outputs[0].role` must be one of
class_scores, regression, embedding, boxes, scores, got "yolo_head"" and wrote no report at all.
"""

from __future__ import annotations

import copy
import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import DATA

CHROMIUM = shutil.which("chromium")
NO_CHROMIUM = "headless Chromium is not installed (Debian package `chromium`): the layout needs a real browser"
HOSTILE = "<script>alert(1)</script>|a\nb"


def _build(model: Path, out: Path, d: Path, *extra: str, expect: int = 0) -> None:
    from edgeq.cli.app import run
    from edgeq.cli.main import cli

    args = ["build", model, "--target", "coral,cpu", "--data", d / "calib.npy", "--eval-data", d / "eval.npy"]
    code = run(cli, [str(a) for a in [*args, "-o", out, "--runs", "5", "--warmup", "1", *extra]])
    assert code == expect, f"edgeq build {model.name} exited {code}"


@pytest.fixture(scope="module")  # three real builds (about 30 s together): the tests using them are slow
def builds(tmp_path_factory) -> dict[str, Path]:
    """Build folders of the one-output YOLO head ("head": the planner splits it), the same head with plain PTQ
    only ("plain": its scores collapse, and the report says so) and the boxes + scores detector ("split")."""
    import tf_keras

    from edgeq.tfimport import tensorflow
    from tests.integration.test_yolo_head import _yolo

    tensorflow()
    d = tmp_path_factory.mktemp("detector")
    with np.load(DATA / "mnist_calib.npz") as z:
        np.save(d / "calib.npy", z["x"][:64])
    with np.load(DATA / "mnist_eval.npz") as z:
        np.save(d / "eval.npy", z["x"][:60])  # images only: unlabeled
    out = {}
    for name, split in (("head", False), ("split", True)):
        _yolo(tf_keras, split).save(d / f"{name}.keras")
        _build(d / f"{name}.keras", d / f"out_{name}", d)
        out[name] = d / f"out_{name}"
    _build(d / "head.keras", d / "out_plain", d, "--method", "ptq")  # plain PTQ as asked: its scores collapse, said
    out["plain"] = d / "out_plain"
    return out


def _deployed(run: Path, target: str) -> dict:
    return json.loads((run / target / "build.json").read_text())["variants"][-1]


def _verdicts(run: Path) -> list[str]:
    md = (run / "report.md").read_text()
    return re.findall(r"^- (?:coral|cpu): .*$", md.split("## Summary")[0], re.M)


@pytest.mark.slow
def test_the_verdict_of_an_unlabeled_yolo_head_carries_its_fidelity_and_budget(builds):
    run = builds["plain"]
    lines = _verdicts(run)
    assert len(lines) == 2, lines
    for line, target in zip(lines, ("coral", "cpu"), strict=True):
        v = _deployed(run, target)
        det, iv = v["detection"], v["intervals"]["sqnr_db"]
        assert v["accuracy"] is None and v["num_eval_samples"] == 60  # unlabeled, and enough to judge
        assert line.startswith(f"- {target}: worst-output SQNR {v['sqnr_db']:.2f} dB (95%: {iv['low']:.2f}..")
        assert (
            f"{det['quantized_detections']:,} of float's {det['reference_detections']:,} detections above 0.25" in line
        )
        assert f"class agreement {100 * det['class_agreement']:.1f}%" in line
        # measured: 277 of 565 anchors kept, class agreement 63%: the head's scores collapse under one scale
        assert det["quantized_detections"] < 0.7 * det["reference_detections"] and det["class_agreement"] < 0.9
        assert "one int8 scale over mixed ranges in 'output0'" in line
        assert "budget" not in line  # --method ptq: plain PTQ as asked, no budget applied
    page = (run / "report.html").read_text()
    verdict_part = page.split("<h2>Summary</h2>")[0]
    assert "<p class='warn'>WARNING (coral, cpu): output &#x27;output0&#x27;: rows 0-3 span" in verdict_part
    assert "<h2>Detection</h2>" in page and "output0 (YOLO, rows)" in page


@pytest.mark.slow
def test_the_planned_yolo_head_is_split_and_the_report_says_how_to_read_it(builds):
    run = builds["head"]
    for line, target in zip(_verdicts(run), ("coral", "cpu"), strict=True):
        v = _deployed(run, target)
        det = v["detection"]
        assert f"class agreement {100 * det['class_agreement']:.1f}%" in line and "mixed ranges" not in line
        # measured: 576 of float's 565 anchors above 0.25, class agreement 99.8% (plain: 277, 63%)
        assert det["class_agreement"] >= 0.9
        assert abs(det["quantized_detections"] - det["reference_detections"]) <= 0.3 * det["reference_detections"]
        doc = json.loads((run / target / "build.json").read_text())
        assert doc["plan"]["chosen"] == "split head" and doc["interface"]["split"]["output"] == "output0"
        budget = "budget worst-output SQNR >= 25 dB (the default for a detection model with unlabeled evaluation data)"
        assert budget + ": met" in line, line
    page = (run / "report.html").read_text()
    changed = page.split("<h2>Changed interface</h2>")[1].split("<h2>")[0]
    assert "output0 is now output0_0 [1,4,49] and output0_1 [1,3,49]" in changed


@pytest.mark.slow
def test_the_boxes_and_scores_detector_has_no_mixed_ranges_and_its_own_metrics(builds):
    run = builds["split"]
    for line, target in zip(_verdicts(run), ("coral", "cpu"), strict=True):
        v = _deployed(run, target)
        det = v["detection"]
        assert line.startswith(f"- {target}: worst-output SQNR ('{v['worst_output']}') {v['sqnr_db']:.2f} dB (95%:")
        assert f"{det['quantized_detections']:,} of float's {det['reference_detections']:,} detections" in line
        assert "mixed ranges" not in line and "(the default for a detection model" in line
        # measured: 268 of 271 detections above 0.5 kept, score agreement 97%
        assert det["quantized_detections"] >= 0.9 * det["reference_detections"]
    page = (run / "report.html").read_text()
    assert "class='warn'" not in page and "boxes + scores" in page


def _with_interface(src: Path, dst: Path) -> Path:
    """A copy of a build whose int8 variants record a split head (the manifest's ``interface``), one with
    hostile strings and the float variant with a record of a shape this edgeq does not know."""
    shutil.copytree(src, dst)
    for target in ("coral", "cpu"):
        f = dst / target / "build.json"
        doc = json.loads(f.read_text())
        parts = [{"name": "output0_0", "size": 4}, {"name": "output0_1", "size": 3}]
        split = {"output": "output0", "axis": 1, "parts": parts}
        text = "the head's rows are two outputs now: boxes (4 rows) and class scores (3 rows), each with its own scale"
        doc["variants"][-1]["interface"] = {"split": split, "text": text}
        if target == "cpu":
            bad = copy.deepcopy(split) | {"output": HOSTILE, "axis": True, "parts": [{"name": HOSTILE, "size": "4"}, 7]}
            doc["variants"][-1]["interface"] = {"split": bad, "text": HOSTILE}
            doc["variants"][0]["interface"] = ["not", "a", "record"]
        f.write_text(json.dumps(doc))
    return dst


@pytest.mark.slow
def test_a_changed_interface_is_its_own_section_and_its_strings_are_escaped(run_cli, builds, tmp_path):
    run = _with_interface(builds["head"], tmp_path / "run")
    r = run_cli("report", run)
    assert r.exit_code == 0, r.stderr
    page = (run / "report.html").read_text()
    section = page.split("<h2>Changed interface</h2>")[1].split("<h2>")[0]
    assert "<td>coral</td><td>int8</td><td>output0</td><td>split along axis 1 into 2 outputs</td>" in section
    assert "<td>output0_0 (4), output0_1 (3)</td>" in section
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;|a b" in section
    assert "changed (a record this edgeq does not read)" in section
    md = (run / "report.md").read_text()
    assert "| coral | int8 | output0 | split along axis 1 into 2 outputs | output0_0 (4), output0_1 (3) |" in md
    assert "\\<script>alert(1)\\</script>\\|a b" in md  # one line, pipe and tags escaped: the table stays one


PROBE = """<script>
var body = document.body.getBoundingClientRect(), out = {width: document.documentElement.scrollWidth};
out.tables = Array.from(document.querySelectorAll('table')).map(function (t) {
  var box = t.parentElement;
  return {right: Math.round(t.getBoundingClientRect().right), scrolls: box.scrollWidth > box.clientWidth + 1};
});
out.body_right = Math.round(body.right);
var blocks = Array.from(document.body.children).filter(function (e) { return e.id !== 'probe' && e.tagName !== 'SCRIPT'; });
out.overlaps = [];
for (var i = 1; i < blocks.length; i++) {
  var a = blocks[i - 1].getBoundingClientRect(), b = blocks[i].getBoundingClientRect();
  if (a.bottom > b.top + 0.5) out.overlaps.push(blocks[i - 1].tagName + '/' + blocks[i].tagName);
}
var verdict = document.querySelector('table.verdict');
out.verdict = verdict ? verdict.innerText : '';
out.warnings = Array.from(document.querySelectorAll('p.warn')).map(function (p) {
  return p.getBoundingClientRect().height;
});
var pre = document.createElement('pre'); pre.id = 'probe'; pre.textContent = JSON.stringify(out);
document.body.appendChild(pre);
</script></body>"""


def _layout(report: Path, tmp_path: Path) -> dict:
    """What Chromium laid out at 1280 px: the page's width, each table's right edge and whether it scrolls
    inside its box, blocks that overlap, the verdict table's text and the warnings' heights."""
    page = tmp_path / f"probe_{report.parent.name}.html"
    page.write_text(report.read_text().replace("</body>", PROBE))
    args = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--hide-scrollbars"]
    args += [f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1280,2000", "--dump-dom", page.as_uri()]
    p = subprocess.run(args, capture_output=True, text=True, timeout=120)
    m = re.search(r'<pre id="probe">(.*?)</pre>', p.stdout, re.S)
    assert m, f"chromium printed no layout (exit {p.returncode}): {p.stderr[-400:]}"
    return json.loads(html.unescape(m.group(1)))


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason=NO_CHROMIUM)
@pytest.mark.parametrize("name", ["head", "plain", "split", "interface"])
def test_chromium_at_1280_px_cuts_off_no_table_and_shows_the_fidelity(builds, tmp_path, run_cli, name):
    run = builds.get(name) or _with_interface(builds["head"], tmp_path / "run")
    if name == "interface":
        assert run_cli("report", run).exit_code == 0
    got = _layout(run / "report.html", tmp_path)
    assert got["width"] <= 1280, got["width"]
    assert got["tables"] and all(t["right"] <= got["body_right"] + 1 and not t["scrolls"] for t in got["tables"]), got
    assert got["overlaps"] == [], got["overlaps"]
    verdict = got["verdict"]
    # each target's row leads with its worst-output SQNR and its interval, as the browser shows the cell
    led = re.findall(
        r"^(coral|cpu)\tworst-output SQNR (?:\('\w+'\) )?[\d.]+ dB \(95%: [\d.]+\.\.[\d.]+ dB, n=60\)", verdict, re.M
    )
    assert led == ["coral", "cpu"], verdict
    defaults = verdict.count("(the default for a detection model with unlabeled evaluation data)")
    assert defaults == (0 if name == "plain" else 2), verdict  # --method ptq applies no budget
    if name == "plain":  # the mixed-ranges warning is shown, not hidden
        assert got["warnings"] and all(h > 10 for h in got["warnings"]), got["warnings"]
    if name in ("head", "interface"):  # how to read the split outputs comes right after the verdict
        assert "<h2>Changed interface</h2>" in (run / "report.html").read_text()


def test_the_budget_clause_says_which_budget_and_whether_the_figure_meets_it():
    from edgeq.report.verdict import budget_clause

    why = (
        "the default for a detection model with unlabeled evaluation data; --min-sqnr sets it, labels allow --max-drop"
    )
    floor = {"max_drop": None, "min_sqnr": 25.0, "why": why}
    said = "; budget worst-output SQNR >= 25 dB (the default for a detection model with unlabeled evaluation data)"
    assert budget_clause(floor, {"sqnr_db": 25.0}) == said + ": met"
    assert budget_clause(floor, {"sqnr_db": 24.99}) == said + ": MISSED"
    assert budget_clause(floor, {}) == said  # no figure: not judged here
    drop = {"max_drop": 1.0, "min_sqnr": None, "why": "given"}
    assert (
        budget_clause(drop, {"accuracy": 0.95, "reference_accuracy": 0.97})
        == "; budget top-1 drop <= 1 point (given): MISSED"
    )
    assert budget_clause(None, {"sqnr_db": 50.0}) == "" and budget_clause({"why": "x"}, {"sqnr_db": 50.0}) == ""
    mixed = {"sqnr_db": 51.3, "outputs": [{"name": "output0", "mixed_ranges": {"axis": "rows"}}]}
    assert budget_clause(floor, mixed) == said + ": MISSED"  # SQNR reads fine, the scores are gone
    constant = {"sqnr_db": 99.0, "outputs": [{"name": "o", "constant_reference": 0.0}]}
    assert budget_clause(floor, constant) == ""  # a constant reference judges nothing, not even a budget


@pytest.mark.parametrize(
    "record",
    [
        "a string",
        ["a", "list"],
        {"split": None},
        {"split": "output0"},
        {"split": {"parts": "two"}},
        {"split": {"output": {"nested": 1}, "axis": "1", "parts": [None, 3, {"name": None, "size": True}]}},
        {"split": {"output": "o", "axis": 1, "parts": [{"name": "p", "size": 1}] * 100}},
        {"unknown": 1, "text": 7},
        {"text": "x" * 10_000 + "\n<b>"},
    ],
)
def test_an_interface_record_of_any_shape_renders_as_bounded_one_line_cells(record):
    from edgeq.report.render import INTERFACE_HEADER, interface_rows

    rows = interface_rows({"target": "cpu", "variants": [{"variant": "int8", "interface": record}]})
    assert len(rows) == 1 and len(rows[0]) == len(INTERFACE_HEADER)
    assert all(isinstance(c, str) and "\n" not in c and len(c) <= 2000 for c in rows[0]), rows
    assert interface_rows({"target": "cpu", "variants": [{"variant": "int8"}]}) == []


def test_detection_rows_name_the_head_and_what_each_variant_keeps():
    from edgeq.report.render import detection_rows

    yolo = {"boxes": "output0", "scores": "output0", "layout": "rows", "score_threshold": 0.25, "classes": 3}
    yolo |= {"reference_detections": 565, "quantized_detections": 277, "class_agreement": 0.632, "box_iou_mean": 0.99}
    pair = {"boxes": "boxes", "scores": "scores", "score_threshold": 0.5, "score_agreement": 0.967}
    t = {
        "variants": [{"variant": "int8", "detection": yolo}, {"variant": "float"}, {"variant": "x", "detection": pair}]
    }
    assert detection_rows(t) == [
        ["int8", "output0 (YOLO, rows)", "0.25", "277 / 565", "63.20%", "0.990", "-"],
        ["x", "boxes + scores", "0.5", "-", "-", "-", "96.70%"],
    ]
