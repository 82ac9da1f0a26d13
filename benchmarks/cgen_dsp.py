"""Instructions per inference, flash and RAM of the generated C on one Cortex-M core under QEMU, with the
plain C kernels and with the kernels generated for that core (the DSP CONV_2D and DEPTHWISE_CONV_2D on M4,
M7, M33), per zoo model.

    .venv/bin/python benchmarks/cgen_dsp.py                       # Cortex-M4, 3 samples, the four zoo models
    .venv/bin/python benchmarks/cgen_dsp.py --core cortex-m7 --models mnist_cnn

Models are built as benchmarks/cgen_walltime.py builds them (int8, int8 I/O, seeded weights). Every run is
compared bit for bit with LiteRT's reference kernels (host build and QEMU); a mismatch stops the script.
Figures are measured: QEMU -icount shift=0 instructions around one model_invoke (median over samples),
flash and static RAM from arm-none-eabi-size of model.o and the kernels' objects, stack measured under QEMU.
Results go to benchmarks/results/cgen_dsp_<core>.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from cgen_walltime import _int8  # noqa: E402

MODELS = ("mnist_cnn", "ds_cnn", "resnet8", "mobilenet_v1_025")


def _run(model: Path, core: str, kernels_for: str | None, samples: int, work: Path) -> dict:
    from edgeq.targets.mcu import parity
    from edgeq.targets.mcu.cgen import generate, prove
    from edgeq.tflite import read_file

    data = model.read_bytes()
    project = generate(data, model.name, core=kernels_for)
    folder = work / f"{model.stem}_{kernels_for or 'plain'}"
    project.write(folder)
    inputs = parity.make_inputs(read_file(model), samples, parity.DEFAULT_SEED)[0].reshape(samples, -1)
    proof = prove(project, data, inputs, folder, cores=(core,))
    run = proof["qemu"][core]
    if run["bit_exact"] != samples or proof["host"]["bit_exact"] != samples:
        raise SystemExit(f"{model.name} ({kernels_for or 'plain'}): differs from BUILTIN_REF")
    keys = ("instructions_per_inference", "flash_bytes", "static_ram_bytes", "stack_bytes", "ram_bytes")
    return {"arena_bytes": project.arena_bytes, "io_bytes": project.io_bytes, **{k: run[k] for k in keys}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--core", default="cortex-m4")
    ap.add_argument("--samples", type=int, default=3)
    ap.add_argument("--models", nargs="*", default=list(MODELS))
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="edgeq_dsp_") as tmp:
        work = Path(tmp)
        for name in args.models:
            model = _int8(name, work)
            row = {"model": name, "core": args.core, "samples": args.samples}
            row["plain"] = _run(model, args.core, None, args.samples, work)
            row["for_core"] = _run(model, args.core, args.core, args.samples, work)
            rows.append(row)
            print(json.dumps(row), flush=True)
    out = ROOT / "benchmarks" / "results" / f"cgen_dsp_{args.core}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
