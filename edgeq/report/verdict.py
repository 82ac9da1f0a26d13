"""One verdict per target, and the provenance of every latency figure, read from a build's manifests.

The build writes ``verdict``, ``info`` and ``warnings`` per target and ``latency_kind`` /
``latency_where`` per variant. Manifests from before that carry the same facts in other fields (the
check's counts and details, the compile result, ``latency_on``, ``bench_skipped``); each function here
reads the new field when present and derives it from the old ones otherwise, so a report re-renders
from either. Pure functions of the manifest dicts: the report and ``edgeq build`` both print from here.
"""

from __future__ import annotations

import re

from edgeq.report.fmt import ms

# check messages that state a neutral fact, in manifests written before "info" and "warnings" were split
_INFO = re.compile(r": fits$|bit-exact|^tensor arena:|^flash:|^latency estimate on |^flavour ")
# which counts key names the accelerator, and how people call it
_ACCELERATORS = {"tpu": "Edge TPU", "npu": "NPU"}


def kib(n: float) -> str:
    """Bytes as KiB with one decimal: the unit boards are specified in."""
    return f"{n / 1024:,.1f} KiB"


def short(reason: str, limit: int = 90) -> str:
    """The first clause of a reason, for a one-line verdict; the details section keeps the whole text."""
    first = re.split(r"; |\. ", reason.strip(), maxsplit=1)[0]
    first = re.sub(r"(\S+): \1: ", r"\1: ", first)  # "libx.so: libx.so: cannot open": say it once
    if len(first) <= limit:
        return first
    return first[: limit - 3].rsplit(" ", 1)[0] + "..."


def failed(t: dict) -> bool:
    return t.get("status") == "failed"


def quantized(t: dict) -> dict | None:
    """The variant a target deploys (the last one), or None for a target that failed before any."""
    return t["variants"][-1] if t.get("variants") else None


def _details(t: dict) -> dict:
    v = quantized(t)
    return ((v or {}).get("check") or {}).get("details") or {}


def accelerator(t: dict) -> dict | None:
    """``{"on", "off", "basis", "name"}``: ops on the target's accelerator, or None when it has none."""
    given = (t.get("verdict") or {}).get("accelerator")
    if given:
        return given | {"name": given.get("name") or _accelerator_name(t)}
    v = quantized(t)
    counts = ((v or {}).get("check") or {}).get("counts") or {}
    key = next((k for k in _ACCELERATORS if k in counts), None)
    if key is None:
        return None
    comp = (v or {}).get("compile") or {}
    compiled = bool(comp) and not comp.get("skipped")
    return {
        "on": counts[key],
        "off": counts.get("cpu", 0),
        "basis": "compiled" if compiled else "predicted",
        "name": _ACCELERATORS[key],
    }


def _accelerator_name(t: dict) -> str:
    counts = ((quantized(t) or {}).get("check") or {}).get("counts") or {}
    return next((name for k, name in _ACCELERATORS.items() if k in counts), "accelerator")


def _no_accelerator(t: dict) -> str:
    d = _details(t)
    core = (d.get("board") or {}).get("core") if isinstance(d.get("board"), dict) else None
    if core:
        return f"no accelerator: all ops on the {core_name(core)}"
    if d.get("delegates"):
        return f"delegates {', '.join(map(str, d['delegates']))}: which one runs is decided on the phone"
    return "no accelerator: all ops on the CPU"


def fits(t: dict) -> dict | None:
    """``{"ram_bytes", "ram_limit", "flash_bytes", "flash_limit", "basis", "ok"}`` or None (no board)."""
    given = (t.get("verdict") or {}).get("fits")
    if given:
        return given
    d = _details(t)
    fit = d.get("fit")
    if not isinstance(fit, dict) or "ram" not in fit or "flash" not in fit:
        return None
    return {
        "ram_bytes": fit["ram"]["needed_bytes"],
        "ram_limit": fit["ram"]["available_bytes"],
        "flash_bytes": fit["flash"]["needed_bytes"],
        "flash_limit": fit["flash"]["available_bytes"],
        # the arena is what TFLM allocated on the host; flash adds an estimated runtime size
        "basis": "estimated" if (d.get("flash") or {}).get("runtime_estimate_bytes") else "measured",
        "ok": bool(d.get("fits", fit["ram"]["fits"] and fit["flash"]["fits"])),
    }


