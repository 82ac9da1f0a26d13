"""--json prints exactly one document with the same keys on success and on failure."""

from __future__ import annotations

import json

KEYS = {"schema_version", "command", "ok", "result", "artifacts", "error"}


def test_json_document_on_success(run_cli, tiny_int8):
    r = run_cli("--json", "inspect", tiny_int8)
    assert r.exit_code == 0
    doc = json.loads(r.stdout)  # exactly one document: json.loads rejects trailing data
    assert set(doc) == KEYS
    assert doc["ok"] is True and doc["command"] == "inspect" and doc["error"] is None
    assert doc["result"]["float_ops"] == []


def test_json_document_on_bad_input(run_cli, tmp_path):
    r = run_cli("--json", "inspect", tmp_path / "missing.tflite")
    assert r.exit_code == 3
    doc = json.loads(r.stdout)
    assert set(doc) == KEYS
    assert doc["ok"] is False and doc["result"] is None
    assert doc["error"]["exit_code"] == 3 and "not found" in doc["error"]["message"]


def test_json_document_on_usage_error(run_cli, tmp_path):
    r = run_cli("--json", "quantize", "m.keras", "-o", tmp_path / "x.tflite", "--mode", "int9")
    assert r.exit_code == 2
    doc = json.loads(r.stdout)
    assert doc["ok"] is False and doc["command"] == "quantize" and doc["error"]["exit_code"] == 2


def test_global_flags_after_the_command(run_cli, tiny_int8):
    r = run_cli("inspect", tiny_int8, "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["command"] == "inspect"
