"""The verdict on each target of a build, judged by one function from the manifest's typed findings.

The build writes a target's merged :class:`~edgeq.findings.Findings` (placement, fit against the board,
latency and instructions with their basis, messages with their level) under ``findings``, and one row
per variant with what was measured on the host. :func:`judge` reads those and nothing of a target's
private data; the report and ``edgeq build`` both print the :class:`Verdict` it returns. A manifest from
an older edgeq (no ``findings``) is not re-derived from what it held: its verdict says to rebuild.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from edgeq.findings import Basis, Figure, Findings
from edgeq.report.fmt import ms

NOT_RECORDED = "not recorded (manifest from an older edgeq: rebuild)"
VERDICT_HEADER = ["target", "fidelity", "on the accelerator", "fits the board", "latency on the target", "artifacts"]


def kib(n: float) -> str:
    """Bytes as KiB with one decimal: the unit boards are specified in."""
    return f"{n / 1024:,.1f} KiB"


def count(n: float) -> str:
    """A count with thousands separators, without a trailing .0."""
    return f"{int(n):,}" if float(n).is_integer() else f"{n:,}"


def short(reason: str, limit: int = 90) -> str:
    """The first clause of a reason, for a one-line verdict; the details section keeps the whole text."""
    first = re.split(r"; |\. ", reason.strip(), maxsplit=1)[0]
    first = re.sub(r"(\S+): \1: ", r"\1: ", first)  # "libx.so: libx.so: cannot open": say it once
    if len(first) <= limit:
        return first
    return first[: limit - 3].rsplit(" ", 1)[0] + "..."


def failed(t: Mapping[str, Any]) -> bool:
    return t.get("status") == "failed"


def quantized(t: Mapping[str, Any]) -> dict | None:
    """The variant a target deploys (the last one), or None for a target that failed before any."""
    variants = t.get("variants") or []
    return variants[-1] if variants else None


@dataclass(frozen=True)
class LatencyRow:
    """One latency figure of a target: a variant's measurement (and where), or the estimate for the target."""

    variant: str
    p50: float | None
    p99: float | None
    mean: float | None
    kind: str  # "measured", "measured over SSH", "estimated", "predicted"
    where: str
    note: str = ""

    @property
    def measured(self) -> bool:
        return self.kind.startswith(Basis.MEASURED.value)


@dataclass(frozen=True)
class Verdict:
    """A target judged: what runs where, whether it fits, how fast, and what it says, each typed.

    Args:
        target: the target's name.
        findings: what its stages found, merged; None for a manifest from an older edgeq (nothing judged).
        failure: why the target failed ("message (fix: hint)"); "" when it built.
        host_latency: the deployed variant's figure measured on this machine, when the target has no
            latency of its own (its benchmark could not run there): shown as the host's, never as the target's.
        not_benchmarked: why the target's own benchmark did not run; "" when it did.
        latency_rows: every latency figure, measured ones first, then the target's estimate.
        artifacts: what a person deploys, relative to the build folder.
        fidelity: whether the deployed model still works, from its variant row (:func:`fidelity`).
    """

    target: str
    findings: Findings | None
    failure: str = ""
    host_latency: Figure | None = None
    not_benchmarked: str = ""
    latency_rows: tuple[LatencyRow, ...] = ()
    artifacts: tuple[str, ...] = ()
    fidelity: str = "fidelity not measured (no evaluation data)"

    @property
    def failed(self) -> bool:
        return bool(self.failure)

    def notes(self) -> list[str]:
        """The target's neutral facts (INFO messages)."""
        return self.findings.infos() if self.findings else []

    def warnings(self) -> list[str]:
        """The target's problems (WARNING and ERROR messages)."""
        return self.findings.warnings() if self.findings else []

    def cells(self) -> list[str]:
        """The verdict as the cells of VERDICT_HEADER; a failed target's says so, and why."""
        arts = ", ".join(self.artifacts) if self.artifacts else "none"
        if self.failure:
            return [self.target, f"FAILED: {self.failure}", "-", "-", "-", "-"]
        if self.findings is None:
            return [self.target, "-", NOT_RECORDED, "-", "-", arts]
        f = self.findings
        return [self.target, self.fidelity, _ops(f), _fit(f), self._speed(f), arts]

    def line(self) -> str:
        """One line a person reads first: does it fail, does the model still work, does it run on the
        accelerator, fit, how fast, where it is."""
        name, fid, ops, fit, speed, arts = self.cells()
        if self.failure:
            return f"{name}: {fid}"
        if self.findings is None:
            return f"{name}: {ops}; artifacts: {arts}"
        fit = f"{fit}; " if self.findings.fit else ""  # a target with no board limits has nothing to say here
        return f"{name}: {fid}; {ops}; {fit}latency {speed}; artifacts: {arts}"

    def _speed(self, f: Findings) -> str:
        name = self.target
        if f.instructions is not None:  # the generated C under QEMU: counted, not timed
            return _instructions(f)
        lat = f.latency
        if lat is not None and lat.basis != Basis.MEASURED:
            return f"{ms(lat.value)} ms, {lat.basis.value} for {lat.where or name}{_how(lat)}"
        if lat is not None:
            how = " ".join(filter(None, (lat.basis.value, lat.via)))  # "measured over SSH"
            return f"{ms(lat.value)} ms {short(lat.how or 'p50', 100)}, {how} on {lat.where or name}"
        host = self.host_latency
        if host is not None:  # the host's figure stands in: say so, and why not the target's
            why = f" ({short(self.not_benchmarked, 80)})" if self.not_benchmarked else ""
            return f"{ms(host.value)} ms {host.how} measured on {host.where}, not on {name}{why}"
        if self.not_benchmarked:
            return f"not measured on {name}: {short(self.not_benchmarked, 100)}"
        return "not measured"


