"""The ONNX conversion cache verifies what it trusts (issue 19, defect 8): an entry is used only when the
marker written last vouches for every file of it and for the ONNX file's hash; a damaged, planted or
symlinked entry is converted again, a full disk or an unwritable cache is exit 3 naming the cache, and a
converted model that still does not load names the folder to delete. Also `inspect` of an ONNX model
(defect 4)."""

from __future__ import annotations

import errno
import json
import os
import shutil

import numpy as np
import pytest

from tests.inputs.test_onnx import _tiny_onnx, needs_extra

pytestmark = needs_extra


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    """The tiny ONNX model, its hash, and an empty cache of this test's own."""
    from edgeq.artifacts import sha256_file

    monkeypatch.setenv("EDGEQ_CACHE_DIR", str(tmp_path / "cache"))
    _tiny_onnx(tmp_path / "tiny.onnx")
    return tmp_path / "tiny.onnx", sha256_file(tmp_path / "tiny.onnx")


def _entry(tmp_path):
    [entry] = [p for p in (tmp_path / "cache" / "onnx").iterdir() if not p.name.startswith(".")]
    return entry


def _predict(onnx_path):
    from edgeq.config import LoadConfig
    from edgeq.modelio import load_model

    x = np.random.default_rng(3).uniform(0, 1, (4, 16, 16, 3)).astype(np.float32)
    return next(iter(load_model(str(onnx_path), LoadConfig()).predict_outputs(x).values()))


def _other_model(tmp_path):
    """A different valid ONNX model of the same shape (other weights), converted in a cache of its own."""
    import onnx
    from onnx import numpy_helper

    from edgeq import onnx_import
    from edgeq.artifacts import sha256_file

    m = onnx.load(str(tmp_path / "tiny.onnx"))
    for i, t in enumerate(m.graph.initializer):
        m.graph.initializer[i].CopyFrom(numpy_helper.from_array(-2 * numpy_helper.to_array(t), t.name))
    onnx.save(m, str(tmp_path / "other.onnx"))
    os.environ["EDGEQ_CACHE_DIR"] = str(tmp_path / "other-cache")  # the fixture's monkeypatch restores it
    try:
        return onnx_import.saved_model_for(tmp_path / "other.onnx", sha256_file(tmp_path / "other.onnx"))
    finally:
        os.environ["EDGEQ_CACHE_DIR"] = str(tmp_path / "cache")


@pytest.mark.parametrize("damage", ["random_pb", "empty_pb", "no_variables", "symlink", "planted", "no_marker"])
def test_a_damaged_cache_entry_is_converted_again(tiny, tmp_path, damage):
    MARKER = "edgeq-onnx.json"  # edgeq.onnx_import.MARKER, spelled out so that the test runs on the old code too
    onnx_path, sha = tiny
    expected = _predict(onnx_path)
    entry = _entry(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    if damage == "random_pb":
        (entry / "saved_model.pb").write_bytes(np.random.default_rng(0).bytes(4096))
    elif damage == "empty_pb":
        (entry / "saved_model.pb").write_bytes(b"")
    elif damage == "no_variables":
        shutil.rmtree(entry / "variables")
    elif damage == "symlink":  # the entry is a link to a folder elsewhere (whatever it holds)
        shutil.move(str(entry), elsewhere)
        entry.symlink_to(elsewhere, target_is_directory=True)
    elif damage == "planted":  # another valid SavedModel, with its own valid marker, under this model's hash
        shutil.rmtree(entry)
        shutil.copytree(_other_model(tmp_path), entry)
        assert not np.allclose(_predict_entry(entry), expected)
    elif damage == "no_marker":
        (entry / MARKER).unlink(missing_ok=True)
    got = _predict(onnx_path)  # before the fix: exit 3 on every rerun, or the planted model used silently
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    assert entry.is_dir() and not entry.is_symlink()
    assert sorted(p.name for p in entry.parent.iterdir()) == [entry.name]  # no staging folder left
    assert json.loads((entry / MARKER).read_text())["onnx_sha256"] == sha
    if damage == "symlink":
        assert (elsewhere / "saved_model.pb").is_file()  # the link was removed, never what it points at


def _predict_entry(entry):
    from edgeq.config import LoadConfig
    from edgeq.modelio import load_model

    x = np.random.default_rng(3).uniform(0, 1, (4, 16, 16, 3)).astype(np.float32)
    return next(iter(load_model(str(entry), LoadConfig()).predict_outputs(x).values()))


def test_a_conversion_that_never_loads_names_the_cache_folder(run_cli, tiny, tmp_path, monkeypatch):
    from edgeq import onnx_import

    onnx_path, _ = tiny
    calls = []

    def broken(model, out, shape):  # onnx2tf "succeeds" and leaves a SavedModel that TensorFlow cannot read
        calls.append(1)
        out.mkdir(parents=True)
        (out / "saved_model.pb").write_bytes(b"\x00not a SavedModel")

    monkeypatch.setattr(onnx_import, "_convert", broken)
    np.savez(tmp_path / "calib.npz", x=np.zeros((4, 16, 16, 3), np.float32))
    r = run_cli("quantize", onnx_path, "--data", tmp_path / "calib.npz", "-o", tmp_path / "x.tflite")
    assert r.exit_code == 3, r.stderr
    assert "ONNX conversion cache" in r.stderr and f"delete the cache folder {_entry(tmp_path)}" in r.stderr
    assert len(calls) == 2  # converted, failed to load, converted once more, then the folder is named


def test_a_full_disk_during_the_conversion_is_the_environment(run_cli, tiny, tmp_path, monkeypatch):
    from edgeq.onnx_import import require_onnx2tf

    require_onnx2tf()  # imports onnx2tf with the process's recursion limit kept
    import onnx2tf

    def full(**kw):
        raise OSError(errno.ENOSPC, "No space left on device", kw["output_folder_path"])

    monkeypatch.setattr(onnx2tf, "convert", full)
    onnx_path, _ = tiny
    np.savez(tmp_path / "calib.npz", x=np.zeros((4, 16, 16, 3), np.float32))
    r = run_cli("quantize", onnx_path, "--data", tmp_path / "calib.npz", "-o", tmp_path / "x.tflite")
    assert r.exit_code == 3, r.stderr  # before: exit 4 "onnx2tf could not convert the model"
    assert f"no space left for the ONNX conversion cache {tmp_path / 'cache' / 'onnx'}" in r.stderr
    assert [p.name for p in (tmp_path / "cache" / "onnx").iterdir()] == []  # no half-converted folder left


def test_a_cache_folder_that_cannot_be_made_is_bad_input(run_cli, tmp_path, monkeypatch):
    monkeypatch.delenv("EDGEQ_CACHE_DIR", raising=False)
    (tmp_path / "a-file").write_text("not a folder")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "a-file"))
    _tiny_onnx(tmp_path / "tiny.onnx")
    r = run_cli("inspect", tmp_path / "tiny.onnx")
    assert r.exit_code == 3, r.stderr
    assert f"the ONNX conversion cache {tmp_path / 'a-file' / 'edgeq' / 'onnx'} cannot be written" in r.stderr


