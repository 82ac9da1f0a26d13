"""Measurement: latency statistics and output fidelity / accuracy."""
