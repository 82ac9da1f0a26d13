"""Quantization stages: post-training quantization and read-back verification."""