def core_name(core: str | None) -> str:
    """A core as its maker writes it: cortex-m4 -> Cortex-M4, cortex-m0plus -> Cortex-M0+."""
    if not core:
        return "?"
    if core.startswith("cortex-"):
        return "Cortex-" + core.removeprefix("cortex-").upper().replace("PLUS", "+")
    return core


def board(t: dict) -> dict | None:
    """``{"name", "core"}``: the board a target was judged against (``--board``), or None."""
    given = (t.get("verdict") or {}).get("board")
    if given:
        return given
    b = _details(t).get("board")
    return {"name": b["name"], "core": b.get("core")} if isinstance(b, dict) and b.get("name") else None


def instructions(t: dict) -> dict | None:
    """``{"value", "kind", "where", "note", "bit_exact", "num_inferences"}``: instructions per inference
    where the target counted them (the generated C under QEMU), or None."""
    given = (t.get("verdict") or {}).get("instructions")
    return given if isinstance(given, dict) and given.get("value") is not None else None


def _speed_in_instructions(ins: dict) -> str:
    exact = (
        f"; bit-exact {ins['bit_exact']}/{ins['num_inferences']}"
        if ins.get("bit_exact") is not None and ins.get("num_inferences")
        else ""
    )
    return f"{ins['value']:,} instructions per inference, {ins['kind']} on {ins['where']} ({ins['note']}){exact}"


def board_estimate(t: dict) -> dict | None:
    """The on-board latency estimate an MCU check made, with how it was made; None if there is none."""
    est = _details(t).get("latency_estimate")
    if not isinstance(est, dict) or est.get("latency_ms") is None:
        return None
    return {
        "value": est["latency_ms"],
        "kind": "estimated",
        "where": str(est.get("board", "the board")),
        "note": _basis(est),
    }


def _basis(est: dict) -> str:
    from edgeq.targets.mcu.estimate import basis

    try:
        return basis(est).removeprefix("estimate; ")
    except KeyError:  # a manifest from another version: say no more than it holds
        return "how it was made is not recorded"


def latency(t: dict) -> dict | None:
    """``{"value", "kind", "where", "note"}``: the deployed variant's latency on the target, or None."""
    given = (t.get("verdict") or {}).get("latency_ms")
    if given:
        return given
    v = quantized(t)
    if v is None:
        return None
    est = board_estimate(t)
    if est:
        return est
    if v.get("bench_skipped"):
        return None
    lat = v.get("latency_ms") or {}
    # benchmark_model on a phone may print a mean and no percentiles
    stat = next((s for s in ("p50", "mean") if lat.get(s) is not None), None)
    if stat is None:
        return None
    return {"value": lat[stat], "kind": v.get("latency_kind") or "measured", "where": where(v), "note": stat}


def where(v: dict) -> str:
    """Where a variant's latency was measured."""
    return v.get("latency_where") or v.get("latency_on") or "-"


def latency_rows(t: dict) -> list[dict]:
    """Every latency figure of a target, one per row, each with its kind and where: the measurements
    of each variant, then the on-board estimate as a row of its own (never in a measured column)."""
    rows = []
    for v in t.get("variants", []):
        lat = v.get("latency_ms") or {}
        if all(lat.get(s) is None for s in ("p50", "p99", "mean")):
            continue
        note = f"{t['target']} not benchmarked: {short(v['bench_skipped'], 100)}" if v.get("bench_skipped") else ""
        rows.append(
            {
                "variant": v["variant"],
                "p50": lat.get("p50"),
                "p99": lat.get("p99"),
                "mean": lat.get("mean"),
                "kind": " ".join(filter(None, (v.get("latency_kind") or "measured", v.get("latency_via")))),
                "where": where(v),
                "note": note,
            }
        )
    given = (t.get("verdict") or {}).get("latency_ms")
    est = given if given and given.get("kind") == "estimated" else board_estimate(t)
    if est:
        v = quantized(t) or {"variant": "-"}
        rows.append(
            {
                "variant": v["variant"],
                "p50": est["value"],
                "p99": None,
                "mean": None,
                "kind": "estimated",
                "where": est["where"],
                "note": est.get("note", ""),
            }
        )
    return rows


