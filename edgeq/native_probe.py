"""Run a .tflite once with LiteRT in a child process, so a native crash cannot take edgeq down.

:func:`edgeq.tflite.check.validate` catches the inconsistencies we know of before LiteRT reads a file;
this is the net for the ones we do not: the child builds the interpreter, allocates and invokes once
on the same seeded input ``bench`` uses, and reports back. A child killed by a signal becomes a
:class:`~edgeq.errors.BadInput` naming the model and the signal; LiteRT's own errors come back as text
for :mod:`edgeq.runtime` to type. Probes are remembered per model content, so a command that opens
the same model twice pays for one child.

    python -m edgeq.native_probe MODEL.tflite BATCH auto|ref     (prints one JSON line)
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from edgeq import procs
from edgeq.errors import BadInput

DEFAULT_TIMEOUT_S = 120.0
_PASSED: set[tuple[str, int | None, bool]] = set()


def seeded_input(dtype: np.dtype, shape: tuple[int, ...]) -> np.ndarray:
    """The input ``bench`` feeds a model: seeded, spanning an integer dtype's range, standard normal for floats."""
    rng = np.random.default_rng(0)
    # drawn in the model's dtype (not int64/float64 cast down): a large input costs its own size, not 8x
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return rng.integers(info.min, info.max, size=shape, endpoint=True, dtype=dtype)
    if dtype == np.bool_:
        return rng.integers(0, 1, size=shape, endpoint=True, dtype=np.uint8).astype(dtype)
    return rng.standard_normal(shape, dtype=np.float32).astype(dtype, copy=False)


def probe(
    data: bytes,
    origin: str,
    batch: int | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    reference_kernels: bool = False,
) -> str | None:
    """Load, allocate and invoke ``data`` once in a child process (with LiteRT's reference kernels
    when ``reference_kernels``, as MCU parity runs them).

    Returns:
        None when the model ran, else LiteRT's error text (the caller types it).

    Raises:
        BadInput: the child was killed by a signal (a native crash) or did not finish in ``timeout_s``.
    """
    key = (hashlib.sha256(data).hexdigest(), batch, reference_kernels)
    if key in _PASSED:
        return None
    with tempfile.TemporaryDirectory(prefix="edgeq-probe-") as tmp:
        path = Path(tmp) / "model.tflite"
        path.write_bytes(data)
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(__file__).resolve().parent.parent), *sys.path]))
        try:
            proc = procs.run(
                [
                    sys.executable,
                    "-m",
                    "edgeq.native_probe",
                    str(path),
                    "" if batch is None else str(batch),
                    "ref" if reference_kernels else "auto",
                ],
                timeout_s,
                env=env,
            )
        except subprocess.TimeoutExpired as exc:
            raise BadInput(
                f"LiteRT did not finish loading and running {origin} within {timeout_s:g} s",
                "check the model with edgeq inspect; re-export it if it is damaged",
            ) from exc
    if proc.returncode < 0:
        name = _signal_name(-proc.returncode)
        raise BadInput(
            f"LiteRT crashed ({name}) loading and running {origin}: the model is corrupt or uses an op in a way "
            "the runtime does not guard against",
            "re-export the model with the TFLite converter; edgeq inspect shows what it holds",
            details={"signal": name},
        )
    lines = proc.stdout.decode(errors="replace").strip().splitlines()
    try:
        doc = json.loads(lines[-1])
    except (IndexError, ValueError):
        tail = proc.stderr.decode(errors="replace").strip().splitlines()[-1:] or [f"exit status {proc.returncode}"]
        raise BadInput(
            f"LiteRT stopped while loading and running {origin}: {tail[0][:300]}",
            "re-export the model with the TFLite converter; edgeq inspect shows what it holds",
        ) from None
    if doc.get("ok"):
        _PASSED.add(key)
        return None
    return str(doc.get("error") or "LiteRT failed")


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _limit_memory() -> None:
    """Cap this child's address space at what it maps now plus twice the activation budget, so a model
    whose shapes grow past the budget at allocation (LiteRT propagates them from the inputs) fails here
    with an error, not by the machine's OOM killer; the parent allocates only models that passed."""
    import resource

    from edgeq.tflite import MAX_ACTIVATION_BYTES

    with open("/proc/self/statm") as fh:
        mapped = int(fh.read().split()[0]) * resource.getpagesize()
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    want = mapped + 2 * MAX_ACTIVATION_BYTES
    if soft == resource.RLIM_INFINITY or want < soft:
        resource.setrlimit(resource.RLIMIT_AS, (want, hard))


def _child(path: str, batch: int | None, reference_kernels: bool = False) -> dict:
    """What the child does: the same steps as :func:`edgeq.runtime.open_session`, then one invoke."""
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    _limit_memory()
    try:
        kind = OpResolverType.BUILTIN_REF if reference_kernels else OpResolverType.AUTO
        interp = Interpreter(model_path=path, num_threads=1, experimental_op_resolver_type=kind)
        details = interp.get_input_details()
        for d in details:
            sig = [int(x) for x in d.get("shape_signature", d["shape"])]
            if sig and sig[0] < 0 and batch is not None and all(x >= 0 for x in sig[1:]):
                interp.resize_tensor_input(d["index"], [batch, *sig[1:]], strict=True)
        interp.allocate_tensors()
        for d in interp.get_input_details():
            if any(int(x) < 0 for x in d.get("shape_signature", d["shape"])) and batch is None:
                return {"ok": True}  # open_session refuses dynamic shapes itself; nothing to run
            interp.set_tensor(d["index"], seeded_input(np.dtype(d["dtype"]), tuple(int(x) for x in d["shape"])))
        interp.invoke()
        for d in interp.get_output_details():
            interp.get_tensor(d["index"])
    except (RuntimeError, ValueError) as exc:
        return {"ok": False, "error": str(exc)}
    except MemoryError:
        return {"ok": False, "error": "it needs more memory than edgeq's activation budget allows"}
    return {"ok": True}


if __name__ == "__main__":
    batch_arg = int(sys.argv[2]) if len(sys.argv) > 2 and sys.argv[2] else None
    result = _child(sys.argv[1], batch_arg, reference_kernels=len(sys.argv) > 3 and sys.argv[3] == "ref")
    sys.stdout.write(json.dumps(result) + "\n")
