"""The edgetpu_compiler wrapper end to end through a real subprocess.

The executable is tests/coral/fake_edgetpu_compiler.py, a STAND-IN that replays real recorded compiler
outputs (it is not the compiler); see its docstring and tests/data/edgetpu/SOURCE.md.
"""

from __future__ import annotations

import json
import os
import shutil
import time

import pytest

from edgeq.errors import BadInput, ConversionFailed, OutputExists, Unavailable, UsageError
from edgeq.findings import NONE, Basis, Level
from edgeq.targets.coral import TARGET, CompileConfig, preflight, results, rules
from tests.spies import patch_everywhere

pytestmark = pytest.mark.slow


@pytest.fixture
def mnist7(coral_models, tmp_path):
    """The mnist7-shaped int8 model under the name the recording uses."""
    path = tmp_path / "mnist7.tflite"
    shutil.copyfile(coral_models["mnist7_like"], path)
    return path


def test_compile_runs_the_compiler_and_matches_the_prediction(fake_compiler, mnist7, tmp_path):
    fake_compiler(console="edgetpu-yolo_yolov5s-int8-224.console.txt", log="nrf20_mnist7.log")
    out = tmp_path / "out"
    r = TARGET.compile([str(mnist7)], str(out), {"min_runtime_version": 13, "compiler_timeout_sec": 300})
    assert not r.skipped
    assert r.output == str(out / "mnist7_edgetpu.tflite") and os.path.exists(r.output)
    d = r.details
    assert d["compiler"]["version"] == "16.0.384591198"
    assert d["steps"] == {"preflight": "done", "compile": "done"}
    (m,) = d["models"]
    assert m["matches_prediction"] is True and m["differences"] == []
    assert m["compiler"]["table_source"] == "log"
    assert m["compiler"]["counts"] == {"tpu": 8, "cpu": 0}
    assert m["compiler"]["on_chip_cached_bytes"] > 0  # memory lines parsed from the console
    assert m["logs"] == [str(out / "mnist7_edgetpu.log")]
    sidecar = json.loads((out / "mnist7_edgetpu.tflite.edgeq.json").read_text())
    assert sidecar["compiler"]["version"] == "16.0.384591198" and sidecar["output"]["sha256"]
    assert (out / "mnist7.coral-check.json").exists()
    # the stand-in copies the input: the read-back notices there is no Edge TPU op in it
    assert m["edgetpu_custom_ops"] == 0
    assert any("edgetpu-custom-op" in w for w in d["warnings"])
    # arguments: -s always, the options, -o into a temporary folder, absolute model paths
    args = json.loads(fake_compiler.args_file.read_text())
    assert args[0] == "-s" and args[1:5] == ["-m", "13", "-t", "300"]
    assert args[5] == "-o" and args[-1] == str(mnist7.resolve())
    assert not [p for p in out.iterdir() if p.name.startswith(".edgeq-compile")]
    # the typed findings: the compiler's placement and memory (COMPILED), its warning with its level
    f = r.findings
    assert f.placement is not None and f.placement.basis == Basis.COMPILED
    assert (f.placement.accelerator, f.placement.on, f.placement.off, f.placement.first_off) == ("Edge TPU", 8, 0, "")
    cached = f.memory[results.ON_CHIP]
    assert cached.value == m["compiler"]["on_chip_cached_bytes"] and cached.basis == Basis.COMPILED
    assert [x.level for x in f.messages if "edgetpu-custom-op" in x.text] == [Level.WARNING]
    # merged over the check's prediction (as the build does): the compiler's figures replace the estimates
    check = TARGET.check(str(mnist7), {"runtime_version": 13}).findings
    assert check.memory[results.ON_CHIP].basis == Basis.ESTIMATED
    merged = check.then(f)
    assert merged.placement == f.placement and merged.memory[results.ON_CHIP] == cached
    assert merged.memory[results.PARAMETERS].basis == Basis.PREDICTED  # the compiler does not report it


