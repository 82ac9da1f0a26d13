"""The MCU latency estimator's calibration table: estimate vs published MLPerf Tiny v1.1 results.

    .venv/bin/python benchmarks/mcu_calibration.py            # the table (no TensorFlow needed)
    .venv/bin/python benchmarks/mcu_calibration.py --json     # the same rows as JSON
    .venv/bin/python benchmarks/mcu_calibration.py --zoo      # also re-derive the models' work from edgeq.zoo
    .venv/bin/python benchmarks/mcu_calibration.py --icount   # also try instruction counts as the work measure

Rows of the fitted stack (X-CUBE-AI 8.0 on NUCLEO-L4R5ZI and NUCLEO-H7A3ZI) show the in-sample error and
the leave-one-out error (each point predicted by a fit that did not see it); microTVM + CMSIS-NN rows are
not fitted and show how far another software stack on the same board is from the estimate. See
edgeq/targets/mcu/estimate.py for the model and docs/mcu.md for how to read it.
"""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from edgeq.targets.mcu import estimate  # noqa: E402


def zoo_models() -> dict[str, bytes]:
    """int8 conversions of the MLPerf Tiny reference models from edgeq.zoo (structure only: random weights)."""
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    import numpy as np

    from edgeq import zoo
    from edgeq.tfimport import tensorflow

    tf = tensorflow()
    models = {}
    for name in estimate.REFERENCE_WORK:
        model = zoo.build(name)
        shape = (1, *model.input_shape[1:])
        conc = tf.function(lambda t, m=model: m(t), input_signature=[tf.TensorSpec(shape, tf.float32)])
        conv = tf.lite.TFLiteConverter.from_concrete_functions([conc.get_concrete_function()], model)
        rng = np.random.default_rng(0)
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = lambda s=shape, g=rng: ([g.random(s).astype(np.float32)] for _ in range(4))
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = conv.inference_output_type = tf.int8
        models[name] = conv.convert()
    return models


def zoo_work() -> dict[str, dict]:
    """The reference models' work read from :func:`zoo_models`."""
    from edgeq.tflite import read_bytes

    return {name: estimate.work_of(read_bytes(data, origin=name)) for name, data in zoo_models().items()}


ICOUNT_CORES = ("cortex-m4", "cortex-m7")


def instruction_counts() -> dict[str, dict[str, int]]:
    """{model: {core: instructions per inference}}: edgeq's generated C for each reference model, built
    with arm-none-eabi-gcc for the core and run once under QEMU (-icount; QEMU instruction counts, not cycles)."""
    import tempfile

    import numpy as np

    from edgeq.targets.mcu.cgen import generate, toolchain

    counts: dict[str, dict[str, int]] = {}
    with tempfile.TemporaryDirectory(prefix="edgeq_icount_") as tmp:
        for name, data in zoo_models().items():
            project = generate(data, name)
            folder = Path(tmp) / name
            project.write(folder)
            x = np.random.default_rng(0).integers(-128, 128, (1, project.input_size)).astype(np.int8)
            counts[name] = {}
            for core in ICOUNT_CORES:
                built = toolchain.arm_build(folder, folder / "build" / core, core)
                ran = toolchain.qemu_run(Path(built["elf"]), core, x, project.output_size)
                counts[name][core] = int(ran["instructions"][0])
    return counts


