"""No user file lost, no partial outputs: quantize, train, debug, report (issue 11, items 2, 6, 7, 10)."""

from __future__ import annotations

import errno
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import listing
from tests.spies import patch_everywhere

LONG = "m" * 300 + ".tflite"


def _mount(args: list[str]) -> bool:
    return subprocess.run(["mount", *args], capture_output=True).returncode == 0


@pytest.fixture
def readonly_dir(tmp_path, monkeypatch):
    """A folder on a read-only file system: a read-only bind mount where mounting is permitted
    (tests run as root, so chmod 0555 would not stop anything), else os.open/os.mkdir patched to
    fail with EROFS under it."""
    src, ro = tmp_path / "src", tmp_path / "ro"
    src.mkdir()
    ro.mkdir()
    (src / "keep.txt").write_text("mine")
    if _mount(["--bind", str(src), str(ro)]) and _mount(["-o", "remount,bind,ro", str(ro)]):
        yield ro
        subprocess.run(["umount", str(ro)], check=True)
        return
    subprocess.run(["umount", str(ro)], capture_output=True)
    (ro / "keep.txt").write_text("mine")
    real_open, real_mkdir = os.open, os.mkdir

    def refuse(path, *a, real=None, **k):
        if str(os.path.abspath(path)).startswith(str(ro)):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return real(path, *a, **k)

    monkeypatch.setattr(os, "open", lambda p, *a, **k: refuse(p, *a, real=real_open, **k))
    monkeypatch.setattr(os, "mkdir", lambda p, *a, **k: refuse(p, *a, real=real_mkdir, **k))
    yield ro


