"""edgeq performance table: measured side by side in one run, reported as ratios.

    .venv/bin/python benchmarks/run.py [--repeats N] [--stages]     (or: make bench)
    .venv/bin/python benchmarks/run.py --only overhead              (one section, merged in)
    .venv/bin/python benchmarks/run.py --only qat
    .venv/bin/python benchmarks/run.py --only planner
    .venv/bin/python benchmarks/run.py --only planner_resume   (only alone: the candidate cache, ~10 min)

Prints a markdown report and writes benchmarks/results/latest.json and latest.md. With
``--only SECTION`` only that section is measured; it replaces its part of latest.json (with its
own environment) and the other sections' latest results are kept.
Numbers from different machines or runs are not comparable; the ratios within one run are
the result. See benchmarks/README.md for what each row measures.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib.metadata
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

os.environ["TF_USE_LEGACY_KERAS"] = "1"  # before anything imports TensorFlow, here or in a child
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # children inherit it: both sides log the same

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = ROOT / "benchmarks"
RESULTS_DIR = BENCH_DIR / "results"
MODEL = ROOT / "models" / "mnist_cnn.keras"
CALIB = ROOT / "representative_data" / "mnist_calib.npz"
EVAL = ROOT / "representative_data" / "mnist_eval.npz"
EDGEQ = Path(sys.executable).parent / "edgeq"
BARE = BENCH_DIR / "bare_converter.py"

sys.path.insert(0, str(BENCH_DIR))  # bare_converter, for the in-process comparison; qat, planner, build_cache

import build_cache  # noqa: E402
import mcu_section  # noqa: E402
import planner  # noqa: E402  (none of these imports TensorFlow at module level)
import planner_resume  # noqa: E402
import qat  # noqa: E402
import quantizer_recipe  # noqa: E402

# Both sides make the same conversion (a tf.function with a static batch-1 input signature, through
# from_concrete_functions, the variables tracked but not the Keras model) and their outputs are
# checked byte-identical, so the ratio is edgeq's own work. What `edgeq quantize --mode int8` does
# that the bare converter script does not (the bare script is load, convert, write; nothing else):
#   - validates the calibration data (shape, NaN/Inf, value range against the model's);
#   - reads the flatbuffer back and verifies it (I/O dtypes, no float ops left);
#   - provenance: sha256 of the model (once, on load) and of the data, tool versions, calibration
#     indices, converter log, written as a .edgeq.json sidecar;
#   - writes both files atomically (temp file, fsync, rename).
# It no longer converts a second time to float to report size_ratio unless asked (--size-ratio,
# api.quantize(size_ratio=True)); that conversion was the largest part of the former 1.93x.
# The CLI additionally pays for click and rendering, which is negligible.

MOBILENET_CALIB_SAMPLES = 20


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


@contextlib.contextmanager
def native_stderr_silenced() -> Iterator[None]:
    """Send file descriptor 2 to /dev/null: TensorFlow's C++ start-up and converter chatter.

    Used around both sides alike, so it costs each the same (a dup2).
    """
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


# ---------------------------------------------------------------- environment


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def version(pkg: str) -> str | None:
    try:
        return importlib.metadata.version(pkg)
    except importlib.metadata.PackageNotFoundError:
        return None


def git_commit() -> str | None:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("+dirty" if dirty else "")


def environment() -> dict:
    return {
        "date_utc": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "cpu": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "machine": platform.machine(),
        "system": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "tensorflow": version("tensorflow") or version("tensorflow-cpu"),
        "tf_keras": version("tf-keras"),
        "ai_edge_litert": version("ai-edge-litert"),
        "edgeq": version("edgeq"),
        "git_commit": git_commit(),
        "load_average_at_start": [round(v, 2) for v in os.getloadavg()],
    }


# ---------------------------------------------------------------- 1. quantize overhead


def pair_ratios(ta: list[float], tb: list[float]) -> dict:
    """edgeq/bare per interleaved pair: the spread of the ratio, not only of each side."""
    r = [a / b for a, b in zip(ta, tb, strict=True)]
    return {
        "ratio_median": round(statistics.median(ta) / statistics.median(tb), 3),
        "ratio_of_minimums": round(min(ta) / min(tb), 3),
        "pair_ratio_median": round(statistics.median(r), 3),
        "pair_ratio_min": round(min(r), 3),
        "pair_ratio_max": round(max(r), 3),
        "pair_ratios": [round(x, 3) for x in r],
    }


def summary_s(samples: list[float]) -> dict:
    return {
        "median_s": round(statistics.median(samples), 3),
        "min_s": round(min(samples), 3),
        "max_s": round(max(samples), 3),
        "samples_s": [round(s, 3) for s in samples],
    }


def run_timed(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"benchmark command failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr[-3000:]}")
    return elapsed


def interleaved(a, b, repeats: int) -> tuple[list[float], list[float]]:
    """One untimed warm-up of each, then A,B,A,B,... so drift hits both sides alike."""
    a()
    b()
    ta, tb = [], []
    for i in range(repeats):
        ta.append(a())
        tb.append(b())
        log(f"  {i + 1}/{repeats}: edgeq {ta[-1]:.2f} s, bare {tb[-1]:.2f} s")
    return ta, tb


def overhead_subprocess(tmp: Path, repeats: int) -> dict:
    edgeq_out, bare_out = tmp / "cli_edgeq.tflite", tmp / "cli_bare.tflite"
    edgeq_cmd = [
        str(EDGEQ),
        "quantize",
        str(MODEL),
        "--mode",
        "int8",
        "--data",
        str(CALIB),
        "-o",
        str(edgeq_out),
        "--force",
    ]
    bare_cmd = [sys.executable, str(BARE), str(MODEL), str(CALIB), str(bare_out)]
    ta, tb = interleaved(lambda: run_timed(edgeq_cmd), lambda: run_timed(bare_cmd), repeats)
    return {
        "edgeq": {"command": " ".join(edgeq_cmd), **summary_s(ta), "size_bytes": edgeq_out.stat().st_size},
        "bare": {"command": " ".join(bare_cmd), **summary_s(tb), "size_bytes": bare_out.stat().st_size},
        **pair_ratios(ta, tb),
        "outputs_identical": same_bytes(edgeq_out, bare_out),
        "repeats": repeats,
    }


def same_bytes(a: Path, b: Path) -> bool:
    """Both sides must have made the same conversion, or the ratio compares different work."""
    if a.read_bytes() != b.read_bytes():
        raise SystemExit(f"edgeq and the bare converter wrote different models ({a}, {b}): the comparison is void")
    return True


def overhead_in_process(tmp: Path, repeats: int) -> dict:
    import bare_converter

    from edgeq import api
    from edgeq.config import DataConfig, QuantizeConfig

    edgeq_out, bare_out = tmp / "lib_edgeq.tflite", tmp / "lib_bare.tflite"

    def edgeq_once() -> float:
        with native_stderr_silenced():
            t0 = time.perf_counter()
            api.quantize(str(MODEL), str(edgeq_out), QuantizeConfig(), DataConfig(path=str(CALIB)), force=True)
            return time.perf_counter() - t0

    def bare_once() -> float:
        with native_stderr_silenced():
            t0 = time.perf_counter()
            bare_converter.convert(str(MODEL), str(CALIB), str(bare_out))
            return time.perf_counter() - t0

    ta, tb = interleaved(edgeq_once, bare_once, repeats)
    return {
        "edgeq": summary_s(ta),
        "bare": summary_s(tb),
        **pair_ratios(ta, tb),
        "outputs_identical": same_bytes(edgeq_out, bare_out),
        "repeats": repeats,
    }


def edgeq_stages(tmp: Path, repeats: int) -> dict:
    """Where api.quantize's time goes, stage by stage (uses edgeq internals; --stages only)."""
    from edgeq import api, tflite
    from edgeq.artifacts import provenance, write_artifact
    from edgeq.config import DataConfig, Mode, QuantizeConfig
    from edgeq.data import load as load_data
    from edgeq.data import validate
    from edgeq.quantize import ptq, verify

    cfg = QuantizeConfig()
    runs: list[dict[str, float]] = []
    for _ in range(repeats):
        t: dict[str, float] = {}
        clock = time.perf_counter
        t0 = clock()
        model = api.load_model(str(MODEL))
        t["load model (incl. sha256)"] = clock() - t0
        t0 = clock()
        shape = ptq.static_input_shape(model, cfg.batch)
        calib = load_data(DataConfig(path=str(CALIB)), shape[1:])
        validate(calib, shape[1:], api.expected_input_range(model), "calibration data")
        t["load + validate data"] = clock() - t0
        t0 = clock()
        data, _ = ptq.convert(model, cfg, calib)
        t["int8 conversion"] = clock() - t0
        t0 = clock()
        verify.verify(tflite.read_bytes(data, origin="converted model"), cfg)
        t["read back + verify"] = clock() - t0
        t0 = clock()
        ptq.convert(model, QuantizeConfig(mode=Mode.FLOAT, batch=cfg.batch), None)
        t["float reference conversion (only with --size-ratio; not in the timed runs)"] = clock() - t0
        t0 = clock()
        doc = provenance("quantize", cfg.to_dict(), {"model": str(MODEL)}, calibration=calib.provenance(0))
        write_artifact(tmp / "stages.tflite", data, doc)
        t["provenance + atomic writes"] = clock() - t0
        runs.append(t)
    return {name: round(statistics.median(r[name] for r in runs), 3) for name in runs[0]}


