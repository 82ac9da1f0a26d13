"""Parse what edgetpu_compiler prints and writes: the console output and the ``*_edgetpu.log`` files.

Formats follow real outputs kept verbatim in tests/data/edgetpu (sources in SOURCE.md): the banner
``Edge TPU Compiler version V``, ``Model(s) compiled successfully in N ms.``, one block of ``Key: value``
lines per model (sizes such as ``7.37MiB``), the optional ``Number of operations that will run on ...``
lines, and the ``Operator  Count  Status`` table (a console table can be cut short with
``... All other operators were mapped successfully``). Hard failures: ``Invalid model: X`` followed
by the reason, ``Compilation failed: ...`` / ``Compilation failed!``, ``Internal compiler error``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from edgeq.targets.coral import rules

_UNITS = {"B": 1, "KIB": 1024, "MIB": 1024**2, "GIB": 1024**3, "KB": 1000, "MB": 1000**2, "GB": 1000**3}
_SIZE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([KMG]?i?B)\s*$", re.IGNORECASE)
_VERSION = re.compile(r"Edge TPU Compiler version\s+(\S+)")
_COMPILED = re.compile(r"Models? compiled successfully in\s+([0-9.]+)\s*ms")
_ROW = re.compile(r"^(\S+)\s+(\d+)\s+(\S.*?)\s*$")
_HEADER = re.compile(r"^Operator\s+Count\s+Status\s*$")
_KEY = re.compile(r"^([A-Z][A-Za-z -]+?):\s*(.*?)\s*$")

# "Key: value" lines of a model block -> field name
_FIELDS = {
    "Input model": "input_model",
    "Input size": "input_size_bytes",
    "Output model": "output_model",
    "Output size": "output_size_bytes",
    "On-chip memory used for caching model parameters": "on_chip_cached_bytes",
    "On-chip memory remaining for caching model parameters": "on_chip_remaining_bytes",
    "Off-chip memory used for streaming uncached model parameters": "off_chip_streamed_bytes",
    "Number of Edge TPU subgraphs": "num_subgraphs",
    "Total number of operations": "total_ops",
    "Operation log": "operation_log",
    "Number of operations that will run on Edge TPU": "tpu_ops",
    "Number of operations that will run on CPU": "cpu_ops",
}
_SIZES = {"input_size_bytes", "output_size_bytes", "on_chip_cached_bytes", "on_chip_remaining_bytes"}
_SIZES |= {"off_chip_streamed_bytes"}
_INTS = {"num_subgraphs", "total_ops", "tpu_ops", "cpu_ops"}


def parse_size(text: str) -> int:
    """``7.37MiB`` -> bytes (rounded). Raises ValueError on anything else."""
    m = _SIZE.match(text)
    if not m:
        raise ValueError(f"not a size: {text!r}")
    return round(float(m.group(1)) * _UNITS[m.group(2).upper()])


@dataclass(frozen=True)
class OpRow:
    op: str
    count: int
    status: str

    @property
    def on_tpu(self) -> bool:
        return self.status == rules.MAPPED

    def to_dict(self) -> dict:
        return {"op": self.op, "count": self.count, "status": self.status, "on_tpu": self.on_tpu}


@dataclass(frozen=True)
class ModelBlock:
    """What the compiler reported for one model: sizes, memory lines, counts and the op table."""

    input_model: str = ""
    output_model: str = ""
    input_size_bytes: int | None = None
    output_size_bytes: int | None = None
    on_chip_cached_bytes: int | None = None
    on_chip_remaining_bytes: int | None = None
    off_chip_streamed_bytes: int | None = None
    num_subgraphs: int | None = None
    total_ops: int | None = None
    operation_log: str = ""
    tpu_ops: int | None = None
    cpu_ops: int | None = None
    ops: tuple[OpRow, ...] = ()
    table_complete: bool = False  # False when no table was printed or it was cut short

    @property
    def counts(self) -> dict:
        """TPU/CPU counts: the compiler's lines, else the table's, else all on the TPU when it says nothing."""
        if self.tpu_ops is not None and self.cpu_ops is not None:
            return {"tpu": self.tpu_ops, "cpu": self.cpu_ops}
        if self.ops and self.table_complete:
            tpu = sum(r.count for r in self.ops if r.on_tpu)
            return {"tpu": tpu, "cpu": sum(r.count for r in self.ops) - tpu}
        if self.total_ops is not None and self.num_subgraphs:
            return {"tpu": self.total_ops, "cpu": 0}  # the compiler prints CPU counts only when there are some
        return {"tpu": None, "cpu": None}

    def to_dict(self) -> dict:
        d = {k: v for k, v in self.__dict__.items() if k != "ops"}
        d["ops"] = [r.to_dict() for r in self.ops]
        d["counts"] = self.counts
        return d


@dataclass(frozen=True)
class ConsoleReport:
    version: str | None = None
    compile_ms: float | None = None
    succeeded: bool | None = None  # the last "Compilation succeeded!/failed!" line, when there is one
    failure: str | None = None  # the hard failure, in the compiler's words
    errors: tuple[str, ...] = ()  # "ERROR: ..." lines
    models: tuple[ModelBlock, ...] = ()
    searched_delegate: bool = False  # -d output: several attempts
    notes: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict:
        d = {k: v for k, v in self.__dict__.items() if k != "models"}
        d["errors"], d["notes"] = list(self.errors), list(self.notes)
        d["models"] = [m.to_dict() for m in self.models]
        return d


@dataclass(frozen=True)
class LogReport:
    """One ``*_edgetpu.log``: version, input, output and the full op table."""

    version: str | None
    input_model: str
    output_model: str
    ops: tuple[OpRow, ...]

    def to_dict(self) -> dict:
        return {
            "version": self.version,
            "input_model": self.input_model,
            "output_model": self.output_model,
            "ops": [r.to_dict() for r in self.ops],
        }


def _table(lines: list[str], start: int) -> tuple[list[OpRow], bool, int]:
    """Rows after the header at ``start``; returns (rows, complete, index after the table)."""
    rows: list[OpRow] = []
    i = start + 1
    complete = True
    while i < len(lines):
        line = lines[i].strip()
        if not line:
            i += 1
            continue
        if line.startswith("...") and "mapped successfully" in line:
            complete = False
            i += 1
            break
        m = _ROW.match(line)
        if not m or m.group(3).startswith(("completed", "succeeded")):
            break
        rows.append(OpRow(m.group(1), int(m.group(2)), m.group(3)))
        i += 1
    return rows, complete, i


def parse_console(text: str) -> ConsoleReport:
    """Parse edgetpu_compiler's console output (stdout and stderr together)."""
    lines = text.replace("\r\n", "\n").split("\n")
    version = compile_ms = None
    verdict: bool | None = None
    failure: str | None = None
    errors: list[str] = []
    blocks: list[dict] = []
    searched = False
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        if m := _VERSION.search(line):
            version = version or m.group(1)
        elif m := _COMPILED.search(line):
            compile_ms = float(m.group(1))
        elif line.startswith("Searching for valid delegate"):
            searched = True
        elif line.startswith("ERROR:"):
            errors.append(line)
        elif line.startswith("Invalid model:"):
            reason = lines[i + 1].strip() if i + 1 < len(lines) else ""
            failure = f"{line} ({reason})" if reason else line
            i += 1
        elif line.startswith("Internal compiler error"):
            failure = line
        elif line.startswith("Compilation failed:"):
            failure = line
        elif line.startswith("Compilation failed!"):
            verdict = False
        elif line.startswith("Compilation succeeded!"):
            verdict = True
        elif _HEADER.match(line):
            rows, complete, i = _table(lines, i)
            if not blocks:
                blocks.append({})
            blocks[-1]["ops"] = tuple(rows)
            blocks[-1]["table_complete"] = complete
            continue
        elif m := _KEY.match(line):
            key, value = m.group(1), m.group(2)
            name = _FIELDS.get(key)
            if name == "input_model" or (name and not blocks):
                blocks.append({})
            if name:
                blocks[-1][name] = _value(name, value)
        i += 1
    if verdict is True and searched:
        failure = None  # -d retries print failures before the attempt that worked
    models = tuple(ModelBlock(**b) for b in blocks)
    return ConsoleReport(
        version=version,
        compile_ms=compile_ms,
        succeeded=verdict,
        failure=failure,
        errors=tuple(errors),
        models=models,
        searched_delegate=searched,
    )


