"""edgeq build with several models (issue 23, item 1): three tiny models (two sharing a file name, one named
with HTML and Markdown) and a broken one, for cpu, mcu and coral (its check and prediction: no Edge TPU here).
Each good model gets its own build folder, exactly as a one-model build makes it; the broken one is reported
in place with its reason while the others finish; the summary's model x target table carries each verdict
with its basis; and edgeq.toml's ``models`` list is a sweep, its progress naming the model being built."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
from pathlib import Path

import pytest

from tests.conftest import DATA

pytestmark = pytest.mark.slow
TARGETS = ["cpu", "mcu", "coral"]
HOSTILE = "<b>x<i>|*y*[l](j).keras"  # a file name a user may well have: HTML and Markdown in it
COMMON = ["--method", "ptq", "--runs", "2", "--warmup", "0", "--data", str(DATA / "digits_calib.npz")]


@pytest.fixture(scope="module")
def sweep(tmp_path_factory, tf_keras_model):
    from edgeq.cli.app import run
    from edgeq.cli.main import cli

    work = tmp_path_factory.mktemp("sweep")
    for sub in ("a", "b"):
        (work / sub).mkdir()
        shutil.copy(tf_keras_model, work / sub / "tiny.keras")
    shutil.copy(tf_keras_model, work / HOSTILE)
    (work / "broken.keras").write_bytes(b"PK\x03\x04 not a zip at all" * 20)
    models = [work / "a" / "tiny.keras", work / "broken.keras", work / "b" / "tiny.keras", work / HOSTILE]
    out = work / "out"
    stdout = io.StringIO()
    args = ["--json", "build", *map(str, models), "--target", ",".join(TARGETS), "-o", str(out), *COMMON]
    args += ["--eval-data", str(DATA / "digits_eval.npz")]
    with contextlib.redirect_stdout(stdout):
        code = run(cli, args)
    return code, json.loads(stdout.getvalue()), out, [str(m) for m in models]


def test_a_broken_model_is_reported_in_place_and_the_others_finish(sweep):
    code, doc, out, models = sweep
    assert code == 3  # the worst of the models' codes: the broken one's bad input (3) over the others' 0
    assert doc["ok"] is False and doc["error"]["exit_code"] == 3 and doc["command"] == "build"
    rows = doc["result"]["models"]
    assert [m["model"] for m in rows] == models  # in the order given
    assert [m["exit_code"] for m in rows] == [0, 3, 0, 0]
    broken = rows[1]
    assert "truncated or corrupt" in broken["reason"] and broken["report"] is None
    assert [t["status"] for t in broken["targets"]] == ["failed"] * 3
    assert all(t["failure"].startswith(str(models[1])) for t in broken["targets"])
    summary = json.loads((out / "summary.json").read_text())
    assert summary["failed_models"] == [models[1]] and summary["exit_code"] == 3
    md = (out / "summary.md").read_text()
    assert "FAILED \\(exit 3\\): " in md and md.count("truncated or corrupt") == 4  # 3 targets, 1 folder row


def test_each_model_has_its_own_build_folder_as_a_one_model_build_makes_it(sweep):
    _, doc, out, models = sweep
    names = [m["folder"] for m in doc["result"]["models"]]
    assert names == ["tiny", "broken", "tiny-2", "b_x_i_y_l_j"]  # two tiny.keras: the second is tiny-2
    expected = {".edgeq-sweep.json", "summary.json", "summary.md", "summary.html", "tiny", "tiny-2", "b_x_i_y_l_j"}
    assert set(os.listdir(out)) - {"broken"} == expected  # the broken model may leave its claimed folder
    for name, model in zip(names, models, strict=True):
        if name == "broken":
            continue
        folder = out / name
        assert {"build.json", "report.html", "report.md", *TARGETS} <= set(os.listdir(folder))
        top = json.loads((folder / "build.json").read_text())
        assert top["inputs"]["model"] == model and top["config"]["out_dir"] == str(folder)
        assert all((folder / t / "build.json").is_file() for t in TARGETS)
        if name.startswith("tiny"):
            assert (folder / "cpu" / "tiny_int8.tflite").is_file()


def test_the_summary_has_every_verdict_with_its_basis(sweep):
    _, doc, out, _ = sweep
    built = [m for m in doc["result"]["models"] if m["ok"]]
    assert len(built) == 3
    for m in built:
        by = {t["target"]: t for t in m["targets"]}
        assert list(by) == TARGETS and all(t["status"] == "ok" for t in by.values())
        assert by["cpu"]["latency_basis"] == "measured" and "measured on host" in by["cpu"]["latency"]
        assert by["mcu"]["latency_basis"] == "estimated" and "estimated for" in by["mcu"]["latency"]
        assert "fits: " in by["mcu"]["fit"] and by["mcu"]["fit"].endswith(f"({by['mcu']['fit_basis']})")
        assert set(by["mcu"]["fit_basis"].replace(",", " ").split()) <= {"RAM", "flash", "measured", "estimated"}
        assert by["coral"]["placement_basis"] == "predicted" and "(predicted)" in by["coral"]["accelerator"]
        for t in by.values():
            assert t["fidelity"].startswith("top-1 drop")  # labeled evaluation data
        # the same verdict as the model's own report
        report = (out / m["folder"] / "report.md").read_text()
        assert by["mcu"]["latency"].split(":")[0] in report
    html = (out / "summary.html").read_text()
    assert "<b>x<i>" not in html and "&lt;b&gt;x&lt;i&gt;|*y*[l](j).keras" in html
    md = (out / "summary.md").read_text()
    assert "<b>" not in md and r"\<b\>x\<i\>\|\*y\*\[l\]\(j\).keras" in md


def test_edgeq_toml_lists_the_models_and_progress_names_each(run_cli, tmp_path, monkeypatch, tf_keras_model):
    shutil.copy(tf_keras_model, tmp_path / "tiny.keras")
    (tmp_path / "edgeq.toml").write_text(
        '[build]\nmodels = ["tiny.keras", "gone.keras"]\ntarget = ["cpu"]\nmethod = "ptq"\nruns = 2\nwarmup = 0\n'
        f'data = "{DATA / "digits_calib.npz"}"\nout-dir = "sweep"\n'
    )
    monkeypatch.chdir(tmp_path)
    r = run_cli("build")
    assert r.exit_code == 3, r.stderr
    assert "model 1/2 tiny.keras: building into sweep/tiny" in r.stderr and "[tiny] [1/" in r.stderr
    assert "model 2/2 gone.keras: FAILED (exit 3): model file not found" in r.stderr
    assert r.stderr.rstrip().splitlines()[-1].startswith("error: 1 of 2 models failed (gone.keras: model file not")
    assert r.stdout.startswith("2 models x 1 target: 1 built, 1 failed (exit 3: bad input")  # the table, on stdout
    assert (tmp_path / "sweep" / "tiny" / "cpu" / "tiny_int8.tflite").is_file()


def test_models_built_in_a_process_pool_give_the_same_bytes(sweep, tmp_path):
    """--jobs 2: the models are tasks of a process pool (edgeq.executor); each model's artifacts are
    byte-identical to the one-job sweep's, and a broken model is still reported in place."""
    from edgeq.cli.app import run
    from edgeq.cli.main import cli

    _, _, first, models = sweep
    out = tmp_path / "pooled"
    stdout = io.StringIO()
    args = ["--json", "build", models[0], models[1], "--target", ",".join(TARGETS), "-o", str(out), *COMMON]
    args += ["--eval-data", str(DATA / "digits_eval.npz"), "--jobs", "2"]
    with contextlib.redirect_stdout(stdout):
        code = run(cli, args)
    doc = json.loads(stdout.getvalue())
    assert code == 3 and [m["exit_code"] for m in doc["result"]["models"]] == [0, 3]

    def artifacts(folder: Path) -> list[Path]:  # the targets' files, not the cache (its keys name the folder)
        return sorted(p.relative_to(folder) for p in folder.rglob("*.tflite") if ".cache" not in p.parts)

    built = artifacts(first / "tiny")
    assert len(built) >= 5 and built == artifacts(out / "tiny")
    for rel in built:
        assert (out / "tiny" / rel).read_bytes() == (first / "tiny" / rel).read_bytes(), rel