def test_inspect_an_onnx_model(run_cli, tiny, tmp_path):
    # issue 19, defect 4: exit 1 (KeyError: 'num_layers') while quantize of the same file worked
    onnx_path, sha = tiny
    r = run_cli("--json", "inspect", onnx_path)
    assert r.exit_code == 0, r.stderr
    res = r.json["result"]
    assert res["format"] == "onnx" and res["loaded_as"] == "saved_model"
    assert f"{sha[:32]}-onnx2tf-" in res["converted_to"] and res["inputs"][0]["shape"] == [1, 16, 16, 3]
    # issue 21, defect 1: it reported the SavedModel's variables (0: onnx2tf folds weights into constants)
    # as the parameters, and no layers; now the ONNX graph's own nodes and initializers
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(onnx_path)).graph
    weights = {t.name: numpy_helper.to_array(t).size for t in graph.initializer}
    assert res["num_parameters"] == sum(weights.values()) > 0
    assert [(x["type"], x["parameters"]) for x in res["layers"]] == [
        (n.op_type, sum(weights.get(i, 0) for i in n.input)) for n in graph.node
    ]
    assert res["num_layers"] == len(graph.node) and res["ops"]["Conv"] == 1 and res["signatures"]
    r = run_cli("inspect", onnx_path)
    assert r.exit_code == 0, r.stderr
    assert "converted by onnx2tf to a SavedModel" in r.stdout and "signatures:" in r.stdout
    assert f"nodes: {len(graph.node)}  parameters: {sum(weights.values()):,}" in r.stdout
    assert all(n.op_type in r.stdout for n in graph.node)


def test_a_conversion_left_by_a_killed_process_is_removed(tiny, tmp_path):
    from edgeq import onnx_import

    onnx_path, sha = tiny
    stale = tmp_path / "cache" / "onnx" / ".x-onnx2tf-1.tmp999999999-abc"  # a pid no process has
    (stale / "saved_model").mkdir(parents=True)
    entry = onnx_import.saved_model_for(onnx_path, sha)
    assert not stale.exists() and sorted(p.name for p in entry.parent.iterdir()) == [entry.name]


def test_onnx2tf_leaves_the_recursion_limit_as_it_was():
    """onnx2tf sets sys.setrecursionlimit(2**31 - 1) when imported: a deep recursion after it (a hostile
    nested manifest read by `edgeq report` in the same process) was a segmentation fault."""
    import subprocess
    import sys

    code = (
        "import sys; before = sys.getrecursionlimit()\n"
        "from edgeq import onnx_import; onnx_import.require_onnx2tf()\n"
        "assert sys.getrecursionlimit() == before, sys.getrecursionlimit()\n"
        "import json\n"
        "try:\n    json.loads('[' * 1_000_000)\nexcept RecursionError:\n    print('RecursionError')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "RecursionError"
