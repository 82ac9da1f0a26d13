"""Figures that cannot be judged say so (issue 19, defect 7 and "a model whose reference output is constant"):
eval on fewer than stats.MIN_SAMPLES samples warns, the planner never calls a budget met on them (exit 6),
and an output whose float reference is constant over the data is flagged in eval and in the build report."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgeq.bench import fidelity, stats
from edgeq.cli.fidelity_view import outputs_lines
from tests.conftest import DATA, ROOT

MNIST = ROOT / "models" / "mnist_cnn.keras"


def _first(src, n: int, out) -> None:
    with np.load(src) as d:
        np.savez(out, x=d["x"][:n], y=d["y"][:n])


@pytest.mark.slow
def test_the_planner_never_meets_a_budget_on_3_samples(run_cli, tmp_path):
    _first(DATA / "mnist_eval.npz", 3, tmp_path / "three.npz")
    r = run_cli(
        "quantize", MNIST, "--data", DATA / "mnist_calib.npz", "--eval-data", tmp_path / "three.npz",
        "--max-drop", "1", "-o", tmp_path / "p.tflite",
    )  # fmt: skip
    assert r.exit_code == 6, r.stderr  # before: exit 0, "plain int8 PTQ meets the budget"
    assert f"3 evaluation samples are fewer than the {stats.MIN_SAMPLES} needed to judge a budget" in r.stderr
    assert not (tmp_path / "p.tflite").exists()


def test_a_planner_step_on_few_samples_is_not_met(tiny_int8, tf_keras_model):
    from edgeq.modelio import load_model
    from edgeq.quantize import planner

    with np.load(DATA / "digits_eval.npz") as d:
        x, y = d["x"][:3], d["y"][:3]
    ref = load_model(tf_keras_model).predict_outputs(x)
    p = planner.Planner(ref, x, y, planner.Budget(max_drop=100.0), planner.Profile())
    step = p.evaluate(planner.Step("int8 PTQ", "ptq"), tiny_int8.read_bytes())
    assert not step.meets and planner.too_few_samples(3) in step.misses
    assert any(f"fewer than the {stats.MIN_SAMPLES} needed" in n for n in step.noise)


def test_eval_on_3_samples_warns_and_gives_a_wide_interval(run_cli, tiny_int8, tf_keras_model, tmp_path):
    _first(DATA / "digits_eval.npz", 3, tmp_path / "three.npz")
    r = run_cli("eval", tiny_int8, "--reference", tf_keras_model, "--data", tmp_path / "three.npz")
    assert r.exit_code == 0, r.stderr
    assert f"only 3 evaluation samples, fewer than the {stats.MIN_SAMPLES} needed" in r.stderr
    r = run_cli("--json", "eval", tiny_int8, "--reference", tf_keras_model, "--data", tmp_path / "three.npz")
    res = r.json["result"]
    drop = res["intervals"]["accuracy_drop_points"]
    assert (
        res["judgeable"] is False and drop["judgeable"] is False and res["intervals"]["sqnr_db"]["judgeable"] is False
    )
    assert drop["high"] - drop["low"] > 50  # before: [0.00, 0.00] from a bootstrap of 3 samples


def test_a_constant_reference_output_is_flagged():
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(40, 5))
    ref = {"scores": scores, "bias": np.full((40, 3), 0.25)}
    test = {"scores": scores + 0.01, "bias": np.full((40, 3), 0.25)}
    r = fidelity.compare(ref, test, None)
    row = next(o for o in r["outputs"] if o["name"] == "bias")
    assert row["constant_reference"] == 0.25
    assert next(o for o in r["outputs"] if o["name"] == "scores")["constant_reference"] is None
    [w] = [w for w in r["warnings"] if "'bias'" in w]
    assert "float reference is constant (0.25)" in w and "carry no information" in w
    assert "reference constant" in outputs_lines(r)[0]  # eval's per-output table
    zero = fidelity.compare({"z": np.zeros((40, 2))}, {"z": np.zeros((40, 2))}, None)
    assert zero["outputs"][0]["constant_reference"] == 0.0 and any("constant (0)" in w for w in zero["warnings"])


def test_the_build_report_warns_of_a_constant_reference(run_cli, tmp_path):
    from tests.hardening.test_report_manifests import TARGET, TOP, _write

    out = {"shape": [3], "role": "regression", "sqnr_db": 99.0, "cosine_similarity": 1.0, "mean_abs_error": 0.0,
           "max_abs_error": 0.0, "agreement": None, "degenerate": None}  # fmt: skip
    target = json.loads(json.dumps(TARGET))
    target["variants"][0]["outputs"] = [
        dict(out, name="bias", constant_reference=0.25),
        dict(out, name="box", constant_reference=None),
    ]
    _write(tmp_path, TOP, target)
    r = run_cli("report", tmp_path)
    assert r.exit_code == 0, r.stderr
    md = (tmp_path / "report.md").read_text()
    assert "cpu: output 'bias': the float reference is constant (0.25)" in md and "'box': the float" not in md


def test_a_budget_judged_on_few_samples_is_missed():
    from edgeq.quantize import planner

    ev = {"num_samples": 3, "accuracy_drop_points": 0.0, "sqnr_db": 40.0}
    assert planner.too_few_samples(3) in planner.Budget(max_drop=1.0).misses(ev)
    assert planner.too_few_samples(3) in planner.Budget(min_sqnr=10.0).misses(ev)
    unlabeled = {"num_samples": 3, "sqnr_db": 40.0}  # no labels, no --min-sqnr: nothing is judged (the build says so)
    assert planner.Budget(max_drop=1.0).misses(unlabeled) == []
    assert planner.Budget(max_drop=1.0).misses(dict(ev, num_samples=stats.MIN_SAMPLES)) == []


@pytest.mark.slow
def test_a_build_never_meets_its_budget_on_3_samples(run_cli, tf_keras_model, tmp_path):
    _first(DATA / "digits_eval.npz", 3, tmp_path / "three.npz")
    r = run_cli(
        "--json", "build", tf_keras_model, "--data", DATA / "digits_calib.npz", "--eval-data", tmp_path / "three.npz",
        "--target", "cpu", "--runs", "3", "--warmup", "0", "-o", tmp_path / "b",
    )  # fmt: skip
    assert r.exit_code == 6, r.stderr
    assert f"3 evaluation samples are fewer than the {stats.MIN_SAMPLES} needed" in json.dumps(r.json)
