"""Outputs are regular files: a device, FIFO or socket at an output path is refused even with --force,
and nothing is written beside it (issue 19, defect 2); paths the environment makes unusable are exit 3
(issue 19, defect 10: ``compile -o /proc``, ``XDG_CACHE_HOME`` naming a file)."""

from __future__ import annotations

import importlib.util
import os
import socket
import stat
from pathlib import Path

import pytest

from edgeq.artifacts import Outputs, check_output, write_artifact, write_bytes_atomic
from edgeq.errors import BadInput
from tests.conftest import listing


def _fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def _null_twin(path: Path) -> Path:
    """A /dev/null twin (char device 1,3) in a temp folder: the real /dev is never touched."""
    try:
        os.mknod(path, 0o600 | stat.S_IFCHR, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("os.mknod of a character device needs root (CAP_MKNOD)")
    return path


def _socket(path: Path) -> Path:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(path))
    s.close()
    return path


MAKERS = {"FIFO": _fifo, "character device": _null_twin, "socket": _socket}


def _is_kind(path: Path, kind: str) -> bool:
    mode = os.lstat(path).st_mode
    return {"FIFO": stat.S_ISFIFO, "character device": stat.S_ISCHR, "socket": stat.S_ISSOCK}[kind](mode)


def _error_line(stderr: str) -> str:
    lines = [x for x in stderr.splitlines() if x.strip()]
    assert lines and lines[-1].startswith("error: "), stderr
    assert "Traceback" not in stderr
    return lines[-1]


@pytest.mark.parametrize("kind", ["FIFO", "character device"])
def test_quantize_force_onto_a_special_file_is_refused(run_cli, tmp_path, tf_keras_model, digits_calib, kind):
    out = MAKERS[kind](tmp_path / "out.tflite")
    r = run_cli("quantize", tf_keras_model, "--data", digits_calib, "-o", out, "--force")
    assert r.exit_code == 3, r.stderr
    line = _error_line(r.stderr)
    assert str(out) in line and f"is a {kind}" in line and "regular file" in line
    assert listing(tmp_path) == ["out.tflite"]  # no sidecar beside it, no temp file
    assert _is_kind(out, kind)


def test_a_symlink_to_a_device_is_judged_by_its_target(run_cli, tmp_path, tf_keras_model, digits_calib):
    dev = _null_twin(tmp_path / "null")
    (tmp_path / "out.tflite").symlink_to(dev)
    r = run_cli("--json", "quantize", tf_keras_model, "--data", digits_calib, "-o", tmp_path / "out.tflite", "--force")
    assert r.exit_code == 3 and r.json["error"]["type"] == "bad_input", r.stdout
    assert (tmp_path / "out.tflite").is_symlink() and _is_kind(dev, "character device")
    assert listing(tmp_path) == ["null", "out.tflite"]


@pytest.mark.parametrize("kind", sorted(MAKERS))
def test_a_special_sidecar_path_is_refused(tmp_path, kind):
    MAKERS[kind](tmp_path / "m.tflite.edgeq.json")
    with pytest.raises(BadInput, match=f"m.tflite.edgeq.json is a {kind}"):
        check_output(tmp_path / "m.tflite", force=True)


@pytest.mark.parametrize("kind", sorted(MAKERS))
def test_every_atomic_write_refuses_a_special_file(tmp_path, kind):
    """write_bytes_atomic is how every artifact, report and sidecar reaches its path."""
    target = MAKERS[kind](tmp_path / "x.json")
    with pytest.raises(BadInput, match="not a regular file"):
        write_bytes_atomic(target, b"{}")
    with pytest.raises(BadInput, match="not a regular file"):
        write_artifact(target, b"data", {"command": "test"})
    assert _is_kind(target, kind) and listing(tmp_path) == ["x.json"]


def test_outputs_commit_refuses_a_special_file_and_keeps_the_others(tmp_path):
    (tmp_path / "a.txt").write_text("mine")
    fifo = _fifo(tmp_path / "b.txt")
    with pytest.raises(BadInput, match="b.txt is a FIFO"), Outputs(tmp_path) as staged:
        staged.write_bytes("a.txt", b"new")
        staged.write_bytes("b.txt", b"new")
    assert (tmp_path / "a.txt").read_text() == "mine" and stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert listing(tmp_path) == ["a.txt", "b.txt"]


def test_compile_into_proc_is_bad_input(run_cli, tiny_int8):
    r = run_cli("--json", "compile", tiny_int8, "--target", "mcu", "--runtime", "c", "-o", "/proc")
    assert r.exit_code == 3, r.stdout
    assert "/proc" in r.json["error"]["message"] and "-o" in r.json["error"]["hint"]


def test_compile_into_a_device_is_bad_input(run_cli, tmp_path, tiny_int8):
    dev = _null_twin(tmp_path / "null")
    r = run_cli("compile", tiny_int8, "--target", "mcu", "--runtime", "c", "-o", dev, "--force")
    assert r.exit_code == 3 and str(dev) in _error_line(r.stderr)
    assert listing(tmp_path) == ["null"] and _is_kind(dev, "character device")


def test_xdg_cache_home_naming_a_file_is_bad_input(run_cli, tmp_path, monkeypatch):
    if importlib.util.find_spec("onnx2tf") is None:  # not importorskip: importing onnx2tf raises the recursion limit
        pytest.skip("the onnx extra is not installed (pip install edgeq[onnx])")
    import numpy as np

    from tests.inputs.test_onnx import _tiny_onnx

    _tiny_onnx(tmp_path / "tiny.onnx")
    np.savez(tmp_path / "calib.npz", x=np.zeros((4, 16, 16, 3), np.float32))
    (tmp_path / "cachefile").write_text("not a folder")
    monkeypatch.delenv("EDGEQ_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cachefile"))
    r = run_cli("quantize", tmp_path / "tiny.onnx", "--data", tmp_path / "calib.npz", "-o", tmp_path / "o.tflite")
    assert r.exit_code == 3, r.stderr
    line = _error_line(r.stderr)
    assert "cachefile" in line and "Not a directory" in line  # the path and the cause, whichever layer says it
    assert (tmp_path / "cachefile").read_text() == "not a folder"