@pytest.fixture
def small_disk(tmp_path):
    """A 64 KiB tmpfs: a real full disk (skips where mounting is not permitted)."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    if not _mount(["-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)]):
        pytest.skip("mount -t tmpfs is not permitted here (needs root or CAP_SYS_ADMIN)")
    yield mnt
    subprocess.run(["umount", str(mnt)], check=True)


def _one_error_line(stderr: str) -> str:
    lines = [x for x in stderr.splitlines() if x.strip()]
    assert lines and lines[-1].startswith("error: "), stderr
    assert "Traceback" not in stderr
    return lines[-1]


# -- quantize -----------------------------------------------------------------------------------


def test_quantize_refuses_a_stray_sidecar(run_cli, tmp_path, tf_keras_model, digits_calib):
    (tmp_path / "o.tflite.edgeq.json").write_text("my notes")
    r = run_cli("quantize", tf_keras_model, "--data", digits_calib, "-o", tmp_path / "o.tflite")
    assert r.exit_code == 3, r.stderr
    assert "o.tflite.edgeq.json already exists" in _one_error_line(r.stderr) and "--force" in r.stderr
    assert listing(tmp_path) == ["o.tflite.edgeq.json"]
    assert (tmp_path / "o.tflite.edgeq.json").read_text() == "my notes"


@pytest.mark.parametrize("how", ["same path", "symlink", "hard link"])
def test_quantize_never_overwrites_its_input_even_with_force(run_cli, tmp_path, tf_keras_model, digits_calib, how):
    model = tmp_path / "model.keras"
    model.write_bytes(tf_keras_model.read_bytes())
    target = {"same path": model, "symlink": tmp_path / "link.tflite", "hard link": tmp_path / "hard.tflite"}[how]
    if how == "symlink":
        target.symlink_to(model)
    elif how == "hard link":
        os.link(model, target)
    r = run_cli("quantize", model, "--data", digits_calib, "-o", target, "--force")
    assert r.exit_code == 3, r.stderr
    assert "edgeq never overwrites its input" in _one_error_line(r.stderr)
    assert model.read_bytes() == tf_keras_model.read_bytes()


def test_quantize_never_overwrites_its_data(run_cli, tmp_path, tf_keras_model, digits_calib):
    data = tmp_path / "calib.npz"
    data.write_bytes(digits_calib.read_bytes())
    r = run_cli("quantize", tf_keras_model, "--data", data, "-o", data, "--force")
    assert r.exit_code == 3 and "never overwrites its input" in r.stderr
    assert data.read_bytes() == digits_calib.read_bytes()


def test_quantize_sidecar_failure_leaves_no_tflite(run_cli, tmp_path, tf_keras_model, digits_calib, monkeypatch):
    from edgeq import artifacts

    def no_space(*_a, **_k):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "o.tflite.edgeq.json")

    monkeypatch.setattr(artifacts, "write_json_atomic", no_space)
    r = run_cli("quantize", tf_keras_model, "--data", digits_calib, "-o", tmp_path / "o.tflite")
    assert r.exit_code == 3, r.stderr
    assert "No space left on device" in _one_error_line(r.stderr)
    assert listing(tmp_path) == []


def test_quantize_onto_a_full_disk(run_cli, small_disk, tf_keras_model, digits_calib):
    (small_disk / "filler").write_bytes(b"\0" * (60 * 1024))  # what is left holds neither file
    r = run_cli("quantize", tf_keras_model, "--data", digits_calib, "-o", small_disk / "o.tflite")
    assert r.exit_code == 3, r.stderr
    assert "No space left on device" in _one_error_line(r.stderr)
    assert listing(small_disk) == ["filler"]


def test_quantize_name_too_long(run_cli, tmp_path, tf_keras_model, digits_calib):
    r = run_cli("quantize", tf_keras_model, "--data", digits_calib, "-o", tmp_path / LONG)
    assert r.exit_code == 3, r.stderr
    assert "file name too long" in _one_error_line(r.stderr)
    assert listing(tmp_path) == []


def test_quantize_into_a_read_only_folder(run_cli, readonly_dir, tf_keras_model, digits_calib):
    r = run_cli("quantize", tf_keras_model, "--data", digits_calib, "-o", readonly_dir / "o.tflite")
    assert r.exit_code == 3, r.stderr
    assert "not writable" in _one_error_line(r.stderr)
    assert listing(readonly_dir) == ["keep.txt"]


def test_qat_with_unlabeled_eval_data_writes_nothing(run_cli, tmp_path, tf_keras_model, digits_calib):
    with np.load(digits_calib) as d:
        np.savez(tmp_path / "nolabels.npz", x=d["x"][:50])
    out = tmp_path / "out"
    out.mkdir()
    args = ["quantize", tf_keras_model, "--qat", "--train-data", digits_calib, "--epochs", "1"]
    r = run_cli("--json", *args, "--eval-data", tmp_path / "nolabels.npz", "-o", out / "q.tflite")
    assert r.exit_code == 3, r.stdout
    assert r.json["error"]["message"].endswith("has no labels") and r.json["artifacts"] == []
    assert listing(out) == []


# -- train --------------------------------------------------------------------------------------


@pytest.mark.slow
def test_train_resume_replaces_only_its_own_output(run_cli, tmp_path, tf_keras_model, digits_calib):
    ckpt = tmp_path / "ckpt"
    common = ["train", tf_keras_model, "--data", digits_calib, "--epochs", "1", "--checkpoint-dir", ckpt]
    r = run_cli(*common, "-o", tmp_path / "mine.keras")
    assert r.exit_code == 0, r.stderr
    precious = tmp_path / "precious.keras"
    precious.write_text("not a model of this run")
    r = run_cli(*common, "--resume", "-o", precious)
    assert r.exit_code == 3, r.stderr
    assert "precious.keras" in _one_error_line(r.stderr) and "--force" in r.stderr
    assert precious.read_text() == "not a model of this run"
    r = run_cli(*common, "--epochs", "2", "--resume", "-o", tmp_path / "mine.keras")  # its own output: fine
    assert r.exit_code == 0, r.stderr


def test_train_never_overwrites_the_model_it_fine_tunes(run_cli, tmp_path, tf_keras_model, digits_calib):
    model = tmp_path / "m.keras"
    model.write_bytes(tf_keras_model.read_bytes())
    r = run_cli("train", model, "--data", digits_calib, "--epochs", "1", "-o", model, "--force")
    assert r.exit_code == 3 and "never overwrites its input" in r.stderr
    assert model.read_bytes() == tf_keras_model.read_bytes()


# -- debug --------------------------------------------------------------------------------------


def test_debug_plot_failure_leaves_no_csv_or_json(run_cli, tmp_path, tf_keras_model, digits_calib, monkeypatch):
    from edgeq.debug import plot

    def no_space(*_a, **_k):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(plot, "rmse_over_scale_png", no_space)
    r = run_cli("debug", tf_keras_model, "--data", digits_calib, "-o", tmp_path / "dbg")
    assert r.exit_code == 3, r.stderr
    assert not (tmp_path / "dbg").exists()
    r = run_cli("debug", tf_keras_model, "--data", digits_calib, "-o", tmp_path / "dbg")  # a rerun is not refused
    assert r.exit_code == 3 and "already holds" not in r.stderr


def test_debug_onto_a_full_disk(run_cli, small_disk, tf_keras_model, digits_calib):
    (small_disk / "filler").write_bytes(b"\0" * (48 * 1024))
    r = run_cli("debug", tf_keras_model, "--data", digits_calib, "-o", small_disk / "dbg")
    assert r.exit_code == 3, r.stderr
    assert "No space left on device" in _one_error_line(r.stderr)
    assert listing(small_disk) == ["filler"]


def test_debug_read_only_output_fails_before_the_work(run_cli, readonly_dir, tf_keras_model, digits_calib, monkeypatch):
    import edgeq.stages.debug  # noqa: F401  (its from-imports bound now, so the spy replaces them too)
    from edgeq import modelio

    loads: list[str] = []

    def no_loading(path, *_a, **_k):
        loads.append(str(path))
        raise RuntimeError("the model was loaded before the writability check")

    # the loader every stage reaches, under every name it is bound to (stages.common: _load_keras)
    patch_everywhere(monkeypatch, modelio, "load_model", no_loading)
    r = run_cli("debug", tf_keras_model, "--data", digits_calib, "-o", readonly_dir / "dbg")
    assert loads == [], "the model was loaded before the output folder was found not writable"
    assert r.exit_code == 3, r.stderr
    assert "not writable" in _one_error_line(r.stderr)
    # the spy sees the load when the output is writable: the check above is not vacuous
    r = run_cli("debug", tf_keras_model, "--data", digits_calib, "-o", readonly_dir.parent / "dbg")
    assert loads == [str(tf_keras_model)] and r.exit_code == 1, r.stderr


# -- report -------------------------------------------------------------------------------------


def _fake_build(folder: Path) -> Path:
    """A finished build's manifests (the well-formed ones of the manifest tests), no models."""
    from tests.hardening.test_report_manifests import TARGET, TOP, _write

    folder.mkdir(parents=True, exist_ok=True)
    _write(folder, TOP, TARGET)
    return folder