# ---------------------------------------------------------------- 2. latency and size, 3. accuracy


def mobilenet_inputs(tmp: Path) -> tuple[Path, Path]:
    """MobileNetV2 with seeded random weights and seeded random-normal calibration data."""
    import numpy as np
    import tf_keras

    tf_keras.utils.set_random_seed(0)
    model = tf_keras.applications.MobileNetV2(weights=None, input_shape=(224, 224, 3), alpha=1.0)
    model_path = tmp / "mobilenet_v2.keras"
    model.save(model_path)
    x = np.random.default_rng(0).standard_normal((MOBILENET_CALIB_SAMPLES, 224, 224, 3)).astype(np.float32)
    calib_path = tmp / "mobilenet_v2_calib.npz"
    np.savez(calib_path, x=x)
    return model_path, calib_path


def latency_and_size(
    name: str, model_path: Path, calib_path: Path, tmp: Path, num_runs: int, warmup_runs: int, note: str
) -> dict:
    from edgeq import api
    from edgeq.config import BenchConfig, DataConfig, Mode, QuantizeConfig

    variants = {}
    for label, cfg in (("float", QuantizeConfig(mode=Mode.FLOAT)), ("int8", QuantizeConfig(mode=Mode.INT8))):
        out = tmp / f"{name}_{label}.tflite"
        t0 = time.perf_counter()
        q = api.quantize(str(model_path), str(out), cfg, DataConfig(path=str(calib_path)), force=True)
        convert_s = time.perf_counter() - t0
        b = api.bench(q.output, "cpu", BenchConfig(num_runs=num_runs, warmup_runs=warmup_runs, num_threads=1))
        s = b.stats
        variants[label] = {
            "path": q.output,
            "io": [t["dtype"] for t in q.inputs],
            "size_bytes": q.size_bytes,
            "quantize_s": round(convert_s, 3),
            "num_threads": b.num_threads,
            "num_runs": s.num_runs,
            "warmup_runs": s.warmup_runs,
            "first_invoke_ms": s.first_invoke_ms,
            "latency_ms": {"p50": s.p50, "p90": s.p90, "p99": s.p99, "mean": s.mean, "min": s.min, "max": s.max},
        }
        log(f"  {name} {label}: {q.size_bytes:,} bytes, p50 {s.p50:.3f} ms, p99 {s.p99:.3f} ms")
    f, i = variants["float"], variants["int8"]
    return {
        "model": name,
        "note": note,
        "variants": variants,
        "size_ratio_int8_over_float": round(i["size_bytes"] / f["size_bytes"], 3),
        "p50_ratio_float_over_int8": round(f["latency_ms"]["p50"] / i["latency_ms"]["p50"], 3),
        "p99_ratio_float_over_int8": round(f["latency_ms"]["p99"] / i["latency_ms"]["p99"], 3),
    }


