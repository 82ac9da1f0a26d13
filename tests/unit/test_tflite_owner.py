"""One owner of the .tflite format: edgeq.tflite alone imports the schema and flatbuffers, and its
private helpers stay inside it.

Everything else asks the package for typed facts (edgeq.tflite.parse / load / read_file) or for an
edit (edgeq.tflite.edit). Tests that craft hostile flatbuffers (tests/adversarial/mutate.py,
tests/coral/tflite_builder.py) may use the schema directly: they write what edgeq never would.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "edgeq" / "tflite"
# the generated schema (LiteRT's, or TensorFlow's, or the `tflite` package) and the flatbuffers runtime
SCHEMA_MODULES = (
    "flatbuffers",
    "ai_edge_litert.schema_py_generated",
    "tflite",
    "tensorflow.lite.python.schema_py_generated",
)


def _imports(path: Path) -> list[tuple[int, str, tuple[str, ...]]]:
    """(line, module, imported names) of every import in a file, at any depth (lazy imports too)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name, ()) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module, tuple(alias.name for alias in node.names)))
    return found


def _is_schema(module: str, names: tuple[str, ...]) -> bool:
    full = [module] + [f"{module}.{n}" for n in names]
    return any(m == s or m.startswith(s + ".") for m in full for s in SCHEMA_MODULES)


def _sources(*folders: str) -> list[Path]:
    return [p for f in folders for p in sorted((ROOT / f).rglob("*.py")) if ".venv" not in p.parts]


# Outside edgeq, the schema is for writing what edgeq never would (corrupt and hand-built models), for
# checking the schema's own classes against cgen's protocols, and for instrumenting it while fuzzing.
CRAFTERS = {
    "tests/adversarial/mutate.py",
    "tests/adversarial/test_adversarial.py",
    "tests/coral/tflite_builder.py",
    "tests/mcu/cgen/test_units.py",
    "fuzz/fuzz_tflite.py",
}


def test_only_edgeq_tflite_imports_the_schema_or_flatbuffers():
    offenders = [
        f"{p.relative_to(ROOT)}:{line}: {module}"
        for p in _sources("edgeq", "tests", "fuzz", "benchmarks")
        if PACKAGE not in p.parents and str(p.relative_to(ROOT)) not in CRAFTERS
        for line, module, names in _imports(p)
        if _is_schema(module, names)
    ]
    assert not offenders, "ask edgeq.tflite instead of reading the flatbuffer:\n" + "\n".join(offenders)


def test_inside_the_package_only_its_private_module_imports_the_schema():
    importers = {p.name for p in PACKAGE.glob("*.py") for _, module, names in _imports(p) if _is_schema(module, names)}
    assert importers == {"_schema.py"}


def test_no_private_helper_of_edgeq_tflite_is_imported_from_outside():
    offenders = []
    for p in _sources("edgeq", "tests", "fuzz", "benchmarks"):
        if PACKAGE in p.parents:
            continue
        for line, module, names in _imports(p):
            if not (module == "edgeq.tflite" or module.startswith("edgeq.tflite.")):
                continue
            private = [n for n in (*module.split(".")[2:], *names) if n.startswith("_")]
            if private:
                offenders.append(f"{p.relative_to(ROOT)}:{line}: {module} {private}")
    assert not offenders, "use the public API of edgeq.tflite:\n" + "\n".join(offenders)


def test_the_old_readers_are_gone():
    assert not (ROOT / "edgeq" / "flatbuffer.py").exists()
    assert not (ROOT / "edgeq" / "tflite_check.py").exists()
    uses = [
        f"{p.relative_to(ROOT)}:{line}: {module}"
        for p in _sources("edgeq", "tests", "fuzz", "benchmarks")
        for line, module, names in _imports(p)
        if module in ("edgeq.flatbuffer", "edgeq.tflite_check")
        or (module == "edgeq" and {"flatbuffer", "tflite_check"} & set(names))
    ]
    assert not uses, "\n".join(uses)


def test_a_model_is_parsed_once_per_content(tmp_path, monkeypatch):
    """read_file, read_bytes and parse of the same model share one parse; a rewritten file is read again."""
    from edgeq import tflite
    from edgeq.tflite import check

    seed = ROOT / "tests" / "adversarial" / "seeds" / "int8_io.tflite"
    calls = []
    real = check.validate
    monkeypatch.setattr(check, "validate", lambda data, origin="model": calls.append(origin) or real(data, origin))
    tflite.clear_cache()
    path = tmp_path / "m.tflite"
    path.write_bytes(seed.read_bytes())
    first = tflite.load(path)
    assert tflite.read_file(path) is first.info
    assert tflite.read_bytes(seed.read_bytes(), "again") is first.info
    assert tflite.parse(path.read_bytes()) is first
    assert len(calls) == 1
    tflite.clear_cache()
    tflite.read_file(path)
    assert len(calls) == 2
