"""Training progress for people: a bar on a terminal, a line per epoch otherwise; on stderr."""

from __future__ import annotations

import sys

import click

from edgeq.cli.app import App


def _metrics(logs: dict) -> str:
    keys = ("loss", "accuracy", "val_loss", "val_accuracy")
    return "  ".join(f"{k} {logs[k]:.4f}" for k in keys if k in logs)


def reporter(app: App):
    """A progress callback for :func:`edgeq.train.fit`, or None when nothing should be shown."""
    if app.json_mode or app.verbosity < 0:
        return None
    tty = sys.stderr.isatty()

    def report(event: dict) -> None:
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
