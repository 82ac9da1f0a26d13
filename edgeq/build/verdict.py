"""A target's verdict line (see the build manifest contract): ops on the accelerator, fits the board,
latency on the target, each with what it rests on (compiled or predicted, measured or estimated, and where)."""

from __future__ import annotations


def verdict(row: dict) -> dict:
    """The target's verdict line, from its quantized variant row (see the manifest contract)."""
    check, compiled = row.get("check") or {}, row.get("compile") or {}
    return {
        "accelerator": _accelerator(check, compiled),
        "board": _board(check),
        "fits": _fits(check, compiled),
        "latency_ms": _latency(row, check),
        "instructions": _instructions(row),
    }


def _board(check: dict) -> dict | None:
    """The board the target was judged against (``--board``): its name and core; None without one."""
    board = (check.get("details") or {}).get("board")
    if not isinstance(board, dict) or not board.get("name"):
        return None
    return {"name": board["name"], "core": board.get("core"), "title": board.get("title")}


def _instructions(row: dict) -> dict | None:
    """Instructions per inference where the runner counted them (the generated C under QEMU): measured,
    but instructions, not time and not board cycles; with how many inferences were bit-exact."""
    ins = (row.get("bench_figures") or {}).get("instructions")
    if not isinstance(ins, dict) or ins.get("per_inference_p50") is None:
        return None
    proof = (row.get("bench_figures") or {}).get("proof") or {}
    run = ((proof.get("qemu") or {}).get(ins.get("core")) or {}) if isinstance(proof, dict) else {}
    n = ins.get("num_inferences")
    return {
        "value": ins["per_inference_p50"],
        "min": ins.get("min"),
        "max": ins.get("max"),
        "kind": "measured",
        "where": f"QEMU {ins.get('machine')} ({ins.get('core')})",
        "note": str(ins.get("provenance") or "QEMU instruction count, not board cycles"),
        "bit_exact": run.get("bit_exact"),
        "num_inferences": n,
    }


def _accelerator(check: dict, compiled: dict) -> dict | None:
    """Ops on and off the accelerator: from the compiler where it ran and reported them, else the check's
    prediction; None for a target with no accelerator split (cpu, mcu, android)."""
    details = compiled.get("details") or {}
    if not compiled.get("skipped"):
        counts = details.get("counts")
        if not counts:
            counts = next(
                (m["compiler"]["counts"] for m in details.get("models") or [] if m.get("compiler", {}).get("counts")),
                None,
            )
        if isinstance(counts, dict) and "cpu" in counts and len(counts) == 2:
            return {"on": sum(v for k, v in counts.items() if k != "cpu"), "off": counts["cpu"], "basis": "compiled"}
    counts = check.get("counts") or {}
    if "cpu" in counts and len(counts) == 2:
        return {"on": sum(v for k, v in counts.items() if k != "cpu"), "off": counts["cpu"], "basis": "predicted"}
    return None


def _fits(check: dict, compiled: dict) -> dict | None:
    """Arena and flash against the board: the compile's figures where it measured them (``--runtime c``
    links the firmware), else the MCU check's, whose flash counts an estimated runtime ("estimated")."""
    measured = (compiled.get("details") or {}).get("fit")
    from_compile = isinstance(measured, dict) and "ram" in measured
    fit = measured if from_compile else (check.get("details") or {}).get("fit")
    if not isinstance(fit, dict) or "ram" not in fit or "flash" not in fit or fit["flash"]["needed_bytes"] is None:
        return None
    both_measured = from_compile and fit["ram"].get("measured") and fit["flash"].get("measured")
    return {
        "ram_bytes": fit["ram"]["needed_bytes"],
        # the generated C engine has no arena: its RAM is the ELF's static data and the measured stack
        "ram_what": "RAM (static + stack)" if from_compile else "arena",
        "ram_limit": fit["ram"]["available_bytes"],
        "flash_bytes": fit["flash"]["needed_bytes"],
        "flash_limit": fit["flash"]["available_bytes"],
        "basis": "measured" if both_measured else "estimated",
        "ok": bool(fit["ram"]["fits"] and fit["flash"]["fits"]),
    }


def _latency(row: dict, check: dict) -> dict | None:
    """Latency on the target: measured there; else the board estimate; else the host figure, labelled."""
    lat = row.get("latency_ms") or {}
    p50 = lat.get("p50") if lat.get("p50") is not None else lat.get("mean")  # benchmark_model may print no p50
    est = (check.get("details") or {}).get("latency_estimate") or {}
    on_host = row["latency_where"].startswith("host")
    if est.get("latency_ms") is not None and (row.get("bench_skipped") or on_host):
        from edgeq.targets.mcu import estimate

        where = est.get("board") or "board"
        note = estimate.basis(est) + (f"; measured on {row['latency_where']}: {p50} ms" if p50 is not None else "")
        return {"value": est["latency_ms"], "kind": "estimated", "where": where, "note": note}
    if p50 is None:
        return None
    if row.get("bench_skipped"):
        note = f"not measured on the target ({row['bench_skipped']}); this is the host's figure"
        return {"value": p50, "kind": "measured", "where": "host", "note": note}
    via = row.get("latency_via") or ""
    return {"value": p50, "kind": "measured", "where": row["latency_where"], "note": "", "via": via}