def accuracy(int8_path: str) -> dict:
    from edgeq import api
    from edgeq.config import DataConfig

    r = api.evaluate(int8_path, str(MODEL), DataConfig(path=str(EVAL)))
    return {
        "data": str(EVAL.relative_to(ROOT)),
        "num_samples": r["num_samples"],
        "float_top1": r["reference"]["accuracy"],
        "int8_top1": r["quantized"]["accuracy"],
        "agreement": r["agreement"],
        "sqnr_db": r["sqnr_db"],
    }


# ---------------------------------------------------------------- report


def env_line(env: dict) -> str:
    return (
        f"{env['date_utc']} · {env['cpu']} · {env['logical_cpus']} logical CPUs · Python {env['python']} · "
        f"TensorFlow {env['tensorflow']} · ai-edge-litert {env['ai_edge_litert']} · commit {env['git_commit']} · "
        f"load average {env['load_average_at_start'][0]} at start, {env['load_average_at_end'][0]} at end"
    )


def render_overhead(ov: dict) -> list[str]:
    lines = [
        "### Quantize overhead: bundled MNIST CNN to int8 (int8 I/O), edgeq vs the bare TFLite converter",
        "",
        *measured_separately(ov),
        "| measurement | edgeq median s | edgeq min s | bare median s | bare min s | edgeq/bare (medians) | "
        "edgeq/bare per pair: median (min to max) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for key, label in (
        ("subprocess", "CLI subprocess, incl. Python + TF import"),
        ("in_process", "library in-process, after warm-up"),
    ):
        r = ov[key]
        lines.append(
            f"| {label} ({r['repeats']} interleaved runs) | {r['edgeq']['median_s']:.2f} | {r['edgeq']['min_s']:.2f} | "
            f"{r['bare']['median_s']:.2f} | {r['bare']['min_s']:.2f} | **{r['ratio_median']:.2f}x** | "
            + (
                f"{r['pair_ratio_median']:.2f}x ({r['pair_ratio_min']:.2f}x to {r['pair_ratio_max']:.2f}x) |"
                if "pair_ratio_median" in r
                else "|"
            )
        )
    identical = all(ov[k].get("outputs_identical") for k in ("subprocess", "in_process"))
    lines += [
        "",
        "Both sides make the same conversion (static batch-1 tf.function through from_concrete_functions)"
        + ("; their .tflite outputs were byte-identical. " if identical else ". ")
        + "edgeq also validates the data, reads back and verifies the model, hashes the model and data once each, "
        "and writes a provenance sidecar atomically; the bare script only converts and writes. The float "
        "conversion for the size ratio is made only when asked for (--size-ratio).",
    ]
    if "stages" in ov:
        lines += ["", "| edgeq in-process stage | median s |", "|---|---:|"]
        lines += [f"| {k} | {v:.3f} |" for k, v in ov["stages"].items()]
    return lines


