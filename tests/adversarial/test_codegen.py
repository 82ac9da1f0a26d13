"""The generated-code family of the adversarial suite (:mod:`tests.adversarial.codegen`): hostile names in
every name field of a model, its file and output folder, through ``compile --runtime c`` and the TFLM export.

The bounded entry puts every hostile string into every field of one model (four child processes); the
full family, one string in one field per model, is ``slow`` (``python -m tests.adversarial.codegen``).
"""

from __future__ import annotations

import json
import shutil

import pytest

from tests.adversarial import codegen

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="no gcc: the C proof cannot run here")


def _check(summary: codegen.Summary, cases: int) -> dict:
    doc = summary.to_dict()
    print(json.dumps({k: v for k, v in doc.items() if k != "problems"}))
    assert doc["files"] == cases and doc["commands"] == cases * len(codegen.COMMANDS)
    assert doc["markers_created"] == 0, "a model's string ran as code"
    assert doc["problems"] == [], json.dumps(doc["problems"][:5], indent=1)
    assert doc["exit_1"] == 0
    return doc


def test_every_hostile_name_in_every_field_at_once(tmp_path):
    doc = _check(codegen.run_family(tmp_path, quick=True), 1)
    assert doc["exit_codes"] == {"0": doc["commands"]}  # all compiled, and tokenised as with plain names


@pytest.mark.long
def test_each_hostile_name_in_each_field(tmp_path):
    doc = _check(codegen.run_family(tmp_path), len(codegen.names(tmp_path)) * len(codegen.FIELDS))
    # only names LiteRT cannot decode are refused (exit 3, one line); everything else compiles
    assert all("non_utf8@" in c for c in doc["refused_cases"]), doc["refused_cases"]
