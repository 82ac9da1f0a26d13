"""Render a build folder's manifests into report.md and a self-contained report.html.

Everything comes from the JSON the build wrote (``build.json`` at the top and one per target),
so ``edgeq report RUN_DIR`` re-renders without re-running anything. Images are embedded as
base64 PNGs; the HTML has no external resources.
"""

from __future__ import annotations

import base64
import html
import json
import re
from pathlib import Path

from edgeq.artifacts import Outputs, check_writable, write_bytes_atomic
from edgeq.config import build_max_drop
from edgeq.findings import Figure
from edgeq.paths import printable
from edgeq.report.fmt import ms, pct
from edgeq.report.manifest import load
from edgeq.report.verdict import NOT_RECORDED, VERDICT_HEADER, Verdict, judge, quantized


def variant_rows(t: dict) -> list[list[str]]:
    """Size and accuracy per variant; latency has its own table, where each figure says what it is."""
    return [
        [
            v["variant"],
            f"{v['size_bytes']:,}",
            pct(v["accuracy"]),
            *interval_cells(v),
            "-" if v.get("sqnr_db") is None else _fact(v["sqnr_db"]),
            "-" if v.get("worst_class_drop_points") is None else f"{v['worst_class_drop_points']:.1f}",
            str(v["float_ops"]),
        ]
        for v in t["variants"]
    ]


# Without labels top-1 cannot be measured; agreement with the float model and SQNR need none.
VARIANT_HEADER = [
    "variant",
    "size_bytes",
    "top-1",
    "drop vs reference (pts, 95% CI)",
    "agreement (95% CI)",
    "SQNR dB (worst output)",
    "worst class drop (pts)",
    "float ops",
]


def interval_cells(v: dict) -> list[str]:
    """The variant's accuracy drop and agreement against the float reference, each with its 95% interval
    where the manifest has one (manifests from before intervals give the agreement alone)."""
    from edgeq.bench.stats import Interval

    iv = v.get("intervals") or {}
    drop = "-"
    if iv.get("accuracy_drop_points"):
        d = Interval.from_dict(iv["accuracy_drop_points"])
        drop = f"{d.estimate:.2f} ({d.text(unit=False)})"
    agreement = pct(v.get("agreement"))
    if iv.get("agreement"):
        a = Interval.from_dict(iv["agreement"])
        agreement = f"{100 * a.estimate:.2f}% ({a.text(unit=False)}, n={a.n})"
    return [drop, agreement]


def noise_notes(top: dict, targets: list[dict]) -> list[str]:
    """Per target, a plain sentence when its deployed model's accuracy drop is inside the noise of the
    evaluation set: against the accuracy budget of --method auto, else against 0 (is int8 worse at all?)."""
    from edgeq.bench.stats import Interval, noise_note

    cfg = top["config"]
    budget = cfg.get("max_drop")
    if cfg.get("method") == "auto":  # the planner's budget, as the build applied it
        budget = build_max_drop(budget, cfg.get("min_sqnr"))
    notes = []
    for t in targets:
        iv = (quantized(t) or {}).get("intervals") or {}
        d, sqnr = iv.get("accuracy_drop_points"), iv.get("sqnr_db")
        floor = (t.get("budget") or {}).get("min_sqnr")  # the SQNR floor the build applied (unlabeled data)
        note = noise_note(Interval.from_dict(d), budget if budget is not None else 0.0) if d else None
        if note is None and not d and sqnr and floor is not None:
            note = noise_note(Interval.from_dict(sqnr), float(floor))
        if note:
            notes.append(f"{t['target']}: {note}")
    return notes


OUTPUTS_HEADER = ["variant", "output", "shape", "kind", "SQNR dB", "cosine", "mean abs err", "max abs err", "top-1 agreement", "degenerate"]  # fmt: skip


def output_rows(t: dict) -> list[list[str]]:
    """Per-output fidelity of each variant of a multi-output model (the worst output is the variant's SQNR)."""
    rows = []
    for v in t["variants"]:
        for o in v.get("outputs") or []:
            rows.append(
                [
                    v["variant"],
                    o["name"],
                    "x".join(str(d) for d in o["shape"]),
                    o["role"].replace("_", " "),
                    _fact(o["sqnr_db"]),
                    _fact(o["cosine_similarity"]),
                    f"{o['mean_abs_error']:.4g}",
                    f"{o['max_abs_error']:.4g}",
                    pct(o.get("agreement")),
                    o.get("degenerate") or ("reference constant" if o.get("constant_reference") is not None else ""),
                ]
            )
    return rows


