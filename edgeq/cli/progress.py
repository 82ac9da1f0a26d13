"""Progress for people, on stderr: training's bar (a line per epoch off a terminal), and the build's steps
(with a ticking elapsed time on a terminal)."""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Callable, Iterator

import click

from edgeq.cli.app import App, pct
from edgeq.paths import printable


def _metrics(logs: dict) -> str:
    keys = ("loss", "accuracy", "val_loss", "val_accuracy")
    return "  ".join(f"{k} {logs[k]:.4f}" for k in keys if k in logs)


PLAN_HEADERS = ["step", "accuracy (drop, 95% CI)", "sqnr_db", "size_bytes", "float_ops", "ops_off_accel", "budget"]


def plan_row(st: dict, integer_only: bool) -> list:
    """One planner step as a row of the step table (PLAN_HEADERS): what was tried, the figures with their
    95% intervals, and the budget verdict (or why it was skipped or failed). A candidate an earlier run
    built (the planner's cache) is named "(cached)": read back and evaluated again, not rebuilt."""
    name = f"{st['name']} (cached)" if st.get("cached") else st["name"]
    if st["skipped"]:
        return [name, "skipped", "", "", "", "", st["skipped"]]
    if st.get("failed"):
        return [name, "failed", "", "", "", "", st["failed"]]
    acc = "-" if st["accuracy"] is None else pct(st["accuracy"])
    drop = ((st.get("intervals") or {}).get("accuracy_drop_points")) or None
    if drop is not None:
        acc += f" (drop {drop['estimate']:+.2f}, {drop['low']:+.2f}..{drop['high']:+.2f})"
    off = st["ops_off_accelerator"] if integer_only else "-"
    verdict = "meets" if st["meets"] else "; ".join(st["misses"])
    sizes = f"{st['size_bytes']:,}"
    sqnr = None if st["sqnr_db"] is None else round(st["sqnr_db"], 2)
    return [name, acc, sqnr, sizes, f"{st['num_float_ops']}/{st['num_ops']}", off, verdict]


def plan_line(st: dict, integer_only: bool) -> str:
    """A finished planner step as one line on stderr: the step table's row, its cells named."""
    row = plan_row(st, integer_only)
    if row[1] in ("skipped", "failed"):
        return f"plan step: {row[0]}: {row[1]}: {row[-1]}"
    named = [f"{h} {v}" for h, v in zip(PLAN_HEADERS[1:-1], row[1:-1], strict=True) if v not in ("", "-", None)]
    return f"plan step: {row[0]}: " + ", ".join([*named, f"budget: {row[-1]}"])


def technique_line(event: dict, tty: bool) -> str:
    """A long technique's progress inside a planner step ("plan step: int8 mse+adaround+bias: AdaRound op
    3/52 (CONV_2D conv3)"): on a terminal every op, rewriting its line; in a log about every tenth."""
    n, total = int(event["number"]), int(event["total"])
    if not tty and n != 1 and n != total and n % max(1, total // 10):
        return ""
    text = f"plan step: {event.get('step_name', '')}: {event['technique']} op {n}/{total} ({event['op']})"
    return ("\r" + text[:120].ljust(120)) if tty else text


def reporter(app: App):
    """A progress callback for :func:`edgeq.train.fit`, or None when nothing should be shown."""
    if app.json_mode or app.verbosity < 0:
        return None
    tty = sys.stderr.isatty()

    def report(event: dict) -> None:
        if event["event"] == "plan_step":
            line = printable(plan_line(event["step"], event["integer_only"]))
            click.echo(f"\r{line.ljust(120)}" if tty else line, err=True)  # over a technique's progress line
            return
        if event["event"] == "technique":
            if line := technique_line(event, tty):
                click.echo(printable(line), err=True, nl=not tty)
            return
        if event["event"] == "batch":
            if tty:
                width = 24
                done = int(width * event["step"] / event["steps"])
                bar = "=" * done + " " * (width - done)
                click.echo(
                    f"\repoch {event['epoch']}/{event['epochs']} [{bar}] {event['step']}/{event['steps']} {_metrics(event['logs'])}",
                    err=True,
                    nl=False,
                )
            return
        prefix = "\r" if tty else ""
        click.echo(
            f"{prefix}epoch {event['epoch']}/{event['epochs']}  {_metrics(event['logs'])}".ljust(100 if tty else 0),
            err=True,
        )

    return report


def _elapsed(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 60}:{seconds % 60:02d}" if seconds >= 60 else f"{seconds} s"


class StepTicker:
    """The build's ``say`` on a terminal: each step's line ("[3/12] coral: check and compile ...") shows
    its elapsed time, rewritten every ``interval`` seconds while the step runs, and keeps its final time
    when the next step starts. While another progress display (training's bar) writes, it stays quiet."""

    def __init__(self, stream=None, interval: float = 1.0, clock=time.monotonic) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.interval = interval
        self.clock = clock
        self.text = ""
        self.started = 0.0
        self.quiet = False
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None

    def _draw(self, end: str = "") -> None:
        self.stream.write(f"\r{self.text} {_elapsed(self.clock() - self.started)}{end}")
        self.stream.flush()

    def _tick(self) -> None:
        while not self.stop.wait(self.interval):
            with self.lock:
                if self.text and not self.quiet:
                    self._draw()

    def say(self, text: str) -> None:
        with self.lock:
            if self.text and not self.quiet:
                self._draw("\n")
            elif self.text:
                self.stream.write(f"{self.text} done in {_elapsed(self.clock() - self.started)}\n")
            self.text, self.started, self.quiet = printable(text), self.clock(), False
            self._draw()
        if self.thread is None:
            self.thread = threading.Thread(target=self._tick, name="edgeq-progress", daemon=True)
            self.thread.start()

    def around(self, callback: Callable[[dict], None] | None) -> Callable[[dict], None] | None:
        """``callback`` (another progress display) wrapped so that the ticker keeps quiet while it writes."""
        if callback is None:
            return None

        def wrapped(event: dict) -> None:
            with self.lock:
                if not self.quiet and self.text:
                    self.stream.write("\n")
                self.quiet = True
            callback(event)

        return wrapped

    def close(self) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.join()
        with self.lock:
            if self.text and not self.quiet:
                self._draw("\n")
            self.text = ""


@contextlib.contextmanager
def build_steps(app: App, progress=None) -> Iterator[tuple[Callable[[str], None], object]]:
    """``(say, progress)`` for :func:`edgeq.api.build`: on a terminal, a ticking elapsed time per step;
    elsewhere one line per step (as ``app.say``); nothing when quiet or JSON."""
    if app.json_mode or app.verbosity < 0 or not sys.stderr.isatty():
        yield app.say, progress
        return
    ticker = StepTicker()
    try:
        yield ticker.say, ticker.around(progress)
    finally:
        ticker.close()
