"""edgeq build owns only its own folder, checks inputs first, locks, and repairs its cache (issue 11)."""

from __future__ import annotations

import fcntl
import json
import os
import shutil

import pytest

from tests.conftest import listing

FAST = ["--target", "cpu", "--method", "ptq", "--runs", "3", "--warmup", "0"]


def _build(run_cli, model, calib, evals, out, *extra):
    return run_cli("build", model, "--data", calib, "--eval-data", evals, *FAST, "-o", out, *extra)


def test_a_folder_with_a_users_build_json_is_not_a_build_folder(run_cli, tmp_path, tf_keras_model, digits_calib):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "build.json").write_text('{"my": "project"}')
    (mine / "report.md").write_text("# my report")
    r = run_cli("build", tf_keras_model, "--data", digits_calib, *FAST, "-o", mine)
    assert r.exit_code == 3, r.stderr
    assert "not an edgeq build folder" in r.stderr and "--force" in r.stderr
    assert listing(mine) == ["build.json", "report.md"]
    assert (mine / "build.json").read_text() == '{"my": "project"}'


@pytest.mark.parametrize("which", ["model", "--data", "--eval-data"])
def test_missing_inputs_are_bad_input_and_create_nothing(run_cli, tmp_path, tf_keras_model, digits_calib, which):
    model, data, evals = str(tf_keras_model), str(digits_calib), str(digits_calib)
    if which == "model":
        model = str(tmp_path / "nosuch.keras")
    elif which == "--data":
        data = str(tmp_path / "nosuch.npz")
    else:
        evals = str(tmp_path / "nosuch.npz")
    r = _build(run_cli, model, data, evals, tmp_path / "out")
    assert r.exit_code == 3, r.stderr
    assert "not found: " + str(tmp_path / "nosuch") in r.stderr and "check the path" in r.stderr
    assert not (tmp_path / "out").exists()


def test_a_second_build_into_a_locked_folder_refuses_at_once(run_cli, tmp_path, tf_keras_model, digits_calib):
    out = tmp_path / "out"
    out.mkdir()
    with open(out / ".edgeq-build.lock", "a+") as held:  # what a running build holds
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        held.write("4242\n")
        held.flush()
        r = _build(run_cli, tf_keras_model, digits_calib, digits_calib, out)
    assert r.exit_code == 3, r.stderr
    assert f"another edgeq build is running in {out} (pid 4242)" in r.stderr
    assert listing(out) == [".edgeq-build.lock"]


def test_build_into_a_read_only_folder(run_cli, tmp_path, tf_keras_model, digits_calib):
    from tests.hardening.test_files_outputs import _mount

    src, ro = tmp_path / "src", tmp_path / "ro"
    src.mkdir()
    ro.mkdir()
    if not (_mount(["--bind", str(src), str(ro)]) and _mount(["-o", "remount,bind,ro", str(ro)])):
        pytest.skip("mount --bind is not permitted here (needs root or CAP_SYS_ADMIN)")
    try:
        r = _build(run_cli, tf_keras_model, digits_calib, digits_calib, ro)  # exists, empty, read-only
    finally:
        os.system(f"umount {ro}")
    assert r.exit_code == 3, r.stderr
    assert "not writable" in r.stderr and "Traceback" not in r.stderr


@pytest.fixture(scope="module")
def built(tmp_path_factory, tf_keras_model, digits_calib, digits_eval):
    from edgeq.cli.app import run
    from edgeq.cli.main import cli

    out = tmp_path_factory.mktemp("files_build") / "out"
    args = ["build", str(tf_keras_model), "--data", str(digits_calib), "--eval-data", str(digits_eval), *FAST]
    assert run(cli, [*args, "-o", str(out)]) == 0
    return args, out


def _rerun(run_cli, built):
    args, out = built
    r = run_cli("--json", *args, "-o", out)
    assert r.exit_code == 0, r.stdout
    return r.json["result"]


def test_marker_says_whose_folder_it_is(built):
    _, out = built
    marker = json.loads((out / ".edgeq-build.json").read_text())
    assert marker["kind"] == "edgeq-build" and marker["schema_version"] >= 1


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["corrupt", "delete", "bad stage.json"])
def test_a_damaged_cache_entry_is_recomputed(run_cli, built, damage):
    _, out = built
    entry = next((out / ".cache").glob("quantize-*"))
    tflite = next(entry.glob("*.tflite"))
    if damage == "corrupt":
        tflite.write_bytes(b"garbage")
    elif damage == "delete":
        tflite.unlink()
    else:
        (entry / "stage.json").write_text("{")
    result = _rerun(run_cli, built)
    quantize = [s for s in result["stages"] if s["name"].startswith("quantize")][0]
    assert not quantize["cached"]
    assert any(f"cache entry {entry.name} was damaged" in w and "recomputed" in w for w in result["warnings"])
    assert next(entry.glob("*.tflite")).read_bytes()[4:8] == b"TFL3"
    again = _rerun(run_cli, built)  # repaired: from the cache again, with no note
    assert all(s["cached"] for s in again["stages"])
    assert not any("damaged" in w for w in again["warnings"])