def render_latency(lat: list[dict]) -> list[str]:
    threads = {v["num_threads"] for r in lat for v in r["variants"].values()}
    lines = [
        f"### Host CPU latency and size (LiteRT interpreter, {', '.join(map(str, sorted(threads)))} thread, warm-up excluded)",
        "",
        "| model | variant | size_bytes | p50 ms | p99 ms | first invoke ms | runs |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in lat:
        for label, v in r["variants"].items():
            lines.append(
                f"| {r['model']} | {label} ({'/'.join(v['io'])} I/O) | {v['size_bytes']:,} | {v['latency_ms']['p50']:.3f} | "
                f"{v['latency_ms']['p99']:.3f} | {v['first_invoke_ms']:.2f} | {v['num_runs']} (+{v['warmup_runs']}) |"
            )
    lines += ["", "| model | size int8/float | p50 float/int8 | p99 float/int8 | note |", "|---|---:|---:|---:|---|"]
    for r in lat:
        lines.append(
            f"| {r['model']} | {r['size_ratio_int8_over_float']:.3f} | {r['p50_ratio_float_over_int8']:.2f}x | "
            f"{r['p99_ratio_float_over_int8']:.2f}x | {r['note']} |"
        )
    return lines


def render_accuracy(acc: dict) -> list[str]:
    return [
        f"### Accuracy: bundled MNIST CNN on {acc['data']} ({acc['num_samples']} samples)",
        "",
        "| float top-1 | int8 top-1 | drop (points) | agreement | SQNR dB |",
        "|---:|---:|---:|---:|---:|",
        f"| {acc['float_top1']:.4f} | {acc['int8_top1']:.4f} | {100 * (acc['float_top1'] - acc['int8_top1']):.2f} | "
        f"{acc['agreement']:.4f} | {acc['sqnr_db']:.2f} |",
    ]


def measured_separately(section: dict) -> list[str]:
    """The environment line of a section measured alone (--only), not in the run the header describes."""
    if "environment" not in section:
        return []
    return [f"Measured separately in {section['run_s']:.0f} s: {env_line(section['environment'])}", ""]


def render_qat(q: dict) -> list[str]:
    a, c, b = q["edgeq"], q["edgeq_train"], q["tfmot"]
    n = len(a["epoch_ms"]["samples_ms"])
    saves = ", ".join(f"{k} in {v} epochs" for k, v in c["h5_saves_per_epoch"].items())

    def row(label: str, side: dict, bold: bool = False) -> str:
        w, u, f = side["epoch_ms"], side["epoch_cpu_ms"], side["first_epoch_ms"]
        ratio = f"**{side['ratio_median']:.2f}x**" if bold else f"{side['ratio_median']:.2f}x"
        return (
            f"| {label} | {w['median_ms']:.0f} | {w['min_ms']:.0f} | {u['median_ms']:.0f} | {ratio} | "
            f"{side['ratio_min']:.2f}x | {side['ratio_cpu_median']:.2f}x | {f['median_ms']:.0f} | "
            f"{side['ratio_first_epoch']:.2f}x |"
        )

    no_ckpt = c["epoch_without_checkpoint_ms"]
    copies = (
        f"{a['best_weights_copies']}, {a['best_weights_copy_ms']['median_ms']:.1f} ms each (median)"
        if a["best_weights_copy_ms"]
        else "in no epoch"
    )
    links = f"{c['best_links']}, {c['best_link_ms']['median_ms']:.1f} ms" if c["best_link_ms"] else "in no epoch"
    lines = [
        f"### QAT time per epoch: {q['model']}, edgeq.train.fit vs TF-MOT written directly",
        "",
        *measured_separately(q),
        f"{q['num_train_samples']} training + {q['num_val_samples']} validation samples, batch {q['batch_size']} "
        f"({q['steps_per_epoch']} steps), Adam {q['learning_rate']:g} {q['lr_schedule']}; {q['repeats']} runs per "
        f"side of {q['epochs']} epochs, in rotating order (all 6 orders of the 3 sides over 6 runs), after one "
        f"1-epoch warm-up each; epoch 1 (tracing) apart, the other {n} epochs per side pooled.",
        "",
        "| per epoch, epochs 2+ | wall median ms | wall min ms | CPU median ms | ÷ tf-mot wall (median) | "
        "÷ tf-mot wall (min) | ÷ tf-mot CPU | epoch 1 median ms | epoch 1 ÷ tf-mot |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        row("edgeq quantize --qat: fit(checkpoint_dir=None)", a, bold=True),
        row("edgeq train: fit(checkpoint folder)", c),
        f"| edgeq train minus its checkpoint writes | {no_ckpt['median_ms']:.0f} | {no_ckpt['min_ms']:.0f} | | "
        f"{c['ratio_median_without_checkpoint']:.2f}x | | | | |",
        f"| tf-mot, model.fit written directly | {b['epoch_ms']['median_ms']:.0f} | {b['epoch_ms']['min_ms']:.0f} | "
        f"{b['epoch_cpu_ms']['median_ms']:.0f} | 1 | 1 | 1 | {b['first_epoch_ms']['median_ms']:.0f} | 1 |",
        "",
        f"quantize --qat writes no checkpoint ({a['checkpoint_writes']} writes counted) and copies the best "
        f"weights in memory: {copies}. edgeq train's checkpoint writes take {c['checkpoint_ms']['median_ms']:.0f} ms "
        f"per epoch (median), **{100 * c['checkpoint_share_of_epoch']:.1f}%** of its epoch "
        f"({c['ratio_median_over_edgeq']:.2f}x the epoch of quantize --qat): a full-model HDF5 save of last.h5, "
        f"{c['h5_save_ms']['median_ms']:.0f} ms (saves per epoch: {saves}), best.h5 hard-linked to it when val_loss "
        f"improves ({links}), and state.json ({c['state_json_ms']['median_ms']:.1f} ms, fsynced). "
        f"Same QAT model on all sides ({a['num_params']:,}, {c['num_params']:,} and {b['num_params']:,} parameters); "
        f"final val accuracy edgeq {', '.join(map(str, a['final_val_accuracy']))}; edgeq train "
        f"{', '.join(map(str, c['final_val_accuracy']))}; tf-mot {', '.join(map(str, b['final_val_accuracy']))}.",
    ]
    return lines


def render_planner(p: dict) -> list[str]:
    c = p["cpu"]
    lines = [
        f"### Accuracy-budget planner: quantization-hostile CNN, budget at most {p['budget']['max_drop']:g} point "
        "of top-1 drop",
        "",
        *measured_separately(p),
        f"{p['model']} (built in {p['model_build_s']:.0f} s, untimed): float top-1 {p['float_top1']:.4f} on "
        f"{p['eval_data']}; calibration {p['calibration_data']}. The planner (`edgeq.api.plan`) against one plain "
        f"int8 conversion of the same model (`edgeq.api.quantize`, int8 I/O), {c['repeats']} interleaved runs each "
        "after one warm-up.",
        "",
        "| measurement | planner median s | planner min s | one PTQ median s | one PTQ min s | planner/PTQ (median) |",
        "|---|---:|---:|---:|---:|---:|",
        f"| target cpu ({c['repeats']} interleaved runs) | {c['planner']['median_s']:.2f} | {c['planner']['min_s']:.2f} | "
        f"{c['ptq']['median_s']:.2f} | {c['ptq']['min_s']:.2f} | **{c['ratio_median']:.2f}x** "
        f"(of the minimums {c['ratio_min']:.2f}x, CPU time {c['ratio_cpu_median']:.2f}x) |",
    ]
    coral = p.get("coral") or {"skipped": "not in this result"}
    if "skipped" not in coral:
        lines.append(
            f"| target coral, QAT allowed ({coral['train']['epochs']} epochs on {coral['train_data']}), "
            f"{coral['runs']} run | {coral['wall_s']:.2f} | | {c['ptq']['median_s']:.2f} | {c['ptq']['min_s']:.2f} | "
            f"{coral['ratio_to_ptq_median']:.2f}x |"
        )
    lines += [
        "",
        "| target | step | top-1 | drop (points) | SQNR dB | float ops / ops | ops off accelerator | size_bytes | "
        "meets | build s | evaluate s |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|---:|---:|",
    ]
    runs = [("cpu", c)] + ([("coral", coral)] if "skipped" not in coral else [])
    for name, r in runs:
        for st in r["steps"]:
            if st["skipped"]:
                lines.append(f"| {name} | {st['name']} | | | | | | | skipped: {st['skipped']} | | |")
                continue
            meets = "yes" if st["meets"] else "no: " + "; ".join(st["misses"])
            lines.append(
                f"| {name} | {st['name']} | {st['accuracy']:.4f} | {st['drop_points']:.2f} | {st['sqnr_db']:.2f} | "
                f"{st['num_float_ops']} / {st['num_ops']} | {st['ops_off_accelerator']} | {st['size_bytes']:,} | "
                f"{meets} | {st['build_s']:.2f} | {st['evaluate_s']:.2f} |"
            )
    lines.append("")
    for name, r in runs:
        floats = sorted({t.split(";")[0] for st in r["steps"] for t in st.get("denylist", [])})
        lines.append(
            f"{name}: "
            + (f"chose **{r['chosen']}**" if r["met_budget"] else "**no candidate met the budget**")
            + f" ({r['stopped_because']}); set-up {r['setup_s']:.2f} s (model, data, "
            f"float reference on the eval set), final verified write {r['write_s']:.2f} s"
            + (f"; tensors left in float: {', '.join(floats)}" if floats else "")
            + (
                ""
                if r.get("steps_identical_across_runs", True)
                else "; **the steps differed between runs** (table: the last run)"
            )
            + "."
        )
    if c["steps_identical_across_runs"]:
        lines.append(f"cpu steps identical in all {c['repeats']} runs; step times are medians over them.")
    if "skipped" in coral:
        lines.append(f"coral: not measured: {coral['skipped']}")
    lines += [
        "",
        "build s: from the previous step's end (the first: from the end of the set-up) to this candidate's "
        "evaluation, i.e. converting it (for QAT: fine-tuning, then converting). evaluate s: running it on "
        "the eval set and comparing with the float outputs.",
    ]
    return lines


SECTIONS = {  # json key -> renderer, in report order
    "quantize_overhead": render_overhead,
    "latency_and_size": render_latency,
    "accuracy": render_accuracy,
    "qat_epoch_time": render_qat,
    "planner": render_planner,
    "build_cache": lambda section: build_cache.render(section) + measured_separately(section),
    "mcu": lambda section: mcu_section.render(section) + measured_separately(section),
    "quantizer_recipe": lambda section: quantizer_recipe.render(section) + measured_separately(section),
    "planner_resume": lambda section: planner_resume.render(section) + measured_separately(section),
}


def render(doc: dict) -> str:
    lines = [
        "## edgeq benchmarks",
        "",
        env_line(doc["environment"]),
        "",
        "Ratios measured side by side in this one run; absolute times depend on the machine.",
    ]
    for key, section in SECTIONS.items():
        if key in doc:
            lines += ["", *section(doc[key])]
    lines += ["", f"Total run time {doc['total_run_s']:.0f} s."]
    return "\n".join(lines) + "\n"


def write_text_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--repeats", type=int, default=5, help="interleaved runs per side for the quantize overhead (default 5)"
    )
    p.add_argument("--mnist-runs", type=int, default=1000, help="timed invokes per MNIST model (default 1000)")
    p.add_argument("--mobilenet-runs", type=int, default=300, help="timed invokes per MobileNetV2 model (default 300)")
    p.add_argument("--stages", action="store_true", help="also time edgeq's quantize stages in-process")
    p.add_argument("--qat-epochs", type=int, default=6, help="epochs per QAT run, the first reported apart (default 6)")
    p.add_argument("--qat-repeats", type=int, default=6, help="interleaved QAT runs per side (default 6)")
    p.add_argument("--planner-repeats", type=int, default=3, help="interleaved planner and PTQ runs on cpu (default 3)")
    p.add_argument(
        "--only",
        choices=sorted(SECTION_KEYS),
        help="measure only this section and merge it into the existing latest.json/latest.md "
        "(the other sections run together: accuracy reuses the latency section's int8 model)",
    )
    p.add_argument("--out", type=Path, default=RESULTS_DIR, help="folder for latest.json and latest.md")
    args = p.parse_args(argv)
    if min(args.repeats, args.qat_repeats, args.planner_repeats) < 1:
        p.error("--repeats, --qat-repeats and --planner-repeats must be at least 1")
    if args.qat_epochs < 2:
        p.error("--qat-epochs must be at least 2 (epoch 1 is reported apart)")

    start = time.perf_counter()
    # The converter warns that int8 inputs have no statistics (they come from the calibration).
    warnings.filterwarnings("ignore", message="Statistics for quantized inputs were expected")
    doc: dict = {"environment": environment()}
    with tempfile.TemporaryDirectory(prefix="edgeq-bench-") as tmp_name:
        tmp = Path(tmp_name)
        if args.only is None:
            measure_all_but_qat(doc, tmp, args)
        if args.only == "overhead":
            measure_overhead(doc, tmp, args)
        if args.only in (None, "qat"):
            log(
                f"{'' if args.only else '5/6 '}QAT time per epoch, edgeq (quantize --qat; train) vs TF-MOT "
                f"({args.qat_repeats} interleaved runs of {args.qat_epochs} epochs + one 1-epoch warm-up each)"
            )
            section_start = time.perf_counter()
            doc["qat_epoch_time"] = qat.qat_epoch_time(
                ROOT, tmp, args.qat_epochs, args.qat_repeats, log, quiet=native_stderr_silenced
            )
            doc["qat_epoch_time"]["run_s"] = round(time.perf_counter() - section_start, 1)
        if args.only in (None, "planner"):
            log(
                f"{'' if args.only else '6/6 '}accuracy-budget planner on the hostile model vs one PTQ conversion "
                f"({args.planner_repeats} interleaved runs + one warm-up each; coral once)"
            )
            section_start = time.perf_counter()
            doc["planner"] = planner.planner_time(ROOT, tmp, args.planner_repeats, log, quiet=native_stderr_silenced)
            doc["planner"]["run_s"] = round(time.perf_counter() - section_start, 1)

        if args.only in (None, "build"):
            log("build: cold, cached and changed runs of edgeq build --target cpu")
            section_start = time.perf_counter()
            doc["build_cache"] = build_cache.build_time(ROOT, tmp, log)
            doc["build_cache"]["run_s"] = round(time.perf_counter() - section_start, 1)

        if args.only in (None, "mcu"):
            log("mcu: TFLM arena and flash per board, Vela estimates")
            section_start = time.perf_counter()
            with native_stderr_silenced():
                doc["mcu"] = mcu_section.mcu_figures(ROOT, tmp, log)
            doc["mcu"]["run_s"] = round(time.perf_counter() - section_start, 1)

        quantizer_recipe.run_section(doc, args.only, tmp, log)
        if args.only == "planner_resume":
            log("planner killed after 2 steps and rerun, MobileNetV2 96x96 (cold, killed, rerun, warm)")
            section_start = time.perf_counter()
            doc["planner_resume"] = planner_resume.planner_resume(ROOT, tmp, log, quiet=native_stderr_silenced)
            doc["planner_resume"]["run_s"] = round(time.perf_counter() - section_start, 1)

    doc["environment"]["load_average_at_end"] = [round(v, 2) for v in os.getloadavg()]
    doc["total_run_s"] = round(time.perf_counter() - start, 1)
    previous = args.out / "latest.json"
    if args.only and previous.exists():
        # Keep the other sections' latest results; this section carries its own environment.
        section = doc[SECTION_KEYS[args.only]]
        section["environment"] = doc["environment"]
        doc = json.loads(previous.read_text())
        doc[SECTION_KEYS[args.only]] = section
    text = render(doc)
    print(text, end="")
    args.out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(args.out / "latest.json", json.dumps(doc, indent=2) + "\n")
    write_text_atomic(args.out / "latest.md", text)
    log(f"wrote {args.out / 'latest.json'} and {args.out / 'latest.md'}")
    return 0