def constant_reference_warnings(targets: list[dict]) -> list[str]:
    """Per target, the outputs whose float reference was constant over the evaluation data: their fidelity
    figures carry no information (once per output, not per variant)."""
    from edgeq.bench.tasks import constant_warning

    out: list[str] = []
    for t in targets:
        seen: dict[str, float] = {}
        for v in t["variants"]:
            for o in v.get("outputs") or []:
                if o.get("constant_reference") is not None:
                    seen.setdefault(o["name"], o["constant_reference"])
        out += [f"{t['target']}: {constant_warning(name, value)}" for name, value in seen.items()]
    return out


DETECTION_HEADER = ["variant", "head", "score threshold", "detections: this / float", "class agreement", "box IoU", "score agreement"]  # fmt: skip


def detection_rows(t: dict) -> list[list[str]]:
    """A detection head's task metrics per variant, on the anchors above the score threshold: how many
    detections the variant keeps of float's, whether they keep their class, their boxes and their scores."""
    rows = []
    for v in t["variants"]:
        d = v.get("detection")
        if not d:
            continue
        if d.get("layout"):  # one YOLO [4+C, N] output: boxes and scores share it
            head = f"{d.get('boxes') or '-'} (YOLO, {d['layout']})"
        else:
            head = f"{d.get('boxes') or '-'} + {d.get('scores') or '-'}"
        kept = "-"
        if d.get("quantized_detections") is not None and d.get("reference_detections") is not None:
            kept = f"{d['quantized_detections']:,} / {d['reference_detections']:,}"
        threshold = "-" if d.get("score_threshold") is None else f"{d['score_threshold']:g}"
        classes = pct(d.get("class_agreement")) if d.get("classes") else "-"
        iou = "-" if d.get("box_iou_mean") is None else f"{d['box_iou_mean']:.3f}"
        rows.append([v["variant"], head, threshold, kept, classes, iou, pct(d.get("score_agreement"))])
    return rows


def mixed_range_warnings(targets: list[dict]) -> list[str]:
    """The deployed models' outputs whose row groups one int8 scale cannot hold, once per warning, naming
    the targets it applies to: shown under the verdict, since the SQNR there does not see it."""
    seen: dict[str, list[str]] = {}
    for t in targets:
        for o in (quantized(t) or {}).get("outputs") or []:
            if o.get("mixed_ranges_warning"):
                seen.setdefault(o["mixed_ranges_warning"], []).append(t["target"])
    return [f"WARNING ({', '.join(names)}): {text}" for text, names in seen.items()]


INTERFACE_HEADER = ["variant", "output", "change", "outputs now", "what it means"]
_SAID = ("text", "sentence", "note", "description")  # where an interface record may carry its plain sentence


