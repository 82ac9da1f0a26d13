"""Fuzz the .tflite reader: validation (edgeq.tflite.check), LiteRT's verifier and ModelInfo building
(edgeq.tflite.model), the one owner of the format.

    EDGEQ_FUZZ_SECONDS=600 python fuzz/fuzz_tflite.py

Seeds: the adversarial suite's valid models and its corrupt variants. Anything but a BadInput is a finding.
"""

from __future__ import annotations

import sys
from pathlib import Path

import atheris

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

# edgeq imports these lazily: import them here so that they are instrumented too
with atheris.instrument_imports(include=["edgeq", "flatbuffers", "ai_edge_litert.schema_py_generated"]):
    import ai_edge_litert.schema_py_generated  # noqa: F401

    from edgeq import tflite
    from edgeq.tflite import check, model  # noqa: F401

from common import main  # noqa: E402


def target(data: bytes) -> None:
    tflite.clear_cache()  # every input parsed, not answered from the cache (the corpus repeats inputs)
    tflite.read_bytes(data, origin="fuzz.tflite")


def seeds() -> list[bytes]:
    from tests.adversarial.mutate import SEEDS, corrupt_models

    small = [p for p in SEEDS if p.stat().st_size < 65536]
    return [p.read_bytes() for p in small] + [d for _, d in corrupt_models(seeds=tuple(small)) if len(d) < 65536]


if __name__ == "__main__":
    main("tflite", target, seeds(), [])
