"""The resource family: declared sizes and option bounds through the real CLI under a memory limit.

    python -m tests.adversarial.resources [--limit-gib 4] [--out DIR] [--quick]

Small .tflite files whose input, intermediate or output shapes are edited to claim huge activations
(LiteRT would propagate them from the input at allocation), and commands whose numeric options claim
huge or non-finite amounts (``--runs 100000000``, ``--proof-samples 100000000``, ``--resize
100000x100000``, ``--timeout-s nan``). Each command runs as its own child ``edgeq --json ...`` whose
address space is capped with RLIMIT_AS, and is counted: exit 1 (must be 0), killed by a signal or
ending in a MemoryError past the limit (must be 0), hung (must be 0), stdout not exactly one JSON
document (must be 0). A bound must refuse the work before it is tried.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import resource
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tests.adversarial.mutate import HERE, load, pack

ROOT = Path(__file__).resolve().parents[2]
SEED = HERE / "seeds" / "int8_io.tflite"  # input [1,8,8,1] int8 -> conv -> ... -> output
FLOAT_SEED = HERE / "seeds" / "float.tflite"
GIB = 1 << 30


def with_shapes(
    data: bytes,
    input_shape: list[int] | None = None,
    output_shape: list[int] | None = None,
    intermediate_shape: list[int] | None = None,
) -> bytes:
    """``data`` with the first input's, the first output's and/or the first intermediate activation's
    declared shape replaced (nothing else changes: the model stays a valid flatbuffer)."""
    m = load(data)
    g = m.subgraphs[0]
    if input_shape is not None:
        g.tensors[g.inputs[0]].shape = list(input_shape)
    if output_shape is not None:
        g.tensors[g.outputs[0]].shape = list(output_shape)
    if intermediate_shape is not None:
        inner = g.operators[0].outputs[0]
        g.tensors[inner].shape = list(intermediate_shape)
    return pack(m)


# name -> (seed, edits)
SIZE_FILES: dict[str, tuple[Path, dict]] = {
    "input_32768x32768x1_int8": (SEED, {"input_shape": [1, 32768, 32768, 1]}),
    "input_32768x32768x2_int8": (SEED, {"input_shape": [1, 32768, 32768, 2]}),
    "input_16384x16384x1_int8": (SEED, {"input_shape": [1, 16384, 16384, 1]}),
    "input_4096x4096x1_int8": (SEED, {"input_shape": [1, 4096, 4096, 1]}),
    "input_batch_1000000": (SEED, {"input_shape": [1_000_000, 8, 8, 1]}),
    "input_32768x32768x1_float": (FLOAT_SEED, {"input_shape": [1, 32768, 32768, 1]}),
    "intermediate_28x28x1000000": (SEED, {"intermediate_shape": [1, 28, 28, 1_000_000]}),
    "output_1000000000": (SEED, {"output_shape": [1, 1_000_000_000]}),
    "all_three_huge": (
        SEED,
        {
            "input_shape": [1, 32768, 32768, 1],
            "intermediate_shape": [1, 8, 8, 100_000_000],
            "output_shape": [1, 1 << 30],
        },
    ),
}

# name -> CLI arguments before the model path; the model path is appended
SIZE_COMMANDS: dict[str, list[str]] = {
    "inspect": ["--json", "inspect"],
    "check-cpu": ["--json", "check", "--target", "cpu"],
    "check-mcu": ["--json", "check", "--target", "mcu", "--timeout-s", "60"],
    "bench-cpu": ["--json", "bench", "--target", "cpu", "--runs", "2", "--warmup", "0"],
    "compile-mcu-c": ["--json", "compile", "--target", "mcu", "--runtime", "c", "--proof-samples", "2"],
}

# option bounds: full command lines ({model} is the seed model, {out} a fresh folder); each must exit 2
OPTION_COMMANDS: dict[str, list[str]] = {
    "bench-runs": ["bench", "{model}", "--runs", "100000000"],
    "bench-warmup": ["bench", "{model}", "--warmup", "100000000"],
    "bench-c-runs": ["bench", "{model}", "--target", "mcu", "--runtime", "c", "--runs", "100000000"],
    "compile-proof-samples": [
        "compile",
        "{model}",
        "--target",
        "mcu",
        "--runtime",
        "c",
        "--proof-samples",
        "100000000",
    ],
    "check-parity-samples": ["check", "{model}", "--target", "mcu", "--parity-samples", "100000000"],
    "check-timeout-nan": ["check", "{model}", "--target", "mcu", "--timeout-s", "nan"],
    "check-timeout-negative": ["check", "{model}", "--target", "mcu", "--timeout-s", "-5"],
    "quantize-resize": ["quantize", "m.keras", "-o", "{out}/q.tflite", "--data", "d", "--resize", "100000x100000"],
    "quantize-samples": ["quantize", "m.keras", "-o", "{out}/q.tflite", "--data", "d", "--samples", "1000000000"],
    "quantize-scale-nan": ["quantize", "m.keras", "-o", "{out}/q.tflite", "--data", "d", "--scale", "nan"],
    "quantize-min-sqnr-nan": ["quantize", "m.keras", "-o", "{out}/q.tflite", "--eval-data", "e", "--min-sqnr", "nan"],
    "quantize-max-drop-inf": ["quantize", "m.keras", "-o", "{out}/q.tflite", "--eval-data", "e", "--max-drop", "inf"],
    "quantize-batch": ["quantize", "m.keras", "-o", "{out}/q.tflite", "--batch", "100000000"],
    "quantize-epochs": ["quantize", "m.keras", "-o", "{out}/q.tflite", "--qat", "--train-data", "t", "--epochs", "1e9"],
    "train-batch-size": ["train", "m.keras", "--data", "d", "-o", "{out}/t.keras", "--batch-size", "1000000000"],
    "build-runs": ["build", "m.keras", "--target", "cpu", "-o", "{out}/b", "--runs", "100000000"],
    "build-threads": ["build", "m.keras", "--target", "cpu", "-o", "{out}/b", "--threads", "100000"],
}


@dataclass
class Outcome:
    name: str
    code: int | None  # None: hung
    signal: int | None = None
    stdout: str = ""
    expect_usage: bool = False

    def problems(self) -> list[str]:
        if self.code is None:
            return ["hang"]
        if self.signal is not None:
            return [f"killed (signal {self.signal})"]
        found = ["exit 1"] if self.code == 1 else []
        try:
            doc = json.loads(self.stdout)
        except ValueError:
            return found + ["stdout is not one JSON document"]
        error = (doc.get("error") or {}) if isinstance(doc, dict) else {}
        message = str(error.get("message", ""))
        if "MemoryError" in message or message.startswith("out of memory"):
            found.append("MemoryError past the limit")
        if self.expect_usage and self.code != 2:
            found.append(f"exit {self.code}, not 2 (usage)")
        return found


def _limit(limit_bytes: int):
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit_bytes, limit_bytes))

    return apply


def run_one(
    name: str, args: list[str], limit_bytes: int, timeout_s: float, cwd: Path, expect_usage: bool = False
) -> Outcome:
    # the caller's PYTHONPATH first: pointing it at another checkout runs the family against that code
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.environ.get("PYTHONPATH", ""), str(ROOT)]))
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "edgeq", *args],
            capture_output=True,
            timeout=timeout_s,
            env=env,
            preexec_fn=_limit(limit_bytes),
            check=False,
            cwd=cwd,
        )
    except subprocess.TimeoutExpired:
        return Outcome(name, None, expect_usage=expect_usage)
    signal = -proc.returncode if proc.returncode < 0 else None
    return Outcome(name, proc.returncode, signal, proc.stdout.decode(errors="replace"), expect_usage)


def write_size_files(folder: Path, names: list[str] | None = None) -> list[Path]:
    out = []
    for name in names or list(SIZE_FILES):
        seed, edits = SIZE_FILES[name]
        path = folder / f"{name}.tflite"
        path.write_bytes(with_shapes(seed.read_bytes(), **edits))
        out.append(path)
    return out


def run_family(
    work: Path,
    limit_gib: float = 4,
    timeout_s: float = 300,
    files: list[str] | None = None,
    commands: list[str] | None = None,
    options: list[str] | None = None,
) -> dict:
    """Run the chosen size files x size commands, and the option-bound commands; return the counts."""
    limit = int(limit_gib * GIB)
    outcomes = []
    paths = write_size_files(work, files)
    for path in paths:
        for kind in commands or list(SIZE_COMMANDS):
            outcomes.append(run_one(f"{kind} {path.name}", [*SIZE_COMMANDS[kind], str(path)], limit, timeout_s, work))
    for kind in options if options is not None else list(OPTION_COMMANDS):
        out = work / f"out-{kind}"
        args = [a.format(model=SEED, out=out) for a in OPTION_COMMANDS[kind]]
        outcomes.append(run_one(kind, ["--json", *args], limit, timeout_s, work, expect_usage=True))
    bad = {o.name: o.problems() for o in outcomes if o.problems()}
    return {
        "files": len(paths),
        "commands": len(outcomes),
        "memory_limit_gib": limit_gib,
        "exit_codes": dict(collections.Counter(str(o.code) for o in outcomes)),
        "exit_1": sum(o.code == 1 for o in outcomes),
        "killed": sum(o.signal is not None for o in outcomes),
        "memory_errors": sum("MemoryError past the limit" in o.problems() for o in outcomes),
        "hangs": sum(o.code is None for o in outcomes),
        "bad": bad,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit-gib", type=float, default=4)
    ap.add_argument("--timeout-s", type=float, default=300)
    ap.add_argument("--out", default=None, help="write the counts here as JSON")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="edgeq-resources-") as tmp:
        counts = run_family(Path(tmp), args.limit_gib, args.timeout_s)
    text = json.dumps(counts, indent=2)
    if args.out:
        Path(args.out).write_text(text + "\n")
    print(text)
    sys.exit(1 if counts["bad"] else 0)


if __name__ == "__main__":
    main()
