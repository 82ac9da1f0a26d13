"""The 95% intervals as people read them: eval's lines and the build report's variant table and notes."""

from __future__ import annotations

import numpy as np

from edgeq.bench import fidelity
from edgeq.cli.cmd_eval import interval_lines
from edgeq.report.render import interval_cells, noise_notes


def _eval_result(changed: int, labels: bool = True) -> dict:
    """compare() on 100 samples of 10 classes, where the int8 model gets ``changed`` of them wrong."""
    rng = np.random.default_rng(2)
    ref = rng.normal(size=(100, 10))
    y = ref.argmax(-1)
    test = ref.copy()
    test[:changed] = np.roll(test[:changed], 1, axis=1)  # another top-1: a sample the float model had right
    return fidelity.compare(ref, test, y if labels else None)


def test_eval_lines_give_agreement_and_drop_with_intervals_and_the_noise_note():
    lines = interval_lines(_eval_result(2))
    assert lines[0] == "top-1 agreement: 98.00% (95% CI 92.96-99.76, n=100)"
    # two lost, none gained: the paired score interval (Newcombe) spans 0; the old bootstrap's +0.00 lower bound
    # claimed certainty that two discordant samples cannot give
    assert lines[1] == "accuracy drop: 2.00 points (95% CI -1.97..+7.00)"
    assert lines[2].startswith("note: the 95% interval of the accuracy drop (-1.97..") and "includes 0" in lines[2]
    many = interval_lines(_eval_result(10))  # ten lost, none gained: clearly worse, no note
    assert many[1].startswith("accuracy drop: 10.00 points (95% CI +") and not any("note:" in x for x in many)


def test_eval_lines_without_labels_or_intervals():
    assert interval_lines(_eval_result(2, labels=False)) == ["top-1 agreement: 98.00% (95% CI 92.96-99.76, n=100)"]
    # a result from before intervals (or a model without class outputs): the plain figure
    assert interval_lines({"agreement": None}) == ["top-1 agreement: n/a (no labels)"]
    assert interval_lines({"agreement": 0.5, "intervals": None}) == ["top-1 agreement: 50.00%"]


def _target(intervals: dict | None) -> dict:
    return {"target": "cpu", "variants": [{"variant": "int8", "agreement": 0.98, "intervals": intervals}]}


def test_report_cells_and_notes():
    iv = _eval_result(2)["intervals"]
    drop, agreement = interval_cells(_target(iv)["variants"][0])
    assert drop == "2.00 (-1.97..+7.00)" and agreement == "98.00% (92.96-99.76, n=100)"
    assert interval_cells({"agreement": 0.98}) == ["-", "98.00%"]  # a manifest from before intervals
    auto = {"config": {"method": "auto", "max_drop": None}}  # auto's default budget: 1 point
    [note] = noise_notes(auto, [_target(iv)])
    assert note.startswith("cpu: the 95% interval of the accuracy drop") and "spans the 1.0-point budget" in note
    assert noise_notes({"config": {"method": "auto", "max_drop": 9.0}}, [_target(iv)]) == []
    [note] = noise_notes({"config": {"method": "ptq", "max_drop": None}}, [_target(iv)])
    assert "includes 0" in note
    assert noise_notes(auto, [_target(None), {"target": "mcu", "variants": []}]) == []
