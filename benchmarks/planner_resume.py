"""The planner killed mid-plan and rerun: what the candidate cache saves, and each step's line as it went.

A section of run.py (``run.py --only planner_resume``), or alone: ``python benchmarks/planner_resume.py``
(writes results/planner_resume_latest.json and .md). See benchmarks/README.md.

The model: ``tf_keras.applications.MobileNetV2(input_shape=(96, 96, 3), alpha=0.35, weights=None,
classes=10, classifier_activation=None)``, seeded, its BatchNormalization statistics set once to the calibration
batch's (random weights otherwise: the planner's work is the same for a trained network of this shape). Calibration and evaluation data: seeded 96x96 crops of scikit-image's
sample photos (astronaut, coffee, chelsea, rocket, camera, ...), scaled to -1..1 as MobileNetV2 takes them:
64 to calibrate, 40 to evaluate (unlabeled: the budget is the worst output's SQNR), from disjoint photos.

Three runs of ``edgeq quantize MODEL --data --eval-data --min-sqnr DB --target coral --adaround-steps N``,
each a fresh process with its own ``EDGEQ_CACHE_DIR``, timed from spawn to exit, each step's
``plan step:`` line timestamped as it reached the pipe:

- *cold*: an empty cache, the whole plan (every candidate built; the budget is out of reach, so every
  all-integer candidate runs and the plan ends with exit 6);
- *killed*: an empty cache again, SIGINT once ``KILL_AFTER`` step lines have printed (exit 130);
- *rerun*: the same command on the killed run's cache: the steps it finished come from the cache (their
  lines say "(cached)"), the rest are built;
- *warm*: the same command once more, every candidate from the cache.

Reported: each run's wall time, the rerun against the cold run as a ratio (one process each, the same
command, one after the other on the same machine), and every line's arrival time against its run's end.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

SIZE = 96
ALPHA = 0.35
CALIB_SAMPLES = 64
EVAL_SAMPLES = 40
MIN_SQNR = 60.0  # dB: out of reach of every all-integer candidate on this network
ADAROUND_STEPS = 20
KILL_AFTER = 2  # step lines before SIGINT: int8 PTQ and int8 cle done, cle+mse+bias being built
TARGET = "coral"  # integer-only: PTQ, then the techniques; no float layer without --allow-cpu-fallback
CALIB_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")
EVAL_PHOTOS = ("camera", "hubble_deep_field", "immunohistochemistry", "coins", "retina")


def _photo(name: str):  # noqa: ANN202 - numpy array, numpy imported lazily
    import numpy as np
    from skimage import data

    img = np.asarray(getattr(data, name)())
    if img.ndim == 2:
        img = np.stack([img] * 3, axis=-1)
    return img[..., :3].astype(np.float32)


def _crops(photos: tuple[str, ...], n: int, seed: int):  # noqa: ANN202
    """``n`` seeded 96x96 crops of ``photos`` (in turn), scaled from 0..255 to -1..1."""
    import numpy as np

    rng = np.random.default_rng(seed)
    images = [_photo(p) for p in photos]
    out = []
    for i in range(n):
        img = images[i % len(images)]
        y = int(rng.integers(0, img.shape[0] - SIZE + 1))
        x = int(rng.integers(0, img.shape[1] - SIZE + 1))
        out.append(img[y : y + SIZE, x : x + SIZE] / 127.5 - 1.0)
    return np.stack(out).astype(np.float32)


def make_inputs(tmp: Path) -> dict[str, str]:
    """The model and the data, written to ``tmp`` (untimed)."""
    import numpy as np

    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    import tf_keras

    tf_keras.utils.set_random_seed(0)
    model = tf_keras.applications.MobileNetV2(
        input_shape=(SIZE, SIZE, 3), alpha=ALPHA, weights=None, classes=10, classifier_activation=None
    )
    calib = _crops(CALIB_PHOTOS, CALIB_SAMPLES, 0)
    # Random weights with BatchNormalization's initial statistics (mean 0, variance 1) scale the activations
    # away to nothing by the last layer (the float output is near constant, the int8 one all zeros). Its
    # moving statistics set once to the calibration batch's make a network whose every layer is in range,
    # as a trained one is.
    batch_norms = [layer for layer in model.layers if isinstance(layer, tf_keras.layers.BatchNormalization)]
    for layer in batch_norms:
        layer.momentum = 0.0
    model(calib, training=True)
    for layer in batch_norms:
        layer.momentum = 0.999
    paths = {"model": tmp / "mobilenet_v2_96.keras", "calib": tmp / "calib.npz", "eval": tmp / "eval.npz"}
    model.save(paths["model"])
    np.savez(paths["calib"], x=calib)
    np.savez(paths["eval"], x=_crops(EVAL_PHOTOS, EVAL_SAMPLES, 1))
    return {k: str(v) for k, v in paths.items()}


def run_planner(root: Path, inputs: dict[str, str], cache: Path, out: Path, kill_after: int | None = None) -> dict:
    """One ``edgeq quantize`` planner run in a fresh process: wall time, exit code, each step line with the
    seconds from spawn at which it arrived; SIGINT once ``kill_after`` step lines have arrived."""
    cmd = [
        *(sys.executable, "-m", "edgeq", "quantize", inputs["model"], "--data", inputs["calib"]),
        *("--eval-data", inputs["eval"], "--min-sqnr", str(MIN_SQNR), "--target", TARGET),
        *("--adaround-steps", str(ADAROUND_STEPS), "-o", str(out), "--force"),
    ]
    env = os.environ | {"EDGEQ_CACHE_DIR": str(cache), "PYTHONPATH": str(root), "TF_USE_LEGACY_KERAS": "1"}
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lines: list[dict] = []
    tail: list[str] = []
    killed_at: list[float] = []

    def read() -> None:
        assert proc.stderr is not None
        for raw in proc.stderr:
            at = time.perf_counter() - t0
            tail[:] = [*tail[-20:], raw.rstrip()]
            if raw.startswith("plan step: "):
                lines.append({"t_s": round(at, 2), "line": raw.rstrip()})
                if kill_after is not None and len(lines) == kill_after and not killed_at:
                    killed_at.append(at)
                    proc.send_signal(signal.SIGINT)

    reader = threading.Thread(target=read)
    reader.start()
    code = proc.wait()
    reader.join()
    wall = time.perf_counter() - t0
    if code not in (0, 6, 130):
        raise RuntimeError(f"edgeq quantize exited {code}: " + "\n".join(tail))
    steps = [_step_of(ln["line"]) | {"t_s": ln["t_s"]} for ln in lines]
    return {
        "wall_s": round(wall, 2),
        "exit_code": code,
        "sigint_at_s": round(killed_at[0], 2) if killed_at else None,
        "steps": steps,
    }


def _step_of(line: str) -> dict:
    """name, cached, and the rest of a step line ("plan step: NAME [(cached)]: ...")."""
    name, _, rest = line.removeprefix("plan step: ").partition(": ")
    cached = name.endswith(" (cached)")
    return {"name": name.removesuffix(" (cached)"), "cached": cached, "rest": rest}


def planner_resume(root: Path, tmp: Path, log, quiet=None) -> dict:  # noqa: ANN001 - run.py's log and quiet
    """Build the inputs (untimed), then the cold, killed, rerun and warm planner runs."""
    import contextlib

    load_at_start = [round(v, 2) for v in os.getloadavg()]
    with (quiet or contextlib.nullcontext)():
        t0 = time.perf_counter()
        inputs = make_inputs(tmp)
        prep_s = time.perf_counter() - t0
    log(f"  MobileNetV2 96x96 alpha {ALPHA} and the photo crops made in {prep_s:.1f} s")
    cold = run_planner(root, inputs, tmp / "cache-cold", tmp / "cold.tflite")
    log(f"  cold: {cold['wall_s']:.1f} s, {len(cold['steps'])} step lines, exit {cold['exit_code']}")
    killed = run_planner(root, inputs, tmp / "cache-resume", tmp / "resume.tflite", kill_after=KILL_AFTER)
    log(f"  killed after {KILL_AFTER} step lines: {killed['wall_s']:.1f} s, exit {killed['exit_code']}")
    rerun = run_planner(root, inputs, tmp / "cache-resume", tmp / "resume.tflite")
    log(f"  rerun: {rerun['wall_s']:.1f} s, {sum(s['cached'] for s in rerun['steps'])} steps from the cache")
    warm = run_planner(root, inputs, tmp / "cache-resume", tmp / "resume.tflite")
    log(f"  warm: {warm['wall_s']:.1f} s")
    same = [(s["name"], s["rest"]) for s in cold["steps"]] == [(s["name"], s["rest"]) for s in rerun["steps"]]
    return {
        "model": f"tf_keras.applications.MobileNetV2(input_shape=({SIZE}, {SIZE}, 3), alpha={ALPHA}, weights=None, "
        "classes=10, classifier_activation=None), seed 0, BatchNormalization statistics set to the calibration "
        "batch's",
        "data": f"{CALIB_SAMPLES} calibration crops of {', '.join(CALIB_PHOTOS)}; {EVAL_SAMPLES} evaluation crops of "
        f"{', '.join(EVAL_PHOTOS)} (skimage.data, seeded 96x96 crops, -1..1)",
        "command": f"edgeq quantize MODEL --min-sqnr {MIN_SQNR:g} --target {TARGET} --adaround-steps {ADAROUND_STEPS}",
        "kill_after_lines": KILL_AFTER,
        "inputs_s": round(prep_s, 1),
        "cold": cold,
        "killed": killed,
        "rerun": rerun,
        "warm": warm,
        "rerun_over_cold": round(rerun["wall_s"] / cold["wall_s"], 3),
        "killed_plus_rerun_over_cold": round((killed["wall_s"] + rerun["wall_s"]) / cold["wall_s"], 3),
        "warm_over_cold": round(warm["wall_s"] / cold["wall_s"], 3),
        "load_average": {"start": load_at_start, "end": [round(v, 2) for v in os.getloadavg()]},
        "rerun_lines_match_cold": same,  # the same steps with the same figures, from the cache or not
    }


def render(section: dict) -> list[str]:
    c, k, r, w = section["cold"], section["killed"], section["rerun"], section["warm"]
    lines = [
        "### Planner killed and rerun: the candidate cache (MobileNetV2 96x96)",
        "",
        f"{section['model']}; {section['data']}. `{section['command']}`, each run a fresh process; the killed "
        f"run got SIGINT once {section['kill_after_lines']} step lines had printed.",
        "",
        "| run | wall s | exit | steps from the cache | / cold |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, run in (("cold (empty cache)", c), ("killed (empty cache)", k), ("rerun after the kill", r)):
        cached = sum(s["cached"] for s in run["steps"])
        lines.append(
            f"| {name} | {run['wall_s']:.1f} | {run['exit_code']} | {cached}/{len(run['steps'])} | "
            f"{run['wall_s'] / c['wall_s']:.2f} |"
        )
    cached = sum(s["cached"] for s in w["steps"])
    lines.append(f"| warm (all cached) | {w['wall_s']:.1f} | {w['exit_code']} | {cached}/{len(w['steps'])} | "
                 f"{w['wall_s'] / c['wall_s']:.2f} |")  # fmt: skip
    lines += [
        "",
        f"Killed run plus rerun: {section['killed_plus_rerun_over_cold']:.2f}x the cold run. The rerun's step lines "
        f"{'match' if section['rerun_lines_match_cold'] else 'DO NOT match'} the cold run's (same figures).",
        "",
        *_load_line(section),
        "Each step's line as it arrived (seconds from spawn; the run ended at the last column's header):",
        "",
        f"| step | cold (end {c['wall_s']:.1f} s) | killed (end {k['wall_s']:.1f} s) | rerun (end {r['wall_s']:.1f} s) |",
        "|---|---:|---:|---:|",
    ]
    for i, s in enumerate(c["steps"]):
        cells = [s["t_s"]] + [run["steps"][i]["t_s"] if i < len(run["steps"]) else None for run in (k, r)]
        tags = ["", "", " (cached)" if i < len(r["steps"]) and r["steps"][i]["cached"] else ""]
        text = [f"{v:.1f}{t}" if v is not None else "-" for v, t in zip(cells, tags, strict=True)]
        lines.append(f"| {s['name']} | " + " | ".join(text) + " |")
    return [*lines, ""]


def _load_line(section: dict) -> list[str]:
    load = section.get("load_average")
    if not load:
        return []
    return [f"Load average {load['start'][0]:.2f} at start, {load['end'][0]:.2f} at end (read the ratios).", ""]


def main() -> int:
    import tempfile

    root = Path(__file__).resolve().parent.parent
    with tempfile.TemporaryDirectory(prefix="edgeq-resume-") as tmp:
        section = planner_resume(root, Path(tmp), lambda m: print(m, file=sys.stderr, flush=True))
    results = root / "benchmarks" / "results"
    results.mkdir(exist_ok=True)
    (results / "planner_resume_latest.json").write_text(json.dumps(section, indent=2) + "\n")
    text = "\n".join(render(section))
    (results / "planner_resume_latest.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