def _ops(f: Findings) -> str:
    p = f.placement
    if p is not None:
        return f"{p.on} of {p.on + p.off} ops on the {p.accelerator} ({p.basis.value})"
    return f.no_accelerator or "no accelerator"


def _basis_of(ram: Figure, flash: Figure) -> str:
    """One basis when RAM and flash share it, else each's ("RAM measured, flash estimated")."""
    return ram.basis.value if ram.basis == flash.basis else f"RAM {ram.basis.value}, flash {flash.basis.value}"


def _fit(f: Findings) -> str:
    fit = f.fit
    if fit is None:
        return "no board limits to check"
    text = (
        f"{'fits' if fit.ok else 'DOES NOT FIT'}: {fit.ram_what} {kib(fit.ram.value)} of "
        f"{kib(fit.ram_limit_bytes)} RAM, flash {kib(fit.flash.value)} of {kib(fit.flash_limit_bytes)} "
        f"({_basis_of(fit.ram, fit.flash)})"
    )
    b = f.board
    if b is not None:
        text = f"{b.name} ({b.core}): {text}" if b.core else f"{b.name}: {text}"
    return text


def _how(fig: Figure) -> str:
    """ ": how (error)" of an estimate or prediction, short: the latency table keeps the whole text."""
    how = short(fig.how, 110) if fig.how else ""
    error = f"({fig.error})" if fig.error else ""
    said = " ".join(filter(None, (how, error)))
    return f": {said}" if said else ""


def _instructions(f: Findings) -> str:
    ins = f.instructions
    assert ins is not None
    how = f" ({ins.how})" if ins.how else ""
    where = f" on {ins.where}" if ins.where else ""
    text = f"{count(ins.value)} {ins.unit} per inference, {ins.basis.value}{where}{how}"
    if f.proof is not None:
        text += f"; bit-exact {f.proof.exact}/{f.proof.total}"
    return text


def _artifacts(t: Mapping[str, Any]) -> tuple[str, ...]:
    name = t["target"]
    if t.get("artifacts"):
        return tuple(f"{name}/{a}" for a in t["artifacts"])
    out = (quantized(t) or {}).get("output") or ""
    return (f"{name}/{out.rsplit('/', 1)[-1]}",) if out else ()


def _failure(t: Mapping[str, Any]) -> str:
    err = t.get("error") or {}
    msg = short(err.get("message") or "no reason recorded", 120)
    return msg + (f" (fix: {short(err['hint'], 80)})" if err.get("hint") else "")


