"""The budget a build judges its int8 model by is never none: the given one, a top-1 drop with labels,
else a default SQNR for the model's task, each said; and what the build adds to a target's findings from
its evaluation (a constant float reference, too few samples) and its host timings (int8 slower than float)."""

from __future__ import annotations

import pytest

from edgeq.config import DEFAULT_MAX_DROP, DEFAULT_MIN_SQNR_DB, BuildConfig, build_budget
from edgeq.findings import Level


def test_a_given_budget_is_kept_and_said_given():
    b = build_budget(0.5, None, labeled=False, task="regression")
    assert (b.max_drop, b.min_sqnr) == (0.5, None) and b.text() == "top-1 drop <= 0.5 points (given)"
    assert build_budget(None, 12.0, labeled=True, task="classification").text() == "worst-output SQNR >= 12 dB (given)"


def test_labeled_data_defaults_to_a_top1_drop():
    b = build_budget(None, None, labeled=True, task="classification")
    assert (b.max_drop, b.min_sqnr) == (DEFAULT_MAX_DROP, None)
    assert b.text().startswith("top-1 drop <= 1 point (the default for labeled evaluation data")


@pytest.mark.parametrize("task", ["classification", "embedding", "detection", "regression"])
def test_unlabeled_data_gets_the_tasks_sqnr_budget_and_says_which(task):
    b = build_budget(None, None, labeled=False, task=task)
    assert b.max_drop is None and b.min_sqnr == DEFAULT_MIN_SQNR_DB[task]
    assert f"the default for a {task} model with unlabeled evaluation data" in b.text()
    assert b.to_dict()["text"] == b.text()


def test_regression_asks_for_more_than_class_scores_and_an_unknown_task_for_the_most():
    assert DEFAULT_MIN_SQNR_DB["regression"] > DEFAULT_MIN_SQNR_DB["classification"]
    assert build_budget(None, None, False, "something new").min_sqnr == max(DEFAULT_MIN_SQNR_DB.values())


def test_the_build_reads_labels_and_task_off_the_evaluation():
    from edgeq.build.stages import _budget, budget_of

    cfg = BuildConfig()
    unlabeled = {"quantized": {"accuracy": None}, "task": "regression", "sqnr_db": 22.0, "num_samples": 100}
    assert budget_of(cfg, unlabeled).min_sqnr == DEFAULT_MIN_SQNR_DB["regression"]
    # the planner's budget misses a 22 dB regression output: the default is applied, not skipped
    assert _budget(cfg, unlabeled).misses(unlabeled) == ["SQNR 22.00 < 30.0 dB"]
    labeled = unlabeled | {"quantized": {"accuracy": 0.9}, "accuracy_drop_points": 0.4, "task": "classification"}
    assert budget_of(cfg, labeled).max_drop == DEFAULT_MAX_DROP and _budget(cfg, labeled).misses(labeled) == []


def test_evaluation_messages_name_the_budget_a_constant_reference_and_too_few_samples():
    from edgeq.bench.stats import MIN_SAMPLES
    from edgeq.build.target import evaluation_messages

    budget = build_budget(None, None, False, "classification")
    ev = {"num_samples": 500, "outputs": [{"name": "probs", "constant_reference": 0.1}, {"name": "x"}]}
    infos, warns = _split(evaluation_messages(ev, budget))
    assert infos == [f"budget: {budget.text()}"]
    assert len(warns) == 1 and warns[0].startswith("output 'probs': the float reference is constant (0.1)")
    _, warns = _split(evaluation_messages({"num_samples": MIN_SAMPLES - 1, "outputs": []}, None))
    assert warns and f"fewer than the {MIN_SAMPLES}" in warns[0]
    assert evaluation_messages(None, budget) == []


def _split(messages):
    return [m.text for m in messages if m.level == Level.INFO], [m.text for m in messages if m.level != Level.INFO]


def _row(variant, p50, where="host", skipped=None):
    return {"variant": variant, "latency_ms": {"p50": p50}, "latency_where": where, "bench_skipped": skipped}


def test_int8_slower_than_float_on_the_host_is_said_and_why():
    from edgeq.build.target import host_speed_note

    note = host_speed_note(_row("float", 0.05), _row("int8", 0.5), "cpu")
    assert note is not None and note.level == Level.WARNING  # the host is the target: the float model is faster
    assert "int8 runs 10.0x slower than float on this host's CPU" in note.text and "XNNPACK" in note.text
    other = host_speed_note(_row("float", 0.05), _row("int8", 0.5, skipped="no libedgetpu"), "coral")
    assert other is not None and other.level == Level.INFO and "its own latency is what counts" in other.text
    assert host_speed_note(_row("float", 0.05), _row("int8", 0.052), "cpu") is None  # within run-to-run noise
    assert host_speed_note(_row("float", 0.05), _row("int8", 0.04), "cpu") is None
    assert host_speed_note(_row("float", 0.05), _row("int8", 7.0, where="board"), "mcu") is None  # not the host's
