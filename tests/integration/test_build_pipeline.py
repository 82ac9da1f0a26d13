"""edgeq build as a pipeline: cached stages, resume after SIGINT, edgeq.toml, the report."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest

from edgeq.findings import Findings
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    from edgeq.cli.app import run
    from edgeq.cli.main import cli

    out = tmp_path_factory.mktemp("b") / "out"
    code = run(cli, ["build", "--target", "cpu", "-o", str(out), "--runs", "10", "--warmup", "1"])
    assert code == 0
    return out


def test_second_run_takes_every_stage_from_the_cache(run_cli, built):
    r = run_cli("--json", "build", "--target", "cpu", "-o", built, "--runs", "10", "--warmup", "1")
    assert r.exit_code == 0, r.stderr
    stages = r.json["result"]["stages"]
    assert stages and all(s["cached"] for s in stages)
    assert {s["name"].split(" [")[0] for s in stages} >= {
        "float",
        "eval",
        "bench",
        "debug",
        "quantize",
        "check",
        "compile",
    }


def test_a_change_redoes_only_what_it_touches(run_cli, built):
    r = run_cli("--json", "build", "--target", "cpu", "-o", built, "--runs", "12", "--warmup", "1")
    assert r.exit_code == 0, r.stderr
    ran = {s["name"].split(" [")[0] for s in r.json["result"]["stages"] if not s["cached"]}
    assert ran == {"bench"}  # only the benchmark settings changed


def test_how_the_model_is_loaded_is_part_of_the_key(run_cli, built, tmp_path):
    """--custom-objects or --trust-model can change what the same file computes: stages that load the
    model run again; the benchmark of an unchanged .tflite does not."""
    out = tmp_path / "out"
    shutil.copytree(built, out)
    r = run_cli("--json", "build", "--target", "cpu", "-o", out, "--runs", "10", "--warmup", "1", "--trust-model")
    assert r.exit_code == 0, r.stderr
    ran = {s["name"].split(" [")[0] for s in r.json["result"]["stages"] if not s["cached"]}
    assert {"float", "quantize", "debug"} <= ran


def test_report_is_self_contained_and_rerenders(run_cli, built):
    html = (built / "report.html").read_text()
    assert "data:image/png;base64," in html
    assert not re.search(r"""(src|href)=['"]https?://""", html)  # opens offline
    for title in (
        "Verdict per target",
        "Steps taken",
        "Variants: size and accuracy",
        "Latency",
        "Accuracy vs size",
        "Per-layer int8 error",
        "Target cpu",
        "Warnings",
    ):
        assert title in html
    md = (built / "report.md").read_text()
    assert "| variant | size_bytes | top-1 |" in md and "![rmse/scale per layer]" in md
    (built / "report.html").unlink()
    r = run_cli("report", built)
    assert r.exit_code == 0 and (built / "report.html").read_text() == html


def test_report_of_a_folder_that_is_not_a_build(run_cli, tmp_path):
    r = run_cli("report", tmp_path)
    assert r.exit_code == 3 and "no build.json" in r.stderr


def test_edgeq_toml(run_cli, tmp_path, built):
    cfg = tmp_path / "edgeq.toml"
    cfg.write_text(f'[build]\ntarget = "cpu"\nout-dir = "{built}"\nruns = 10\nwarmup = 1\n')
    r = run_cli("--json", "build", "--config", cfg)
    assert r.exit_code == 0, r.stderr
    assert all(s["cached"] for s in r.json["result"]["stages"])
    cfg.write_text('target = "cpu"\nmax_dorp = 1\n')
    r = run_cli("build", "--config", cfg)
    assert r.exit_code == 3 and "unknown key 'max_dorp'" in r.stderr and "max_drop" in r.stderr
    cfg.write_text("target = [cpu\n")
    r = run_cli("build", "--config", cfg)
    assert r.exit_code == 3 and "not valid TOML" in r.stderr


def test_bad_build_options(run_cli, tmp_path):
    r = run_cli("build", "--target", "cpu,toaster", "-o", tmp_path / "o")
    assert r.exit_code == 2 and "unknown target 'toaster'" in r.stderr
    r = run_cli("build", "--target", "cpu", "--method", "ptq", "--max-drop", "1", "-o", tmp_path / "o")
    assert r.exit_code == 2 and "--max-drop goes with --method auto" in r.stderr
    r = run_cli("build", "-o", tmp_path / "o")
    assert r.exit_code == 2 and "no target given" in r.stderr
    assert not (tmp_path / "o").exists()


def test_sigint_leaves_completed_stages_and_a_rerun_resumes(tmp_path):
    out = tmp_path / "out"
    cmd = [
        sys.executable,
        "-m",
        "edgeq",
        "--json",
        "build",
        "--target",
        "cpu",
        "-o",
        str(out),
        "--runs",
        "10",
        "--warmup",
        "1",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    deadline = time.time() + 120
    while time.time() < deadline and not list((out / ".cache").glob("float-*/stage.json")):
        assert proc.poll() is None, proc.stderr.read()
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    stdout, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, stdout
    done = sorted(p.parent.name.split("-")[0] for p in (out / ".cache").glob("*/stage.json"))
    assert "float" in done
    assert not list((out / ".cache").glob(".*tmp*"))  # no half-written stage left behind
    resumed = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=300, env=os.environ)
    assert resumed.returncode == 0, resumed.stderr
    stages = json.loads(resumed.stdout)["result"]["stages"]
    assert [s for s in stages if s["name"] == "float"][0]["cached"]
    assert not all(s["cached"] for s in stages)  # the rest ran now
    assert (out / "cpu" / "mnist_cnn_int8.tflite").is_file() and (out / "report.html").is_file()


def test_build_coral_with_no_other_arguments(tmp_path):
    """The headline, as a new user runs it: without an Edge TPU the on-device benchmark is
    skipped with the reason; compile runs where edgetpu_compiler is installed (the Docker image)
    and is skipped with the reason elsewhere; everything else is built."""
    p = subprocess.run(
        [sys.executable, "-m", "edgeq", "--json", "build", "--target", "coral"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=600,
    )
    assert p.returncode == 0, p.stderr
    res = json.loads(p.stdout)["result"]
    int8 = res["targets"]["coral"]["variants"][1]
    placement = Findings.from_dict(int8["check"]["findings"]).placement
    assert placement is not None and (placement.on, placement.off, placement.first_off) == (9, 0, "")
    if shutil.which("edgetpu_compiler"):
        assert not int8["compile"]["skipped"] and int8["compile"]["output"].endswith("_edgetpu.tflite")
    else:
        assert int8["compile"]["skipped"] and "edgetpu_compiler" in int8["compile"]["reason"]
    assert int8["bench_skipped"] and int8["latency_on"] == "cpu (host)"
    assert (tmp_path / "edgeq-out" / "coral" / "mnist_cnn_int8.tflite").is_file()
