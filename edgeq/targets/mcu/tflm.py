"""Running a model in TensorFlow Lite Micro's Python interpreter (PyPI ``tflite-micro``), out of process.

What TFLM says is taken as the answer: which ops it cannot register (named by its own "Didn't find op
for builtin opcode" message), which fail to prepare, and the arena size from its RecordingMicroAllocator
report ("Arena allocation total N bytes"), checked by allocating exactly that arena again; when the
total is not enough (kernels' temporary allocations while they prepare are not in it), the smallest
arena TFLM accepts is found by bisection. TFLM reports only the first op it cannot register, so the
others are found by removing that op from a copy of the model and asking again.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from edgeq.errors import BadInput, ConversionFailed, Unavailable

INSTALL_HINT = "pip install tflite-micro"
DEFAULT_TIMEOUT_S = 300.0
MAX_ARENA_BYTES = 1 << 30
PHASE_MARK = "@@edgeq-phase "

_NOT_FOUND = re.compile(r"Didn't find op for builtin opcode '(\w+)'")
_NO_REGISTRATION = re.compile(r"Failed to get registration from op code (\w+)")
_PREPARE_FAILED = re.compile(r"Node (\S+) \(number (\d+)f?\) failed to prepare with status (\d+)")
_INVOKE_FAILED = re.compile(r"Node (\S+) \(number (\d+)f?\) failed to invoke with status (\d+)")
_ARENA_SHORT = re.compile(r"(Failed to allocate (?:tail |head )?memory|Arena size is too small|missing: \d+)")
_ALLOC_TOTAL = re.compile(r"Arena allocation (total|head|tail) (\d+) bytes")
_ALLOC_LINE = re.compile(
    r"'([^']+)' used (\d+) bytes with alignment overhead \(requested (\d+) bytes for (\d+) (?:[\w ]+)\)"
)
_NODE = re.compile(r"Node (\S+) \(number (\d+)f?\)")
_KERNEL_SOURCE = re.compile(r"kernels/(?:\w+/)*(\w+?)(?:_common|_util)?\.(?:cc|h):\d+")
# Custom ops the Python package's resolver registers (the rest are missing there).
_RESOLVABLE_CUSTOM = frozenset({"TFLite_Detection_PostProcess", "CIRCULAR_BUFFER"})


class Interpreter(Protocol):
    """What edgeq calls on ``tflite_micro.runtime.Interpreter`` in-process (the package ships no types)."""

    def set_input(self, input_data: np.ndarray, index: int) -> None: ...

    def invoke(self) -> None: ...


def available() -> bool:
    return importlib.util.find_spec("tflite_micro") is not None


def version() -> str | None:
    try:
        return importlib.metadata.version("tflite-micro")
    except importlib.metadata.PackageNotFoundError:
        return None


def require() -> None:
    if not available():
        raise Unavailable("the TFLM Python interpreter (tflite-micro) is not installed", INSTALL_HINT)


@dataclass(frozen=True)
class WorkerRun:
    returncode: int
    log: str  # TFLM's messages (stderr)
    response: dict | None
    phases: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and bool(self.response and self.response.get("ok"))

    @property
    def crashed(self) -> bool:
        return self.returncode != 0

    @property
    def last_phase(self) -> str:
        return self.phases[-1] if self.phases else "start"

    def signal_name(self) -> str:
        code = -self.returncode if self.returncode < 0 else self.returncode - 128
        try:
            return signal.Signals(code).name
        except ValueError:
            return f"exit status {self.returncode}"

    def tflm_lines(self, phase: str | None = None) -> list[str]:
        """TFLM's non-empty log lines (of one phase when given), without edgeq's markers."""
        lines, current = [], "start"
        for line in self.log.splitlines():
            if line.startswith(PHASE_MARK):
                current = line[len(PHASE_MARK) :].strip()
                continue
            if line.strip() and (phase is None or current == phase):
                lines.append(line.strip())
        return lines


def run_worker(request: dict, workdir: Path, timeout_s: float = DEFAULT_TIMEOUT_S) -> WorkerRun:
    """Run ``tflm_worker`` on ``request`` (see that module) in a new Python process.

    Raises:
        Unavailable: tflite-micro is not installed.
        ConversionFailed: the worker did not finish within ``timeout_s``.
    """
    require()
    req = dict(request)
    req["response"] = str(workdir / f"response_{os.getpid()}_{id(req)}.json")
    req_path = workdir / "request.json"
    req_path.write_text(json.dumps(req))
    env = dict(os.environ)
    # the worker imports edgeq from wherever this process found it
    root = str(Path(__file__).resolve().parents[3])
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "edgeq.targets.mcu.tflm_worker", str(req_path)],
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout_s,
            env=env,
        )
    except subprocess.TimeoutExpired as exc:
        raise ConversionFailed(
            f"the TFLM interpreter did not finish within {timeout_s:.0f} s",
            "raise --timeout-s, or check a smaller model",
        ) from exc
    log = (proc.stderr or "") + (proc.stdout or "")
    phases = tuple(
        line[len(PHASE_MARK) :].strip() for line in (proc.stderr or "").splitlines() if line.startswith(PHASE_MARK)
    )
    response = None
    resp_path = Path(req["response"])
    if resp_path.exists():
        try:
            response = json.loads(resp_path.read_text())
        except ValueError:
            response = None
        resp_path.unlink()
    return WorkerRun(proc.returncode, log, response, phases)


# --- reading what TFLM said ----------------------------------------------------------------------------


def registration_failure(run: WorkerRun) -> str | None:
    """The op name TFLM could not register (``CUSTOM`` for a custom op), or None."""
    m = _NOT_FOUND.search(run.log) or _NO_REGISTRATION.search(run.log)
    return m.group(1) if m else None


def prepare_failure(run: WorkerRun) -> dict | None:
    m = _PREPARE_FAILED.search(run.log) or _INVOKE_FAILED.search(run.log)
    if not m:
        return None
    stage = "prepare" if "prepare" in m.group(0) else "invoke"
    return {"op": m.group(1), "index": int(m.group(2)), "stage": stage, "status": int(m.group(3))}


def arena_too_small(run: WorkerRun) -> bool:
    return bool(_ARENA_SHORT.search(run.log))


def parse_allocations(text: str) -> dict:
    """RecordingMicroAllocator's report as numbers: total, head, tail and the per-kind lines."""
    doc: dict = {"total_bytes": None, "head_bytes": None, "tail_bytes": None, "breakdown": []}
    for kind, n in _ALLOC_TOTAL.findall(text):
        doc[f"{kind}_bytes"] = int(n)
    for kind, used, requested, count in _ALLOC_LINE.findall(text):
        doc["breakdown"].append(
            {"kind": kind, "used_bytes": int(used), "requested_bytes": int(requested), "count": int(count)}
        )
    return doc


