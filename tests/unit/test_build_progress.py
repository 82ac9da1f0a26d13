"""The build's steps on a terminal: "[i/N] name" with the elapsed time ticking, quiet while training's bar writes."""

from __future__ import annotations

import io
import threading

from edgeq.cli.progress import StepTicker

TIMEOUT_S = 10.0  # only reached when the ticker thread is broken; no test waits for it otherwise


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Ticks:
    """The ticker's stop event, driven by the test instead of by time: ``tick()`` lets the ticker
    thread through one wait (one redraw) and returns once the thread is waiting again, so its output
    is complete when the test reads it. ``ticks`` counts the redraw rounds the thread went through."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.waits = 0  # times the ticker thread has come to wait
        self.ticks = 0  # waits let through
        self.stopped = False

    def wait(self, timeout: float | None = None) -> bool:  # the ticker thread's side
        with self.cond:
            self.waits += 1
            self.cond.notify_all()
            self.cond.wait_for(lambda: self.stopped or self.ticks >= self.waits)
            return self.stopped

    def set(self) -> None:
        with self.cond:
            self.stopped = True
            self.cond.notify_all()

    def is_set(self) -> bool:
        return self.stopped

    def tick(self) -> None:
        with self.cond:
            assert self.cond.wait_for(lambda: self.waits > self.ticks, TIMEOUT_S), "the ticker thread is not waiting"
            self.ticks += 1
            self.cond.notify_all()
            assert self.cond.wait_for(lambda: self.waits > self.ticks, TIMEOUT_S), "the redraw did not finish"


def _ticker(out: io.StringIO, clock: Clock) -> tuple[StepTicker, Ticks]:
    ticker = StepTicker(out, interval=3600.0, clock=clock)  # an interval no run could reach by itself
    ticks = Ticks()
    ticker.stop = ticks  # type: ignore[assignment]
    return ticker, ticks


def test_each_step_shows_its_elapsed_time_and_keeps_it_when_the_next_starts():
    out, clock = io.StringIO(), Clock()
    ticker, ticks = _ticker(out, clock)
    ticker.say("[1/3] float reference ...")
    assert out.getvalue() == "\r[1/3] float reference ... 0 s"
    clock.now = 75.0
    ticks.tick()  # the ticker redraws with the time so far
    assert out.getvalue().endswith("\r[1/3] float reference ... 0 s\r[1/3] float reference ... 1:15")
    ticker.say("[2/3] coral: quantize ...")
    clock.now = 80.0
    ticks.tick()
    ticker.close()
    assert ticks.ticks == 2 and ticks.stopped and not ticker.thread.is_alive()
    lines = out.getvalue().split("\n")
    assert lines[0].endswith("[1/3] float reference ... 1:15")  # the finished step keeps its time
    assert lines[1] == "\r[2/3] coral: quantize ... 0 s\r[2/3] coral: quantize ... 5 s\r[2/3] coral: quantize ... 5 s"
    assert lines[2:] == [""]


def test_quiet_while_another_progress_display_writes():
    out, clock = io.StringIO(), Clock()
    events: list[dict] = []
    ticker, ticks = _ticker(out, clock)
    ticker.say("[3/9] quantize (qat) ...")
    clock.now = 1.0
    ticks.tick()
    assert out.getvalue().endswith("\r[3/9] quantize (qat) ... 1 s")  # it redraws while nothing else writes
    wrapped = ticker.around(events.append)
    wrapped({"event": "epoch"})
    before = out.getvalue()
    assert before.endswith("1 s\n")  # the training bar starts on a line of its own
    clock.now = 2.0
    ticks.tick()
    ticks.tick()
    assert out.getvalue() == before  # two redraw rounds went by, and none drew over the training bar
    clock.now = 12.0
    ticker.say("[4/9] cpu: check and compile ...")
    ticker.close()
    assert ticks.ticks == 3 and events == [{"event": "epoch"}]
    assert "[3/9] quantize (qat) ... done in 12 s\n" in out.getvalue()


def test_build_announces_step_i_of_n(run_cli, tmp_path):
    r = run_cli("build", "--target", "cpu", "-o", tmp_path / "o", "--runs", "3", "--warmup", "1")
    assert r.exit_code == 0, r.stderr
    steps = [line for line in r.stderr.splitlines() if line.startswith("[")]
    total = 2 + 1 + 1 + 2 + 1  # float, its bench, debugger, one quantization, check+compile, bench, report
    assert steps[0] == f"[1/{total}] float reference ..." and steps[-1] == f"[{total}/{total}] report ..."
    assert len(steps) == total
