"""Drive the real CLI over the corrupt models and count what went wrong.

    python -m tests.adversarial.harness [--rounds N] [--seed S] [--out DIR]

For each command kind (inspect, check --target T for every registered target, bench) one child Python
process (:mod:`tests.adversarial.drive`) loops over all corrupt files; a child killed by a signal is
recorded as a crash of the file it was on and restarted after it. A file whose command produces no
progress for ``timeout_s`` counts as a hang. Every outcome is checked: exit code, and stdout being
exactly one JSON document whose ``error`` names the model.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TARGETS = ("cpu", "coral", "android", "mcu", "ethos-u")


def command_kinds() -> dict[str, list[str]]:
    """Name -> CLI arguments before the model path."""
    kinds = {"inspect": ["--json", "inspect"]}
    kinds |= {f"check-{t}": ["--json", "check", "--target", t] for t in TARGETS}
    for t in ("mcu", "ethos-u"):  # a corrupt model may send TFLM or Vela searching; the user's bound applies
        kinds[f"check-{t}"] += ["--timeout-s", "30"]
    kinds["bench"] = ["--json", "bench", "--target", "cpu", "--runs", "2", "--warmup", "1"]
    return kinds


@dataclass
class Outcome:
    file: str
    command: str
    code: int | None  # None: crashed (signal) or hung
    signal: int | None = None
    hung: bool = False
    stdout: str = ""

    def problems(self) -> list[str]:
        """What is wrong with this outcome ([] when the CLI behaved)."""
        if self.hung:
            return ["hang"]
        if self.code is None:
            return [f"crash (signal {self.signal})"]
        found = []
        if self.code == 1:
            found.append("exit 1")
        try:
            doc = json.loads(self.stdout)
        except ValueError:
            return found + ["stdout is not one JSON document"]
        if not isinstance(doc, dict) or set(doc) < {"ok", "error", "result"}:
            return found + ["JSON document lacks ok/result/error"]
        if self.code != 0 and not (doc.get("error") or {}).get("message"):
            found.append("failure without an error message")
        return found


@dataclass
class Summary:
    files: int
    outcomes: list[Outcome] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def crashes(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.code is None and not o.hung]

    @property
    def hangs(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.hung]

    @property
    def exit1(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.code == 1]

    @property
    def bad(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.problems()]

    def codes(self) -> dict:
        return dict(sorted(collections.Counter(str(o.code) for o in self.outcomes).items()))

    def to_dict(self) -> dict:
        return {
            "files": self.files,
            "commands": len(self.outcomes),
            "crashes": len(self.crashes),
            "hangs": len(self.hangs),
            "exit_1": len(self.exit1),
            "bad": len(self.bad),
            "exit_codes": self.codes(),
            "seconds": round(self.seconds, 1),
            "problems": [
                {"file": Path(o.file).name, "command": o.command, "problems": o.problems(), "stdout": o.stdout[-400:]}
                for o in self.bad
            ],
        }


def run_kind(name: str, prefix: list[str], files: list[Path], work: Path, timeout_s: float) -> list[Outcome]:
    """Run one command kind over every file in as few child processes as crashes allow."""
    jobs = [[*prefix, str(f)] for f in files]
    jobs_path = work / f"{name}.jobs.json"
    jobs_path.write_text(json.dumps(jobs))
    results_path = work / f"{name}.results.jsonl"
    results_path.unlink(missing_ok=True)
    outcomes: dict[int, Outcome] = {}
    start = 0
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    while start < len(jobs):
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.adversarial.drive", str(jobs_path), str(results_path), str(start)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        seen, last_change, current = 0, time.monotonic(), None
        hung = False
        while proc.poll() is None:
            time.sleep(0.05)
            lines = results_path.read_text().splitlines() if results_path.exists() else []
            if len(lines) != seen:
                seen, last_change = len(lines), time.monotonic()
            elif time.monotonic() - last_change > timeout_s:
                proc.kill()
                proc.wait()
                hung = True
        current = None
        for line in results_path.read_text().splitlines():
            rec = json.loads(line)
            if "start" in rec:
                current = rec["start"]
            else:
                outcomes[rec["index"]] = Outcome(str(files[rec["index"]]), name, rec["code"], stdout=rec["stdout"])
                current = None
        if current is None:
            break  # the driver finished every job
        signal = -proc.returncode if proc.returncode is not None and proc.returncode < 0 else None
        outcomes[current] = Outcome(str(files[current]), name, None, signal=signal, hung=hung)
        start = current + 1
    return [outcomes[i] for i in sorted(outcomes)]


def run_all(
    files: list[Path], work: Path, kinds: dict[str, list[str]] | None = None, timeout_s: float = 120
) -> Summary:
    """Every command kind over every file; the kinds run two at a time (one per core)."""
    import concurrent.futures

    kinds = kinds or command_kinds()
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    summary = Summary(files=len(files))
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        futures = [pool.submit(run_kind, n, p, files, work, timeout_s) for n, p in kinds.items()]
        for f in futures:
            summary.outcomes.extend(f.result())
    summary.seconds = time.monotonic() - t0
    return summary


def main() -> None:
    from tests.adversarial.mutate import write_corrupt_models

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=1, help="random variants of each mutation per seed model")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("edgeq-out/adversarial"))
    ap.add_argument("--only", default=None, help="comma-separated command kinds (default: all)")
    ap.add_argument("--limit", type=int, default=None, help="first N files only")
    args = ap.parse_args()
    files = write_corrupt_models(args.out / "models", seed=args.seed, rounds=args.rounds)[: args.limit]
    kinds = command_kinds()
    if args.only:
        kinds = {k: v for k, v in kinds.items() if k in args.only.split(",")}
    summary = run_all(files, args.out, kinds)
    doc = summary.to_dict()
    (args.out / "summary.json").write_text(json.dumps(doc, indent=2))
    print(json.dumps({k: v for k, v in doc.items() if k != "problems"}, indent=2))
    for p in doc["problems"]:
        print(f"{p['command']:14} {p['file']:50} {', '.join(p['problems'])}: {p['stdout'][-200:]!r}")


if __name__ == "__main__":
    main()
