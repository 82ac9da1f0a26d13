"""A third-party int8 microcontroller model from PyPI through ``--runtime c``: pymicro-wakeword's okay_nabu
(tests/data/third_party/pymicro_wakeword/SOURCE.md), a streaming model with resource variables, compiles and
is proven bit-exact; tests/mcu/cgen/test_streaming.py proves it against TFLM over a stream of frames."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from edgeq.targets.mcu import cgen

MODEL = Path(__file__).resolve().parents[2] / "data" / "third_party" / "pymicro_wakeword" / "okay_nabu.tflite"
STREAMING = ("CALL_ONCE", "VAR_HANDLE", "READ_VARIABLE", "STRIDED_SLICE", "ASSIGN_VARIABLE", "SPLIT_V")


def test_the_file_is_the_one_source_md_names():
    text = (MODEL.parent / "SOURCE.md").read_text()
    assert hashlib.sha256(MODEL.read_bytes()).hexdigest() in text and (MODEL.parent / "LICENSE").is_file()


def test_generate_runs_every_streaming_op():
    project = cgen.generate(MODEL.read_bytes(), MODEL.name)
    assert set(STREAMING) <= set(project.ops)
    # the six variables (3,408 bytes) are static storage, not arena: the arena holds activations only
    assert project.arena_bytes < 8192 and project.output_dtype == "uint8"


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("gcc") is None, reason="no gcc on PATH")
def test_cli_compiles_it_with_the_c_runtime(run_cli, tmp_path):
    r = run_cli("--json", "compile", str(MODEL), "--target", "mcu", "--runtime", "c", "--board", "nrf52840",
                "--proof-samples", "8", "-o", str(tmp_path / "out"))  # fmt: skip
    assert r.exit_code == 0, r.stdout + r.stderr
    doc = r.json["result"]
    assert doc["proof"]["host"]["bit_exact"] == 8
    assert "void model_reset(void);" in (tmp_path / "out" / "okay_nabu_c" / "model.h").read_text()
