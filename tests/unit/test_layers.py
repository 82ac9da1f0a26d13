"""The layers of docs STYLE.md sections 2 and 3, checked on every import edgeq makes.

Imports inside functions count: they keep TensorFlow out of ``--help``, but they must still point down
the layers. Two checks, each naming every offending import by file and line:

- the "never" list of STYLE.md section 3 (:data:`NEVER`), which forbids some arrows between modules of
  one layer too (cli -> a target package, quantize -> targets);
- the layer table (:data:`LAYERS`): an import goes to the same layer or a lower one, never up.

(``tests/unit/test_imports.py`` checks cycles and that every module imports alone, on the same parse.)
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "edgeq"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = sorted(module_name(p) for p in PACKAGE.rglob("*.py") if p.name != "__main__.py")  # __main__ runs the CLI


@dataclass(frozen=True)
class Import:
    """One edgeq module named by an import statement of another."""

    source: str  # the importing module
    target: str  # the longest edgeq module the statement names ("edgeq.targets.registry.get" -> ...registry)
    where: str  # "edgeq/cli/render.py:11"

    def __str__(self) -> str:
        return f"{self.where}: {self.source} imports {self.target}"


def parse_imports(rel: str, text: str, modules: set[str]) -> list[Import]:
    """The edgeq modules the file ``rel`` (holding ``text``) imports, at module level or inside functions,
    with the line of each."""
    path = ROOT / rel
    me = module_name(path)
    package = me if path.name == "__init__.py" else me.rsplit(".", 1)[0]
    found: dict[tuple[str, int], Import] = {}
    for node in ast.walk(ast.parse(text)):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            names = [base] + [f"{base}.{a.name}" for a in node.names]
        else:
            continue
        for n in names:
            while n and n not in modules:
                n = n.rpartition(".")[0]
            if n and n != me and n != "edgeq":
                found.setdefault((n, node.lineno), Import(me, n, f"{rel}:{node.lineno}"))
    return sorted(found.values(), key=lambda i: (int(i.where.rpartition(":")[2]), i.target))


def imports_in(path: Path, modules: set[str]) -> list[Import]:
    return parse_imports(path.relative_to(ROOT).as_posix(), path.read_text(), modules)


@functools.cache
def all_imports() -> tuple[Import, ...]:
    modules = set(MODULES)
    return tuple(i for p in sorted(PACKAGE.rglob("*.py")) for i in imports_in(p, modules))


def _matches(module: str, prefix: str) -> bool:
    """``prefix`` names ``module`` or a package holding it ("edgeq" alone names only the package's root)."""
    return module == prefix or (prefix != "edgeq" and module.startswith(prefix + "."))


def _under(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(_matches(module, p) for p in prefixes)


# The protocol and the registry are how everyone above the targets reaches them; the rest is a target's own.
TARGET_PROTOCOL = ("edgeq.targets.base", "edgeq.targets.registry")


def _a_target_package(module: str) -> bool:
    return module.startswith("edgeq.targets.") and not _under(module, TARGET_PROTOCOL)


MODELS_IN = ("edgeq.modelio", "edgeq.data", "edgeq.onnx_import", "edgeq.outputs", "edgeq.runtime")

# STYLE.md section 3: (what the rule says, importer prefixes, is the imported module forbidden)
NEVER: tuple[tuple[str, tuple[str, ...], Callable[[str], bool]], ...] = (
    ("cli -> a target package", ("edgeq.cli", "edgeq.__main__"), _a_target_package),
    ("report -> target code", ("edgeq.report",), lambda m: _under(m, ("edgeq.targets",))),
    ("build -> a target's internals", ("edgeq.build", "edgeq.pipeline"), _a_target_package),
    (
        "targets -> stages, api, build or cli",
        ("edgeq.targets",),
        lambda m: _under(m, ("edgeq.stages", "edgeq.api", "edgeq.build", "edgeq.pipeline", "edgeq.cli")),
    ),
    ("modelio -> quantize", MODELS_IN, lambda m: _under(m, ("edgeq.quantize",))),
    ("quantize -> targets", ("edgeq.quantize",), lambda m: _under(m, ("edgeq.targets",))),
    ("bench -> targets", ("edgeq.bench",), lambda m: _under(m, ("edgeq.targets",))),
)


def never_violations(imports: tuple[Import, ...] | list[Import]) -> list[str]:
    out = []
    for rule, importers, forbidden in NEVER:
        out += [f"{i} ({rule})" for i in imports if _under(i.source, importers) and forbidden(i.target)]
    return out


def test_never_imports():
    found = never_violations(all_imports())
    assert not found, "imports STYLE.md section 3 says never:\n" + "\n".join(found)


# Top to bottom (STYLE.md section 2). A module belongs to the layer of its longest matching prefix.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("cli", ("edgeq.__main__", "edgeq.cli")),
    ("api", ("edgeq.api",)),
    ("stages and build", ("edgeq.stages", "edgeq.build", "edgeq.pipeline")),
    (
        "quantize, debug, report, train, targets",
        ("edgeq.quantize", "edgeq.debug", "edgeq.report", "edgeq.train", "edgeq.targets"),
    ),
    (
        "models and data in, bench",
        (
            *MODELS_IN,
            "edgeq.keras_objects",
            "edgeq.keras_migrate",
            "edgeq.zoo",
            "edgeq.bench",
            "edgeq.tflite",  # the one reader of .tflite flatbuffers
            "edgeq.flatbuffer",
            "edgeq.tflite_check",
            "edgeq.native_probe",
        ),
    ),
    (
        "core",
        (
            "edgeq",
            "edgeq.config",
            "edgeq.errors",
            "edgeq.findings",
            "edgeq.artifacts",
            "edgeq.paths",
            "edgeq.tfimport",
            "edgeq.procs",
            "edgeq.executor",  # independent tasks on a process pool or Ray (imports only edgeq.errors)
            "edgeq.ctext",
            "edgeq.cache",
            "edgeq.bundled",
            "edgeq.report.fmt",  # text formatting (imports nothing of edgeq): the targets' describe() uses it
        ),
    ),
)


def layer_of(module: str) -> int | None:
    """Index in :data:`LAYERS` (0 is the top), by the longest prefix naming the module."""
    best: tuple[int, int] | None = None
    for index, (_, prefixes) in enumerate(LAYERS):
        for p in prefixes:
            if _matches(module, p) and (best is None or len(p) > best[0]):
                best = (len(p), index)
    return None if best is None else best[1]


def upward_imports(imports: tuple[Import, ...] | list[Import]) -> list[str]:
    out = []
    for i in imports:
        src, dst = layer_of(i.source), layer_of(i.target)
        if src is not None and dst is not None and dst < src:
            out.append(f"{i} (up: {LAYERS[src][0]} -> {LAYERS[dst][0]})")
    return out


def test_every_module_has_a_layer():
    loose = [m for m in MODULES if layer_of(m) is None]
    assert not loose, "modules in no layer (add them to LAYERS in tests/unit/test_layers.py): " + ", ".join(loose)


def test_imports_go_down_the_layers():
    found = upward_imports(all_imports())
    assert not found, "imports up the layers:\n" + "\n".join(found)


def test_the_checks_name_file_and_line():
    """The checks find what they should: a cli module importing a target package (even lazily), and a
    module of models in importing quantize, each named by file and line."""
    tree = {
        "edgeq/cli/x.py": "def f():\n    from edgeq.targets.coral import TARGET\n",
        "edgeq/cli/y.py": "from edgeq.targets import registry\nfrom edgeq.targets.base import Stage\n",
        "edgeq/modelio.py": "import json\n\n\ndef g():\n    from edgeq.quantize import qat\n",
    }
    modules = {"edgeq.targets", "edgeq.targets.coral", "edgeq.targets.registry", "edgeq.targets.base"}
    modules |= {"edgeq.quantize", "edgeq.quantize.qat", "edgeq.cli.x", "edgeq.cli.y", "edgeq.modelio"}
    imports = [i for rel, text in tree.items() for i in parse_imports(rel, text, modules)]
    found = never_violations(imports)
    assert found == [
        "edgeq/cli/x.py:2: edgeq.cli.x imports edgeq.targets.coral (cli -> a target package)",
        "edgeq/modelio.py:5: edgeq.modelio imports edgeq.quantize (modelio -> quantize)",
        "edgeq/modelio.py:5: edgeq.modelio imports edgeq.quantize.qat (modelio -> quantize)",
    ]
    assert upward_imports(imports) == [
        "edgeq/modelio.py:5: edgeq.modelio imports edgeq.quantize (up: models and data in, bench -> "
        "quantize, debug, report, train, targets)",
        "edgeq/modelio.py:5: edgeq.modelio imports edgeq.quantize.qat (up: models and data in, bench -> "
        "quantize, debug, report, train, targets)",
    ]


# mypy checks the body of a function only if something of it is annotated (no check_untyped_defs): a function
# with no annotation at all is not checked. Files other owners are changing in issue 20, with the number of such
# functions each has today; integration lowers these as they are annotated, down to an empty dict.
UNANNOTATED_ALLOWED: dict[str, int] = {}


def unannotated(text: str) -> list[tuple[int, str]]:
    """(line, name) of every function, method or nested function with no annotation on any parameter nor
    on its return: the ones mypy does not check."""
    found = []
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            a = node.args
            params = [*a.posonlyargs, *a.args, *a.kwonlyargs, *(p for p in (a.vararg, a.kwarg) if p is not None)]
            if node.returns is None and all(p.annotation is None for p in params):
                found.append((node.lineno, node.name))
    return found


def test_mypy_checks_every_function_body():
    over = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        found = unannotated(path.read_text())
        if len(found) > UNANNOTATED_ALLOWED.get(rel, 0):
            over += [f"{rel}:{line}: {name}" for line, name in found]
    assert not over, "functions without any annotation (mypy skips their bodies; annotate them):\n" + "\n".join(over)


def test_unannotated_finds_what_mypy_skips():
    text = (
        "def a(x): pass\n"
        "def b(x: int): pass\n"
        "def c() -> None: pass\n"
        "class K:\n"
        "    def m(self): pass\n"
        "    def n(self) -> int:\n"
        "        def inner(y): return y\n"
        "        return 1\n"
    )
    assert unannotated(text) == [(1, "a"), (5, "m"), (7, "inner")]


# No function over 80 lines (from its ``def`` to its last line; decorators, e.g. click's options, not counted).
# Parsers of a tool's text output are excepted; the other entries are in files other owners are changing in
# issue 20, with their length today, for integration to remove as they are split.
MAX_FUNCTION_LINES = 80
LONG_ALLOWED: dict[str, int] = {}


def test_no_function_over_80_lines():
    over = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > max(MAX_FUNCTION_LINES, LONG_ALLOWED.get(f"{rel}:{node.name}", 0)):
                    over.append(f"{rel}:{node.lineno}: {node.name} has {lines} lines")
    assert not over, f"functions over {MAX_FUNCTION_LINES} lines (split them):\n" + "\n".join(over)