def _said(value: object, limit: int = 300) -> str:
    """A manifest string for a cell: one line, bounded (the cell escapes it); anything else as "-"."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return "-"
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def _split_cells(split: object) -> list[str]:
    """(output, change, outputs now) of a ``split`` record: {"output", "axis", "parts": [{"name", "size"}]}."""
    if not isinstance(split, dict):
        return ["-", "changed (a record this edgeq does not read)", "-"]
    got = split.get("parts")
    parts: list = got if isinstance(got, list) else []
    named = []
    for p in parts[:64]:
        if isinstance(p, dict):
            size = p.get("size")
            ok = isinstance(size, int) and not isinstance(size, bool)
            named.append(_said(p.get("name"), 80) + (f" ({size:,})" if ok else ""))
    axis = split.get("axis")
    along = f" along axis {axis}" if isinstance(axis, int) and not isinstance(axis, bool) else ""
    more = f", and {len(parts) - 64} more" if len(parts) > 64 else ""
    change = f"split{along} into {len(parts)} outputs" if parts else "split"
    return [_said(split.get("output"), 80), change, (", ".join(named) + more) or "-"]


def interface_rows(t: dict) -> list[list[str]]:
    """Per variant, how its outputs differ from the given model's (the manifest's ``interface`` record: a
    head split into separate outputs, each with its own scale): what an application must read instead.
    Read defensively: a record of another shape is shown as changed, never fails the report."""
    rows = []
    for v in t["variants"]:
        # the build records the planned int8 model's interface on the target (its one planned model)
        rec = v.get("interface") or (t.get("interface") if v.get("variant") == "int8" else None)
        if not rec:
            continue
        if not isinstance(rec, dict):
            rows.append([v["variant"], "-", "changed (a record this edgeq does not read)", "-", _said(rec)])
            continue
        cells = _split_cells(rec["split"]) if "split" in rec else ["-", "changed", "-"]
        text = next((_said(rec[k]) for k in _SAID if isinstance(rec.get(k), str)), "-")
        rows.append([v["variant"], *cells, text])
    return rows


LATENCY_HEADER = ["variant", "p50 ms", "p99 ms", "mean ms", "kind", "on", "how / note"]


def latency_table(v: Verdict) -> list[list[str]]:
    """One row per latency figure: measured ones say where, an estimate says how it was made."""
    return [[r.variant, ms(r.p50), ms(r.p99), ms(r.mean), r.kind, r.where, r.note or "-"] for r in v.latency_rows]


def tradeoff_figure(targets: list[dict]):
    """Accuracy against size, one point per model, labelled with its variant and the targets that use it.

    Latency lives in the Latency table, where each figure says what it is; the labels stay short and
    each is moved up or down until it overlaps no other label. Returns the figure and its labels.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    points: dict[tuple, list[str]] = {}  # targets that share a model share a point
    for t in targets:
        for v in t["variants"]:
            if v["accuracy"] is not None:
                points.setdefault((v["size_bytes"] / 1024, 100 * v["accuracy"], v["variant"]), []).append(t["target"])
    fig, ax = plt.subplots(figsize=(9.0, 4.2), dpi=110)
    xs, ys = [k[0] for k in points], [k[1] for k in points]
    span = (max(xs) - min(xs)) or max(xs) or 1.0
    ax.set_xlim(min(xs) - 0.15 * span, max(xs) + 0.15 * span)
    yspan = (max(ys) - min(ys)) or 1.0
    ax.set_ylim(min(ys) - 0.6 * yspan, max(ys) + 0.6 * yspan)
    ax.set_xlabel("model size (KiB)")
    ax.set_ylabel("top-1 accuracy (%)")
    ax.set_title("accuracy vs size (latency per target: see the Latency table)", fontsize=10)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    renderer = FigureCanvasAgg(fig).get_renderer()  # to measure the labels before placing them
    frame = ax.get_window_extent(renderer)
    labels: list = []
    placed: list = []
    for kib, acc, variant in sorted(points):
        ax.scatter(kib, acc, s=60, alpha=0.8)
        note = ax.annotate(
            f"{variant}\n({', '.join(points[(kib, acc, variant)])})",
            (kib, acc),
            fontsize=8,
            ha="center",
            xytext=(0, 10),
            textcoords="offset points",
            bbox={"boxstyle": "round,pad=0.3", "fc": "white", "ec": "#ccc", "alpha": 0.9},
        )
        for dy in (10, -10, 30, -30, 50, -50, 70, -70):
            note.set_position((0, dy))
            note.set_verticalalignment("bottom" if dy > 0 else "top")
            box = note.get_window_extent(renderer)
            inside = frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1
            if inside and not any(box.overlaps(other) for other in placed):
                break
        placed.append(note.get_window_extent(renderer))
        labels.append(note)
    return fig, labels


def tradeoff_png(targets: list[dict]) -> bytes:
    """The accuracy-vs-size chart as PNG bytes."""
    import io

    import matplotlib.pyplot as plt

    fig, _ = tradeoff_figure(targets)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


_MD_INLINE = re.compile(r"([\\`*_\[\]()!~#&>])")


