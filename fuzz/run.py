"""Run every fuzz harness for a bounded time and summarise executions and findings.

    python fuzz/run.py [SECONDS_EACH]      (make fuzz FUZZ_SECONDS=600)

Each harness runs in its own process (a native crash ends only that one); the summary is printed and
written to edgeq-out/fuzz/summary.json.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = Path(os.environ.get("EDGEQ_FUZZ_OUT", "edgeq-out/fuzz"))
HARNESSES = ("tflite", "data", "cemit")


def run_one(name: str, seconds: int) -> dict:
    folder = OUT / name
    folder.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, EDGEQ_FUZZ_SECONDS=str(seconds), EDGEQ_FUZZ_OUT=str(OUT))
    t0 = time.monotonic()
    with open(folder / "libfuzzer.log", "wb") as log:
        proc = subprocess.run([sys.executable, str(HERE / f"fuzz_{name}.py")], stdout=log, stderr=log, env=env)
    text = (folder / "libfuzzer.log").read_text(errors="replace")
    done = re.findall(r"Done (\d+) runs in (\d+) second", text)
    summary = json.loads((folder / "summary.json").read_text()) if (folder / "summary.json").exists() else {}
    crashes = sorted(p.name for p in folder.glob("crash-*")) + sorted(p.name for p in folder.glob("timeout-*"))
    return {
        "harness": name,
        "seconds": round(time.monotonic() - t0),
        "executions": int(done[-1][0]) if done else summary.get("executions"),
        "exit_status": proc.returncode,
        "findings": summary.get("findings", {}),
        "native_crashes_or_timeouts": crashes,
        "coverage": (re.findall(r"cov: (\d+)", text) or ["?"])[-1],
    }


def main() -> None:
    seconds = int(sys.argv[1]) if len(sys.argv) > 1 else 600
    names = sys.argv[2].split(",") if len(sys.argv) > 2 else HARNESSES
    results = [run_one(n, seconds) for n in names]
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "summary.json").write_text(json.dumps(results, indent=2))
    for r in results:
        print(
            f"{r['harness']}: {r['executions']} executions in {r['seconds']} s, coverage {r['coverage']}, "
            f"{len(r['findings'])} finding(s), {len(r['native_crashes_or_timeouts'])} native crash(es)/timeout(s)"
        )
        for key in r["findings"]:
            print(f"  finding: {key}")
    sys.exit(1 if any(r["findings"] or r["native_crashes_or_timeouts"] for r in results) else 0)


if __name__ == "__main__":
    main()
