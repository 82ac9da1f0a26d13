"""File names that are not UTF-8 (bytes like 0xff): messages show them escaped, never crash,
and such a model can still be loaded and quantized."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from edgeq.errors import BadInput
from edgeq.paths import native_path, printable, shown

ROOT = Path(__file__).resolve().parents[2]
BAD = os.fsdecode(b"bad\xffname")  # "bad\udcffname": how Python holds the undecodable byte


@pytest.fixture
def bad_dir(tmp_path) -> Path:
    try:
        (tmp_path / BAD).mkdir()
    except (UnicodeEncodeError, OSError):  # a file system that refuses non-UTF-8 names
        pytest.skip("this file system refuses non-UTF-8 file names")
    return tmp_path


def test_shown_escapes_undecodable_bytes():
    assert shown(BAD + ".tflite") == "bad\\xffname.tflite"
    assert shown(b"dir/bad\xffname.npz") == "dir/bad\\xffname.npz"
    assert shown(Path("caf\u00e9") / BAD) == "caf\u00e9/bad\\xffname"  # valid UTF-8 is left alone
    assert printable("lone \ud800 surrogate") == "lone \\ud800 surrogate"
    assert printable("plain") == "plain"


def test_native_path_is_a_utf8_alias_of_the_same_file(bad_dir):
    f = bad_dir / (BAD + ".keras")
    f.write_bytes(b"model bytes")
    with native_path(f) as alias:
        str(alias).encode("utf-8")  # TensorFlow can take it
        assert alias.suffix == ".keras" and alias.read_bytes() == b"model bytes"
    assert not alias.exists()  # the alias is gone afterwards, the file is not
    assert f.read_bytes() == b"model bytes"
    ok = bad_dir / "ok.keras"
    with native_path(ok) as same:
        assert same == ok


def test_missing_model_with_a_non_utf8_name(run_cli, bad_dir):
    r = run_cli("inspect", bad_dir / (BAD + ".tflite"))
    assert r.exit_code == 3
    assert r.stderr == f"error: model file not found: {shown(bad_dir)}/bad\\xffname.tflite; check the path\n"


def test_corrupt_model_with_a_non_utf8_name_in_json(run_cli, bad_dir):
    f = bad_dir / (BAD + ".tflite")
    f.write_bytes(b"not a model at all")
    r = run_cli("--json", "inspect", f)
    assert r.exit_code == 3
    r.stdout.encode("utf-8")  # no lone surrogates in the document
    doc = json.loads(r.stdout)
    assert "bad\\xffname.tflite is truncated or corrupt" in doc["error"]["message"]


def test_data_with_a_non_utf8_name(bad_dir):
    from edgeq import data
    from edgeq.config import DataConfig

    f = bad_dir / (BAD + ".npz")
    np.savez(f, x=np.zeros((3, 4, 4, 1), np.float32), y=np.arange(3))
    ds = data.load(DataConfig(path=str(f)))
    assert ds.num_samples == 3
    with pytest.raises(BadInput) as exc:
        data.validate(ds, (8, 8, 1), None)
    assert "bad\\xffname.npz has sample shape" in exc.value.message
    (bad_dir / (BAD + ".npy")).write_text("text")
    with pytest.raises(BadInput, match=r"not a NumPy \.npy file: .*bad\\xffname\.npy"):
        data.load(DataConfig(path=str(bad_dir / (BAD + ".npy"))))


def test_config_and_report_paths_with_non_utf8_names(run_cli, bad_dir):
    r = run_cli("build", "--config", bad_dir / (BAD + ".toml"), "-o", bad_dir / "out")
    assert r.exit_code == 3 and "config file not found: " in r.stderr and "bad\\xffname.toml" in r.stderr
    r = run_cli("report", bad_dir / BAD)
    assert r.exit_code == 3 and r.stderr == f"error: {shown(bad_dir)}/bad\\xffname has no build.json; " + (
        "pass the -o folder of an edgeq build\n"
    )


@pytest.mark.slow
def test_a_model_with_a_non_utf8_name_quantizes(run_cli, bad_dir):
    """TensorFlow's file system refused the name ('incompatible constructor arguments')."""
    model = bad_dir / (BAD + ".keras")
    shutil.copy(ROOT / "models" / "mnist_cnn.keras", model)
    out = bad_dir / (BAD + "_int8.tflite")
    r = run_cli("quantize", model, "--data", ROOT / "representative_data" / "mnist_calib.npz", "-o", out)
    assert r.exit_code == 0, r.stderr
    assert out.read_bytes()[4:8] == b"TFL3"
    assert "wrote " + shown(out) in r.stdout
    r = run_cli("inspect", out)
    assert r.exit_code == 0 and r.stdout.startswith(shown(out))


def test_report_of_a_build_whose_model_name_is_not_utf8(run_cli, tmp_path):
    from tests.hardening.test_report_manifests import TARGET, TOP, _write

    top = json.loads(json.dumps(TOP))
    top["inputs"]["model"] = f"models/{BAD}.keras"
    _write(tmp_path, json.dumps(top), TARGET)  # json writes the byte as "\udcff", as a build does
    r = run_cli("report", tmp_path)
    assert r.exit_code == 0, r.stderr
    assert "Model: models/bad\\xffname.keras;" in (tmp_path / "report.md").read_text(encoding="utf-8")
    assert "models/bad\\xffname.keras" in (tmp_path / "report.html").read_text(encoding="utf-8")


def test_debug_chart_title_with_a_non_utf8_model_name():
    from edgeq.debug.plot import rmse_over_scale_png

    assert rmse_over_scale_png([], f"{BAD}.keras: int8 error per layer").startswith(b"\x89PNG")
