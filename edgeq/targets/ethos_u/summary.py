"""Reading what Vela wrote: its summary CSV (numbers), its console (operator counts, fallback reasons).

The CSV (``<model>_summary_<system config>.csv``, one header row and one data row) is preferred for
every number it has: memory used (KiB), cycles, inference time (s), inferences per second, MACs. The
CPU and NPU operator counts are only on the console ("CPU operators = n (p%)"), and so are the
"Warning (supported operators)" blocks that say why an op stays on the CPU.
"""

from __future__ import annotations

import csv
import io
import math
import re

_OPERATORS = re.compile(r"^(CPU|NPU) operators = (\d+) \(\s*([\d.]+)%\)", re.M)
_WARNING = re.compile(r"^Warning \(supported operators\) operator: (\w+), ofm: '(.*)'$")
_CONSOLE_MEMORY = re.compile(r"^Total (SRAM|DRAM|On-chip Flash|Off-chip Flash) used\s+([\d.]+) KiB", re.M)
_CONSOLE_TIME = re.compile(r"Batch Inference time\s+([\d.]+) ms,\s+([\d.naif]+) inferences/s")
_CONSOLE_CYCLES = re.compile(
    r"^(NPU|SRAM Access|DRAM Access|On-chip Flash Access|Off-chip Flash Access|Total) cycles\s+(\d+)", re.M
)

MEMORY_KEYS = {
    "sram_memory_used": "sram_used_bytes",
    "dram_memory_used": "dram_used_bytes",
    "on_chip_flash_memory_used": "on_chip_flash_used_bytes",
    "off_chip_flash_memory_used": "off_chip_flash_used_bytes",
}
CYCLE_KEYS = {
    "cycles_npu": "npu",
    "cycles_sram_access": "sram_access",
    "cycles_dram_access": "dram_access",
    "cycles_on_chip_flash_access": "on_chip_flash_access",
    "cycles_off_chip_flash_access": "off_chip_flash_access",
    "cycles_total": "total",
}


def _num(text: str | None) -> float | None:
    if text is None or text.strip() == "":
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def parse_csv(text: str) -> dict:
    """Vela's summary CSV as a flat dict of numbers (KiB turned into bytes, seconds into ms).

    Raises:
        ValueError: not a Vela summary (no header with ``network`` and ``cycles_total``).
    """
    rows = list(csv.DictReader(io.StringIO(text)))
    if not rows or "network" not in rows[0] or "cycles_total" not in rows[0]:
        raise ValueError("not a Vela summary CSV (no network / cycles_total columns)")
    r = rows[-1]
    doc: dict = {
        "network": r.get("network"),
        "accelerator": r.get("accelerator_configuration"),
        "system_config": r.get("system_config"),
        "memory_mode": r.get("memory_mode"),
        "core_clock_hz": _num(r.get("core_clock")),
        "arena_cache_size_bytes": _num(r.get("arena_cache_size")),
        "weights_storage_area": r.get("weights_storage_area"),
        "feature_map_storage_area": r.get("feature_map_storage_area"),
        "batch_size": int(_num(r.get("batch_size")) or 1),
        "passes_before_fusing": _int(r.get("passes_before_fusing")),
        "passes_after_fusing": _int(r.get("passes_after_fusing")),
        "weights_original_bytes": _int(r.get("total_original_weights")),
        "weights_encoded_bytes": _int(r.get("total_npu_encoded_weights")),
        "macs": _int(r.get("nn_macs")),
    }
    for key, out in MEMORY_KEYS.items():
        kib = _num(r.get(key))
        doc[out] = int(round(kib * 1024)) if kib is not None else None
    doc["cycles"] = {out: _int(r.get(key)) for key, out in CYCLE_KEYS.items()}
    seconds = _num(r.get("inference_time"))
    doc["inference_time_ms"] = seconds * 1000.0 if seconds else None
    doc["inferences_per_second"] = _num(r.get("inferences_per_second"))
    return doc


def _int(text: str | None) -> int | None:
    value = _num(text)
    return int(value) if value is not None else None


def parse_console(text: str) -> dict:
    """The console summary: operator counts, per-op fallback warnings, and the numbers as printed."""
    doc: dict = {"operators": {}, "fallbacks": [], "memory_used_bytes": {}, "cycles": {}}
    for kind, n, pct in _OPERATORS.findall(text):
        doc["operators"][kind.lower()] = {"count": int(n), "percent": float(pct)}
    for area, kib in _CONSOLE_MEMORY.findall(text):
        doc["memory_used_bytes"][area] = int(round(float(kib) * 1024))
    for kind, n in _CONSOLE_CYCLES.findall(text):
        doc["cycles"][kind] = int(n)
    m = _CONSOLE_TIME.search(text)
    if m:
        doc["inference_time_ms"] = float(m.group(1))
        doc["inferences_per_second"] = _num(m.group(2))
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        w = _WARNING.match(lines[i].strip())
        if not w:
            i += 1
            continue
        reason: list[str] = []
        i += 1
        while i < len(lines) and lines[i].strip() and not _WARNING.match(lines[i].strip()):
            line = lines[i].strip()
            reason.append(line[len("Reason: ") :] if line.startswith("Reason: ") else line)
            i += 1
        doc["fallbacks"].append({"op": w.group(1), "ofm": w.group(2), "reason": " ".join(reason)})
    return doc


def summarize(csv_text: str | None, console_text: str) -> dict:
    """The CSV's numbers (preferred) with the console's operator counts and fallback reasons."""
    console = parse_console(console_text)
    doc = parse_csv(csv_text) if csv_text else {}
    doc["source"] = "summary CSV + console" if csv_text else "console only (no summary CSV)"
    if not csv_text:
        mem = console["memory_used_bytes"]
        doc.update(
            sram_used_bytes=mem.get("SRAM"),
            dram_used_bytes=mem.get("DRAM"),
            on_chip_flash_used_bytes=mem.get("On-chip Flash"),
            off_chip_flash_used_bytes=mem.get("Off-chip Flash"),
            inference_time_ms=console.get("inference_time_ms"),
            inferences_per_second=console.get("inferences_per_second"),
        )
    doc["vela_operators"] = {
        "cpu": (console["operators"].get("cpu") or {}).get("count"),
        "npu": (console["operators"].get("npu") or {}).get("count"),
    }
    doc["fallbacks"] = console["fallbacks"]
    return doc