# --- model surgery for the missing-op search ---------------------------------------------------------


def op_names(data: bytes) -> list[str]:
    """Every op the model uses, in first-use order over all subgraphs (control flow bodies included)."""
    from edgeq import tflite

    return tflite.parse(data).op_names()


def resource_variables(data: bytes) -> int:
    """The number of distinct resource variables (VAR_HANDLE shared names, over all subgraphs): what
    ``MicroResourceVariables::Create`` must be given, counted as TFLM's own Python interpreter counts them."""
    from edgeq import tflite

    return tflite.parse(data).resource_variables()


def without_ops(data: bytes, drop: set[str]) -> bytes:
    """A copy of the model with every operator named in ``drop`` removed from every subgraph."""
    from edgeq.tflite import edit

    return edit.without_ops(data, drop)


def _first_unresolvable_custom(info, drop: set[str]) -> str | None:
    for op in info.ops:
        if op.is_custom and op.name not in drop and op.name not in _RESOLVABLE_CUSTOM:
            return op.name
    return next((op.name for op in info.ops if op.is_custom and op.name not in drop), None)


# --- the probe -----------------------------------------------------------------------------------------


@dataclass
class Probe:
    """What TFLM did with a model."""

    ok: bool
    arena: dict = field(default_factory=dict)  # parse_allocations() + the exactness check
    arena_bytes: int | None = None
    unsupported_ops: list[dict] = field(default_factory=list)
    failure: dict | None = None  # a prepare/invoke failure or a crash, with TFLM's words
    outputs: list[np.ndarray] | None = None
    io: dict = field(default_factory=dict)
    timing: dict | None = None
    log: str = ""


