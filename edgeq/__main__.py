"""``python -m edgeq`` runs the CLI."""

from edgeq.cli import main

main()
