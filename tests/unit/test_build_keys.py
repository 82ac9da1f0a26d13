"""A build step's cache key holds the versions of the tools it runs: another version (or a tool installed
where it was absent) is another key; tool versions are asked once per process per executable file."""

from __future__ import annotations

import pytest

from edgeq.build.keys import KEY_FORMAT, step_key, target_tools
from edgeq.cache import key_of
from edgeq.targets import registry, toolversions
from edgeq.targets.base import Stage


def _key(tools: dict[str, str]) -> str:
    return key_of({"stage": "target", **step_key({"tflite": "ab" * 32}, {"target": "coral"}, tools)})


def test_the_key_changes_with_a_tools_version_string():
    absent = _key({"edgetpu_compiler": toolversions.ABSENT})
    v16 = _key({"edgetpu_compiler": "16.0.384591198"})
    v17 = _key({"edgetpu_compiler": "17.0"})
    assert len({absent, v16, v17}) == 3
    assert _key({"a": "1", "b": "2"}) == _key({"b": "2", "a": "1"})  # the order tools are named in is not a change
    assert step_key({}, {}, {})["format"] == KEY_FORMAT


def _compiler(folder, version: str, calls):
    exe = folder / "edgetpu_compiler"
    exe.write_text(f'#!/bin/sh\necho "$*" >> "{calls}"\necho "Edge TPU Compiler version {version}"\n')
    exe.chmod(0o755)
    return exe


def test_coral_says_its_compilers_version_and_absent_without_one(tmp_path, monkeypatch):
    coral = registry.get("coral")
    monkeypatch.setenv("PATH", str(tmp_path))
    assert coral.tool_versions(Stage.COMPILE) == {"edgetpu_compiler": toolversions.ABSENT}
    assert coral.tool_versions(Stage.CHECK) == {}  # the pre-flight is edgeq's own: no tool
    calls = tmp_path / "calls.txt"
    exe = _compiler(tmp_path, "16.0.384591198", calls)
    assert target_tools(coral, (Stage.CHECK, Stage.COMPILE)) == {"edgetpu_compiler": "16.0.384591198"}
    assert coral.tool_versions(Stage.COMPILE) == {"edgetpu_compiler": "16.0.384591198"}
    assert calls.read_text().splitlines() == ["--version"]  # asked once in this process
    exe.unlink()
    _compiler(tmp_path, "16.1.999", calls)  # an upgrade: another file, asked again
    assert coral.tool_versions(Stage.COMPILE, {"compiler": str(exe)}) == {"edgetpu_compiler": "16.1.999"}
    assert calls.read_text().splitlines() == ["--version", "--version"]


def test_a_program_that_does_not_answer_is_not_absent(tmp_path):
    slow = tmp_path / "slow"
    slow.write_text("#!/bin/sh\nsleep 30\n")
    slow.chmod(0o755)
    assert toolversions.program(str(slow), timeout_s=0.5) == "no answer"
    assert toolversions.program(str(tmp_path / "missing")) == toolversions.ABSENT


@pytest.mark.parametrize("name", registry.names())
def test_every_target_says_its_tools_for_every_stage(name):
    tgt = registry.get(name)
    for stage in Stage:
        tools = tgt.tool_versions(stage)
        assert all(isinstance(k, str) and isinstance(v, str) and v for k, v in tools.items()), (stage, tools)


# the typed findings and the whole build: its recipe, keys, steps, targets' steps, cache and entry point
STRICT = (
    "edgeq/findings.py",
    "edgeq/build/",
    "edgeq/cache.py",
    "edgeq/pipeline.py",
    "edgeq/stages/deploy.py",
)


def test_the_findings_and_the_build_pass_mypy_strict():
    """The typed findings and the build (recipe, keys, steps) are checked as strictly as mypy goes (their
    imports are read for their types, not judged: ``--follow-imports=silent``)."""
    import subprocess
    import sys
    from pathlib import Path

    pytest.importorskip("mypy")
    root = Path(__file__).resolve().parents[2]
    r = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent", "--no-incremental", *STRICT],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stdout + r.stderr