def test_report_into_a_read_only_folder(run_cli, readonly_dir):
    src = readonly_dir.parent / "src"
    _fake_build(src)  # the bind mount shows it in readonly_dir, or the patched os.open lets it be read
    if not (readonly_dir / "build.json").exists():
        _fake_build(readonly_dir)
    r = run_cli("report", readonly_dir)
    assert r.exit_code == 3, r.stderr
    assert "not writable" in _one_error_line(r.stderr) or "Read-only" in r.stderr
    assert "report.md" not in listing(readonly_dir)


def test_report_write_failure_leaves_neither_file(run_cli, tmp_path, monkeypatch):
    from edgeq.report import render

    run_dir = _fake_build(tmp_path / "b")

    def no_space(*_a, **_k):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(render, "to_markdown", no_space)
    r = run_cli("report", run_dir)
    assert r.exit_code == 3, r.stderr
    assert listing(run_dir) == ["build.json", "cpu"]  # the manifests only: no report.html, no report.md


# -- CLI ----------------------------------------------------------------------------------------


def test_os_errors_are_environment_failures(run_cli, monkeypatch, tmp_path, tiny_int8):
    from edgeq import api

    def read_only(*_a, **_k):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(tmp_path / "x"))

    monkeypatch.setattr(api, "inspect", read_only)
    r = run_cli("inspect", tiny_int8)
    assert r.exit_code == 3
    line = _one_error_line(r.stderr)
    assert line == f"error: Read-only file system: {tmp_path / 'x'}; choose a writable location with -o"


def test_ctrl_c_says_how_to_resume(run_cli, monkeypatch, tmp_path):
    from edgeq import api

    def interrupted(*_a, **_k):
        raise KeyboardInterrupt

    monkeypatch.setattr(api, "build", interrupted)
    r = run_cli("build", "--target", "cpu", "-o", tmp_path / "b")
    assert r.exit_code == 130
    assert r.stderr.strip() == "interrupted; rerun the same command to resume"
    assert r.stderr.splitlines()[0] != ""


# -- a commit killed half way -------------------------------------------------------------------

_KILLED_COMMIT = """
import os, sys
from edgeq import artifacts
real = os.replace
moved = []

folder = os.path.dirname(sys.argv[1])

def replace(src, dst):
    real(src, dst)
    if folder in (os.path.dirname(src), os.path.dirname(dst)):  # a move of the commit, not a staged write
        moved.append(dst)
    if len(moved) == int(sys.argv[2]):
        os._exit(9)  # as SIGKILL would: no cleanup runs

artifacts.os.replace = replace
artifacts.write_artifact(sys.argv[1], b"new model", {"command": "test"})
"""


@pytest.mark.parametrize(("earlier", "killed_after"), [(False, 1), (True, 1), (True, 2), (True, 3)])
def test_a_commit_killed_half_way_is_undone_by_the_next_run(tmp_path, earlier, killed_after):
    """The commit's moves: [old sidecar aside,] new sidecar in, [old model aside,] new model in."""
    import sys

    from edgeq import artifacts

    out = tmp_path / "o.tflite"
    if earlier:  # --force over an earlier result
        out.write_bytes(b"old model")
        artifacts.sidecar_path(out).write_text("old sidecar")
    p = subprocess.run(
        [sys.executable, "-c", _KILLED_COMMIT, str(out), str(killed_after)],
        env=dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2])),
    )
    assert p.returncode == 9
    before = {"o.tflite": b"old model", "o.tflite.edgeq.json": b"old sidecar"} if earlier else {}
    artifacts.check_output(out, force=earlier)  # the next run: neither refused nor confused
    assert {f.name: f.read_bytes() for f in tmp_path.iterdir()} == before


@pytest.mark.parametrize("command", ["debug", "train"])
def test_names_too_long_are_refused_up_front(run_cli, tmp_path, tf_keras_model, digits_calib, command):
    long = tmp_path / ("d" * 300)
    args = ["-o", long] if command == "debug" else ["-o", str(long) + ".keras", "--epochs", "1"]
    r = run_cli(command, tf_keras_model, "--data", digits_calib, *args)
    assert r.exit_code == 3, r.stderr
    assert "file name too long (30" in _one_error_line(r.stderr)
