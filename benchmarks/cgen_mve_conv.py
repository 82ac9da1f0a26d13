"""The CONV_2D share of one inference on Cortex-M55 (mps3-an547, QEMU -icount), plain kernels against the
Helium CONV_2D (runtime/eq_conv_mve.c), per zoo model.

    .venv/bin/python benchmarks/cgen_mve_conv.py
    .venv/bin/python benchmarks/cgen_mve_conv.py --models mnist_cnn

Each project is run as generated and again with its CONV_2D calls removed (every other op unchanged; their
instruction counts do not depend on the values they read): the difference is the CONV_2D ops' instructions.
Figures are measured (QEMU -icount shift=0 around one model_invoke, one seeded input); the projects as
generated are proven bit-exact by benchmarks/cgen_dsp.py --core cortex-m55. Results go to
benchmarks/results/cgen_mve_conv.json.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from cgen_walltime import _int8  # noqa: E402

MODELS = ("mnist_cnn", "ds_cnn", "resnet8", "mobilenet_v1_025")
CORE = "cortex-m55"
_CONV_CALL = re.compile(r"^(\s*)eq_conv2d(_mve)?\(.*$", re.M)


def _instructions(project, folder: Path, inputs, cut: bool) -> int:
    from edgeq.targets.mcu.cgen import toolchain

    project.write(folder)
    if cut:
        model_c = folder / "model.c"
        model_c.write_text(_CONV_CALL.sub(r"\1;", model_c.read_text()))
    build = toolchain.arm_build(folder, folder / "build", CORE)
    run = toolchain.qemu_run(Path(build["elf"]), CORE, inputs, project.output_size, timeout_s=600)
    return int(run["instructions"][0])


def _row(model: Path, work: Path) -> dict:
    from edgeq.targets.mcu import parity
    from edgeq.targets.mcu.cgen import generate
    from edgeq.tflite import read_file

    data = model.read_bytes()
    inputs = parity.make_inputs(read_file(model), 1, parity.DEFAULT_SEED)[0].reshape(1, -1)
    row: dict = {"model": model.stem.removesuffix("_int8"), "core": CORE, "basis": "measured (QEMU -icount)"}
    for label, kernels_for in (("plain", None), ("mve", CORE)):
        project = generate(data, model.name, core=kernels_for)
        total = _instructions(project, work / f"{model.stem}_{label}", inputs, cut=False)
        rest = _instructions(project, work / f"{model.stem}_{label}_noconv", inputs, cut=True)
        row[label] = {"instructions_per_inference": total, "conv_instructions": total - rest}
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="*", default=list(MODELS))
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="edgeq_mve_conv_") as tmp:
        work = Path(tmp)
        for name in args.models:
            rows.append(_row(_int8(name, work), work))
            print(json.dumps(rows[-1]), flush=True)
    out = ROOT / "benchmarks" / "results" / "cgen_mve_conv.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
