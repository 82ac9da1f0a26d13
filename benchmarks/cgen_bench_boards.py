"""``edgeq bench --target mcu --runtime c`` end to end, exactly as a user runs it, on the four zoo models for
NUCLEO-L4R5ZI (stm32l4r5, Cortex-M4) and Corstone-300 (corstone-300, Cortex-M55).

    .venv/bin/python benchmarks/cgen_bench_boards.py              # 4 models x 2 boards, 3 runs each (~5 min)
    .venv/bin/python benchmarks/cgen_bench_boards.py --boards stm32l4r5 --models ds_cnn --runs 1

Models are built as benchmarks/cgen_walltime.py builds them. Each cell is one `python -m edgeq --json bench`
process; its JSON document gives the QEMU instructions per inference (measured), flash and RAM from the ELF
(measured; RAM here adds the I/O buffers), the bit-exactness of every inference, and the engine's latency
estimated from its instructions (edgeq/targets/mcu/cgen/latency.py, with basis and error). A failed command
(non-zero exit) is recorded with its exit code and error and makes this script exit 1.
Writes benchmarks/results/cgen_bench_boards.json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from cgen_walltime import _int8  # noqa: E402

MODELS = ("mnist_cnn", "ds_cnn", "resnet8", "mobilenet_v1_025")
BOARDS = ("stm32l4r5", "corstone-300")
OUT = ROOT / "benchmarks" / "results" / "cgen_bench_boards"


def _bench(model: Path, board: str, runs: int) -> dict:
    cmd = [sys.executable, "-m", "edgeq", "--json", "bench", str(model), "--target", "mcu", "--runtime", "c"]
    cmd += ["--board", board, "--runs", str(runs)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1800)
    wall = round(time.perf_counter() - t0, 1)
    command = "edgeq --json bench MODEL --target mcu --runtime c --board " + f"{board} --runs {runs}"
    try:
        doc = json.loads(p.stdout)
    except json.JSONDecodeError:
        return {"command": command, "exit_code": p.returncode, "ok": False, "error": p.stderr.strip()[-500:]}
    if not doc.get("ok"):
        return {"command": command, "exit_code": p.returncode, "ok": False, "error": doc.get("error"), "wall_s": wall}
    res = doc["result"]
    mem, ins, qemu = res["memory"], res["instructions"], next(iter(res["proof"]["qemu"].values()))
    return {
        "command": command,
        "exit_code": p.returncode,
        "ok": True,
        "wall_s": wall,
        "instructions_per_inference": ins["per_inference_p50"],
        "macs": ins["macs"],
        "machine": ins["machine"],
        "flash_bytes": mem["flash_bytes"],
        "ram_bytes_with_io": mem["ram_bytes"] + mem["io_bytes"],
        "bit_exact": f"{qemu['bit_exact']}/{qemu['num_samples']} QEMU ({qemu.get('against')}), "
        f"{res['proof']['host']['bit_exact']}/{res['proof']['host']['num_samples']} host",
        "latency_estimate": res.get("latency_estimate"),
    }


def _markdown(doc: dict) -> str:
    lines = [
        "# `edgeq bench --target mcu --runtime c` on the zoo models (benchmarks/cgen_bench_boards.py)",
        "",
        f"One `python -m edgeq --json bench` per cell, {doc['runs']} seeded inferences each; instructions are QEMU "
        "-icount counts (measured), flash and RAM (with I/O buffers) from the ELF, the latency is estimated "
        f"(cgen/latency.py). Whole run: {doc['wall_time_s']:.0f} s.",
        "",
        "| board | model | exit | instructions | instr/MAC | flash | RAM incl. I/O | bit-exact | estimated latency |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in doc["rows"]:
        if not r["ok"]:
            lines.append(f"| {r['board']} | {r['model']} | {r['exit_code']} | failed: {r['error']} | | | | | |")
            continue
        est = r["latency_estimate"] or {}
        ms = est.get("latency_ms")
        est_text = f"{ms:.2f} ms +/-{est['error']:.0%} (estimated)" if ms is not None else est.get("reason", "-")
        lines.append(
            f"| {r['board']} | {r['model']} | {r['exit_code']} | {r['instructions_per_inference']:,} | "
            f"{r['instructions_per_inference'] / r['macs']:.2f} | {r['flash_bytes']:,} | {r['ram_bytes_with_io']:,} | "
            f"{r['bit_exact']} | {est_text} |"
        )
    basis = next((r["latency_estimate"] for r in doc["rows"] if r["ok"] and r["latency_estimate"]), None)
    if basis and basis.get("basis"):
        lines += ["", f"Estimate basis (M4): {basis['basis']}; error: {basis['error_basis']}."]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--boards", nargs="*", default=list(BOARDS))
    ap.add_argument("--models", nargs="*", default=list(MODELS))
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    t0 = time.perf_counter()
    rows = []
    with tempfile.TemporaryDirectory(prefix="edgeq_bench_boards_") as tmp:
        for name in args.models:
            model = _int8(name, Path(tmp))
            for board in args.boards:
                row = {"board": board, "model": name, **_bench(model, board, args.runs)}
                rows.append(row)
                print(json.dumps(row), flush=True)
    doc = {"rows": rows, "runs": args.runs, "wall_time_s": round(time.perf_counter() - t0, 1)}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.with_suffix(".json").write_text(json.dumps(doc, indent=1) + "\n")
    OUT.with_suffix(".md").write_text(_markdown(doc))
    print(_markdown(doc))
    if not all(r["ok"] for r in rows):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