def md_cell(value: object, literal: bool = False) -> str:
    """A table cell for Markdown: one line, its pipes and tag openers escaped (a manifest's strings stay text:
    no cell ends the row, no ``<script>`` becomes HTML where the .md is rendered). ``literal`` (for a name a
    user chose, such as a model's path) also escapes the rest of Markdown's inline syntax, so that no
    ``*emphasis*``, ``[link](...)``, code span or entity comes of it: the name reads as typed."""
    text = " ".join(str(value).split())
    if literal:
        text = _MD_INLINE.sub(r"\\\1", text)
    return text.replace("|", "\\|").replace("<", "\\<")


def _md_table(rows: list[list[str]], header: list[str]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(md_cell(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def _html_table(rows: list[list[str]], header: list[str]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<div class='wide'><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"


def _verdict_table(verdicts: list[Verdict]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in VERDICT_HEADER)
    body = ""
    for v in verdicts:
        cells = v.cells()
        if v.failed:
            body += f"<tr class='bad'><th>{html.escape(cells[0])}</th><td colspan='{len(VERDICT_HEADER) - 1}'>{html.escape(cells[1])}</td></tr>"
        else:
            body += f"<tr><th>{html.escape(cells[0])}</th>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells[1:])
            body += "</tr>"
    return f"<div class='wide'><table class='verdict'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"


def _fact(value: object) -> str:
    """A scalar for people: thousands separators, yes/no, never a Python repr."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.3f}".rstrip("0").rstrip(".")
    return str(value)


def _amount(fig: Figure) -> str:
    return f"{_fact(fig.value)} {fig.unit}"


def basis_text(fig: Figure) -> str:
    """What a figure rests on, in words: "measured (TFLM on the host)", "estimated (how; error)"."""
    where = " ".join(filter(None, (fig.where, fig.via)))
    said = "; ".join(filter(None, (where, fig.how, fig.error)))
    return f"{fig.basis.value} ({said})" if said else fig.basis.value


def memory_rows(v: Verdict) -> list[list[str]]:
    """The target's memory figures as (figure, value, basis): each says whether it was measured, compiled,
    predicted or estimated, as the target recorded it."""
    f = v.findings
    if f is None:
        return []
    rows = []
    if f.fit is not None:
        fit = f.fit
        board = f"board data ({f.board.name})" if f.board else "board data"
        rows += [
            [fit.ram_what, _amount(fit.ram), basis_text(fit.ram)],
            ["flash", _amount(fit.flash), basis_text(fit.flash)],
            ["RAM limit", f"{fit.ram_limit_bytes:,} bytes", board],
            ["flash limit", f"{fit.flash_limit_bytes:,} bytes", board],
            ["fits", "yes" if fit.ok else "NO", "the figures above against the limits"],
        ]
    rows += [[name, _amount(fig), basis_text(fig)] for name, fig in f.memory.items()]
    return rows


def _failure_details(t: dict) -> list:
    err = t.get("error") or {}
    return [
        f"failed: {err.get('message') or 'no reason recorded'}"
        + (f" (exit code {err['exit_code']})" if err.get("exit_code") is not None else ""),
        *([f"hint: {err['hint']}"] if err.get("hint") else []),
    ]


def _found_details(v: Verdict) -> list:
    """The findings a verdict rests on, in full: placement, the board, instructions and their proof, memory."""
    f = v.findings
    if f is None:
        return [f"Findings {NOT_RECORDED}."]
    blocks: list = []
    p = f.placement
    if p is not None:
        blocks.append(f"Ops: {p.on} on the {p.accelerator}, {p.off} on the CPU ({p.basis.value})")
        if p.first_off:
            blocks.append(f"First op off the {p.accelerator}: {p.first_off}")
    if f.board is not None:
        about = ", ".join(filter(None, (f.board.title, f.board.core)))
        blocks.append(f"Board: {f.board.name}" + (f" ({about})" if about else ""))
    ins = f.instructions
    if ins is not None:
        spread = (
            f", min {_fact(ins.low)}, max {_fact(ins.high)}" if ins.low is not None and ins.high is not None else ""
        )
        blocks.append(f"{ins.unit.capitalize()} per inference: {_fact(ins.value)}{spread}; {basis_text(ins)}")
    if f.proof is not None:
        on = f" on {f.proof.where}" if f.proof.where else ""
        blocks.append(f"Bit-exact: {f.proof.exact} of {f.proof.total} inferences against {f.proof.reference}{on}")
    memory = memory_rows(v)
    if memory:
        blocks.append(("table", memory, ["memory", "value", "basis"]))
    return blocks


def _target_details(t: dict, v: Verdict) -> list:
    if v.failed:
        return _failure_details(t)
    qv = quantized(t) or {}
    blocks: list = []
    ops = (qv.get("check") or {}).get("ops") or []
    if ops:  # the check's per-op table, whatever columns the target gave it
        keys = [k for k in ("op", "count", "status", "on_tpu", "basis") if any(k in o for o in ops)]
        blocks.append(("table", [[_fact(o.get(k, "")) for k in keys] for o in ops], keys))
    blocks += _found_details(v)
    comp = qv.get("compile") or {}
    if comp:
        if comp.get("skipped"):
            blocks.append(f"Compile: skipped: {comp['reason']}")
        else:  # what it wrote is in the verdict's artifacts; the output recorded here is inside the cache
            blocks.append("Compile: done" + (f" ({comp['reason']})" if comp.get("reason") else ""))
    if qv.get("bench_skipped"):
        blocks.append(f"Benchmark on {t['target']} skipped ({qv['bench_skipped']}); latency measured on the host.")
    return blocks or ["no target-specific report"]


def _shared(targets: list[dict], rows_of) -> list[list[str]]:
    """Rows several targets share (built from the same model) shown once, naming them all."""
    shared: dict[tuple, list[str]] = {}
    for t in targets:
        for row in rows_of(t):
            shared.setdefault(tuple(row), []).append(t["target"])
    return [[", ".join(names), *row] for row, names in shared.items()]


def _verdict_section(top: dict, targets: list[dict], verdicts: list[Verdict]) -> tuple[str, list]:
    lines: list = [("verdict", verdicts), *(("warn", w) for w in mixed_range_warnings(targets))]
    if top.get("gate_failures"):
        lines.append(("fail", "QUALITY GATE FAILED: " + "; ".join(top["gate_failures"])))
    if top.get("failed_targets"):
        lines.append(("fail", f"{len(top['failed_targets'])} target(s) failed: {', '.join(top['failed_targets'])}"))
    return ("Verdict per target", lines)


def _interface_section(built: list[dict]) -> list[tuple[str, list]]:
    rows = _shared(built, interface_rows)
    if not rows:
        return []
    said = "The deployed model's outputs differ from the model given: an application reads them as below."
    return [("Changed interface", [said, ("table", rows, ["targets", *INTERFACE_HEADER])])]


def _summary(top: dict) -> list[tuple[str, list]]:
    cfg, inputs = top["config"], top["inputs"]
    summary = [
        f"Model: {inputs['model']}; calibration data: {inputs['data'] or 'none'}; "
        f"evaluation data: {inputs.get('eval_data') or 'none'}.",
        f"Method: {cfg['method']}"
        + (f", budget {cfg['max_drop']} points" if cfg.get("max_drop") is not None else "")
        + (f", budget SQNR >= {cfg['min_sqnr']} dB" if cfg.get("min_sqnr") is not None else "")
        + f"; targets: {', '.join(top['targets'])}.",
    ]
    stage_rows = [[s["name"], "cached" if s["cached"] else "ran", f"{s['seconds']:.2f}"] for s in top["stages"]]
    return [("Summary", summary), ("Steps taken", [("table", stage_rows, ["stage", "", "seconds"])])]


def _variant_sections(built: list[dict], verdicts: dict[str, Verdict]) -> list[tuple[str, list]]:
    out: list[tuple[str, list]] = []
    if built:
        described = [f"{t['target']}: {t['description']}" for t in built if t["description"]]
        rows = _shared(built, variant_rows)
        out.append(("Variants: size and accuracy", [("table", rows, ["targets", *VARIANT_HEADER]), *described]))
        per_output = _shared(built, output_rows)
        if len({row[2] for row in per_output}) > 1:  # a single output is the variant row already
            title = "Outputs: fidelity per output (paired by name)"
            out.append((title, [("table", per_output, ["targets", *OUTPUTS_HEADER])]))
        detection = _shared(built, detection_rows)
        if detection:
            said = "A detection head judged by its task: the anchors above the score threshold, against float's."
            out.append(("Detection", [said, ("table", detection, ["targets", *DETECTION_HEADER])]))
    # every latency figure in one table; a row several targets share (the host's float run) is shown once
    latency = _shared(built, lambda t: latency_table(verdicts[t["target"]]))
    if latency:
        said = "Each figure says what it is: measured (and on what), or estimated (and how, with its error)."
        out.append(("Latency", [said, ("table", latency, ["targets", *LATENCY_HEADER])]))
    if any(v["accuracy"] is not None for t in built for v in t["variants"]):
        out.append(("Accuracy vs size", [("image", tradeoff_png(built), "accuracy vs size")]))
    return out


def _plan_sections(built: list[dict]) -> list[tuple[str, list]]:
    plans: dict[str, tuple[str, list, list[str]]] = {}  # the same plan for several targets is shown once
    for t in built:
        plan = t.get("plan")
        if not plan or (plan.get("chosen") is None and not plan.get("steps")):
            continue
        rows = [
            [
                s["name"],
                "skipped: " + s["skipped"] if s["skipped"] else ("meets" if s["meets"] else "; ".join(s["misses"])),
                pct(s["accuracy"]),
                _fact(s["size_bytes"]) if s["size_bytes"] is not None else "-",
                f"{s['num_float_ops']}/{s['num_ops']}" if s["num_ops"] else "-",
                _fact(s["ops_off_accelerator"]) if s["ops_off_accelerator"] is not None else "-",
            ]
            for s in plan.get("steps", [])
        ]
        chosen = plan.get("chosen") or "no step met the budget"
        key = json.dumps([chosen, plan.get("stopped_because"), rows])
        plans.setdefault(key, (chosen, [plan.get("stopped_because") or "", rows], []))[2].append(t["target"])
    out = []
    for chosen, (because, rows), names in plans.values():
        header = ["step", "budget", "top-1", "size_bytes", "float ops", "ops off accelerator"]
        out.append(
            (f"Planner for {', '.join(names)}: {chosen}", [*([because] if because else []), ("table", rows, header)])
        )
    return out


def _debug_section(debug: dict) -> tuple[str, list]:
    blocks: list = []
    png = Path(debug["dir"]) / "rmse_over_scale.png"
    if png.is_file():
        blocks.append(("image", png.read_bytes(), "rmse/scale per layer"))
    worst = [
        [w["index"], w["op"], _said(w["tensor_name"], 70), f"{w['rmse_over_scale']:.3f}"]
        for w in debug.get("worst_layers", [])
    ]
    blocks.append(("table", worst, ["#", "op", "tensor", "rmse/scale"]))
    lost = [
        [c["class"], pct(c["reference_accuracy"]), pct(c["quantized_accuracy"]), _fact(c["drop_points"])]
        for c in debug.get("classes_that_lost_most", [])
    ]
    if lost:
        blocks.append("Classes that lost most (plain int8 PTQ):")
        blocks.append(("table", lost, ["class", "float", "int8", "drop (pts)"]))
    return ("Per-layer int8 error (quantization debugger)", blocks)


def _messages(top: dict, targets: list[dict], verdicts: list[Verdict]) -> list[tuple[str, list]]:
    """Notes (INFO) apart from warnings (WARNING, ERROR), as each target leveled them."""
    notes = [f"{v.target}: {m}" for v in verdicts for m in v.notes()] + noise_notes(top, targets)
    problems = [f"{v.target}: {m}" for v in verdicts for m in v.warnings()] + constant_reference_warnings(targets)
    return [("Notes", notes or ["none"]), ("Warnings", problems or ["none"])]


def sections(top: dict, targets: list[dict]) -> list[tuple[str, list]]:
    """The report as (title, blocks); a block is text, a ("table", rows, header), ("image", png, alt),
    ("verdict", verdicts), ("fail", text) or ("warn", text).

    The verdict per target comes first, then the details a person looks at when a verdict needs a why.
    """
    verdicts = [judge(t) for t in targets]
    by_name = {v.target: v for v in verdicts}
    built = [t for t in targets if t["variants"]]
    out = [
        _verdict_section(top, targets, verdicts),
        *_interface_section(built),
        *_summary(top),
        *_variant_sections(built, by_name),
        *_plan_sections(built),
    ]
    if top.get("debug"):
        out.append(_debug_section(top["debug"]))
    out += [
        (f"Target {v.target}: op mapping and memory", _target_details(t, v))
        for t, v in zip(targets, verdicts, strict=True)
    ]
    return out + _messages(top, targets, verdicts)


CSS = """body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:2em auto;color:#222;padding:0 1em}
h1{font-size:1.6em}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ddd;padding-bottom:.2em}
table{border-collapse:collapse;margin:.6em 0;font-size:.9em}th,td{border:1px solid #ccc;padding:.3em .6em;text-align:left}
th{background:#f3f5f7}tbody th{white-space:nowrap}img{max-width:100%;border:1px solid #eee}p.fail{color:#b00020;font-weight:bold}
table.verdict{font-size:.95em}table.verdict tbody th{background:#eef6ee;white-space:nowrap}
table.verdict tr.bad th,table.verdict tr.bad td{background:#fdf3f3;color:#b00020;font-weight:bold}
div.wide{max-width:100%;overflow-x:auto}td{overflow-wrap:break-word}table.verdict td:first-of-type{min-width:16em}
p.warn{color:#7a4a00;background:#fff8e6;border-left:4px solid #e0a000;padding:.4em .7em}"""


def to_html(top: dict, targets: list[dict]) -> str:
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>edgeq build report</title>",
        f"<style>{CSS}</style></head><body>",
        "<h1>edgeq build report</h1>",
    ]
    for title, blocks in sections(top, targets):
        parts.append(f"<h2>{html.escape(title)}</h2>")
        for b in blocks:
            if isinstance(b, tuple) and b[0] == "table":
                parts.append(_html_table(b[1], b[2]))
            elif isinstance(b, tuple) and b[0] == "image":
                parts.append(
                    f"<img alt='{html.escape(b[2])}' src='data:image/png;base64,{base64.b64encode(b[1]).decode()}'>"
                )
            elif isinstance(b, tuple) and b[0] == "verdict":
                parts.append(_verdict_table(b[1]))
            elif isinstance(b, tuple) and b[0] in ("fail", "warn"):
                parts.append(f"<p class='{b[0]}'>{html.escape(b[1])}</p>")
            else:
                parts.append(f"<p>{html.escape(str(b))}</p>")
    parts.append("</body></html>")
    return "\n".join(parts)


def to_markdown(top: dict, targets: list[dict], image_dir: Path) -> str:
    lines = ["# edgeq build report", ""]
    n = 0
    for title, blocks in sections(top, targets):
        lines += [f"## {title}", ""]
        for b in blocks:
            if isinstance(b, tuple) and b[0] == "table":
                lines += [_md_table(b[1], b[2]), ""]
            elif isinstance(b, tuple) and b[0] == "image":
                n += 1
                name = f"report_{n}.png"
                write_bytes_atomic(image_dir / name, b[1])
                lines += [f"![{b[2]}]({name})", ""]
            elif isinstance(b, tuple) and b[0] == "verdict":
                lines += [f"- {v.line()}" for v in b[1]] + [""]
            elif isinstance(b, tuple) and b[0] in ("fail", "warn"):
                lines += [f"**{b[1]}**", ""]
            else:
                lines += [str(b), ""]
        if lines[-1]:
            lines.append("")
    return "\n".join(lines)


def write(run_dir: Path) -> list[Path]:
    """(Re-)render report.html and report.md in ``run_dir``.

    Raises:
        BadInput: not a build folder, or a manifest that is missing, damaged or of another shape.
    """
    run_dir = Path(run_dir)
    top, targets = load(run_dir)
    check_writable(run_dir, "the build folder")
    with Outputs(run_dir) as staged:  # report.html, report.md and its images together, or none
        staged.write_bytes("report.html", printable(to_html(top, targets)).encode())
        staged.write_bytes("report.md", printable(to_markdown(top, targets, staged.stage)).encode())
    return [run_dir / "report.html", run_dir / "report.md"]
