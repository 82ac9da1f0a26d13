"""One TFLM interpreter in a process of its own: ``python -m edgeq.targets.mcu.tflm_worker REQUEST.json``.

TFLM's kernels stop the process (``abort()``) on some models instead of returning an error, so edgeq
never runs them in its own process. The worker constructs the interpreter (which allocates the arena
and prepares every op), optionally runs inputs through it, prints the allocation report, checks the
arena size by allocating exactly that much again, and times invokes. It leaves TFLM's messages on
stderr, between ``@@edgeq-phase NAME`` markers, for the parent to read; its own answer goes to the
response file named in the request. Imports neither TensorFlow nor LiteRT.
"""

from __future__ import annotations

import json
import re
import sys
import traceback

PHASE_MARK = "@@edgeq-phase "
ALLOCATION_TOTAL = re.compile(r"Arena allocation total (\d+) bytes")


def phase(name: str) -> None:
    sys.stderr.write(f"\n{PHASE_MARK}{name}\n")
    sys.stderr.flush()


def _details(d: dict) -> dict:
    q = d.get("quantization_parameters") or {}
    return {
        "shape": [int(x) for x in d["shape"]],
        "dtype": d["dtype"].__name__ if hasattr(d["dtype"], "__name__") else str(d["dtype"]),
        "scales": [float(s) for s in q.get("scales", [])],
        "zero_points": [int(z) for z in q.get("zero_points", [])],
    }


TRY_MARK = "@@edgeq-try "
RESULT_MARK = "@@edgeq-alloc "