def _measured(v: Mapping[str, Any]) -> Figure | None:
    """A variant row's latency as a figure (p50, or the mean where the tool printed no percentiles)."""
    lat = v.get("latency_ms") or {}
    stat = next((s for s in ("p50", "mean") if lat.get(s) is not None), None)
    if stat is None:
        return None
    where = v.get("latency_where") or v.get("latency_on") or "-"
    return Figure(lat[stat], "ms", Basis.MEASURED, where=where, how=stat, via=v.get("latency_via") or "")


def _rows(t: Mapping[str, Any], estimate: Figure | None) -> tuple[LatencyRow, ...]:
    """Every latency figure of a target, one per row: the measurements of each variant (where), then the
    target's estimate as a row of its own (never in a measured column)."""
    rows = []
    for v in t.get("variants") or []:
        lat = v.get("latency_ms") or {}
        if all(lat.get(s) is None for s in ("p50", "p99", "mean")):
            continue
        skipped = v.get("bench_skipped")
        note = f"{t['target']} not benchmarked: {short(skipped, 100)}" if skipped else ""
        kind = " ".join(filter(None, (v.get("latency_kind") or "measured", v.get("latency_via"))))
        where = v.get("latency_where") or v.get("latency_on") or "-"
        rows.append(LatencyRow(v["variant"], lat.get("p50"), lat.get("p99"), lat.get("mean"), kind, where, note))
    if estimate is not None:
        variant = (quantized(t) or {"variant": "-"})["variant"]
        note = " ".join(filter(None, (estimate.how, f"({estimate.error})" if estimate.error else "")))
        rows.append(LatencyRow(variant, estimate.value, None, None, estimate.basis.value, estimate.where, note))
    return tuple(rows)


def _interval(iv: Mapping[str, Any] | None) -> str:
    """ "(95%: low..high, n=N)" of a stored interval, or "" without one."""
    if not iv:
        return ""
    from edgeq.bench.stats import Interval

    i = Interval.from_dict(dict(iv))
    return f" ({round(100 * i.confidence)}%: {i.text()}, n={i.n})"


def _constant(v: Mapping[str, Any]) -> str | None:
    """The first output whose float reference is constant over the evaluation data, or None."""
    return next((str(o["name"]) for o in v.get("outputs") or [] if o.get("constant_reference") is not None), None)


def _detection(d: Mapping[str, Any] | None) -> str:
    """ "; 277 of float's 565 detections above 0.25, class agreement 63.2%, box IoU 0.99, score agreement
    49.0%" of a detection head (what its task is judged by), or ""."""
    said = []
    if d and d.get("reference_detections") is not None and d.get("quantized_detections") is not None:
        above = f" above {d['score_threshold']:g}" if isinstance(d.get("score_threshold"), (int, float)) else ""
        said.append(
            f"{count(d['quantized_detections'])} of float's {count(d['reference_detections'])} detections{above}"
        )
    if d and d.get("classes") and d.get("class_agreement") is not None:
        said.append(f"class agreement {100 * d['class_agreement']:.1f}%")
    if d and d.get("box_iou_mean") is not None:
        said.append(f"box IoU {d['box_iou_mean']:.2f}")
    if d and d.get("score_agreement") is not None:
        said.append(f"score agreement {100 * d['score_agreement']:.1f}%")
    return "; " + ", ".join(said) if said else ""


def _mixed(v: Mapping[str, Any]) -> str:
    """ "; one int8 scale over mixed ranges in 'output0' (see the warning)" where an output's row groups span
    ranges one int8 scale cannot hold (its SQNR then says nothing of its narrow rows), else ""."""
    names = [str(o["name"]) for o in v.get("outputs") or [] if o.get("mixed_ranges_warning")]
    if not names:
        return ""
    return f"; one int8 scale over mixed ranges in {', '.join(repr(n) for n in names)} (see the warning)"