def icount_loo(counts: dict[str, dict[str, int]]) -> dict:
    """Leave-one-out error of the alternative model ``cycles = k_core * instructions`` (one factor per core,
    the mean log ratio over the other points of that core), beside the current MAC-based model's."""
    pts = [
        (model, row["core"], row["board"], 1000.0 / ips, row["clock_hz"])
        for row in estimate.PUBLISHED
        if row["stack"] == estimate.FITTED_STACK
        for model, ips in row["inferences_per_s"].items()
    ]
    out: dict = {"rows": [], "per_core": {}}
    for model, core, board, ms, clk in pts:
        others = [
            math.log(m2 / 1000.0 * c2 / counts[mo][core]) for mo, co, _, m2, c2 in pts if co == core and mo != model
        ]
        k = math.exp(sum(others) / len(others))
        loo_ms = k * counts[model][core] / clk * 1000.0
        out["rows"].append(
            {"model": model, "board": board, "core": core, "published_ms": round(ms, 3), "loo_ms": round(loo_ms, 3),
             "loo_error_pct": round((loo_ms / ms - 1) * 100, 1), "instructions": counts[model][core]}
        )  # fmt: skip
    for core in ICOUNT_CORES:
        errs = [abs(r["loo_error_pct"]) for r in out["rows"] if r["core"] == core]
        current = estimate.calibration_error(core)
        out["per_core"][core] = {
            "icount_loo_mean_abs_pct": round(sum(errs) / len(errs), 1),
            "icount_loo_max_abs_pct": round(max(errs), 1),
            "current_loo_mean_abs_pct": current["mean_abs_error_pct"],
            "current_loo_max_abs_pct": current["max_abs_error_pct"],
        }
    return out


def render(rows: list[dict]) -> str:
    head = [
        "model",
        "task",
        "board",
        "core",
        "stack",
        "published ms",
        "estimate ms",
        "error %",
        "LOO ms",
        "LOO error %",
    ]
    body = [
        [
            r["model"],
            r["task"],
            r["board"],
            r["core"],
            r["stack"] + ("" if r["fitted"] else " (not fitted)"),
            f"{r['published_ms']:.2f}",
            f"{r['estimate_ms']:.2f}",
            f"{r['error_pct']:+.1f}",
            f"{r['loo_estimate_ms']:.2f}" if "loo_estimate_ms" in r else "-",
            f"{r['loo_error_pct']:+.1f}" if "loo_error_pct" in r else "-",
        ]
        for r in rows
    ]
    widths = [max(len(str(x)) for x in col) for col in zip(head, *body, strict=True)]
    lines = ["  ".join(str(x).ljust(w) for x, w in zip(row, widths, strict=True)).rstrip() for row in [head, *body]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    f = estimate.factors().to_dict()
    lines.append("")
    lines.append(
        "fitted: cycles per conv MAC "
        + ", ".join(f"{k} {v}" for k, v in f["cycles_per_conv_mac"].items())
        + f"; depthwise MAC x{f['relative_cost']['depthwise_mac']}, FC MAC x{f['relative_cost']['fc_mac']} "
        f"(relative to a conv MAC); other ops x{f['relative_cost']['other_op_output_element']} per output element"
    )
    for core in ("cortex-m4", "cortex-m7"):
        e = estimate.calibration_error(core)
        lines.append(f"{core}: leave-one-out |error| mean {e['mean_abs_error_pct']}%, max {e['max_abs_error_pct']}%")
    lines.append(f"source: {estimate.SOURCE}")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    rows = estimate.calibration_table()
    if "--zoo" in argv:
        derived = zoo_work()
        stored = {
            k: {kk: v[kk] for kk in ("conv", "depthwise", "fc", "elem")} for k, v in estimate.REFERENCE_WORK.items()
        }
        for name in stored:
            same = derived[name] == stored[name]
            print(
                f"{name}: work from edgeq.zoo {'matches' if same else 'DIFFERS FROM'} the stored figures {derived[name]}"
            )
        print()
    if "--icount" in argv:
        doc = icount_loo(instruction_counts())
        for r in doc["rows"]:
            print(
                f"{r['model']:<17} {r['board']:<10} {r['core']:<10} {r['instructions']:>12,} instructions  "
                f"published {r['published_ms']:8.2f} ms  LOO {r['loo_ms']:8.2f} ms  {r['loo_error_pct']:+.1f}%"
            )
        for core, e in doc["per_core"].items():
            print(
                f"{core}: cycles = k x instructions, leave-one-out |error| mean {e['icount_loo_mean_abs_pct']}%, max "
                f"{e['icount_loo_max_abs_pct']}%; the MAC model in use: mean {e['current_loo_mean_abs_pct']}%, max "
                f"{e['current_loo_max_abs_pct']}%"
            )
        print()
    if "--json" in argv:
        print(json.dumps({"rows": rows, "factors": estimate.factors().to_dict()}, indent=2))
    else:
        print(render(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