def info_and_warnings(t: dict, all_targets: list[dict]) -> tuple[list[str], list[str]]:
    """A target's neutral facts and its problems, kept apart.

    Older manifests list every target's check messages under each target's ``warnings``; there the
    messages are split by what they say, and another target's check messages are dropped.
    """
    if "info" in t and t.get("info") is not None:
        return list(t["info"]), list(t.get("warnings") or [])
    own = set(((quantized(t) or {}).get("check") or {}).get("messages") or [])
    others = {
        m for o in all_targets if o is not t for m in ((quantized(o) or {}).get("check") or {}).get("messages") or []
    } - own
    info: list[str] = []
    warnings: list[str] = []
    for w in t.get("warnings") or []:
        if w in others:
            continue
        (info if _INFO.search(w) else warnings).append(w)
    return info, warnings


def artifacts(t: dict) -> list[str]:
    """What a person deploys, relative to the build folder."""
    name = t["target"]
    if t.get("artifacts"):
        return [f"{name}/{a}" for a in t["artifacts"]]
    v = quantized(t)
    if v is None:
        return []
    out = v.get("output") or ""
    return [f"{name}/{out.rsplit('/', 1)[-1]}"] if out else []


VERDICT_HEADER = ["target", "on the accelerator", "fits the board", "latency on the target", "artifacts"]


def cells(t: dict) -> list[str]:
    """A target's verdict as the cells of VERDICT_HEADER; a failed target's says so, and why."""
    name = t["target"]
    if failed(t):
        err = t.get("error") or {}
        msg = err.get("message") or "no reason recorded"
        hint = f" (fix: {short(err['hint'], 80)})" if err.get("hint") else ""
        return [name, f"FAILED: {short(msg, 120)}{hint}", "-", "-", "-"]
    acc = accelerator(t)
    if acc:
        total = acc["on"] + acc["off"]
        ops = f"{acc['on']} of {total} ops on the {acc.get('name', 'accelerator')} ({acc['basis']})"
    else:
        ops = _no_accelerator(t)
    f = fits(t)
    fit = (
        f"{'fits' if f['ok'] else 'DOES NOT FIT'}: {f.get('ram_what', 'arena')} {kib(f['ram_bytes'])} of "
        f"{kib(f['ram_limit'])} RAM, "
        f"flash {kib(f['flash_bytes'])} of {kib(f['flash_limit'])} ({f['basis']})"
        if f
        else "no board limits to check"
    )
    brd = board(t)
    if f and brd:
        fit = f"{brd['name']} ({core_name(brd.get('core'))}): {fit}"
    lat = latency(t)
    v = quantized(t) or {}
    ins = instructions(t)
    if ins:  # the generated C under QEMU: counted, not timed
        speed = _speed_in_instructions(ins)
    elif lat and lat["kind"] == "estimated":
        basis = (lat.get("note") or "").removeprefix("estimate; ")  # the column already says estimated
        note = f": {short(basis, 110)}" if basis else ""
        speed = f"{ms(lat['value'])} ms, estimated for {lat['where']}{note}"
    elif lat and v.get("bench_skipped"):  # the host's figure stands in: say so, and why not the target's
        speed = f"{ms(lat['value'])} ms p50 measured on {lat['where']}, not on {name} ({short(v['bench_skipped'], 80)})"
    elif lat:
        how = " ".join(filter(None, (lat["kind"], lat.get("via"))))  # "measured over SSH"
        speed = f"{ms(lat['value'])} ms {short(lat.get('note') or 'p50', 100)}, {how} on {lat['where']}"
    elif v.get("bench_skipped"):
        speed = f"not measured on {name}: {short(v['bench_skipped'], 100)}"
    else:
        speed = "not measured"
    arts = artifacts(t)
    return [name, ops, fit, speed, ", ".join(arts) if arts else "none"]


def line(t: dict) -> str:
    """One line a person reads first: does it fail, run on the accelerator, fit, how fast, where it is."""
    name, ops, fit, speed, arts = cells(t)
    if failed(t):
        return f"{name}: {ops}"
    fit = f"{fit}; " if fits(t) else ""  # a target with no board limits has nothing to say here
    return f"{name}: {ops}; {fit}latency {speed}; artifacts: {arts}"
