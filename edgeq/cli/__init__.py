"""The command-line interface: a thin layer over :mod:`edgeq.api`."""

from edgeq.cli.main import main

__all__ = ["main"]