SECTION_KEYS = {
    "overhead": "quantize_overhead",
    "qat": "qat_epoch_time",
    "planner": "planner",
    "build": "build_cache",
    "mcu": "mcu",
    "recipe": "quantizer_recipe",
    "planner_resume": "planner_resume",  # --only planner_resume alone (about 10 minutes): not in a full run
}  # --only name -> latest.json key


def measure_overhead(doc: dict, tmp: Path, args: argparse.Namespace) -> None:
    """Section 1: edgeq quantize against the bare converter, as subprocesses and in-process."""
    # Subprocesses first, while this process has not loaded TensorFlow yet.
    log(f"1/6 quantize overhead, subprocesses ({args.repeats} interleaved runs + 1 warm-up each)")
    section_start = time.perf_counter()
    overhead: dict = {"subprocess": overhead_subprocess(tmp, args.repeats)}
    log(f"2/6 quantize overhead, in-process ({args.repeats} interleaved runs + 1 warm-up each)")
    overhead["in_process"] = overhead_in_process(tmp, args.repeats)
    if args.stages:
        with native_stderr_silenced():
            overhead["stages"] = edgeq_stages(tmp, args.repeats)
    overhead["run_s"] = round(time.perf_counter() - section_start, 1)
    doc["quantize_overhead"] = overhead