def test_compile_describes_itself_as_edgeq_compile_prints_it(fake_compiler, mnist7, tmp_path):
    fake_compiler(console="edgetpu-yolo_yolov5s-int8-224.console.txt", log="nrf20_mnist7.log")
    out = tmp_path / "out"
    r = TARGET.compile([str(mnist7)], str(out))
    lines = r.describe()
    assert lines[0] == f"compiled with {r.details['compiler']['path']} (version 16.0.384591198)"
    assert lines[1] == (
        f"{mnist7}: pre-flight 8 op(s) on the Edge TPU, 0 on the CPU (report: {out / 'mnist7.coral-check.json'})"
    )
    assert lines[2].startswith(f"  compiler: {out / 'mnist7_edgetpu.tflite'}; 8 op(s) on the Edge TPU, 0 on the CPU; ")
    assert lines[3].startswith("  parameters: cached on chip ") and " MiB, on-chip remaining " in lines[3]
    assert lines[4].splitlines()[0].split() == ["op", "count", "status"]
    assert lines[5:] == ["  the compiler's table matches the pre-flight"]


def test_compile_reuses_the_checks_preflight(fake_compiler, mnist7, tmp_path, monkeypatch):
    """Given the check's report (same runtime), compile does not predict again; otherwise it does."""
    fake_compiler(console="edgetpu-yolo_yolov5s-int8-224.console.txt", log="nrf20_mnist7.log")
    report = TARGET.check(str(mnist7), {"runtime_version": 13})
    real, calls = preflight.predict, []

    def spy(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    assert patch_everywhere(monkeypatch, preflight, "predict", spy)
    r = TARGET.compile([str(mnist7)], str(tmp_path / "a"), {"min_runtime_version": 13}, checked=[report])
    assert calls == []
    (m,) = r.details["models"]
    assert m["preflight"]["counts"] == report.details["counts"] and m["matches_prediction"] is True
    # another runtime version than the check's, or no check: the pre-flight runs
    TARGET.compile([str(mnist7)], str(tmp_path / "b"), {"min_runtime_version": 14}, checked=[report])
    TARGET.compile([str(mnist7)], str(tmp_path / "c"), {"min_runtime_version": 13})
    assert len(calls) == 2


def test_a_check_of_another_model_is_not_reused(no_compiler, coral_models, mnist7, tmp_path, monkeypatch):
    report = TARGET.check(str(coral_models["bundled_int8"]))
    real, calls = preflight.predict, []

    def spy(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    patch_everywhere(monkeypatch, preflight, "predict", spy)
    r = TARGET.compile([str(mnist7)], str(tmp_path / "o"), checked=[report])
    assert len(calls) == 1 and r.details["models"][0]["preflight"]["counts"] == {"tpu": 8, "cpu": 0}


def test_every_option_reaches_the_command_line(fake_compiler, mnist7, tmp_path):
    fake_compiler(console="edgetpu-yolo_yolov5s-int8-224.console.txt", log="nrf20_mnist7.log")
    cfg = CompileConfig(
        min_runtime_version=14,
        enable_multiple_subgraphs=True,
        search_delegate=True,
        delegate_search_step=30,
        intermediate_tensors=("a", "b"),
        num_segments=2,
        compiler_timeout_sec=600,
    )
    r = TARGET.compile([str(mnist7)], str(tmp_path / "o"), {k: v for k, v in vars(cfg).items() if k != "overwrite"})
    args = json.loads(fake_compiler.args_file.read_text())
    assert args[:12] == ["-s", "-m", "14", "-a", "-d", "-k", "30", "-i", "a,b", "-n", "2", "-t"]
    assert r.details["command"][1:] == args


def test_differences_are_reported(fake_compiler, coral_models, tmp_path):
    """Replaying the real mnist7 log against the bundled model (3 convs, 1 dense): every row differs."""
    fake_compiler(console="edgetpu-yolo_yolov5s-int8-224.console.txt", log="nrf20_mnist7.log")
    r = TARGET.compile([str(coral_models["bundled_int8"])], str(tmp_path / "o"))
    (m,) = r.details["models"]
    assert m["matches_prediction"] is False
    diff = {d["op"]: (d["predicted"], d["compiler"]) for d in m["differences"]}
    assert diff["CONV_2D"] == (3, 2) and diff["FULLY_CONNECTED"] == (1, 2)
    assert any("differs from the pre-flight" in w for w in r.details["warnings"])


def test_co_compilation_in_one_call(fake_compiler, coral_models, mnist7, tmp_path):
    fake_compiler(console="edgetpu-yolo_yolov5s-int8-224.console.txt", log="nrf20_mnist7.log")
    other = tmp_path / "bundled.tflite"
    shutil.copyfile(coral_models["bundled_int8"], other)
    r = TARGET.compile([str(mnist7), str(other)], str(tmp_path / "o"))
    args = json.loads(fake_compiler.args_file.read_text())
    assert args[-2:] == [str(mnist7.resolve()), str(other.resolve())]
    assert [os.path.basename(m["output"]) for m in r.details["models"]] == [
        "mnist7_edgetpu.tflite",
        "bundled_edgetpu.tflite",
    ]
    # the findings are the first model's (the one `output` names); the other's counts are an INFO message
    first = r.details["models"][0]["compiler"]["counts"]
    assert r.findings.placement is not None and r.findings.placement.on == first["tpu"]
    (other_msg,) = [x for x in r.findings.messages if x.text.startswith(str(other))]
    assert other_msg.level == Level.INFO and "(edgetpu_compiler, co-compiled)" in other_msg.text


def test_missing_compiler_skips_and_keeps_the_preflight(no_compiler, coral_models, tmp_path):
    out = tmp_path / "o"
    r = TARGET.compile([str(coral_models["bundled_int8"])], str(out))
    assert r.skipped and r.output == str(coral_models["bundled_int8"])
    assert "apt-get install edgetpu-compiler" in r.reason and "Docker" in r.reason
    assert r.details["steps"] == {"preflight": "done", "compile": "skipped"}
    assert r.details["compiler"]["available"] is False
    report = json.loads((out / "bundled_int8.coral-check.json").read_text())
    assert report["preflight"]["counts"] == {"tpu": 9, "cpu": 0}
    assert r.findings == NONE  # the check's prediction stands; the build says the compile was skipped
    assert r.describe()[0] == f"compile: skipped ({r.reason})"


def test_missing_compiler_required_is_unavailable(no_compiler, coral_models, tmp_path):
    with pytest.raises(Unavailable) as exc:
        TARGET.compile([str(coral_models["bundled_int8"])], str(tmp_path / "o"), {"require_compiler": True})
    assert exc.value.exit_code == 5 and "apt-get install edgetpu-compiler" in exc.value.hint


def test_explicit_compiler_path_must_exist(coral_models, tmp_path):
    with pytest.raises(Unavailable, match="compiler not found"):
        TARGET.compile([str(coral_models["bundled_int8"])], str(tmp_path / "o"), {"compiler": str(tmp_path / "nope")})


def test_compiler_timeout_kills_it(fake_compiler, coral_models, tmp_path):
    fake_compiler(mode="sleep", FAKE_EDGETPU_SLEEP_S=60)
    start = time.monotonic()
    with pytest.raises(ConversionFailed) as exc:
        TARGET.compile([str(coral_models["bundled_int8"])], str(tmp_path / "o"), {"timeout_s": 1.5})
    assert time.monotonic() - start < 20
    assert exc.value.exit_code == 4 and "within 1.5 s" in exc.value.message
    assert "--timeout-s" in exc.value.hint
    assert not list((tmp_path / "o").glob("*_edgetpu.tflite"))


@pytest.mark.parametrize(
    ("recording", "words", "hint"),
    [
        ("issue168_model_not_quantized.console.txt", "Model not quantized", "--mode int8"),
        ("issue845_could_not_be_parsed.console.txt", "Model could not be parsed", "op version"),
        ("issue829_dynamic_tensors.console.txt", "Model failed in Tflite interpreter", "static input shape"),
        ("issue439_large_activations.console.txt", "large activation tensors", "resolution"),
        ("issue358_internal_error.console.txt", "Internal compiler error", "edgeq check"),
    ],
)
def test_compiler_failures_exit_4(fake_compiler, coral_models, tmp_path, recording, words, hint):
    fake_compiler(console=recording, exit_code=1)
    out = tmp_path / "o"
    with pytest.raises(ConversionFailed) as exc:
        TARGET.compile([str(coral_models["bundled_int8"])], str(out))
    assert exc.value.exit_code == 4
    assert words in exc.value.message and hint in exc.value.hint
    assert exc.value.details["returncode"] == 1 and exc.value.details["preflight"]
    assert not list(out.glob("*_edgetpu.tflite"))


def test_zero_subgraphs_is_a_failure_even_with_exit_0(fake_compiler, coral_models, tmp_path):
    fake_compiler(console="issue225_hand_quant_zero_subgraphs.console.txt", exit_code=0)
    with pytest.raises(ConversionFailed, match="Number of Edge TPU subgraphs: 0"):
        TARGET.compile([str(coral_models["bundled_int8"])], str(tmp_path / "o"), {"min_runtime_version": 10})


def test_failure_text_wins_over_exit_0(fake_compiler, coral_models, tmp_path):
    fake_compiler(console="issue168_model_not_quantized.console.txt", exit_code=0)
    with pytest.raises(ConversionFailed, match="Model not quantized"):
        TARGET.compile([str(coral_models["bundled_int8"])], str(tmp_path / "o"))


def test_nonzero_exit_without_words_is_a_failure(fake_compiler, coral_models, tmp_path):
    fake_compiler(console="version_16.console.txt", exit_code=3)
    with pytest.raises(ConversionFailed, match="exited with code 3"):
        TARGET.compile([str(coral_models["bundled_int8"])], str(tmp_path / "o"))


def test_success_without_output_file_is_a_failure(fake_compiler, coral_models, tmp_path):
    fake_compiler(console="edgetpu-yolo_yolov5s-int8-224.console.txt", mode="no-output")
    with pytest.raises(ConversionFailed, match="wrote no bundled_int8_edgetpu.tflite"):
        TARGET.compile([str(coral_models["bundled_int8"])], str(tmp_path / "o"))


def test_preflight_runs_before_the_compiler(fake_compiler, coral_models, tmp_path):
    fake_compiler(console="edgetpu-yolo_yolov5s-int8-224.console.txt")
    with pytest.raises(BadInput, match="not fully integer"):
        TARGET.compile([str(coral_models["bundled_float"])], str(tmp_path / "o"))
    assert not fake_compiler.args_file.exists()


def test_refuses_to_overwrite_without_force(fake_compiler, mnist7, tmp_path):
    fake_compiler(console="edgetpu-yolo_yolov5s-int8-224.console.txt", log="nrf20_mnist7.log")
    out = tmp_path / "o"
    TARGET.compile([str(mnist7)], str(out), {"overwrite": False})
    with pytest.raises(OutputExists):
        TARGET.compile([str(mnist7)], str(out), {"overwrite": False})
    TARGET.compile([str(mnist7)], str(out), {"overwrite": True})
    TARGET.compile([str(mnist7)], str(out))  # a build pipeline's call owns its folder


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"delegate_search_step": 3}, "needs --search-delegate"),
        ({"num_segments": 0}, "at least 1"),
        ({"min_runtime_version": 99}, "unknown Edge TPU runtime version"),
        ({"timeout_s": 0}, "positive"),
        ({"frobnicate": True}, "unknown option 'frobnicate' for target coral"),
        ({"board": "stm32h7a3"}, "--board does not apply to target coral for compile"),
    ],
)
def test_bad_options_are_usage_errors(coral_models, tmp_path, options, words):
    with pytest.raises(UsageError, match=words):
        TARGET.compile([str(coral_models["bundled_int8"])], str(tmp_path / "o"), options)


def test_runtime_version_of_compile_drives_the_preflight(no_compiler, coral_models, tmp_path):
    r = TARGET.compile([str(coral_models["permute"])], str(tmp_path / "o"), {"min_runtime_version": 13})
    (m,) = r.details["models"]
    assert m["preflight"]["first_unmapped"]["op"] == "TRANSPOSE"
    assert m["preflight"]["runtime_version"] == 13 == rules.KNOWN_RUNTIME_VERSIONS[3]
