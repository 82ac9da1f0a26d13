"""The planner's candidates on the executor: one local job, two local jobs, and Ray on two nodes, side by side.

Alone: ``python benchmarks/planner_parallel.py`` with Ray installed (``pip install edgeq[ray]``); writes
results/planner_parallel.json and .md. See benchmarks/README.md.

The model and data are planner_resume.py's (a seeded MobileNetV2 96x96, alpha 0.35, BatchNormalization
statistics set to the calibration batch's; 64 calibration and 40 evaluation crops of scikit-image's sample
photos, from disjoint photos). The command, three times, each a fresh process with an empty candidate cache
of its own (``EDGEQ_CACHE_DIR``), timed from spawn to exit:

    edgeq --json quantize MODEL --data CALIB --eval-data EVAL --min-sqnr 8 --target cpu --adaround-steps 5
        --executor local --jobs 1 | --executor local --jobs 2 | --executor ray --ray-address HEAD

On cpu the planner tries plain PTQ, CLE, MSE ranges with bias correction, AdaRound, then selective steps
(float layers, one group at a time, by the debugger's sensitivity), then int16x8: the first five are known up
front and go to the executor; the selective steps follow the sensitivity and are built by the planner's own
process. Ray: a head and a second node started here (1 CPU each; tests/executor/cluster.py), their start-up
not in the wall time (reported apart). The machine has 2 cores: the two local jobs and the two Ray nodes
share them with the planner's own process, which evaluates every candidate.

Reported: each run's wall time and its ratio to one job, the plan chosen, the steps measured, and whether
every candidate's bytes (read from each run's cache) and the written model are identical across the runs.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import planner_resume  # noqa: E402 - the same model and data as the cache benchmark

MIN_SQNR = 8.0  # dB: only int16x8 meets it on this network (int8 candidates 5.4-5.9 dB, int16x8 11.4)
ADAROUND_STEPS = 5
TARGET = "cpu"


def run_plan(root: Path, inputs: dict[str, str], cache: Path, out: Path, executor: list[str]) -> dict:
    """One planner run in a fresh process: wall time, exit code, its JSON document."""
    cmd = [
        *(sys.executable, "-m", "edgeq", "--json", "quantize", inputs["model"], "--data", inputs["calib"]),
        *("--eval-data", inputs["eval"], "--min-sqnr", str(MIN_SQNR), "--target", TARGET),
        *("--adaround-steps", str(ADAROUND_STEPS), "-o", str(out), "--force", *executor),
    ]
    env = os.environ | {"EDGEQ_CACHE_DIR": str(cache), "PYTHONPATH": str(root), "TF_USE_LEGACY_KERAS": "1"}
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=3600)
    wall = time.perf_counter() - t0
    if proc.returncode not in (0, 6):
        raise RuntimeError(f"edgeq quantize exited {proc.returncode}: {proc.stdout[-2000:]} {proc.stderr[-3000:]}")
    doc = json.loads(proc.stdout)
    plan = doc["result"]["plan"] if doc["ok"] else doc["error"]["details"]
    return {"wall_s": round(wall, 1), "exit_code": proc.returncode, "plan": plan}


def digests(cache: Path, out: Path) -> dict[str, str]:
    """sha256 of every candidate in a run's cache (by entry) and of the written model."""
    found = {p.parent.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in cache.rglob("candidate.tflite")}
    if out.exists():
        found["written model"] = hashlib.sha256(out.read_bytes()).hexdigest()
    return found


def summary(run: dict) -> dict:
    plan = run["plan"]
    measured = [s for s in plan["steps"] if s["size_bytes"]]
    ex = plan.get("executor") or {}
    return {
        "wall_s": run["wall_s"],
        "exit_code": run["exit_code"],
        "chosen": plan["chosen"],
        "steps_measured": len(measured),
        "steps": [(s["name"], s["sqnr_db"]) for s in plan["steps"]],
        "built_ahead": [
            {k: r[k] for k in ("name", "node", "pid", "attempts", "seconds", "ok")} for r in ex.get("candidates", [])
        ],
    }


