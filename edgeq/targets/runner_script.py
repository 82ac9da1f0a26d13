"""A self-contained benchmark runner, copied to a remote board and run there over SSH.

It must run on a Coral Dev Board or a Raspberry Pi with nothing of edgeq installed: Python 3,
numpy and one TFLite interpreter (ai_edge_litert, tflite_runtime or tensorflow). It prints one
JSON document: the first invoke apart (it loads parameters onto an Edge TPU), then the timed
runs after the warm-up. Keep it free of edgeq imports.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from typing import Any


def _interpreter_module() -> tuple[Any, str]:
    for name in ("ai_edge_litert.interpreter", "tflite_runtime.interpreter"):
        try:
            return __import__(name, fromlist=["Interpreter"]), name
        except ImportError:
            continue
    import tensorflow as tf  # last resort

    return tf.lite, "tensorflow.lite"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="time a .tflite model on this machine")
    parser.add_argument("--model", required=True)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--delegate", default=None, help="delegate library, e.g. libedgetpu.so.1")
    parser.add_argument("--device", default=None, help="delegate device option, e.g. usb:0 or pci:0")
    args = parser.parse_args(argv)

    import numpy as np

    module, module_name = _interpreter_module()
    delegates = []
    if args.delegate:
        options = {"device": args.device} if args.device else {}
        try:
            delegates = [module.load_delegate(args.delegate, options)]
        except (ValueError, OSError, RuntimeError) as exc:
            print(json.dumps({"error": f"cannot load delegate {args.delegate} ({exc})", "kind": "delegate"}))
            return 5
    interp = module.Interpreter(
        model_path=args.model, experimental_delegates=delegates or None, num_threads=args.threads
    )
    interp.allocate_tensors()
    inp = interp.get_input_details()[0]
    rng = np.random.default_rng(12345)
    if np.issubdtype(inp["dtype"], np.integer):
        info = np.iinfo(inp["dtype"])
        x = rng.integers(info.min, info.max, size=inp["shape"], endpoint=True).astype(inp["dtype"])
    else:
        x = rng.standard_normal(inp["shape"]).astype(inp["dtype"])

    def invoke() -> None:
        interp.set_tensor(inp["index"], x)
        interp.invoke()

    clock = time.perf_counter_ns
    t0 = clock()
    invoke()
    first_ms = (clock() - t0) / 1e6
    for _ in range(args.warmup):
        invoke()
    samples = []
    for _ in range(args.runs):
        t0 = clock()
        invoke()
        samples.append((clock() - t0) / 1e6)
    print(
        json.dumps(
            {
                "first_invoke_ms": first_ms,
                "samples_ms": samples,
                "warmup_runs": args.warmup,
                "num_threads": args.threads,
                "delegate": args.delegate,
                "device": args.device,
                "runtime": module_name,
                "machine": platform.machine(),
                "node": platform.node(),
                "python": platform.python_version(),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
