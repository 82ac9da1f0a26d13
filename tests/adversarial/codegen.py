"""Hostile names through the code generators: nothing of a model's strings or paths is ever compiled.

    python -m tests.adversarial.codegen [--out DIR] [--quick]

A small int8 model (the adversarial seed) gets hostile strings in one name field at a time: one
intermediate tensor's name (the issue's case), every tensor name, the signature key and its tensor names, the metadata names, description and subgraph name, the
model's file name, and the output folder's name. Each variant goes through ``compile --target mcu
--runtime c`` (whose proof builds and RUNS the generated C on this machine and under QEMU) and ``compile
--target mcu`` (the TFLM export), each in a child process; the defect-1 payload in the names would
create a marker file from a constructor. Every outcome is checked: the marker never exists, the exit code
is 0 (or a clean refusal: exit 2-6 with a one-line error, as for tensor names LiteRT cannot read), and
the generated C/C++ sources tokenise, comments dropped, to the same tokens as the same command
on the model with plain names (numbers and the model hash in include guards aside, for the TFLM export's
byte array).

``--quick`` puts every hostile string into every field of one model at once: the test suite's bounded
entry (:mod:`tests.adversarial.test_codegen`).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.adversarial import codegen_tokens as ct
from tests.adversarial import mutate

ROOT = Path(__file__).resolve().parents[2]
SEED = mutate.SEEDS[0]  # int8 I/O, six builtin ops the C engine and TFLM both run
MARKER = "MARKER"  # replaced by the marker file's path


def names(marker: Path) -> dict[str, bytes]:
    """Hostile strings by label; the defect payloads exactly as the issue gives them."""
    return {
        "constructor": b"x */ __attribute__((constructor)) static void p(void){extern int system(const char*); "
        b'system("touch ' + os.fsencode(marker) + b'");} /* y',
        "newline_code": b"evil\nint edgeq_injected = 1;\nx",
        "block_open": b"/* int edgeq_injected = 2; ",
        "line_comment": b"// */ int edgeq_injected = 3; /*",
        "splice": b"x \\",
        "splice_crlf": b"x \\\r\nint edgeq_injected = 4;",
        "trigraph": b"x ??/",
        "trigraph_all": b"??=??(??)??<??>??!??'??-??/",
        "carriage_return": b"x\rint edgeq_injected = 5;\r",
        "nul": b"a\x00b */ int edgeq_injected = 6;",
        "non_utf8": b"\xff\xfe*/\xc0\x80 int edgeq_injected = 7; /*",
        "quotes": b'"\'\\" */ "',
        "unicode_separators": "x\u2028int edgeq_injected = 8;\u2029\u0085".encode(),
        "long": b"*/" * 3000,
    }


def file_safe(name: bytes) -> bytes:
    """``name`` as one path component: no '/' or NUL, at most 200 bytes."""
    return name.replace(b"/", b"_").replace(b"\x00", b"_")[:200] or b"_"


# -- the name fields -------------------------------------------------------------------------------------


def _set_tensors(m, values: list[bytes]) -> None:
    for i, t in enumerate(m.subgraphs[0].tensors):
        t.name = values[i % len(values)] + b"#" + str(i).encode()


def _set_one_tensor(m, values: list[bytes]) -> None:
    """The first intermediate activation (an op's output that is not the model's): the issue's case."""
    g = m.subgraphs[0]
    first = next(t for op in g.operators for t in op.outputs if t not in g.outputs)
    g.tensors[first].name = values[0]


def _set_signature(m, values: list[bytes]) -> None:
    for k, sig in enumerate(m.signatureDefs or []):
        sig.signatureKey = values[k % len(values)]
        for j, tm in enumerate([*sig.inputs, *sig.outputs]):
            tm.name = values[(k + j + 1) % len(values)]


def _set_metadata(m, values: list[bytes]) -> None:
    for k, md in enumerate(m.metadata or []):
        md.name = values[k % len(values)]
    m.description = values[-1]
    m.subgraphs[0].name = values[0]


MODEL_FIELDS = {
    "one_tensor": _set_one_tensor,
    "tensor": _set_tensors,
    "signature": _set_signature,
    "metadata": _set_metadata,
}
PATH_FIELDS = ("file", "folder")
FIELDS = (*MODEL_FIELDS, *PATH_FIELDS)
COMMANDS = {
    "compile-c": ["--json", "compile", "--target", "mcu", "--runtime", "c", "--proof-samples", "4"],
    "compile-tflm": ["--json", "compile", "--target", "mcu"],
}
SOURCES = (".c", ".h", ".cc", ".cpp", ".hpp", ".ld", ".s", ".S")