def budget_clause(b: Mapping[str, Any] | None, v: Mapping[str, Any]) -> str:
    """ "; budget worst-output SQNR >= 25 dB (the default for a detection model with unlabeled evaluation
    data): met" : what the build judged the deployed model by, where it came from, and whether its figure
    (the point estimate, as the planner judges) meets it; "" when the build applied no budget, or when
    a constant float reference leaves nothing to judge."""
    if not b or _constant(v) is not None:
        return ""
    parts, missed = [], []
    drop = None
    if v.get("accuracy") is not None and v.get("reference_accuracy") is not None:
        drop = 100 * (v["reference_accuracy"] - v["accuracy"])
    if b.get("max_drop") is not None:
        parts.append(f"top-1 drop <= {b['max_drop']:g} point{'' if b['max_drop'] == 1 else 's'}")
        missed.append(None if drop is None else drop > b["max_drop"])
    if b.get("min_sqnr") is not None:
        parts.append(f"worst-output SQNR >= {b['min_sqnr']:g} dB")
        sqnr = v.get("sqnr_db")
        missed.append(None if sqnr is None else sqnr < b["min_sqnr"])
    if not parts:
        return ""
    if any(isinstance(o, Mapping) and o.get("mixed_ranges") for o in v.get("outputs") or []):
        missed.append(True)  # as the planner judges: a head whose parts one scale cannot hold never passes
    why = short(str(b.get("why") or ""), 80)
    status = "" if None in missed else (": MISSED" if any(missed) else ": met")
    return f"; budget {' and '.join(parts)}{f' ({why})' if why else ''}{status}"


def fidelity(v: Mapping[str, Any]) -> str:
    """Whether the deployed model still works, in one cell: its top-1 drop against the float reference
    where the evaluation data has labels, else its top-1 agreement with float (class scores), else its
    worst output's SQNR (and a detection head's box IoU and score agreement); each with its 95% interval,
    and said when too few samples judge nothing."""
    from edgeq.bench.stats import MIN_SAMPLES

    iv = v.get("intervals") or {}
    n = int(v.get("num_eval_samples") or 0)
    const = _constant(v)
    if const is not None:
        return f"NOT JUDGED: the float reference's output {const!r} is constant over the evaluation data"
    if v.get("accuracy") is not None and v.get("reference_accuracy") is not None:
        drop = 100 * (v["reference_accuracy"] - v["accuracy"])
        text = f"top-1 drop {drop:.2f} points vs float{_interval(iv.get('accuracy_drop_points'))}"
    elif v.get("agreement") is not None:
        text = f"top-1 agreement with float {100 * v['agreement']:.2f}%{_interval(iv.get('agreement'))}"
    elif v.get("sqnr_db") is not None:
        sqnr = v["sqnr_db"]
        worst = f" ({v['worst_output']!r})" if v.get("worst_output") and len(v.get("outputs") or []) > 1 else ""
        value = "identical to float" if sqnr == float("inf") else f"{sqnr:.2f} dB"
        text = f"worst-output SQNR{worst} {value}{_interval(iv.get('sqnr_db'))}" + _detection(v.get("detection"))
    else:
        return "fidelity not measured (no evaluation data)"
    text += _mixed(v)
    if 0 < n < MIN_SAMPLES:
        text += f"; only {n} samples, too few to judge (needs {MIN_SAMPLES})"
    return text


def judge(t: Mapping[str, Any]) -> Verdict:
    """A target's verdict from its manifest: its ``findings`` and its variant rows, nothing else.

    The latency on the target is the findings' (measured there, or estimated for it); without one, the
    deployed variant's host figure stands in, labelled as the host's, with why the target's did not run.
    """
    name = str(t["target"])
    arts = _artifacts(t)
    if failed(t):
        return Verdict(name, _findings(t), failure=_failure(t), artifacts=arts)
    found = _findings(t)
    v = quantized(t) or {}
    skipped = str(v.get("bench_skipped") or "")
    estimate = found.latency if found and found.latency and found.latency.basis != Basis.MEASURED else None
    host = None
    if found is not None and found.latency is None:
        host = _measured(v)
    fid = fidelity(v) + budget_clause(t.get("budget"), v)
    return Verdict(name, found, "", host, skipped, _rows(t, estimate), arts, fid)


def _findings(t: Mapping[str, Any]) -> Findings | None:
    doc = t.get("findings")
    return None if doc is None else Findings.from_dict(doc)
