"""--help answers fast and without TensorFlow, for the group and every command."""

from __future__ import annotations

import subprocess
import sys

import pytest

from edgeq.cli.main import cli

COMMANDS = sorted(cli.commands)


def _help_imports(args: list[str]) -> tuple[int, str, str]:
    code = (
        "import sys\n"
        "from edgeq.cli.app import run\n"
        "from edgeq.cli.main import cli\n"
        f"rc = run(cli, {args!r})\n"
        "heavy = [m for m in ('tensorflow', 'tf_keras', 'keras', 'ai_edge_litert') if m in sys.modules]\n"
        "print('HEAVY=' + ','.join(heavy), file=sys.stderr)\n"
        "sys.exit(rc)\n"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout, p.stderr


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_help_imports_no_tensorflow(command):
    args = ["--help"] if command is None else [command, "--help"]
    rc, out, err = _help_imports(args)
    assert rc == 0
    assert "Usage: edgeq" in out
    assert "HEAVY=\n" in err or err.strip().endswith("HEAVY=")


def test_every_issue_command_exists():
    assert {"quantize", "inspect", "eval", "bench", "build", "targets"} <= set(COMMANDS)


def test_version(run_cli):
    from edgeq import __version__

    r = run_cli("--version")
    assert r.exit_code == 0
    assert __version__ in r.stdout


def test_help_lists_exit_codes(run_cli):
    r = run_cli("--help")
    for code in ("0 ok", "2 usage", "3 bad input", "4 conversion", "5 tool", "6 quality gate", "130 interrupted"):
        assert code in r.stdout


def test_targets_lists_cpu(run_cli):
    r = run_cli("--json", "targets")
    assert r.exit_code == 0
    assert "cpu" in [t["name"] for t in r.json["result"]["targets"]]


@pytest.mark.parametrize("command", ["quantize", "eval", "debug", "inspect", "train", "build"])
def test_model_loading_commands_take_input_shape(run_cli, command):
    """Every command that loads a model can pin its dynamic input dimensions, and --help says the range."""
    r = run_cli(command, "--help")
    assert r.exit_code == 0
    text = " ".join(r.stdout.split())
    assert "--input-shape" in text and "Each dimension between 1 and 16777216" in text, text


def test_bad_input_shape_is_a_usage_error_before_any_work(run_cli, tmp_path):
    r = run_cli("--json", "quantize", tmp_path / "absent.keras", "--input-shape", "1x0x3", "-o", tmp_path / "o.tflite")
    assert r.exit_code == 2 and r.json["error"]["exit_code"] == 2
    assert "every dimension must be between 1 and 16777216, got 0" in r.json["error"]["message"]