@dataclass(frozen=True)
class Case:
    label: str  # which hostile string(s)
    field: str  # which name field holds them
    values: tuple[bytes, ...]


def _fields(case: Case) -> tuple[str, ...]:
    return FIELDS if case.field == "all" else (case.field,)


def _utf8(value: bytes) -> bool:
    try:
        value.decode()
    except UnicodeDecodeError:
        return False
    return True


def model_bytes(case: Case) -> bytes:
    """The seed with the case's strings in its name fields. With every field at once, only the UTF-8
    strings go into the model: LiteRT (the proofs' reference) refuses other tensor names, and the point
    of that case is to compare every source with the plain model's."""
    data = SEED.read_bytes()
    m = mutate.load(data)
    values = [v for v in case.values if _utf8(v)] if case.field == "all" else list(case.values)
    for f in _fields(case):
        if f in MODEL_FIELDS:
            MODEL_FIELDS[f](m, values)
    return mutate.pack(m) if set(_fields(case)) & set(MODEL_FIELDS) else data


def _component(values: tuple[bytes, ...]) -> str:
    """One path component holding as many of ``values`` as fit (shortest first)."""
    return os.fsdecode(file_safe(b"_".join(sorted(values, key=len))))


def place(case: Case, work: Path) -> tuple[Path, Path]:
    """Write the case's model; returns (model path, output folder), hostile where the field says."""
    folder = work / "in"
    folder.mkdir(parents=True, exist_ok=True)
    stem = _component(case.values) if "file" in _fields(case) else "m"
    model = folder / (stem + ".tflite")
    model.write_bytes(model_bytes(case))
    out = work / (_component(case.values) if "folder" in _fields(case) else "out")
    return model, out


# -- running and judging ---------------------------------------------------------------------------------


@dataclass
class Outcome:
    case: str
    command: str
    code: int | None
    marker: bool
    problems: list[str] = field(default_factory=list)
    refused: bool = False  # a clean refusal: exit 2-6 with a one-line error (LiteRT cannot read the names)
    seconds: float = 0.0


def run_cli(args: list[str], cwd: Path, timeout_s: float = 300) -> tuple[int | None, str, str]:
    """edgeq in a child process; (exit code or None on timeout, stdout, stderr)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    try:
        p = subprocess.run(
            [sys.executable, "-m", "edgeq", *args], cwd=cwd, env=env, capture_output=True, timeout=timeout_s
        )
    except subprocess.TimeoutExpired:
        return None, "", "timeout"
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


def source_tokens(folder: Path) -> dict[str, list[str]]:
    """Tokens (comments dropped, include-guard hashes cut) of every C/C++/asm/ld source under ``folder``
    (not the build outputs), by file name; in model_data.cc, the model's bytes, numbers count as one."""
    found = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file() and p.suffix in SOURCES and "build" not in p.relative_to(folder).parts:
            text = p.read_bytes().decode("ascii")  # generated sources are ASCII: anything else is a finding
            toks = ct.tokens(text, trigraphs=p.suffix in (".c", ".h"))
            found[p.name] = ct.normalised(toks, numbers=p.name == "model_data.cc")
    return found


def _error_message(stdout: str) -> str | None:
    """The JSON document's error message: a clean refusal has one."""
    try:
        return (json.loads(stdout).get("error") or {}).get("message") or None
    except (ValueError, AttributeError):
        return None


def export_folder(stdout: str) -> Path | None:
    try:
        doc = json.loads(stdout)
    except ValueError:
        return None
    result = doc.get("result") or {}
    where = result.get("export_dir") or result.get("output")
    return Path(where) if where else None


