"""No import cycle between edgeq's modules, and every module imports alone.

Imports inside functions count. Which way the imports go (the layers and STYLE.md's "never" list) is
``tests/unit/test_layers.py``, on the same parse of the sources.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.unit.test_layers import MODULES, PACKAGE, ROOT, all_imports, module_name


def graph() -> dict[str, set[str]]:
    g: dict[str, set[str]] = {module_name(p): set() for p in PACKAGE.rglob("*.py")}
    for i in all_imports():
        g[i.source].add(i.target)
    return g


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected component with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(g.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(10_000)
    try:
        for v in sorted(g):
            if v not in index:
                visit(v)
    finally:
        sys.setrecursionlimit(limit)
    return out


def _package_parent_edges(g: dict[str, set[str]]) -> dict[str, set[str]]:
    """A package's ``__init__`` re-exporting its submodules is not a cycle with them: drop child -> parent."""
    return {m: {d for d in deps if not m.startswith(d + ".")} for m, deps in g.items()}


def test_no_import_cycles():
    found = cycles(_package_parent_edges(graph()))
    assert not found, "import cycles: " + "; ".join(" <-> ".join(c) for c in found)


def test_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_every_module_imports_alone():
    """Each module with no other edgeq module loaded before it (one process; third-party modules such as
    numpy cannot be loaded twice in a process, so they stay loaded)."""
    script = (
        "import importlib, sys\n"
        "bad = []\n"
        "for name in sys.argv[1:]:\n"
        "    for m in [m for m in sys.modules if m == 'edgeq' or m.startswith('edgeq.')]:\n"
        "        del sys.modules[m]\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except Exception as exc:\n"
        "        bad.append(f'{name}: {type(exc).__name__}: {exc}')\n"
        "print('\\n'.join(bad))\n"
        "sys.exit(1 if bad else 0)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, *MODULES], capture_output=True, text=True, cwd=ROOT, timeout=600
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


@pytest.mark.parametrize("module", ["edgeq", "edgeq.cli", "edgeq.cli.main", "edgeq.api", "edgeq.config"])
def test_light_modules_do_not_import_tensorflow(module):
    code = f"import sys, {module}; sys.exit('tensorflow' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT, timeout=120).returncode == 0
