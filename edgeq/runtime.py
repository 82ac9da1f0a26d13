"""Running .tflite models on the host with the LiteRT interpreter.

Handles the two chores every caller needs: quantizing float inputs for integer-I/O models
(and dequantizing their outputs), and turning LiteRT's failures into typed errors.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgeq.config import THREADS
from edgeq.errors import BadInput, UnsupportedOp, UsageError
from edgeq.outputs import require_single
from edgeq.tfimport import captured_stderr
from edgeq.tflite import parse, read_model_bytes

_INT_RANGES = {np.int8: (-128, 127), np.uint8: (0, 255), np.int16: (-32768, 32767)}


def _dequantize(detail: dict, y: np.ndarray) -> np.ndarray:
    if detail["dtype"] in _INT_RANGES:
        scale, zp = detail["quantization"]
        return (y.astype(np.float32) - zp) * scale
    return y.astype(np.float32, copy=False)


@dataclass
class Session:
    """A LiteRT interpreter with its first input resolved and its outputs named.

    ``outputs`` are the model's output details in signature order, each with ``name`` set to its
    signature key where the model has a signature (the tensor name otherwise; ``tensor_name`` keeps
    the tensor's own). LiteRT's output tensor order is not the model's: outputs are found by name.
    """

    interpreter: Any
    input: dict
    output: dict
    num_threads: int
    log: str = ""
    outputs: list[dict] = field(default_factory=list)

    def quantize_input(self, x: np.ndarray) -> np.ndarray:
        dtype = self.input["dtype"]
        if dtype in _INT_RANGES:
            scale, zp = self.input["quantization"]
            lo, hi = _INT_RANGES[dtype]
            return np.clip(np.round(x / scale + zp), lo, hi).astype(dtype)
        return x.astype(dtype, copy=False)

    def dequantize_output(self, y: np.ndarray) -> np.ndarray:
        return _dequantize(self.output, y)

    def invoke_raw(self, x: np.ndarray) -> np.ndarray:
        """One invoke with an input already in the model's dtype and shape (the first output)."""
        self.interpreter.set_tensor(self.input["index"], x)
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self.output["index"])

    @property
    def output_names(self) -> list[str]:
        return [d["name"] for d in self.outputs]

    def output_ranges(self) -> dict[str, tuple[float, float]]:
        """The float range each integer output can represent (its saturation points), by name."""
        ranges = {}
        for d in self.outputs:
            if d["dtype"] in _INT_RANGES and d["quantization"][0]:
                scale, zp = d["quantization"]
                lo, hi = _INT_RANGES[d["dtype"]]
                ranges[d["name"]] = ((lo - zp) * scale, (hi - zp) * scale)
        return ranges

    def predict_outputs(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """Float outputs for float inputs ``x`` (N, ...) keyed by output name, one batch per invoke."""
        batch = int(self.input["shape"][0]) if len(self.input["shape"]) else 1
        outs: dict[str, list] = {d["name"]: [] for d in self.outputs}
        for start in range(0, len(x), batch):
            chunk = x[start : start + batch]
            n = len(chunk)
            if n < batch:  # pad the last chunk to the model's static batch
                chunk = np.concatenate([chunk, np.repeat(chunk[-1:], batch - n, axis=0)])
            self.interpreter.set_tensor(self.input["index"], self.quantize_input(chunk))
            self.interpreter.invoke()
            for d in self.outputs:
                y = _dequantize(d, self.interpreter.get_tensor(d["index"]))
                # an output without a batch dimension (a detector's count) is one row per invoke
                outs[d["name"]].append(y[:n] if y.ndim and y.shape[0] == batch else y[None])
        return {name: np.concatenate(v, axis=0) for name, v in outs.items()}

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Float outputs of a single-output model for float inputs ``x`` (N, ...).

        Raises:
            BadInput: the model has several outputs (use :meth:`predict_outputs`, which names them).
        """
        require_single(self.output_names, "the model")
        return next(iter(self.predict_outputs(x).values()))

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

    A model read from a file is validated (:mod:`edgeq.tflite.check`) and first run once in a child
    process (:mod:`edgeq.native_probe`), so a file that would crash LiteRT is an error naming it, not a
    dead process. Bytes edgeq's own converter just produced skip the child.

    Raises:
        UsageError: ``num_threads`` outside 1..MAX_THREADS.
        UnsupportedOp: the model uses an op LiteRT cannot resolve (for example a custom op).
        BadInput: the model has a dynamic batch and no ``batch`` was given, or does not load.
    """
    from ai_edge_litert.interpreter import Interpreter

    if not THREADS.ok(num_threads):  # LiteRT sizes its thread pool unchecked: 100000 threads is SIGSEGV
        raise UsageError(f"{num_threads} interpreter threads is out of range", f"use {THREADS.text()} threads")
    if isinstance(model, bytes):
        data = model
        parse(data, origin)
    else:
        data = read_model_bytes(model)
        origin = str(model) if origin == "model" else origin
        parse(data, origin)
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
                    "pin them: edgeq quantize FLOAT_MODEL --input-shape 1x... makes a static model",
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
    outputs = named_outputs(interp)
    return Session(
        interpreter=interp,
        input=interp.get_input_details()[0],
        output=outputs[0],
        num_threads=num_threads,
        log=log.text,
        outputs=outputs,
    )


def named_outputs(interp: Any) -> list[dict]:
    """Output details named by the model's signature where it has exactly one (in signature order),
    by tensor name otherwise; each keeps its tensor name as ``tensor_name``."""
    details = interp.get_output_details()
    by_index = {d["index"]: d for d in details}
    sigs = interp.get_signature_list()
    if len(sigs) == 1:
        key = next(iter(sigs))
        named = interp.get_signature_runner(key).get_output_details()
        if len(named) == len(details) and all(d["index"] in by_index for d in named.values()):
            return [
                by_index[d["index"]] | {"name": name, "tensor_name": by_index[d["index"]]["name"]}
                for name, d in named.items()
            ]
    return [d | {"tensor_name": d["name"]} for d in details]


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
