"""A sweep (3 models x cpu, mcu, coral) on a real Ray cluster started here (a head and a second node, 1 CPU
each, both stopped at the end), issue 23's must-show: every model's artifacts are byte-identical to the same
sweep run with ``--jobs 1``, and the summary names the node and host that built each model; a Ray worker
killed (SIGKILL, from outside) while it builds a model has that model's task retried, and the sweep finishes
with every model built, the same bytes, and the summary saying the model was retried."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.executor import cluster
from tests.integration.test_sweep import COMMON

pytestmark = [pytest.mark.slow, pytest.mark.skipif(bool(cluster.ray_missing()), reason=cluster.ray_missing())]
TARGETS = "cpu,mcu,coral"
MODELS = ("m1", "m2", "m3")


def args(models: Path, out: Path, *executor: str) -> list[str]:
    """``build m1 m2 m3 --target cpu,mcu,coral -o OUT`` with cheap settings and ``executor``'s options."""
    return ["build", *(str(models / f"{m}.keras") for m in MODELS), "--target", TARGETS, "-o", str(out)] + [
        *COMMON,
        *executor,
    ]


def sweep(models: Path, out: Path, *executor: str) -> tuple[int, dict[str, Any]]:
    """``edgeq --json build ...``: the exit code and the JSON document."""
    from edgeq.cli.app import run
    from edgeq.cli.main import cli

    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        code = run(cli, ["--json", *args(models, out, *executor)])
    return code, json.loads(stdout.getvalue())


def artifacts(folder: Path) -> dict[str, bytes | None]:
    """Every target's files by path, each with its bytes: the .tflite and what its compiler made (C sources,
    headers). Not the cache (its keys name the folder), and the JSON records only by name: manifests and
    provenance say when and where (the folder, a temp folder's pid) the build ran."""
    return {
        str(p.relative_to(folder)): None if p.suffix == ".json" else p.read_bytes()
        for t in TARGETS.split(",")
        for p in sorted((folder / t).rglob("*"))
        if p.is_file() and ".cache" not in p.parts
    }


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory, tf_keras_model: Path) -> Path:
    folder = tmp_path_factory.mktemp("models")
    for m in MODELS:
        shutil.copy(tf_keras_model, folder / f"{m}.keras")
    return folder


@pytest.fixture(scope="module")
def one_job(models: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same sweep with ``--jobs 1`` (in this process, one model after another): the reference bytes."""
    out = tmp_path_factory.mktemp("one") / "out"
    code, doc = sweep(models, out, "--jobs", "1")
    assert code == 0, doc["error"]
    return out


def same_bytes(out: Path, reference: Path) -> None:
    for m in MODELS:
        want, got = artifacts(reference / m), artifacts(out / m)
        assert {n for n in want if n.endswith(".tflite")} >= {f"{t}/{m}_int8.tflite" for t in ("cpu", "mcu")}
        assert {"mcu/m1_int8_tflm/model_data.cc".replace("m1", m), "mcu/m1_int8_tflm/main.cc".replace("m1", m)} <= set(
            want
        )
        assert sorted(got) == sorted(want), m
        assert [n for n in want if got[n] != want[n]] == [], m


def test_a_sweep_on_two_ray_nodes_gives_the_bytes_of_one_job_and_names_where_each_model_was_built(
    ray_cluster: str, models: Path, one_job: Path, tmp_path: Path
) -> None:
    t0 = time.monotonic()
    code, doc = sweep(models, tmp_path / "out", "--executor", "ray", "--ray-address", ray_cluster)
    assert code == 0, doc["error"]
    assert [m["ran"] for m in doc["result"]["models"]] == [
        m["ran"] for m in json.loads((tmp_path / "out" / "summary.json").read_text())["models"]
    ]
    same_bytes(tmp_path / "out", one_job)
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    for row in summary["models"]:
        ran = row["ran"]
        assert row["ok"] and ran["attempts"] == 1 and ran["host"] and len(ran["node"]) >= 12, row
    assert len({row["ran"]["node"] for row in summary["models"]}) == 2, summary["models"]  # both nodes built
    md = (tmp_path / "out" / "summary.md").read_text()
    for row in summary["models"]:
        assert f"built on {row['ran']['host']} \\(node {row['ran']['node'][:12]}\\)" in md, md
    print(f"ray sweep of 3 models x 3 targets: {time.monotonic() - t0:.1f} s")


def test_a_worker_killed_while_it_builds_a_model_is_retried_and_the_sweep_finishes(
    ray_cluster: str, models: Path, one_job: Path, tmp_path: Path, run_cli: Any
) -> None:
    out, killed, unfinished = tmp_path / "out", [], []

    def kill_m2_mid_build() -> None:  # from outside, as the OOM killer or a crash would
        deadline = time.monotonic() + 150
        while time.monotonic() < deadline and not killed:
            pids = cluster.running_task("m2")
            if pids and (out / "m2").is_dir():
                time.sleep(1.0)  # well into its build (a model takes seconds per target)
                if cluster.running_task("m2") == pids:
                    finished = (out / "m2" / "report.html").exists()  # its build's last write
                    os.kill(pids[0], signal.SIGKILL)
                    killed.append(pids[0])
                    unfinished.append(not finished)
            time.sleep(0.2)

    killer = threading.Thread(target=kill_m2_mid_build, daemon=True)
    killer.start()
    t0 = time.monotonic()
    r = run_cli(*args(models, out, "--executor", "ray", "--ray-address", ray_cluster))  # progress, the table
    code, table, stderr = r.exit_code, r.stdout, r.stderr
    killer.join(timeout=5)
    assert killed, "m2's build task was never seen running"
    assert unfinished == [True], "m2's build had finished when its worker was killed"
    assert code == 0, stderr[-2000:]
    rows = {row["folder"]: row for row in json.loads((out / "summary.json").read_text())["models"]}
    assert all(row["ok"] for row in rows.values()) and rows["m2"]["ran"]["attempts"] >= 2, rows["m2"]
    assert rows["m2"]["ran"]["pid"] != killed[0]  # the retry ran in another worker
    assert rows["m1"]["ran"]["attempts"] == 1 and rows["m3"]["ran"]["attempts"] == 1
    said = f"retried: {rows['m2']['ran']['attempts']} attempts (a worker died)"
    from edgeq.report.render import md_cell

    assert md_cell(said, literal=True) in (out / "summary.md").read_text()
    assert said in (out / "summary.html").read_text() and said in table
    assert f"model 2/3 {models / 'm2.keras'}: built on {rows['m2']['ran']['host']} " in stderr and said in stderr
    same_bytes(out, one_job)
    print(f"ray sweep with a worker killed: {time.monotonic() - t0:.1f} s")
