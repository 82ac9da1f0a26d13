"""A third-party int8 microcontroller model from PyPI through ``--runtime c``: pymicro-wakeword's okay_nabu
(tests/data/third_party/pymicro_wakeword/SOURCE.md) is refused, naming every op the C engine lacks."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from edgeq.errors import UnsupportedOp
from edgeq.targets.mcu import cgen

MODEL = Path(__file__).resolve().parents[2] / "data" / "third_party" / "pymicro_wakeword" / "okay_nabu.tflite"
LACKING = ("CALL_ONCE", "VAR_HANDLE", "READ_VARIABLE", "STRIDED_SLICE", "ASSIGN_VARIABLE", "SPLIT_V")


def test_the_file_is_the_one_source_md_names():
    text = (MODEL.parent / "SOURCE.md").read_text()
    assert hashlib.sha256(MODEL.read_bytes()).hexdigest() in text and (MODEL.parent / "LICENSE").is_file()


def test_generate_names_every_unsupported_op():
    with pytest.raises(UnsupportedOp) as e:
        cgen.generate(MODEL.read_bytes(), MODEL.name)
    for op in LACKING:
        assert op in e.value.message
    assert {d["op"] for d in e.value.details["unsupported_ops"]} == set(LACKING)
    assert "--runtime tflm" in e.value.hint and e.value.exit_code == 3


def test_cli_refuses_it_and_writes_nothing(run_cli, tmp_path):
    r = run_cli("compile", str(MODEL), "--target", "mcu", "--runtime", "c", "-o", str(tmp_path / "out"))
    assert r.exit_code == 3
    assert all(op in r.stderr for op in LACKING) and "--runtime tflm" in r.stderr
    assert not any((tmp_path / "out").glob("okay_nabu*"))
