"""Running .tflite models on the host with the LiteRT interpreter.

Handles the two chores every caller needs: quantizing float inputs for integer-I/O models
(and dequantizing their outputs), and turning LiteRT's failures into typed errors.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgeq.errors import BadInput, UnsupportedOp, UsageError
from edgeq.flatbuffer import read_model_bytes, verify_bytes
from edgeq.tfimport import captured_stderr

_INT_RANGES = {np.int8: (-128, 127), np.uint8: (0, 255), np.int16: (-32768, 32767)}
# LiteRT sizes its thread pool from num_threads unchecked; 100000 threads ends in SIGSEGV.
MAX_THREADS = 64


@dataclass
class Session:
    """A LiteRT interpreter with its first input and output resolved."""

    interpreter: Any
    input: dict
    output: dict
    num_threads: int
    log: str = ""

    def quantize_input(self, x: np.ndarray) -> np.ndarray:
        dtype = self.input["dtype"]
        if dtype in _INT_RANGES:
            scale, zp = self.input["quantization"]
            lo, hi = _INT_RANGES[dtype]
            return np.clip(np.round(x / scale + zp), lo, hi).astype(dtype)
        return x.astype(dtype, copy=False)

    def dequantize_output(self, y: np.ndarray) -> np.ndarray:
        if self.output["dtype"] in _INT_RANGES:
            scale, zp = self.output["quantization"]
            return (y.astype(np.float32) - zp) * scale
        return y.astype(np.float32, copy=False)

    def invoke_raw(self, x: np.ndarray) -> np.ndarray:
        """One invoke with an input already in the model's dtype and shape."""
        self.interpreter.set_tensor(self.input["index"], x)
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self.output["index"])

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Float outputs for float inputs ``x`` (N, ...), one sample per invoke."""
        batch = int(self.input["shape"][0]) if len(self.input["shape"]) else 1
        outs = []
        for start in range(0, len(x), batch):
            chunk = x[start : start + batch]
            n = len(chunk)
            if n < batch:  # pad the last chunk to the model's static batch
                chunk = np.concatenate([chunk, np.repeat(chunk[-1:], batch - n, axis=0)])
            y = self.invoke_raw(self.quantize_input(chunk))
            outs.append(self.dequantize_output(y)[:n])
        return np.concatenate(outs, axis=0)

    def input_range(self) -> tuple[float, float] | None:
        """The float range an integer input can represent, a fact about what the model expects."""
        dtype = self.input["dtype"]
        if dtype not in _INT_RANGES:
            return None
        scale, zp = self.input["quantization"]
        if not scale:
            return None
        lo, hi = _INT_RANGES[dtype]
        return (lo - zp) * scale, (hi - zp) * scale


def open_session(
    model: bytes | str,
    num_threads: int = 1,
    batch: int | None = None,
    origin: str = "model",
    delegates: list | None = None,
) -> Session:
    """Create, resize (dynamic batch) and allocate a LiteRT interpreter.

    A model read from a file is validated (:mod:`edgeq.tflite_check`) and first run once in a child
    process (:mod:`edgeq.native_probe`), so a file that would crash LiteRT is an error naming it, not a
    dead process. Bytes edgeq's own converter just produced skip the child.

    Raises:
        UsageError: ``num_threads`` outside 1..MAX_THREADS.
        UnsupportedOp: the model uses an op LiteRT cannot resolve (for example a custom op).
        BadInput: the model has a dynamic batch and no ``batch`` was given, or does not load.
    """
    from ai_edge_litert.interpreter import Interpreter

    if not 1 <= num_threads <= MAX_THREADS:
        raise UsageError(f"{num_threads} interpreter threads is out of range", f"use 1 to {MAX_THREADS} threads")
    if isinstance(model, bytes):
        data = model
        verify_bytes(data, origin)
    else:
        data = read_model_bytes(model)
        origin = str(model) if origin == "model" else origin
        verify_bytes(data, origin)
        from edgeq.native_probe import probe

        failure = probe(data, origin, batch=batch)
        if failure is not None:
            raise _runtime_error(RuntimeError(failure), origin)
    with captured_stderr() as log:
        try:
            interp = Interpreter(model_content=data, num_threads=num_threads, experimental_delegates=delegates or None)
            inp = interp.get_input_details()[0]
            sig = [int(d) for d in inp.get("shape_signature", inp["shape"])]
            if any(d < 0 for d in sig[1:]):
                raise BadInput(
                    f"{origin} input {inp['name']!r} has dynamic dimensions {sig}",
                    "re-export the model with a fixed input size",
                )
            if sig and sig[0] < 0:
                if batch is None:
                    raise BadInput(
                        f"{origin} has a dynamic batch (input {inp['name']!r} shape {sig})", "pass --batch 1"
                    )
                interp.resize_tensor_input(inp["index"], [batch, *sig[1:]], strict=True)
            interp.allocate_tensors()
        except (BadInput, UnsupportedOp):
            raise
        except (RuntimeError, ValueError) as exc:
            raise _runtime_error(exc, origin) from exc
    return Session(
        interpreter=interp,
        input=interp.get_input_details()[0],
        output=interp.get_output_details()[0],
        num_threads=num_threads,
        log=log.text,
    )


def _runtime_error(exc: Exception, origin: str) -> Exception:
    text = str(exc)
    m = re.search(r"unresolved custom op: ([\w.\-/]+)", text) or re.search(
        r"Didn't find op for builtin opcode '(\w+)'", text
    )
    if m:
        return UnsupportedOp(
            f"{origin} uses op {m.group(1).rstrip('.')!r} that the LiteRT interpreter cannot resolve",
            "run it where that op is registered, or rebuild the model without it",
            details={"op": m.group(1).rstrip(".")},
        )
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    return BadInput(f"LiteRT cannot run {origin}: {first[:300]}", "check the model with edgeq inspect")
