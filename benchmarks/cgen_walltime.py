"""Wall time of ``compile --target mcu --runtime c`` and its proof, per zoo model, phase by phase.

    .venv/bin/python benchmarks/cgen_walltime.py                 # 50 samples, Cortex-M4 and M55
    .venv/bin/python benchmarks/cgen_walltime.py --samples 20 --cores cortex-m4

For each model (the bundled MNIST CNN and the MLPerf Tiny zoo, int8 with int8 I/O; zoo weights are seeded
random with BatchNorm statistics set from the calibration batch, as tests/mcu/conftest.py does):

- generate: read the model, lower every op (LUT ops are tabulated by LiteRT), plan, emit the C;
- reference: LiteRT BUILTIN_REF on the samples (what everything is compared with);
- host: gcc build and run of the samples on this machine;
- per core: arm-none-eabi-gcc build and link, then the QEMU run of all samples (-icount shift=0);
- compile (end to end): ``edgeq compile --runtime c`` through the API, which adds the TFLM check for
  the comparison figures and the atomic write, with a proof on the board's core (stm32l4r5: Cortex-M4).

Every run is checked bit-exact; a mismatch stops the script. Results go to
benchmarks/results/cgen_walltime.json and .md with the machine they were measured on (CPU model, nproc,
load average): absolute seconds from another machine, or a loaded one, are not comparable.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import numpy as np  # noqa: E402

ZOO = ("mnist_cnn", "ds_cnn", "resnet8", "mobilenet_v1_025", "fc_autoencoder")
RESULTS = ROOT / "benchmarks" / "results"


def _int8(name: str, folder: Path) -> Path:
    """The model in int8 with int8 I/O (the converter settings of ``edgeq quantize --mode int8``)."""
    from edgeq.tfimport import tensorflow

    tf = tensorflow()
    import tf_keras as k

    if name == "mnist_cnn":
        from edgeq import api
        from edgeq.config import DataConfig, QuantizeConfig

        out = folder / "mnist_cnn_int8.tflite"
        calib = DataConfig(path=str(ROOT / "representative_data" / "mnist_calib.npz"))
        api.quantize(str(ROOT / "models" / "mnist_cnn.keras"), str(out), QuantizeConfig(), calib, force=True)
        return out
    from edgeq import zoo

    k.utils.set_random_seed(0)
    model = zoo.build(name)
    shape = tuple(model.input_shape[1:])
    x = np.random.default_rng(0).random((8, *shape)).astype(np.float32)
    bns = [layer for layer in model.layers if isinstance(layer, k.layers.BatchNormalization)]
    if bns:  # statistics from the batch: a random net's default ones collapse its activations
        acts = k.Model(model.inputs, [bn.input for bn in bns])(x, training=True)
        for bn, a in zip(bns, acts if isinstance(acts, list) else [acts], strict=True):
            a = a.numpy()
            gamma, beta, _, _ = bn.get_weights()
            bn.set_weights([gamma, beta, a.mean(axis=tuple(range(a.ndim - 1))), a.var(axis=tuple(range(a.ndim - 1)))])
    spec = tf.TensorSpec((1, *shape), tf.float32)
    conc = tf.function(lambda t: model(t), input_signature=[spec]).get_concrete_function()
    conv = tf.lite.TFLiteConverter.from_concrete_functions([conc], model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: ([x[i : i + 1]] for i in range(len(x)))
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = conv.inference_output_type = tf.int8
    out = folder / f"{name}_int8.tflite"
    out.write_bytes(conv.convert())
    return out


def _timed(fn):
    t0 = time.perf_counter()
    value = fn()
    return value, round(time.perf_counter() - t0, 3)


def measure(model: Path, samples: int, cores: tuple[str, ...], work: Path) -> dict:
    from edgeq.targets import registry
    from edgeq.targets.mcu import parity
    from edgeq.targets.mcu.cgen import generate, reference_outputs, toolchain
    from edgeq.tflite import read_file

    data = model.read_bytes()
    project, t_gen = _timed(lambda: generate(data, model.name))
    folder = work / model.stem
    project.write(folder)
    inputs = parity.make_inputs(read_file(model), samples, parity.DEFAULT_SEED)[0].reshape(samples, -1)
    want, t_ref = _timed(lambda: reference_outputs(data, inputs))
    exe, t_host_build = _timed(lambda: toolchain.host_build(folder, folder / "build" / "host"))
    got, t_host_run = _timed(lambda: toolchain.host_run(exe, inputs, project.output_size))
    if not np.array_equal(got, want):
        raise SystemExit(f"{model.name}: host build differs from BUILTIN_REF")
    row: dict = {
        "model": model.stem.removesuffix("_int8"),
        "macs": project.macs,
        "samples": samples,
        "generate_s": t_gen,
        "reference_s": t_ref,
        "host_build_s": t_host_build,
        "host_run_s": t_host_run,
        "cores": {},
    }
    for core in cores:
        built, t_build = _timed(lambda c=core: toolchain.arm_build(folder, folder / "build" / c, c))
        ran, t_run = _timed(lambda b=built, c=core: toolchain.qemu_run(Path(b["elf"]), c, inputs, project.output_size))
        exact = int(np.all(ran["outputs"] == want, axis=1).sum())
        if exact != samples:
            raise SystemExit(f"{model.name}: {core} under QEMU {exact}/{samples} bit-exact")
        row["cores"][core] = {
            "arm_build_s": t_build,
            "qemu_run_s": t_run,
            "bit_exact": exact,
            "instructions_per_inference": int(np.median(ran["instructions"])),
        }
    mcu = registry.get("mcu")
    opts = {"board": "stm32l4r5", "proof_samples": samples, "runtime": "c", "overwrite": True}
    result, t_compile = _timed(lambda: mcu.compile([str(model)], str(work / "compiled"), opts))
    row["compile_end_to_end_s"] = t_compile
    row["compile_proof_s"] = result.details["proof"]["wall_time_s"]
    return row


def machine() -> dict:
    from edgeq.bench.timing import host_environment

    env = host_environment()
    env["nproc"] = int(subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip() or 0)
    env["load_average"] = [round(x, 2) for x in os.getloadavg()]
    try:
        env["commit"] = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        env["commit"] = None
    env["date"] = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return env


def render(doc: dict) -> str:
    env = doc["machine"]
    cores = doc["cores"]
    head = ["model", "MACs", "generate", "reference", "host build+run"]
    head += [f"{c} build / QEMU run" for c in cores] + ["compile --runtime c (M4 proof)"]
    rows = []
    for r in doc["rows"]:
        row = [r["model"], f"{r['macs'] / 1e6:.2f} M", f"{r['generate_s']:.2f} s", f"{r['reference_s']:.2f} s"]
        row.append(f"{r['host_build_s'] + r['host_run_s']:.2f} s")
        row += [f"{r['cores'][c]['arm_build_s']:.2f} s / {r['cores'][c]['qemu_run_s']:.2f} s" for c in cores]
        row.append(f"{r['compile_end_to_end_s']:.1f} s (proof {r['compile_proof_s']:.1f} s)")
        rows.append(row)
    lines = [
        f"Wall time of the generated C engine's compile and proof, {doc['samples']} samples per model "
        "(every run bit-exact with LiteRT BUILTIN_REF).",
        f"Machine: {env['cpu']}, nproc {env['nproc']}, load average {env['load_average']} at start, "
        f"{env['load_average_end']} at end; commit {env['commit']}, {env['date']}.",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
        *["| " + " | ".join(r) + " |" for r in rows],
    ]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=50)
    ap.add_argument("--cores", default="cortex-m4,cortex-m55")
    ap.add_argument("--models", default=",".join(ZOO))
    args = ap.parse_args(argv)
    cores = tuple(c for c in args.cores.split(",") if c)
    env = machine()
    rows = []
    with tempfile.TemporaryDirectory(prefix="edgeq_cgen_walltime_") as tmp:
        work = Path(tmp)
        for name in args.models.split(","):
            model = _int8(name, work)
            row = measure(model, args.samples, cores, work)
            print(json.dumps(row), flush=True)
            rows.append(row)
    env["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    doc = {"samples": args.samples, "cores": list(cores), "machine": env, "rows": rows}
    RESULTS.mkdir(parents=True, exist_ok=True)
    from edgeq.artifacts import write_bytes_atomic

    text = render(doc)
    write_bytes_atomic(RESULTS / "cgen_walltime.json", (json.dumps(doc, indent=2) + "\n").encode())
    write_bytes_atomic(RESULTS / "cgen_walltime.md", (text + "\n").encode())
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
