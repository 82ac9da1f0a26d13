"""The planner's candidate cache: a rerun (after a finished, interrupted or damaged run) reads the candidates
an earlier run built instead of building them again, evaluates them again, and says so; a change of
calibration data or of what the run asks builds them anew."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgeq import api
from edgeq.config import DataConfig
from edgeq.errors import QualityGateFailed
from edgeq.quantize import planner
from edgeq.stages import plan_cache
from tests.conftest import DATA

CALIB = DataConfig(path=str(DATA / "mnist_calib.npz"), samples=64)
EVAL = DataConfig(path=str(DATA / "mnist_eval.npz"), samples=60)
BUILT = ("int8 PTQ", "int8 cle", "int8 cle+mse+bias", "int8 cle+mse+adaround+bias")  # on coral, in order


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    """A seeded conv net on 28x28 digits (two conv pairs CLE can equalize), fitted five epochs on 200 digits."""
    from edgeq.tfimport import tensorflow

    tensorflow()
    import tf_keras

    tf_keras.utils.set_random_seed(0)
    layers = tf_keras.layers
    inp = tf_keras.Input((28, 28, 1))
    x = layers.Conv2D(4, 3, strides=2, padding="same", activation="relu")(inp)
    x = layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(x)
    x = layers.GlobalAveragePooling2D()(x)
    model = tf_keras.Model(inp, layers.Dense(10, activation="softmax")(x))
    with np.load(DATA / "mnist_calib.npz") as d:
        model.compile("adam", "sparse_categorical_crossentropy")
        model.fit(d["x"], d["y"], epochs=5, batch_size=32, verbose=0)
    path = tmp_path_factory.mktemp("tiny") / "tiny.keras"
    model.save(path)
    return path


@pytest.fixture
def builds(monkeypatch) -> list[str]:
    """The candidates built in this test, by kind: every int8 conversion and every technique run."""
    from edgeq.config import Mode
    from edgeq.quantize import ptq, techniques

    seen: list[str] = []
    convert, int8 = ptq.convert, techniques.int8

    def counted_convert(model, cfg, *args, **kwargs):  # noqa: ANN001, ANN202 - a spy with the real signature
        if cfg.mode != Mode.FLOAT:  # the float size of the chosen plan's sidecar is no candidate
            seen.append(f"convert {cfg.mode.value}")
        return convert(model, cfg, *args, **kwargs)

    def counted_int8(model, calib, cfg, *args, **kwargs):  # noqa: ANN001, ANN202 - the real signature too
        seen.append(f"technique {cfg.techniques.label}")
        return int8(model, calib, cfg, *args, **kwargs)

    monkeypatch.setattr(ptq, "convert", counted_convert)
    monkeypatch.setattr(techniques, "int8", counted_int8)
    return seen


def _plan(model: Path, out: Path, min_sqnr: float = 200.0, calib: DataConfig = CALIB, **kw: object) -> dict:
    """One plan on coral (integer-only: no selective step without --allow-cpu-fallback, no int16): its record,
    whether a candidate met the budget or not."""
    try:
        doc = api.plan(
            str(model), str(out), "coral", planner.Budget(min_sqnr=min_sqnr), calib, EVAL, force=True,
            adaround_steps=2, **kw,
        )  # fmt: skip
        return doc["plan"]
    except QualityGateFailed as exc:
        return exc.details


def _measured(plan: dict) -> list[dict]:
    return [s for s in plan["steps"] if not s["skipped"] and not s["failed"]]


def _figures(plan: dict) -> list[tuple]:
    return [(s["name"], s["sqnr_db"], s["accuracy"], s["size_bytes"], s["meets"]) for s in plan["steps"]]


def test_a_rerun_reads_every_measured_candidate_and_measures_the_same(tiny, tmp_path, builds):
    first = _plan(tiny, tmp_path / "a.tflite")
    assert [s["name"] for s in _measured(first)] == list(BUILT), first["steps"]
    assert not any(s["cached"] for s in first["steps"])
    assert len(builds) == 4  # one plain conversion, three techniques
    builds.clear()
    second = _plan(tiny, tmp_path / "a.tflite")
    assert builds == []  # nothing built again
    assert all(s["cached"] for s in _measured(second))
    assert _figures(second) == _figures(first) and second["chosen"] == first["chosen"]
    # another budget is judged on the cached candidates (the evaluation is not cached): a bar between the
    # best technique's SQNR and every earlier one's chooses it, and its sidecar keeps its technique record
    sqnr = [s["sqnr_db"] for s in _measured(first)]
    best = max(range(1, len(sqnr)), key=lambda i: sqnr[i])
    if sqnr[best] <= max(sqnr[:best]):
        pytest.skip(f"no technique beats the candidates before it on this model: {sqnr}")
    third = _plan(tiny, tmp_path / "b.tflite", min_sqnr=(sqnr[best] + max(sqnr[:best])) / 2)
    assert builds == [] and third["chosen"] == BUILT[best]
    sidecar = json.loads((tmp_path / "b.tflite.edgeq.json").read_text())
    assert sidecar["techniques"]["applied"] == BUILT[best].removeprefix("int8 "), sidecar.get("techniques")


def test_a_run_interrupted_mid_plan_keeps_the_candidates_it_finished(tiny, tmp_path, builds, monkeypatch):
    from edgeq.quantize import techniques

    counted = techniques.int8

    def interrupted(model, calib, cfg, *args, **kwargs):  # noqa: ANN001, ANN202 - Ctrl-C while the 2nd one builds
        if cfg.techniques.bias_correction:
            raise KeyboardInterrupt
        return counted(model, calib, cfg, *args, **kwargs)

    monkeypatch.setattr(techniques, "int8", interrupted)
    with pytest.raises(KeyboardInterrupt):
        _plan(tiny, tmp_path / "a.tflite")
    assert builds == ["convert int8", "technique cle"]
    assert not list(plan_cache.cache_home().glob(".*"))  # no half-written entry of the interrupted one
    monkeypatch.setattr(techniques, "int8", counted)
    builds.clear()
    plan = _plan(tiny, tmp_path / "a.tflite")
    assert [s["cached"] for s in _measured(plan)] == [True, True, False, False]
    assert builds == ["technique cle+mse+bias", "technique cle+mse+adaround+bias"]


def test_a_damaged_entry_is_rebuilt_not_trusted(tiny, tmp_path, builds):
    first = _plan(tiny, tmp_path / "a.tflite")
    files = sorted(plan_cache.cache_home().glob(f"{plan_cache.STAGE}-*/{plan_cache.MODEL_FILE}"))
    assert len(files) == 4
    damaged = files[0]
    damaged.write_bytes(damaged.read_bytes()[:100])  # truncated
    builds.clear()
    second = _plan(tiny, tmp_path / "a.tflite")
    assert [s["cached"] for s in _measured(second)].count(False) == 1 and len(builds) == 1
    assert _figures(second) == _figures(first)
    assert len(damaged.read_bytes()) > 100  # the rebuilt candidate replaced it


def test_other_calibration_data_or_config_builds_anew(tiny, tmp_path, builds):
    _plan(tiny, tmp_path / "a.tflite")
    builds.clear()
    other = _plan(tiny, tmp_path / "a.tflite", calib=DataConfig(path=CALIB.path, samples=64, seed=1))
    assert len(builds) == 4 and not any(s["cached"] for s in other["steps"])
    builds.clear()
    float_io = _plan(tiny, tmp_path / "a.tflite", io="float")
    assert len(builds) == 4 and not any(s["cached"] for s in float_io["steps"])


def test_the_step_line_says_cached(tiny, tmp_path, run_cli):
    args = ("quantize", tiny, "--data", DATA / "mnist_calib.npz", "--eval-data", DATA / "mnist_eval.npz")
    args += ("--min-sqnr", "200", "--target", "coral", "--adaround-steps", "1", "-o", tmp_path / "p.tflite")
    first = run_cli(*args)
    assert first.exit_code == 6 and "(cached)" not in first.stderr, first.stderr
    second = run_cli(*args)
    assert second.exit_code == 6, second.stderr
    lines = [ln for ln in second.stderr.splitlines() if ln.startswith("plan step: ")]
    assert lines[0].startswith("plan step: int8 PTQ (cached): ") and "sqnr_db" in lines[0], lines
    assert sum("(cached)" in ln for ln in lines) == 4, lines
    table = second.stderr[second.stderr.index("every step tried:") :]
    assert "int8 PTQ (cached)" in table


def test_the_cache_folder_follows_edgeq_cache_dir(monkeypatch, tmp_path):
    monkeypatch.undo()  # the suite's private folder (tests/conftest.py) off: the real rule
    monkeypatch.setenv("EDGEQ_CACHE_DIR", str(tmp_path))
    assert plan_cache.cache_home() == tmp_path / "plan"
    monkeypatch.delenv("EDGEQ_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert plan_cache.cache_home() == tmp_path / "xdg" / "edgeq" / "plan"
