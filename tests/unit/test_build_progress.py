"""The build's steps on a terminal: "[i/N] name" with the elapsed time ticking, quiet while training's bar writes."""

from __future__ import annotations

import io
import time

from edgeq.cli.progress import StepTicker


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_each_step_shows_its_elapsed_time_and_keeps_it_when_the_next_starts():
    out, clock = io.StringIO(), Clock()
    ticker = StepTicker(out, interval=0.01, clock=clock)
    ticker.say("[1/3] float reference ...")
    clock.now = 75.0
    time.sleep(0.1)  # the ticker redraws with the time so far
    assert "\r[1/3] float reference ... 1:15" in out.getvalue()
    ticker.say("[2/3] coral: quantize ...")
    clock.now = 80.0
    ticker.close()
    lines = out.getvalue().split("\n")
    assert lines[0].endswith("[1/3] float reference ... 1:15")  # the finished step keeps its time
    assert lines[1].endswith("[2/3] coral: quantize ... 5 s") and lines[2] == ""


def test_quiet_while_another_progress_display_writes():
    out, clock = io.StringIO(), Clock()
    events = []
    ticker = StepTicker(out, interval=0.01, clock=clock)
    ticker.say("[3/9] quantize (qat) ...")
    wrapped = ticker.around(events.append)
    wrapped({"event": "epoch"})
    before = out.getvalue()
    time.sleep(0.05)
    assert out.getvalue() == before  # no redraw over the training bar
    clock.now = 12.0
    ticker.say("[4/9] cpu: check and compile ...")
    ticker.close()
    assert "[3/9] quantize (qat) ... done in 12 s\n" in out.getvalue() and events == [{"event": "epoch"}]


def test_build_announces_step_i_of_n(run_cli, tmp_path):
    r = run_cli("build", "--target", "cpu", "-o", tmp_path / "o", "--runs", "3", "--warmup", "1")
    assert r.exit_code == 0, r.stderr
    steps = [line for line in r.stderr.splitlines() if line.startswith("[")]
    total = 2 + 1 + 1 + 2 + 1  # float, its bench, debugger, one quantization, check+compile, bench, report
    assert steps[0] == f"[1/{total}] float reference ..." and steps[-1] == f"[{total}/{total}] report ..."
    assert len(steps) == total
