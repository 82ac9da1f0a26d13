"""edgeq check / compile / targets --supported-ops for coral: output, JSON shape and exit codes."""

from __future__ import annotations

import pytest

from edgeq.targets.coral import rules

pytestmark = pytest.mark.slow


def test_check_json(run_cli, coral_models):
    r = run_cli("--json", "check", coral_models["bundled_int8"], "--target", "coral")
    assert r.exit_code == 0
    res = r.json["result"]
    assert res["details"]["counts"] == {"tpu": 9, "cpu": 0} and res["details"]["first_unmapped"] is None
    placement = res["findings"]["placement"]
    assert (placement["on"], placement["off"], placement["basis"]) == (9, 0, "predicted")
    assert all(set(row) == {"op", "count", "status", "on_tpu", "basis"} for row in res["ops"])
    assert r.json["command"] == "check"


def test_check_text_names_the_first_unmapped_op(run_cli, coral_models):
    r = run_cli("check", coral_models["leaky"], "--target", "coral")
    assert r.exit_code == 0
    assert "Operation not supported" in r.stdout and "More than one subgraph is not supported" in r.stdout
    assert "first unmapped: #1 LEAKY_RELU" in r.stdout


def test_check_runtime_version(run_cli, coral_models):
    r = run_cli("--json", "check", coral_models["permute"], "--target", "coral", "--runtime-version", "13")
    assert r.json["result"]["details"]["first_unmapped"]["op"] == "TRANSPOSE"
    assert r.json["result"]["findings"]["placement"]["first_off"].startswith("TRANSPOSE: ")
    assert run_cli("check", coral_models["permute"], "--target", "coral", "--runtime-version", "9").exit_code == 2
    assert run_cli("check", coral_models["permute"], "--target", "cpu", "--runtime-version", "13").exit_code == 2


def test_check_float_model_is_bad_input(run_cli, coral_models):
    r = run_cli("--json", "check", coral_models["bundled_float"], "--target", "coral")
    assert r.exit_code == 3
    err = r.json["error"]
    assert err["type"] == "bad_input" and "not fully integer (float ops: CONV_2D x3" in err["message"]
    assert "--mode int8 --data" in err["hint"]
    text = run_cli("check", coral_models["bundled_dynamic"], "--target", "coral")
    assert text.exit_code == 3 and "dynamic-range quantized" in text.stderr


def test_check_corrupt_and_foreign_files(run_cli, coral_models, tmp_path):
    cut = tmp_path / "cut.tflite"
    cut.write_bytes(coral_models["bundled_int8"].read_bytes()[:2000])
    r = run_cli("check", cut, "--target", "coral")
    assert r.exit_code == 3 and "truncated or corrupt" in r.stderr
    text = tmp_path / "notes.tflite"
    text.write_text("not a model")
    r = run_cli("check", text, "--target", "coral")
    assert r.exit_code == 3 and "not a TFLite model" in r.stderr
    assert run_cli("check", tmp_path / "missing.tflite", "--target", "coral").exit_code == 3


def test_compile_without_compiler_is_skipped(run_cli, no_compiler, coral_models, tmp_path):
    r = run_cli("compile", coral_models["bundled_int8"], "--target", "coral", "-o", tmp_path / "o")
    assert r.exit_code == 0
    assert "compile: skipped" in r.stdout and "WARNING: compile step skipped" in r.stderr
    assert (tmp_path / "o" / "bundled_int8.coral-check.json").exists()
    j = run_cli("--json", "compile", coral_models["bundled_int8"], "--target", "coral", "-o", tmp_path / "j")
    res = j.json["result"]
    assert j.exit_code == 0 and res["skipped"] is True and res["steps"]["compile"] == "skipped"
    assert "edgetpu-compiler" in res["reason"]
    assert j.json["artifacts"] == [str(tmp_path / "j" / "bundled_int8.coral-check.json")]


def test_compile_require_compiler_exits_5(run_cli, no_compiler, coral_models, tmp_path):
    r = run_cli(
        "--json", "compile", coral_models["bundled_int8"], "--target", "coral", "-o", tmp_path, "--require-compiler"
    )
    assert r.exit_code == 5 and r.json["error"]["type"] == "unavailable"


def test_compile_with_the_stand_in(run_cli, fake_compiler, coral_models, tmp_path):
    fake_compiler(console="edgetpu-yolo_yolov5s-int8-224.console.txt", log="nrf20_mnist7.log")
    model = tmp_path / "mnist7.tflite"
    model.write_bytes(coral_models["mnist7_like"].read_bytes())
    out = tmp_path / "o"
    r = run_cli("--json", "compile", model, "--target", "coral", "-o", out, "-m", "13", "-a")
    assert r.exit_code == 0, r.stdout
    res = r.json["result"]
    assert res["skipped"] is False and res["compiler"]["version"] == "16.0.384591198"
    (m,) = res["models"]
    assert m["compiler"]["on_chip_cached_bytes"] and m["matches_prediction"] is True
    assert str(out / "mnist7_edgetpu.tflite") in r.json["artifacts"]
    again = run_cli("compile", model, "--target", "coral", "-o", out)
    assert again.exit_code == 3 and "--force" in again.stderr
    text = run_cli("compile", model, "--target", "coral", "-o", out, "--force")
    assert text.exit_code == 0 and "matches the pre-flight" in text.stdout and "cached on chip" in text.stdout


def test_compile_failure_and_timeout_exit_4(run_cli, fake_compiler, coral_models, tmp_path):
    fake_compiler(console="issue168_model_not_quantized.console.txt", exit_code=1)
    r = run_cli("--json", "compile", coral_models["bundled_int8"], "--target", "coral", "-o", tmp_path / "a")
    assert r.exit_code == 4 and r.json["error"]["type"] == "conversion_failed"
    assert "Model not quantized" in r.json["error"]["message"]
    fake_compiler(mode="sleep", FAKE_EDGETPU_SLEEP_S=60)
    r = run_cli("compile", coral_models["bundled_int8"], "--target", "coral", "-o", tmp_path / "b", "--timeout-s", "1")
    assert r.exit_code == 4 and "did not finish within 1 s" in r.stderr


def test_compile_options_a_target_does_not_take(run_cli, coral_models, tmp_path):
    r = run_cli("compile", coral_models["bundled_int8"], "--target", "cpu", "-m", "13", "-o", tmp_path)
    assert r.exit_code == 2 and "--min-runtime-version does not apply to target cpu for compile" in r.stderr
    two = run_cli("compile", coral_models["bundled_int8"], coral_models["leaky"], "--target", "cpu", "-o", tmp_path)
    assert two.exit_code == 2


def test_supported_ops_listing(run_cli):
    r = run_cli("--json", "targets", "--supported-ops", "coral")
    assert r.exit_code == 0
    ops = r.json["result"]["ops"]
    assert len(ops) == len(rules.RULES)
    softmax = next(o for o in ops if o["op"] == "SOFTMAX")
    assert "Supports only 1D input tensor with a max of 16,000 elements." in softmax["limitations"]
    text = run_cli("targets", "--supported-ops", "coral", "--runtime-version", "13")
    assert "TRANSPOSE (" not in text.stdout and "TRANSPOSE_CONV (TransposeConv, runtime 13+)" in text.stdout
    assert "Only Strided" not in text.stdout  # the status is not a rule text; the limit is
    assert "all strides are equal to 1" in text.stdout
    assert run_cli("targets", "--supported-ops", "cpu").exit_code == 2
    assert run_cli("targets", "--supported-ops", "tpu").exit_code == 2
