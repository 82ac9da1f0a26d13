"""The static checks cover the whole package, and CI's target runs them (issue 12: mypy ran on 5 files)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _recipe(target: str) -> list[str]:
    """The command lines of a Makefile target."""
    lines = (ROOT / "Makefile").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if re.match(rf"^{target}:", line))
    recipe = []
    for line in lines[start + 1 :]:
        if not line.startswith("\t"):
            break
        recipe.append(line.strip())
    return recipe


def test_mypy_checks_all_of_edgeq():
    mypy = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]
    assert mypy["files"] == ["edgeq"]
    # whatever is left out must be a named file, never a folder or a pattern that hides a package
    for pattern in [mypy["exclude"]] if isinstance(mypy.get("exclude"), str) else mypy.get("exclude", []):
        assert pattern.startswith("^edgeq/") and pattern.endswith(r"\.py$"), pattern


def test_ci_and_lint_run_mypy():
    # .ci/run is `make test`: mypy must be in that target, not only in `make lint`
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    assert "$(BIN)/mypy" in _recipe("test")
    lint = _recipe("lint")
    assert any("ruff check" in c for c in lint) and any("ruff format --check" in c for c in lint)
    assert "$(BIN)/mypy" in lint