def judge(case: Case, command: str, work: Path, marker: Path, baseline: dict[str, dict[str, list[str]]]) -> Outcome:
    """Run ``command`` on ``case`` in a child (in ``work``) and check it: ``marker`` must not appear, and
    the sources must tokenise as ``baseline`` (the plain model's)."""
    marker.unlink(missing_ok=True)
    model, out = place(case, work)
    t0 = time.monotonic()
    code, stdout, stderr = run_cli([*COMMANDS[command], str(model), "-o", str(out)], work)
    made = marker.exists()
    o = Outcome(f"{case.label}@{case.field}", command, code, made, seconds=time.monotonic() - t0)
    if made:
        o.problems.append("MARKER CREATED: model text ran as code")
    if code != 0:
        o.refused = code not in (None, 1) and _error_message(stdout) is not None
        if not o.refused:
            o.problems.append(f"exit {code}: {(stdout + stderr)[-300:]}")
        return o
    folder = export_folder(stdout)
    if folder is None or not folder.is_dir():  # the JSON shows a path that is not UTF-8 as text
        found = [p for p in out.glob("*_*") if p.is_dir() and p.name.startswith(model.stem)]
        folder = found[0] if len(found) == 1 else None
    if folder is None:
        o.problems.append(f"no project folder in the JSON result: {stdout[-200:]}")
        return o
    try:
        got = source_tokens(folder)
    except (ct.TokenError, UnicodeDecodeError) as exc:
        o.problems.append(f"generated sources do not tokenise: {exc}")
        return o
    want = baseline[command]
    if got != want:
        diff = [n for n in sorted(set(got) | set(want)) if got.get(n) != want.get(n)]
        o.problems.append(f"tokens differ from the plain model's in {diff}")
    return o


def baselines(work: Path, commands: tuple[str, ...] = tuple(COMMANDS)) -> dict[str, dict[str, list[str]]]:
    """Tokens of each command's sources for the seed model with plain names."""
    found = {}
    for command in commands:
        plain = work / f"plain-{command}"
        plain.mkdir(parents=True, exist_ok=True)
        (plain / "m.tflite").write_bytes(SEED.read_bytes())
        code, stdout, stderr = run_cli([*COMMANDS[command], str(plain / "m.tflite"), "-o", str(plain / "out")], plain)
        folder = export_folder(stdout)
        if code != 0 or folder is None:
            raise RuntimeError(f"{command} fails on the plain seed model (exit {code}): {(stdout + stderr)[-400:]}")
        found[command] = source_tokens(folder)
    return found


def cases(marker: Path, quick: bool, only: str = "") -> list[Case]:
    """The family's cases; ``only``: comma-separated labels or fields to keep (default: all)."""
    hostile = names(marker)
    if quick:
        return [Case("all", "all", tuple(hostile.values()))]
    keep = set(only.split(",")) - {""}
    found = [Case(label, f, (value,)) for f in FIELDS for label, value in hostile.items()]
    return [c for c in found if not keep or c.label in keep or c.field in keep]


@dataclass
class Summary:
    outcomes: list[Outcome]
    files: int
    seconds: float

    def to_dict(self) -> dict:
        return {
            "files": self.files,
            "commands": len(self.outcomes),
            "markers_created": sum(o.marker for o in self.outcomes),
            "exit_1": sum(o.code == 1 for o in self.outcomes),
            "exit_codes": {str(c): sum(o.code == c for o in self.outcomes) for c in {o.code for o in self.outcomes}},
            "refused": sum(o.refused for o in self.outcomes),
            "refused_cases": sorted({f"{o.command} {o.case}" for o in self.outcomes if o.refused}),
            "bad": sum(bool(o.problems) for o in self.outcomes),
            "seconds": round(self.seconds, 1),
            "problems": [
                {"case": o.case, "command": o.command, "problems": o.problems} for o in self.outcomes if o.problems
            ],
        }


def run_family(work: Path, quick: bool = False, commands: tuple[str, ...] = tuple(COMMANDS), only: str = "") -> Summary:
    """Every case through every command, one child each, sequentially (each proof uses a core already)."""
    t0 = time.monotonic()
    work.mkdir(parents=True, exist_ok=True)
    base = baselines(work, commands)
    todo = cases(work / MARKER, quick, only)
    outcomes = []
    for i, case in enumerate(todo):
        for command in commands:
            outcomes.append(judge(case, command, work / f"case{i}-{command}", work / MARKER, base))
    return Summary(outcomes, files=len(todo), seconds=time.monotonic() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("edgeq-out/adversarial-codegen"))
    ap.add_argument("--quick", action="store_true", help="all hostile strings in one model per field")
    ap.add_argument("--only", default="", help="comma-separated hostile-string labels or fields (default: all)")
    args = ap.parse_args()
    summary = run_family(args.out.resolve(), args.quick, only=args.only)
    doc = summary.to_dict()
    (args.out / "summary.json").write_text(json.dumps(doc, indent=2))
    print(json.dumps({k: v for k, v in doc.items() if k != "problems"}, indent=2))
    for p in doc["problems"]:
        print(f"{p['command']:14} {p['case']:30} {'; '.join(p['problems'])[:300]}")
    sys.exit(1 if doc["problems"] else 0)


if __name__ == "__main__":
    main()