def planner_parallel(root: Path, tmp: Path) -> dict:
    sys.path.insert(0, str(root))
    from tests.executor import cluster

    if cluster.ray_missing():
        raise SystemExit(cluster.ray_missing())
    inputs = planner_resume.make_inputs(tmp)
    load = {"start": os.getloadavg()}
    runs: dict[str, dict] = {}
    hashes: dict[str, dict[str, str]] = {}
    for name, args in (("local, 1 job", ["--executor", "local", "--jobs", "1"]), ("local, 2 jobs", ["--jobs", "2"])):
        key = name.replace(", ", "_").replace(" ", "")
        runs[name] = run_plan(root, inputs, tmp / f"cache-{key}", tmp / f"{key}.tflite", args)
        hashes[name] = digests(tmp / f"cache-{key}", tmp / f"{key}.tflite")
    t0 = time.perf_counter()
    with cluster.two_nodes() as address:
        start_s = round(time.perf_counter() - t0, 1)
        name = "ray, 2 nodes"
        runs[name] = run_plan(
            root, inputs, tmp / "cache-ray", tmp / "ray.tflite", ["--executor", "ray", "--ray-address", address]
        )
        hashes[name] = digests(tmp / "cache-ray", tmp / "ray.tflite")
    load["end"] = os.getloadavg()
    first = next(iter(hashes.values()))
    return {
        "model": "MobileNetV2 96x96 alpha 0.35 (planner_resume.py's), seed 0",
        "command": f"edgeq quantize --min-sqnr {MIN_SQNR:g} --target {TARGET} --adaround-steps {ADAROUND_STEPS}",
        "environment": {
            "cpus": os.cpu_count(),
            "machine": platform.processor() or platform.machine(),
            "python": platform.python_version(),
            "ray": _version("ray"),
            "tensorflow": _version("tensorflow"),
            "load_average": load,
        },
        "ray_cluster_start_s": start_s,
        "runs": {k: summary(v) for k, v in runs.items()},
        "same_choice": len({v["plan"]["chosen"] for v in runs.values()}) == 1,
        "same_steps": len({json.dumps(summary(v)["steps"]) for v in runs.values()}) == 1,
        "identical_bytes": all(h == first for h in hashes.values()),
        "files_compared": len(first),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def _version(dist: str) -> str:
    from importlib.metadata import version

    return version(dist)


def render(doc: dict) -> list[str]:
    base = doc["runs"]["local, 1 job"]["wall_s"]
    lines = [
        "### Planner candidates on the executor: 1 job, 2 jobs, Ray on two nodes (measured)",
        "",
        f"{doc['model']}; `{doc['command']}`, each run a fresh process with an empty candidate cache, timed "
        f"from spawn to exit; {doc['date']}, {doc['environment']['cpus']} logical CPUs, Ray "
        f"{doc['environment']['ray']}, TensorFlow {doc['environment']['tensorflow']}.",
        "",
        "| executor | wall s | / 1 job | exit | chosen | steps measured | built ahead (node: candidates) |",
        "|---|---:|---:|---:|---|---:|---|",
    ]
    for name, r in doc["runs"].items():
        nodes: dict[str, int] = {}
        for b in r["built_ahead"]:
            nodes[b["node"][:8]] = nodes.get(b["node"][:8], 0) + 1
        where = ", ".join(f"{n}: {c}" for n, c in nodes.items()) or "none (in the planner's process)"
        lines.append(
            f"| {name} | {r['wall_s']:.1f} | {r['wall_s'] / base:.2f} | {r['exit_code']} | {r['chosen']} | "
            f"{r['steps_measured']} | {where} |"
        )
    load = doc["environment"]["load_average"]
    lines += [
        "",
        f"Same choice: {doc['same_choice']}; same steps and SQNR: {doc['same_steps']}; every candidate and the "
        f"written model byte-identical across the three runs: {doc['identical_bytes']} ({doc['files_compared']} "
        f"files each). Ray cluster start-up (not in the wall time): {doc['ray_cluster_start_s']} s. Load average "
        f"{load['start'][0]:.2f} at start, {load['end'][0]:.2f} at end.",
        "",
        "Steps (in the planner's order, SQNR dB): "
        + "; ".join(f"{n} {s if s is not None else '-'}" for n, s in doc["runs"]["local, 1 job"]["steps"]),
        "",
    ]
    return lines


def main() -> int:
    import tempfile

    root = Path(__file__).resolve().parent.parent
    with tempfile.TemporaryDirectory(prefix="edgeq-parallel-") as tmp:
        doc = planner_parallel(root, Path(tmp))
    results = root / "benchmarks" / "results"
    results.mkdir(exist_ok=True)
    (results / "planner_parallel.json").write_text(json.dumps(doc, indent=2) + "\n")
    text = "\n".join(render(doc))
    (results / "planner_parallel.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
