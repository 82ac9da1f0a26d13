"""TFLM outputs against LiteRT outputs on the same seeded inputs.

Two LiteRT references: its reference kernels (``BUILTIN_REF``, the same arithmetic TFLM's reference
kernels implement, so int8 is expected bit-exact) and its default optimized kernels (what ``edgeq eval``
and ``edgeq bench --target cpu`` run; these may round differently by one step). Differences are reported
in output steps (quantized units) and in real units.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from edgeq.errors import BadInput

_INT_RANGES = {"int8": (-128, 127), "uint8": (0, 255), "int16": (-32768, 32767)}
DEFAULT_SAMPLES = 8
DEFAULT_SEED = 0
CHUNK_BYTES = 16 * 1024 * 1024  # samples held at once by a chunked proof
DRAW_CHUNK = 1 << 16  # values drawn at once (even: see _draw); 512 KiB as int64


def _draw(rng: np.random.Generator, dtype: str, shape: tuple[int, ...]) -> np.ndarray:
    """Seeded samples in ``dtype``, drawn :data:`DRAW_CHUNK` values at a time: memory is the result plus one
    chunk, never an int64 or float64 array of the result's size.

    The values are those of one int64 (float64) draw cast to ``dtype``: each chunk is an even number of
    values, and numpy's bounded integers over these power-of-two ranges take exactly one 32-bit half of a
    64-bit word per value (no rejections), so a chunked draw continues the stream where one draw would."""
    out = np.empty(shape, dtype=dtype)
    flat = out.reshape(-1)
    for i in range(0, flat.size, DRAW_CHUNK):
        k = min(DRAW_CHUNK, flat.size - i)
        if dtype in _INT_RANGES:
            lo, hi = _INT_RANGES[dtype]
            flat[i : i + k] = rng.integers(lo, hi, size=k, endpoint=True)
        elif dtype in ("float32", "float16"):
            flat[i : i + k] = rng.standard_normal(k)
        elif dtype == "bool":
            flat[i : i + k] = rng.integers(0, 1, size=k, endpoint=True).astype(bool)
        else:
            flat[i : i + k] = rng.integers(0, 8, size=k)
    return out


def make_inputs(info, num_samples: int = DEFAULT_SAMPLES, seed: int = DEFAULT_SEED) -> list[np.ndarray]:
    """One array per model input, shaped (num_samples, *input shape), in the input's dtype: uniform over the
    integer range for integer inputs, standard normal for float inputs."""
    rng = np.random.default_rng(seed)
    return [_draw(rng, t.dtype, (num_samples, *[max(d, 1) for d in t.shape])) for t in info.inputs]


def sample_chunks(
    tensor, num_samples: int, seed: int = DEFAULT_SEED, chunk_bytes: int | None = None
) -> Iterator[np.ndarray]:
    """``num_samples`` seeded samples of one input ``tensor`` (as :func:`make_inputs` draws them), yielded as
    (k, *shape) arrays of at most ``chunk_bytes`` (default :data:`CHUNK_BYTES`; at least one sample, two
    when an odd-sized sample is larger): a proof over many samples holds one chunk at a time."""
    rng = np.random.default_rng(seed)
    shape = tuple(max(d, 1) for d in tensor.shape)
    per_sample = math.prod(shape) * np.dtype(tensor.dtype).itemsize
    step = max(1, (CHUNK_BYTES if chunk_bytes is None else chunk_bytes) // max(per_sample, 1))
    if step % 2 and math.prod(shape) % 2:  # an even number of values per draw keeps one draw's stream (_draw)
        step = step - 1 if step > 1 else 2
    for start in range(0, num_samples, step):
        yield _draw(rng, tensor.dtype, (min(step, num_samples - start), *shape))


def inputs_description(info, num_samples: int, seed: int) -> str:
    kinds = sorted({t.dtype for t in info.inputs})
    return (
        f"{num_samples} seeded random samples (seed {seed}; integer inputs uniform over their range, "
        f"float inputs standard normal; input dtypes {', '.join(kinds)})"
    )


def litert_outputs(model_path: str, inputs: list[np.ndarray], reference_kernels: bool) -> list[np.ndarray]:
    """LiteRT's outputs for ``inputs`` (one invoke per sample)."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    from edgeq.native_probe import probe
    from edgeq.tfimport import captured_stderr

    # LiteRT runs here in this process: let a child run the model first, so a file that would crash
    # LiteRT is a BadInput naming it (TFLM accepting a model says nothing about LiteRT's kernels)
    failure = probe(Path(model_path).read_bytes(), str(model_path), batch=1, reference_kernels=reference_kernels)
    kind = OpResolverType.BUILTIN_REF if reference_kernels else OpResolverType.AUTO
    try:
        if failure is not None:
            raise RuntimeError(failure)
        with captured_stderr():
            interp = Interpreter(model_content=Path(model_path).read_bytes(), experimental_op_resolver_type=kind)
            interp.allocate_tensors()
        ins, outs = interp.get_input_details(), interp.get_output_details()
        collected: list[list[np.ndarray]] = [[] for _ in outs]
        for s in range(len(inputs[0])):
            for d, x in zip(ins, inputs, strict=True):
                interp.set_tensor(d["index"], x[s])
            interp.invoke()
            for o, d in enumerate(outs):
                collected[o].append(np.array(interp.get_tensor(d["index"]), copy=True))
    except (RuntimeError, ValueError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise BadInput(
            f"TFLM runs {model_path} but LiteRT, the parity reference, cannot: {first[:300]}",
            "the model's shapes or options do not fit its ops; re-export it with the TFLite converter",
        ) from exc
    return [np.stack(c) for c in collected]


def compare(tflm: list[np.ndarray], litert: list[np.ndarray], info) -> dict:
    """Bit-exactness and the size of any difference, over every output."""
    per_output = []
    for o, (a, b) in enumerate(zip(tflm, litert, strict=True)):
        t = info.outputs[o]
        a64 = a.astype(np.float64).reshape(b.shape)
        diff = np.abs(a64 - b.astype(np.float64))
        scale = t.scales[0] if t.scales else None
        row = {
            "output": t.name,
            "dtype": t.dtype,
            "num_elements": int(diff.size),
            "num_different": int(np.count_nonzero(diff)),
            "max_abs_diff": float(diff.max()) if diff.size else 0.0,
        }
        if t.dtype in _INT_RANGES:
            row["max_abs_diff_steps"] = int(diff.max()) if diff.size else 0
            if scale:
                row["max_abs_diff_real"] = float(diff.max() * scale) if diff.size else 0.0
        per_output.append(row)
    return {
        "bit_exact": all(r["num_different"] == 0 for r in per_output),
        "max_abs_diff": max((r["max_abs_diff"] for r in per_output), default=0.0),
        "num_different": sum(r["num_different"] for r in per_output),
        "num_elements": sum(r["num_elements"] for r in per_output),
        "outputs": per_output,
    }


def parity(model_path: str, info, inputs: list[np.ndarray], tflm_outputs: list[np.ndarray], seed: int) -> dict:
    """Compare TFLM's outputs with LiteRT's reference and optimized kernels on the same inputs."""
    against = {
        label: compare(tflm_outputs, litert_outputs(model_path, inputs, ref), info)
        for label, ref in (("litert_reference_kernels", True), ("litert_optimized_kernels", False))
    }
    return {
        "num_samples": int(len(inputs[0])) if inputs else 0,
        "inputs": inputs_description(info, int(len(inputs[0])) if inputs else 0, seed),
        "against": against,
        "bit_exact": against["litert_reference_kernels"]["bit_exact"],
    }


def summary(doc: dict) -> str:
    """One line per reference, e.g. 'bit-exact' or '12 of 80 elements differ, at most 1 step'."""
    parts = []
    for label, cmp in doc["against"].items():
        who = label.replace("litert_", "LiteRT ").replace("_", " ")
        if cmp["bit_exact"]:
            parts.append(f"bit-exact with {who}")
        else:
            steps = [r.get("max_abs_diff_steps") for r in cmp["outputs"] if r.get("max_abs_diff_steps") is not None]
            size = f"at most {max(steps)} step(s)" if steps else f"max |diff| {cmp['max_abs_diff']:.3g}"
            parts.append(f"{cmp['num_different']} of {cmp['num_elements']} output elements differ from {who} ({size})")
    return "; ".join(parts)
