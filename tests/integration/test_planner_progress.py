"""The planner in the open: each step's line on stderr as it finishes, the step table at the end (also on exit 6),
and a candidate that raises is a failed step, not the end of the plan."""

from __future__ import annotations

import numpy as np

from edgeq.quantize import planner
from tests.conftest import DATA, ROOT

MNIST = ROOT / "models" / "mnist_cnn.keras"
CALIB = DATA / "mnist_calib.npz"
EVAL = DATA / "mnist_eval.npz"


def _boom(*args: object, **kwargs: object) -> bytes:
    raise RuntimeError("grouped convolution\nis not supported")


def test_a_raising_candidate_is_a_failed_step_and_the_plan_goes_on():
    """Library level, no model: the int8 PTQ misses, a technique raises, the next one is measured and meets."""
    from edgeq.quantize import ptq  # noqa: F401 - the runtime needs TensorFlow's import order

    seen: list[str] = []
    p = planner.Planner({}, np.zeros((1, 1)), None, planner.Budget(min_sqnr=10.0), planner.Profile())
    p.on_step = lambda st: seen.append(st.name)
    figures = iter([5.0, 30.0])

    def evaluate(step: planner.Step, data: bytes) -> planner.Step:  # the SQNR each built model measures
        step.sqnr_db, step.data = next(figures), data
        step.misses = [] if step.sqnr_db >= 10 else ["SQNR low"]
        step.meets = not step.misses
        return p._add(step)

    p.evaluate = evaluate  # type: ignore[method-assign]
    integer = [("int8 cle", lambda: "no layer pair"), ("int8 adaround", _boom), ("int8 ranges", lambda: b"m")]
    r = planner.run(p, lambda: b"ptq", integer, None, None, _boom, None)
    assert seen == ["int8 PTQ", "int8 cle", "int8 adaround", "int8 ranges"]  # in order, as each finished
    failed = r.steps[2]
    assert failed.failed == "RuntimeError: grouped convolution is not supported" and not failed.meets
    assert r.chosen is not None and r.chosen.name == "int8 ranges"
    assert r.best is r.chosen and r.to_dict()["steps"][2]["failed"]


def test_cli_prints_each_step_as_it_finishes_and_the_table_on_exit_6(run_cli, tmp_path, monkeypatch):
    from edgeq.quantize import techniques

    monkeypatch.setattr(techniques, "int8", _boom)  # every all-integer technique raises
    r = run_cli(
        "quantize", MNIST, "--data", CALIB, "--eval-data", EVAL, "--min-sqnr", "200", "--target", "coral",
        "--adaround-steps", "1", "-o", tmp_path / "p.tflite",
    )  # fmt: skip
    assert r.exit_code == 6, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("plan step: ")]
    names = [ln.split(": ")[1] for ln in lines]
    assert names[0] == "int8 PTQ" and "SQNR" in lines[0] and "< 200.0 dB" in lines[0]
    assert [n for n in names if n.startswith("int8 ") and n != "int8 PTQ"], names
    fails = [ln for ln in lines if "failed: RuntimeError: grouped convolution is not supported" in ln]
    assert fails, lines  # the techniques failed, one line each, and the plan went on
    assert names[-2:] == ["QAT", "selective"] and "no --train-data" in lines[-2], names
    table = r.stderr[r.stderr.index("every step tried:") :]
    assert all(n in table for n in names) and "failed" in table and "skipped" in table
    assert r.stderr.index(lines[-1]) < r.stderr.index("every step tried:")
    assert not (tmp_path / "p.tflite").exists()


def test_a_step_line_is_the_table_row_with_its_cells_named():
    from edgeq.cli.progress import plan_line

    drop = {"estimate": 1.5, "low": 0.7, "high": 2.3}
    st = {
        "name": "int8 PTQ", "skipped": "", "failed": "", "accuracy": 0.9712, "sqnr_db": 23.456789,
        "intervals": {"accuracy_drop_points": drop}, "size_bytes": 123456, "num_float_ops": 0, "num_ops": 9,
        "ops_off_accelerator": 0, "meets": False, "misses": ["accuracy drop 1.50 > 1.0 points"],
    }  # fmt: skip
    assert plan_line(st, True) == (
        "plan step: int8 PTQ: accuracy (drop, 95% CI) 97.12% (drop +1.50, +0.70..+2.30), sqnr_db 23.46,"
        " size_bytes 123,456, float_ops 0/9, ops_off_accel 0, budget: accuracy drop 1.50 > 1.0 points"
    )
    assert "ops_off_accel" not in plan_line(st | {"meets": True}, False)
    assert plan_line(st | {"meets": True}, False).endswith("budget: meets")
    assert plan_line(st | {"failed": "MemoryError"}, True) == "plan step: int8 PTQ: failed: MemoryError"


def test_adaround_says_which_op_it_is_learning_inside_its_step(run_cli, tmp_path):
    """The longest step (AdaRound, minutes on a MobileNetV2) is not silent: 'AdaRound op k/n (op)' lines come
    before its step line; in a log about every tenth op, the first and the last."""
    r = run_cli(
        "quantize", MNIST, "--data", CALIB, "--eval-data", EVAL, "--min-sqnr", "200", "--target", "coral",
        "--adaround-steps", "1", "-o", tmp_path / "p.tflite",
    )  # fmt: skip
    assert r.exit_code == 6, r.stderr
    lines = r.stderr.splitlines()
    ops = [ln for ln in lines if " AdaRound op " in ln]
    assert ops and all(ln.startswith("plan step: int8 ") and "adaround" in ln.split(": ")[1] for ln in ops), ops
    total = int(ops[0].split(" AdaRound op ")[1].split("/")[1].split(" ")[0])
    assert ops[0].split(" AdaRound op ")[1].startswith(f"1/{total} (") and f" {total}/{total} (" in ops[-1]
    step = next(
        i
        for i, ln in enumerate(lines)
        if ln.startswith("plan step: int8 ") and "adaround" in ln and " AdaRound op " not in ln
    )
    assert lines.index(ops[-1]) < step  # told while the step ran, before its result


def test_a_technique_line_on_a_terminal_rewrites_itself_and_in_a_log_thins_out():
    from edgeq.cli.progress import technique_line

    ev = {"event": "technique", "technique": "AdaRound", "total": 40, "op": "CONV_2D conv", "step_name": "int8 x"}
    logged = [n for n in range(1, 41) if technique_line(ev | {"number": n}, tty=False)]
    assert logged == [1, 4, 8, 12, 16, 20, 24, 28, 32, 36, 40]
    line = technique_line(ev | {"number": 7}, tty=True)
    assert line.startswith("\rplan step: int8 x: AdaRound op 7/40 (CONV_2D conv)") and len(line) == 121


def test_the_best_step_breaks_an_accuracy_tie_by_sqnr():
    steps = [
        planner.Step("int8 PTQ", "ptq", accuracy=0.98, sqnr_db=40.7),
        planner.Step("cle", "ptq", accuracy=0.98, sqnr_db=44.6),
    ]
    assert planner.PlanResult(steps, None, "").best is steps[1]
    unlabeled = [planner.Step("a", "ptq", sqnr_db=30.0), planner.Step("b", "ptq", sqnr_db=31.0)]
    assert planner.PlanResult(unlabeled, None, "").best is unlabeled[1]