def test_deployed_files_are_copies_not_links_into_the_cache(run_cli, built):
    _, out = built
    deployed = next((out / "cpu").glob("*_int8.tflite"))
    cached = next((out / ".cache").glob(f"quantize-*/{deployed.name}"))
    assert os.stat(deployed).st_ino != os.stat(cached).st_ino and os.stat(deployed).st_nlink == 1
    original = cached.read_bytes()
    with open(deployed, "r+b") as fh:  # someone edits the deployed model in place
        fh.seek(100)
        fh.write(b"\xff" * 16)
    assert cached.read_bytes() == original
    _rerun(run_cli, built)
    assert deployed.read_bytes() == original  # the build deploys the model again


def test_stale_temp_files_are_removed(run_cli, built):
    _, out = built
    dead = 2**22 + 12345  # above pid_max's default: no such process
    (out / ".cache" / f".quantize-abc.tmp{dead}").mkdir()
    (out / "cpu" / f".model.tflite.tmp{dead}").write_bytes(b"x")
    (out / f".edgeq-stage-{dead}-x").mkdir()
    _rerun(run_cli, built)
    leftovers = [p for p in out.rglob("*") if str(dead) in p.name]
    assert leftovers == []


@pytest.mark.slow
def test_force_into_a_foreign_folder_keeps_the_users_other_files(run_cli, tmp_path, tf_keras_model, digits_calib):
    mine = tmp_path / "mine"
    (mine / "cpu").mkdir(parents=True)
    (mine / "notes.txt").write_text("keep")
    (mine / "cpu" / "notes.txt").write_text("keep too")
    r = _build(run_cli, tf_keras_model, digits_calib, digits_calib, mine, "--force")
    assert r.exit_code == 0, r.stderr
    assert (mine / "notes.txt").read_text() == "keep" and (mine / "cpu" / "notes.txt").read_text() == "keep too"
    assert (mine / ".edgeq-build.json").is_file()
    shutil.rmtree(mine)


def test_an_interrupted_build_is_ours_to_resume(run_cli, tmp_path, tf_keras_model, digits_calib, monkeypatch):
    from edgeq import pipeline

    def interrupted(*_a, **_k):
        raise KeyboardInterrupt

    monkeypatch.setattr(pipeline, "_run", interrupted)
    out = tmp_path / "out"
    r = _build(run_cli, tf_keras_model, digits_calib, digits_calib, out)
    assert r.exit_code == 130 and r.stderr.strip().endswith("interrupted; rerun the same command to resume")
    assert pipeline.is_build_dir(out)
    r = run_cli("report", out)
    assert r.exit_code == 3 and "has not finished" in r.stderr
    monkeypatch.undo()
    with open(out / ".edgeq-build.lock") as fh:  # released: the rerun could take it
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)


def test_build_folder_name_too_long(run_cli, tmp_path, tf_keras_model, digits_calib):
    r = _build(run_cli, tf_keras_model, digits_calib, digits_calib, tmp_path / ("d" * 300))
    assert r.exit_code == 3 and "file name too long (300 bytes" in r.stderr
    assert listing(tmp_path) == []


@pytest.mark.slow
def test_two_builds_into_one_new_folder(run_cli, tmp_path, tf_keras_model, digits_calib):
    """A real second process: the first build holds the lock, the second refuses naming its pid."""
    import subprocess
    import sys
    import time
    from pathlib import Path

    out = tmp_path / "new"
    args = ["build", str(tf_keras_model), "--data", str(digits_calib), *FAST, "--runs", "3000", "-o", str(out)]
    root = Path(__file__).resolve().parents[2]
    first = subprocess.Popen([sys.executable, "-m", "edgeq", *args], cwd=root, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 60
        while time.time() < deadline and not (out / ".edgeq-build.json").exists():
            assert first.poll() is None, first.stderr.read()
            time.sleep(0.05)
        r = run_cli(*args)
        assert first.poll() is None, "the first build ended before the second started; the test proves nothing"
    finally:
        first.wait(timeout=120)
    assert r.exit_code == 3, r.stderr
    assert f"another edgeq build is running in {out} (pid {first.pid})" in r.stderr
    assert first.returncode == 0