def _request(model: Path, arena: int, info, **extra) -> dict:
    return {
        "model": str(model),
        "arena_size": int(arena),
        "num_inputs": len(info.inputs),
        "num_outputs": len(info.outputs),
        **extra,
    }


def initial_arena(model_size: int) -> int:
    # The Python package's own default is 10x the model size; small models need more than that.
    return max(16 << 20, 10 * model_size)


def probe(
    model_path: str | Path,
    info,
    inputs: list[np.ndarray] | None = None,
    *,
    bench: dict | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> Probe:
    """Construct, run ``inputs`` (one array per model input, samples first) and measure the arena.

    ``bench`` ({num_runs, warmup_runs}) also times invokes on the first sample.

    Raises:
        Unavailable: tflite-micro is not installed.
        ConversionFailed: the interpreter timed out.
    """
    model_path = Path(model_path)
    data = model_path.read_bytes()
    with tempfile.TemporaryDirectory(prefix="edgeq-tflm-") as tmp:
        work = Path(tmp)
        extra: dict = {}
        if inputs is not None:
            np.savez(work / "inputs.npz", allow_pickle=False, **{f"input_{i}": x for i, x in enumerate(inputs)})
            extra.update(inputs_npz=str(work / "inputs.npz"), outputs_npz=str(work / "outputs.npz"))
        if bench is not None:
            extra["bench"] = bench
        arena = initial_arena(len(data))
        while True:
            run = run_worker(_request(model_path, arena, info, **extra), work, timeout_s)
            if not run.ok and arena_too_small(run) and arena < MAX_ARENA_BYTES:
                arena *= 4
                continue
            break
        result = Probe(ok=run.ok, log=run.log)
        if run.ok:
            resp = run.response or {}
            result.arena = parse_allocations(resp.get("allocation_report", ""))
            total = result.arena.get("total_bytes")
            if total:
                result.arena.update(search_arena(model_path, info, total, arena, work, timeout_s))
            result.arena_bytes = result.arena.get("arena_bytes", total)
            result.io = {"inputs": resp.get("inputs"), "outputs": resp.get("outputs")}
            result.timing = resp.get("timing")
            if inputs is not None:
                with np.load(work / "outputs.npz") as f:
                    result.outputs = [f[f"output_{o}"] for o in range(len(info.outputs))]
            return result
        missing = registration_failure(run)
        if missing is not None:
            result.unsupported_ops = _all_missing(data, info, missing, work, timeout_s)
            return result
        failed = prepare_failure(run)
        if failed is not None:
            failed["log"] = [ln for ln in run.tflm_lines() if "RecordingMicroAllocator" not in ln][-12:]
            result.failure = failed
            return result
        result.failure = _crash_or_error(run, op_names(data))
        return result


_TRY = re.compile(r"^@@edgeq-try (\d+)$", re.M)
_RESULT = re.compile(r"^@@edgeq-alloc (\d+) ([01])$", re.M)
MAX_SEARCH_RESTARTS = 16


def search_arena(model_path: Path, info, total: int, known_ok: int, work: Path, timeout_s: float) -> dict:
    """Allocate exactly the report's ``total``; if that fails, bisect to the smallest arena that allocates.

    Runs in child processes (a failed allocation can crash a later one); each restart replays the
    answers already seen, the crashed attempt counting as a failure."""
    known: dict[int, bool] = {}
    restarts = 0
    for _ in range(MAX_SEARCH_RESTARTS):
        req = _request(model_path, known_ok, info, mode="arena_search", report_total=total, known_ok=known_ok)
        req["known"] = {str(k): v for k, v in known.items()}
        run = run_worker(req, work, timeout_s)
        for size, ok in _RESULT.findall(run.log):
            known[int(size)] = ok == "1"
        if run.ok and run.response:
            doc = dict(run.response["arena_check"])
            doc.update(attempts=len(known), restarts=restarts)
            return doc
        tried = [int(t) for t in _TRY.findall(run.log)]
        if not tried or tried[-1] in known:
            break
        known[tried[-1]] = False  # it crashed while trying: that size did not allocate
        restarts += 1
    return {"report_total_bytes": total, "search_failed": True, "attempts": len(known), "restarts": restarts}


def _all_missing(data: bytes, info, first: str, work: Path, timeout_s: float) -> list[dict]:
    """Every op TFLM cannot register: remove the one it named, ask again, until it names none."""
    drop: list[str] = []
    name: str | None = first
    counts = info.op_histogram()
    for _ in range(len(counts) + 1):
        if name == "CUSTOM":
            name = _first_unresolvable_custom(info, set(drop))
        if name is None or name in drop:
            break
        drop.append(name)
        trimmed = work / "trimmed.tflite"
        trimmed.write_bytes(without_ops(data, set(drop)))
        run = run_worker(_request(trimmed, initial_arena(len(data)), info), work, timeout_s)
        name = registration_failure(run)
        if name is None:
            break
    return [
        {
            "op": op,
            "count": counts.get(op, 0),
            "indices": [o.index for o in info.ops if o.name == op],
            "reason": "TFLM has no kernel registered for it (Didn't find op for builtin opcode)"
            if not any(o.is_custom and o.name == op for o in info.ops)
            else "custom op with no registration in TFLM",
        }
        for op in drop
    ]


def _squash(name: str) -> str:
    return name.upper().replace("_", "").removesuffix("2D")


def suspect_op(lines: list[str], op_names: list[str]) -> str | None:
    """The op a crashed TFLM's log points at: a node it names, else the kernel source file of an assert
    (``kernels/softmax_common.cc:87`` -> SOFTMAX) matched against the model's ``op_names``; None when the
    log names none."""
    for line in reversed(lines):
        m = _NODE.search(line)
        if m:
            return m.group(1)
    for line in reversed(lines):
        m = _KERNEL_SOURCE.search(line)
        if m:
            stem = _squash(m.group(1))
            found = [op for op in op_names if _squash(op) == stem]
            if found:
                return found[0]
    return None


def _crash_or_error(run: WorkerRun, op_names: list[str] | None = None) -> dict:
    lines = [ln for ln in run.tflm_lines() if "RecordingMicroAllocator" not in ln]
    if run.crashed:
        return {
            "stage": run.last_phase,
            "crash": run.signal_name(),
            "log": lines[-12:],
            "suspect_op": suspect_op(lines, op_names or []),
        }
    error = (run.response or {}).get("error", "")
    return {"stage": (run.response or {}).get("phase", run.last_phase), "error": error, "log": lines[-12:]}


def describe_failure(failure: dict, origin: str) -> tuple[str, str]:
    """A one-line message and a hint for a failure dict of :func:`probe`."""
    if "crash" in failure:
        head = f"TFLM stopped the process ({failure['crash']}) in the {failure['stage']} step on {origin}"
        fix = "TFLM aborts on some degenerate quantization parameters: re-quantize with representative data"
        op = failure.get("suspect_op")
        if not failure.get("log"):
            return f"{head}; its log was empty, so it names no op", fix
        where = f" at op {op}" if op else " (its log names no op)"
        return f"{head}{where}: {failure['log'][-1]}", fix + "; TFLM's last log lines are in the error details"
    if "op" in failure:
        return (
            f"TFLM cannot {failure['stage']} op #{failure['index']} {failure['op']} of {origin}"
            + (f": {failure['log'][0]}" if failure.get("log") else ""),
            "the kernel rejects this variant (tensor types, shapes or parameters); see the log in the details",
        )
    first = (failure.get("error") or "").strip().splitlines()
    return (
        f"TFLM cannot load {origin}" + (f": {first[-1][:300]}" if first else ""),
        "see the TFLM log in the error details",
    )


def require_ok(result: Probe, origin: str) -> None:
    """Raise the typed error for a probe that did not run (missing ops are the caller's to report)."""
    if result.ok or result.unsupported_ops:
        return
    if result.failure is None:
        raise BadInput(f"TFLM cannot load {origin}", "see the TFLM log")
    message, hint = describe_failure(result.failure, origin)
    raise BadInput(message, hint, details={"tflm": result.failure})