def measure_all_but_qat(doc: dict, tmp: Path, args: argparse.Namespace) -> None:
    """Sections 1 to 4: they run together (accuracy reuses the latency section's int8 model)."""
    measure_overhead(doc, tmp, args)

    log("3/6 latency and size, float vs int8")
    mnist = latency_and_size(
        "mnist_cnn", MODEL, CALIB, tmp, args.mnist_runs, args.mnist_runs // 10, "bundled trained model"
    )
    mobilenet_model, mobilenet_calib = mobilenet_inputs(tmp)
    mobilenet = latency_and_size(
        "mobilenet_v2 (random weights)",
        mobilenet_model,
        mobilenet_calib,
        tmp,
        args.mobilenet_runs,
        max(args.mobilenet_runs // 10, 1),
        f"224x224x3, alpha 1.0; calibrated on {MOBILENET_CALIB_SAMPLES} seeded random-normal samples; accuracy not measured",
    )
    doc["latency_and_size"] = [mnist, mobilenet]

    log("4/6 accuracy, float vs int8")
    doc["accuracy"] = accuracy(mnist["variants"]["int8"]["path"])
    for r in doc["latency_and_size"]:
        for v in r["variants"].values():
            v["path"] = Path(v["path"]).name  # the temp folder is gone after the run


if __name__ == "__main__":
    sys.exit(main())