def _value(name: str, value: str):
    if name in _SIZES:
        try:
            return parse_size(value)
        except ValueError:
            return None
    if name in _INTS:
        return int(value) if value.isdigit() else None
    return value


def parse_log(text: str) -> list[LogReport]:
    """Parse a ``*_edgetpu.log`` (several logs pasted one after another give several reports)."""
    lines = text.replace("\r\n", "\n").split("\n")
    reports: list[LogReport] = []
    current: dict = {}
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        if m := _VERSION.search(line):
            if current:
                reports.append(_log_report(current))
            current = {"version": m.group(1)}
        elif line.startswith("Input:"):
            current["input_model"] = line.split(":", 1)[1].strip()
        elif line.startswith("Output:"):
            current["output_model"] = line.split(":", 1)[1].strip()
        elif _HEADER.match(line):
            rows, _, i = _table(lines, i)
            current["ops"] = tuple(rows)
            continue
        i += 1
    if current:
        reports.append(_log_report(current))
    return reports


def _log_report(d: dict) -> LogReport:
    return LogReport(d.get("version"), d.get("input_model", ""), d.get("output_model", ""), d.get("ops", ()))


def compare(predicted: list[dict], actual: list[OpRow] | tuple[OpRow, ...]) -> list[dict]:
    """Differences between a predicted table and the compiler's, per (op, status) count."""
    want: dict[tuple[str, str], int] = {}
    for p in predicted:
        want[(p["op"], p["status"])] = want.get((p["op"], p["status"]), 0) + p["count"]
    got: dict[tuple[str, str], int] = {}
    for a in actual:
        got[(a.op, a.status)] = got.get((a.op, a.status), 0) + a.count
    diffs = []
    for key in list(dict.fromkeys([*want, *got])):
        if want.get(key, 0) != got.get(key, 0):
            diffs.append({"op": key[0], "status": key[1], "predicted": want.get(key, 0), "compiler": got.get(key, 0)})
    return diffs
