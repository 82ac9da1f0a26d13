"""Instructions per MAC of the generated C engine, per op kind and per model, on Cortex-M4, M7, M33 and M55
under QEMU, next to TFLM + CMSIS-NN's figures (quoted from issue #22, not re-measured here), with the board
latency estimated from the engine's own instruction counts (edgeq/targets/mcu/cgen/latency.py).

    .venv/bin/python benchmarks/cgen_ipm.py                  # 4 zoo models x 4 cores, 3 samples (~10 min)
    .venv/bin/python benchmarks/cgen_ipm.py --render         # tables again from the JSON, no QEMU run
    .venv/bin/python benchmarks/cgen_ipm.py --cores cortex-m4 --models mnist_cnn

Each model is built as benchmarks/cgen_walltime.py builds it (int8, int8 I/O, seeded weights) and generated
with the kernels for each core. Per model and core: cgen.prove() on the default build (host and QEMU,
bit-exact with TFLM's reference kernels and LiteRT's; a mismatch stops the script) gives the whole-invoke
instruction count, flash and RAM; cgen.profile.run() on the EQ_PROFILE build (outputs compared again) gives
the per-op counts. All counts are QEMU -icount shift=0 instructions (median of the samples), not cycles.
Writes benchmarks/results/cgen_ipm.json and cgen_ipm.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from cgen_walltime import _int8  # noqa: E402

MODELS = ("mnist_cnn", "ds_cnn", "resnet8", "mobilenet_v1_025")
CORES = ("cortex-m4", "cortex-m7", "cortex-m33", "cortex-m55")
OUT = ROOT / "benchmarks" / "results" / "cgen_ipm"


def _measure(model: Path, core: str, samples: int, work: Path) -> dict:
    from edgeq.targets.mcu import parity
    from edgeq.targets.mcu.cgen import generate, profile, prove
    from edgeq.tflite import read_file

    data = model.read_bytes()
    project = generate(data, model.name, core=core)
    inputs = parity.make_inputs(read_file(model), samples, parity.DEFAULT_SEED)[0].reshape(samples, -1)
    plain = work / f"{model.stem}_{core}"
    project.write(plain)
    proof = prove(project, data, inputs, plain, cores=(core,))
    run = proof["qemu"][core]
    if run["bit_exact"] != samples or proof["host"]["bit_exact"] != samples:
        raise SystemExit(f"{model.name} on {core}: not bit-exact ({run['bit_exact']}/{samples} on QEMU)")
    prof = profile.run(project, data, inputs, work / f"{model.stem}_{core}_profile", core)
    keys = ("instructions_per_inference", "flash_bytes", "static_ram_bytes", "stack_bytes", "ram_bytes", "against")
    return {
        "macs": project.macs,
        "io_bytes": project.io_bytes,
        "bit_exact": f"{run['bit_exact']}/{samples} QEMU, {proof['host']['bit_exact']}/{samples} host",
        **{k: run[k] for k in keys},
        "profile": prof.to_dict(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cores", nargs="*", default=list(CORES))
    ap.add_argument("--models", nargs="*", default=list(MODELS))
    ap.add_argument("--samples", type=int, default=3)
    ap.add_argument("--render", action="store_true", help="re-render the tables from the JSON, no QEMU run")
    args = ap.parse_args()
    if args.render:
        doc = json.loads(OUT.with_suffix(".json").read_text())
    else:
        t0 = time.perf_counter()
        rows = []
        with tempfile.TemporaryDirectory(prefix="edgeq_ipm_") as tmp:
            work = Path(tmp)
            for name in args.models:
                model = _int8(name, work)
                for core in args.cores:
                    row = {
                        "model": name,
                        "core": core,
                        "samples": args.samples,
                        **_measure(model, core, args.samples, work),
                    }
                    rows.append(row)
                    print(json.dumps({k: v for k, v in row.items() if k != "profile"}), flush=True)
        doc = {"rows": rows, "wall_time_s": round(time.perf_counter() - t0, 1), "samples": args.samples}
        OUT.parent.mkdir(parents=True, exist_ok=True)
        OUT.with_suffix(".json").write_text(json.dumps(doc, indent=1) + "\n")  # measured: kept whatever follows
    doc = render(doc)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.with_suffix(".json").write_text(json.dumps(doc, indent=1) + "\n")
    OUT.with_suffix(".md").write_text(doc_md(doc))
    print(doc_md(doc))


def doc_md(doc: dict) -> str:
    return "\n".join(doc["markdown"]) + "\n"


# TFLM + CMSIS-NN, measured elsewhere (issue #22), quoted here and not re-measured: instructions per inference
# under QEMU, flash and RAM (static + stack + I/O buffers) in bytes.
QUOTED_METHOD = (
    "quoted from issue #22, not re-measured here: TFLM built from source with CMSIS-NN, the same compiler and "
    "flags (arm-none-eabi-gcc -mcpu -mthumb -O2), the same QEMU machines with -icount shift=0, SysTick around one "
    "invoke; every engine bit-exact with TFLM's reference kernels on the same seeded inputs"
)
QUOTED = {
    "mnist_cnn": {"macs": 1.70e6, "cortex-m4": 4.62e6, "cortex-m55": 0.97e6, "flash": 98_606, "ram": 19_729},
    "ds_cnn": {"macs": 2.66e6, "cortex-m4": 7.58e6, "cortex-m55": 1.82e6, "flash": 128_574, "ram": 24_481},
    "resnet8": {"macs": 12.50e6, "cortex-m4": 29.78e6, "cortex-m55": 4.91e6, "flash": 172_458, "ram": 56_657},
    "mobilenet_v1_025": {"macs": 7.49e6, "cortex-m4": 23.78e6, "cortex-m55": 6.56e6, "flash": 386_678, "ram": 102_305},
}
# the boards of edgeq's catalogue whose core the engine runs on under QEMU
BOARD_NAMES = ("stm32l4r5", "nrf52840", "stm32h7a3", "corstone-300")
MLPERF_TASK = {"ds_cnn": "keyword spotting", "resnet8": "image classification", "mobilenet_v1_025": "visual wake words"}


def _m(x: float) -> str:
    return f"{x / 1e6:.2f} M"


def _summary(rows: list[dict]) -> list[str]:
    out = [
        "| model | core | MACs | instructions | instr/MAC | TFLM+CMSIS-NN instr/MAC (quoted) | edgeq / TFLM+CMSIS-NN "
        "instructions | flash | RAM incl. I/O | flash, RAM vs TFLM+CMSIS-NN M4 | bit-exact |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        q = QUOTED.get(r["model"], {})
        ref = q.get(r["core"])
        ram = r["ram_bytes"] + r["io_bytes"]
        ins = r["instructions_per_inference"]
        ref_ipm = f"{ref / q['macs']:.2f}" if ref else "-"
        ratio = f"{ins / ref:.2f}x" if ref else "-"
        out.append(
            f"| {r['model']} | {r['core']} | {_m(r['macs'])} | {_m(ins)} | {ins / r['macs']:.2f} | {ref_ipm} | "
            f"{ratio} | {r['flash_bytes']:,} | {ram:,} | "
            f"{r['flash_bytes'] / q['flash']:.2f}x, {ram / q['ram']:.2f}x | {r['bit_exact']} |"
        )
    return out


def _by_kind(rows: list[dict]) -> list[str]:
    from edgeq.targets.mcu.cgen.profile import GROUPS

    out = [
        "| model | core | " + " | ".join(GROUPS) + " | per-op sum / invoke |",
        "|---|---|" + "---|" * len(GROUPS) + "---|",
    ]
    for r in rows:
        prof, cells = r["profile"], []
        for g in GROUPS:
            grp = prof["by_group"].get(g)
            if grp is None:
                cells.append("-")
            elif grp["instructions_per_mac"] is not None:
                cells.append(f"{grp['instructions_per_mac']:.2f} ({grp['instructions'] / prof['per_op_total']:.0%})")
            else:  # no MACs: its instructions per MAC of the whole model, and its share
                cells.append(
                    f"+{grp['instructions'] / r['macs']:.2f}/model MAC ({grp['instructions'] / prof['per_op_total']:.0%})"
                )
        ratio = prof["per_op_total"] / r["instructions_per_inference"]
        out.append(f"| {r['model']} | {r['core']} | " + " | ".join(cells) + f" | {ratio:.5f} |")
    return out


def _per_core(rows: list[dict]) -> list[str]:
    """Per core, the four models together: instructions per MAC of each op kind (sum over sum)."""
    from edgeq.targets.mcu.cgen.profile import GROUPS

    out = ["| core | " + " | ".join(GROUPS) + " | whole models |", "|---|" + "---|" * (len(GROUPS) + 1)]
    for core in dict.fromkeys(r["core"] for r in rows):
        mine = [r for r in rows if r["core"] == core]
        macs = sum(r["macs"] for r in mine)
        cells = []
        for g in GROUPS:
            grps = [r["profile"]["by_group"][g] for r in mine if g in r["profile"]["by_group"]]
            ins, gm = sum(x["instructions"] for x in grps), sum(x["macs"] for x in grps)
            cells.append("-" if not grps else f"{ins / gm:.2f}" if gm else f"+{ins / macs:.2f}/model MAC")
        whole = sum(r["instructions_per_inference"] for r in mine) / macs
        out.append(f"| {core} | " + " | ".join(cells) + f" | {whole:.2f} |")
    return out


def _latency(rows: list[dict]) -> tuple[list[str], list[dict]]:
    from edgeq.targets.mcu import boards
    from edgeq.targets.mcu.cgen import latency

    out = [
        "| board | core, clock | model | edgeq instructions | edgeq estimated ms | TFLM+CMSIS-NN estimated ms (quoted "
        "instructions) | published ms (MLPerf Tiny, stack) |",
        "|---|---|---|---|---|---|---|",
    ]
    records = []
    for name in BOARD_NAMES:
        board = boards.BOARDS[name]
        cal = latency.calibration(board.core)
        for r in (r for r in rows if r["core"] == board.core):
            est = latency.estimate(r["instructions_per_inference"], board)
            ref = QUOTED[r["model"]].get(board.core)
            ref_ms = latency.estimate(int(ref), board)["latency_ms"] if ref else None
            pub = "-"
            same_board = cal is not None and (cal.board in board.title or cal.board_core != cal.core)
            if same_board and r["model"] in cal.inferences_per_s:
                pub = f"{cal.published_ms(r['model']):.2f} ({cal.board} {cal.clock_hz / 1e6:.0f} MHz, {cal.stack})"
            ms = est["latency_ms"]
            ms_text = f"{ms:.2f} +/-{est['error']:.0%}" if ms else "not estimated"
            ref_text = f"{ref_ms:.2f}" if ref_ms else "-"
            out.append(
                f"| {name} | {board.core}, {board.clock_hz / 1e6:.0f} MHz | {r['model']} | "
                f"{_m(r['instructions_per_inference'])} | {ms_text} | {ref_text} | {pub} |"
            )
            records.append({"board": name, "model": r["model"], **est})
    return out, records


def _validation() -> list[str]:
    from edgeq.targets.mcu.cgen import latency

    out = [
        "| core factor | board, stack (MLPerf Tiny closed) | model (task) | published ms | estimated ms (leave-one-out) "
        "| error |",
        "|---|---|---|---|---|---|",
    ]
    for v in latency.validation_rows():
        cal = latency.CALIBRATIONS[v["core"]]
        out.append(
            f"| {v['core']} ({cal.cycles_per_instruction():.3f} cycles/instr) | {v['board']}, {v['stack']} | "
            f"{v['model']} ({MLPERF_TASK[v['model']]}) | {v['published_ms']:.2f} | {v['estimated_ms']:.2f} | "
            f"{v['error']:+.1%} |"
        )
    return out


def render(doc: dict) -> dict:
    """``doc`` with its tables: markdown lines and the latency estimates as records."""
    from edgeq.targets.mcu.cgen import latency

    rows = doc["rows"]
    lat, records = _latency(rows)
    ctx = latency.CONTEXT[0]
    m4 = latency.CALIBRATIONS["cortex-m4"]
    md = [
        "# Instructions per MAC of the generated C engine, per op kind and per model (benchmarks/cgen_ipm.py)",
        "",
        f"Measured: QEMU -icount shift=0 instructions (median of {doc['samples']} seeded samples), each model "
        "generated with the kernels for its core; flash and static RAM from arm-none-eabi-size of the model and "
        "kernel objects, stack painted under QEMU, RAM adds the I/O buffers. Every build bit-exact with TFLM's "
        f"reference kernels (cgen.prove, and again for the profile build). Whole run: {doc['wall_time_s']:.0f} s.",
        f"TFLM+CMSIS-NN columns: {QUOTED_METHOD}.",
        "",
        *_summary(rows),
        "",
        "## Per op kind: instructions per MAC (share of the model's instructions)",
        "",
        "From the EQ_PROFILE build (cgen/profile.py: SysTick marks around each op, a mark's cost taken off). Ops "
        "without MACs (pools, ADD, the rest) show what they add per MAC of the whole model.",
        "",
        *_by_kind(rows),
        "",
        "Per core, the four models together (instructions of the kind over its MACs):",
        "",
        *_per_core(rows),
        "",
        "## Estimated board latency from the engine's own instructions (cgen/latency.py)",
        "",
        "Estimated, not measured: instructions x board cycles per QEMU instruction / clock. The factor per core "
        "is derived from MLPerf Tiny closed results of a CMSIS-NN stack (published ms x clock / TFLM+CMSIS-NN's "
        "quoted QEMU instructions on the same models); its error is the largest leave-one-out error on those "
        "points. It does not cover the difference between the engine's instruction mix and CMSIS-NN's. "
        "Cortex-M55 uses a Cortex-M85 board (no closed Cortex-M55 result in v0.5 to v1.2); corstone-300's "
        "500 MHz is the catalogue's clock (design-dependent). No CMSIS-NN result on a Cortex-M7 board: not estimated.",
        "",
        *lat,
        "",
        "## The estimate against MLPerf Tiny's published results",
        "",
        *_validation(),
        "",
        f"Context, other software on the same M4 board (not fitted): {ctx['stack']} published "
        + ", ".join(f"{m} {1000 / ips:.1f} ms" for m, ips in ctx["inferences_per_s"].items())
        + "; the M4 factor on TFLM+CMSIS-NN's counts predicts "
        + ", ".join(
            f"{m} {latency.TFLM_CMSIS_NN_QEMU['cortex-m4'][m] * m4.cycles_per_instruction() / 1.2e5:.1f} ms"
            for m in ctx["inferences_per_s"]
        )
        + " (2021's software, kernels not stated in its system description, ran slower than the calibrating "
        "stack: not a calibration point). Issue #22 quotes keyword spotting "
        "on NUCLEO-L4R5ZI at 72.7 ms (X-CUBE-AI 8.0) and 43.4 ms (X-CUBE-AI 10.2); sources in "
        "tests/data/mcu/mlperf_tiny_published.SOURCE.md.",
    ]
    return {**doc, "latency_estimates": records, "markdown": md}


if __name__ == "__main__":
    main()