def search_arena(allocates, total: int, known_ok: int) -> dict:
    """Check the report's total by allocating exactly that much, and find the real floor if it is short.

    The report counts what stays allocated; kernels also take temporary space while they prepare, which
    can need more than the total (seen with chains of per-channel FULLY_CONNECTED layers). Then the
    smallest arena that allocates, to 16 bytes (TFLM's alignment), is found by bisection between the
    total (fails) and a size that worked. ``allocates(size) -> bool``; the sequence of sizes asked
    depends only on the answers, so a search that was cut short can be replayed from them.
    """
    doc: dict = {"report_total_bytes": total, "allocates_at_report_total": allocates(total)}
    doc["allocates_16_bytes_below_report_total"] = allocates(total - 16)
    if doc["allocates_at_report_total"]:
        doc["arena_bytes"] = total
    else:
        lo, hi = total, total + 256
        while hi < known_ok and not allocates(hi):
            lo, hi = hi, min(known_ok, total + 2 * (hi - total))
        while hi - lo > 16:
            mid = lo + ((hi - lo) // 32) * 16
            if allocates(mid):
                hi = mid
            else:
                lo = mid
        doc["arena_bytes"] = hi
        doc["allocates_16_bytes_below_arena_bytes"] = allocates(hi - 16)
    doc["allocates_at_arena_bytes"] = True  # the total when it allocated, else the smallest size that did
    doc.setdefault("allocates_16_bytes_below_arena_bytes", doc["allocates_16_bytes_below_report_total"])
    return doc


def run_search(req: dict) -> dict:
    """Mode ``arena_search``: every allocation attempt is announced and its answer printed before the
    next, because a failed allocation can leave TFLM's temporary allocator in a state that crashes a
    later one; the parent replays the answers it saw (``known``) in a fresh process."""
    from tflite_micro import runtime

    data = open(req["model"], "rb").read()
    known = {int(k): bool(v) for k, v in (req.get("known") or {}).items()}

    def allocates(size: int) -> bool:
        if size in known:
            return known[size]
        sys.stderr.write(f"\n{TRY_MARK}{size}\n")
        sys.stderr.flush()
        try:
            runtime.Interpreter.from_bytes(data, arena_size=size)
            ok = True
        except RuntimeError:
            ok = False
        sys.stderr.write(f"\n{RESULT_MARK}{size} {int(ok)}\n")
        sys.stderr.flush()
        known[size] = ok
        return ok

    phase("arena_search")
    doc = search_arena(allocates, int(req["report_total"]), int(req["known_ok"]))
    phase("done")
    return {"ok": True, "phase": "done", "arena_check": doc}


def run(req: dict) -> dict:
    import numpy as np
    from tflite_micro import runtime

    from edgeq.tfimport import captured_stderr

    resp: dict = {"ok": False, "phase": "construct"}
    data = open(req["model"], "rb").read()
    phase("construct")
    try:
        keep = [int(i) for i in req.get("preserve_tensors") or []]  # tensors to return after each invoke
        config = (
            runtime.InterpreterConfig.kPreserveAllTensors if keep else runtime.InterpreterConfig.kAllocationRecording
        )
        interp = runtime.Interpreter.from_bytes(data, arena_size=int(req["arena_size"]), intrepreter_config=config)
    except (RuntimeError, ValueError) as exc:
        resp["error"] = str(exc)
        return resp
    resp["inputs"] = [_details(interp.get_input_details(i)) for i in range(req["num_inputs"])]
    resp["outputs"] = [_details(interp.get_output_details(i)) for i in range(req["num_outputs"])]

    x = None
    if req.get("inputs_npz"):
        phase("invoke")
        resp["phase"] = "invoke"
        with np.load(req["inputs_npz"]) as f:
            x = [f[f"input_{i}"] for i in range(req["num_inputs"])]
        outs: list[list] = [[] for _ in range(req["num_outputs"])]
        kept: dict[int, list] = {i: [] for i in keep}
        try:
            for s in range(len(x[0])):
                for i, arr in enumerate(x):
                    interp.set_input(arr[s], i)
                interp.invoke()
                for o in range(req["num_outputs"]):
                    outs[o].append(np.array(interp.get_output(o), copy=True))
                for i in keep:
                    kept[i].append(np.array(interp.GetTensor(i, 0)["tensor_data"], copy=True))
        except (RuntimeError, ValueError) as exc:
            resp["error"] = str(exc)
            return resp
        arrays = {f"output_{o}": np.stack(v) for o, v in enumerate(outs)}
        arrays.update({f"tensor_{i}": np.stack(v) for i, v in kept.items()})
        np.savez(req["outputs_npz"], allow_pickle=False, **arrays)
        if keep:  # TFLM's allocation report needs the recording allocator, which this mode replaces
            phase("done")
            resp.update(phase="done", ok=True)
            return resp

    phase("allocations")
    resp["phase"] = "allocations"
    with captured_stderr() as cap:
        interp.print_allocations()
    sys.stderr.write(cap.text)
    resp["allocation_report"] = cap.text
    m = ALLOCATION_TOTAL.search(cap.text)
    total = int(m.group(1)) if m else None
    resp["arena_total_bytes"] = total

    bench = req.get("bench")
    if bench:
        from edgeq.bench.timing import measure

        phase("bench")
        resp["phase"] = "bench"
        if x is None:
            with np.load(req["bench_inputs_npz"]) as f:
                x = [f[f"input_{i}"] for i in range(req["num_inputs"])]
        for i, arr in enumerate(x):
            interp.set_input(arr[0], i)
        stats = measure(interp.invoke, int(bench["num_runs"]), int(bench["warmup_runs"]))
        resp["timing"] = stats.to_dict()
    phase("done")
    resp["phase"] = "done"
    resp["ok"] = True
    return resp


def main(argv: list[str]) -> int:
    with open(argv[1]) as fh:
        req = json.load(fh)
    try:
        resp = run_search(req) if req.get("mode") == "arena_search" else run(req)
    except Exception:  # reported to the parent, which raises the typed error
        resp = {"ok": False, "phase": "worker", "error": traceback.format_exc(limit=5)}
    with open(req["response"], "w") as fh:
        json.dump(resp, fh)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
