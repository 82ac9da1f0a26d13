"""Render a build folder's manifests into report.md and a self-contained report.html.

Everything comes from the JSON the build wrote (``build.json`` at the top and one per target),
so ``edgeq report RUN_DIR`` re-renders without re-running anything. Images are embedded as
base64 PNGs; the HTML has no external resources.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path

from edgeq.artifacts import Outputs, check_writable, write_bytes_atomic
from edgeq.paths import printable
from edgeq.report.fmt import ms, pct
from edgeq.report.manifest import load


def variant_rows(t: dict) -> list[list[str]]:
    rows = []
    for v in t["variants"]:
        lat = v.get("latency_ms") or {}
        rows.append(
            [
                v["variant"],
                f"{v['size_bytes']:,}",
                pct(v["accuracy"]),
                "-" if v.get("worst_class_drop_points") is None else f"{v['worst_class_drop_points']:.1f}",
                ms(lat.get("p50")),
                ms(lat.get("p99")),
                str(v["float_ops"]),
                v.get("latency_on") or "-",
            ]
        )
    return rows


VARIANT_HEADER = [
    "variant",
    "size_bytes",
    "top-1",
    "worst class drop (pts)",
    "p50 ms",
    "p99 ms",
    "float ops",
    "measured on",
]


def tradeoff_png(targets: list[dict]) -> bytes:
    """Accuracy against size, marker area by latency, one point per variant and target."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=110)
    points: dict[tuple, list[str]] = {}  # targets that share a model share a point
    for t in targets:
        for v in t["variants"]:
            if v["accuracy"] is None:
                continue
            p50 = (v.get("latency_ms") or {}).get("p50") or 0.0
            key = (v["size_bytes"] / 1024, 100 * v["accuracy"], p50, v["variant"], v.get("latency_on"))
            points.setdefault(key, []).append(t["target"])
    for (kib, acc, p50, variant, on), names in points.items():
        ax.scatter(kib, acc, s=40 + 400 * min(p50, 1.0), alpha=0.7)
        label = f"{variant} ({', '.join(names)})\np50 {p50:.3f} ms on {on}"
        ax.annotate(label, (kib, acc), fontsize=7, xytext=(5, 5), textcoords="offset points")
    ax.set_xlabel("model size (KiB)")
    ax.set_ylabel("top-1 accuracy (%)")
    ax.set_title("accuracy vs size (marker area: p50 latency)", fontsize=10)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def _md_table(rows: list[list[str]], header: list[str]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in r) + " |" for r in rows]
    return "\n".join(lines)


def _html_table(rows: list[list[str]], header: list[str]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def sections(top: dict, targets: list[dict]) -> list[tuple[str, list]]:
    """The report as (title, blocks); a block is text, a ("table", rows, header) or ("image", png, alt)."""
    out: list[tuple[str, list]] = []
    cfg = top["config"]
    inputs = top["inputs"]
    summary = [
        f"Model: {inputs['model']}; calibration data: {inputs['data']}; evaluation data: {inputs.get('eval_data') or 'none'}.",
        f"Method: {cfg['method']}"
        + (f", budget {cfg['max_drop']} points" if cfg.get("max_drop") is not None else "")
        + f"; targets: {', '.join(top['targets'])}.",
    ]
    if top.get("gate_failures"):
        summary.append("QUALITY GATE FAILED: " + "; ".join(top["gate_failures"]))
    out.append(("Summary", summary))
    stage_rows = [[s["name"], "cached" if s["cached"] else "ran", f"{s['seconds']:.2f}"] for s in top["stages"]]
    out.append(("Steps taken", [("table", stage_rows, ["stage", "", "seconds"])]))
    variant_blocks: list = []
    for t in targets:
        variant_blocks.append(f"{t['target']} ({t['description']})")
        variant_blocks.append(("table", variant_rows(t), VARIANT_HEADER))
    out.append(("Variants: size, accuracy, latency", variant_blocks))
    if any(v["accuracy"] is not None for t in targets for v in t["variants"]):
        out.append(("Accuracy vs size vs latency", [("image", tradeoff_png(targets), "accuracy vs size vs latency")]))
    for t in targets:
        if t.get("plan"):
            plan = t["plan"]
            rows = [
                [
                    s["name"],
                    "skipped: " + s["skipped"] if s["skipped"] else ("meets" if s["meets"] else "; ".join(s["misses"])),
                    pct(s["accuracy"]),
                    s["size_bytes"] or "-",
                    f"{s['num_float_ops']}/{s['num_ops']}" if s["num_ops"] else "-",
                    s["ops_off_accelerator"] if s["ops_off_accelerator"] is not None else "-",
                ]
                for s in plan.get("steps", [])
            ]
            out.append(
                (
                    f"Planner for {t['target']}: {plan.get('chosen')}",
                    [
                        plan.get("stopped_because", ""),
                        ("table", rows, ["step", "budget", "top-1", "size_bytes", "float ops", "ops off accelerator"]),
                    ],
                )
            )
    debug = top.get("debug")
    if debug:
        blocks: list = []
        png = Path(debug["dir"]) / "rmse_over_scale.png"
        if png.is_file():
            blocks.append(("image", png.read_bytes(), "rmse/scale per layer"))
        worst = [
            [w["index"], w["op"], w["tensor_name"][:70], f"{w['rmse_over_scale']:.3f}"]
            for w in debug.get("worst_layers", [])
        ]
        blocks.append(("table", worst, ["#", "op", "tensor", "rmse/scale"]))
        lost = [
            [c["class"], pct(c["reference_accuracy"]), pct(c["quantized_accuracy"]), c["drop_points"]]
            for c in debug.get("classes_that_lost_most", [])
        ]
        if lost:
            blocks.append("Classes that lost most (plain int8 PTQ):")
            blocks.append(("table", lost, ["class", "float", "int8", "drop (pts)"]))
        out.append(("Per-layer int8 error (quantization debugger)", blocks))
    for t in targets:
        qv = t["variants"][-1]
        check = qv.get("check") or {}
        blocks = []
        ops = check.get("ops") or []
        if ops:
            keys = [k for k in ("op", "count", "status", "on_tpu") if k in ops[0]]
            blocks.append(("table", [[o.get(k, "") for k in keys] for o in ops], keys))
        if check.get("counts"):
            blocks.append(f"Counts: {check['counts']}")
        if check.get("first_unmapped"):
            blocks.append(f"First op off the accelerator: {check['first_unmapped']}")
        details = check.get("details") or {}
        memory = {
            k: v
            for k, v in details.items()
            if any(w in k for w in ("bytes", "memory", "arena", "flash", "sram", "fits", "cached", "streamed"))
        }
        if memory:
            blocks.append(("table", [[k, v] for k, v in memory.items()], ["memory", "value"]))
        comp = qv.get("compile") or {}
        if comp:
            blocks.append(f"Compile: {'skipped: ' + comp['reason'] if comp.get('skipped') else comp.get('output')}")
        if qv.get("bench_skipped"):
            blocks.append(f"Benchmark on {t['target']} skipped ({qv['bench_skipped']}); latency measured on the host.")
        out.append((f"Target {t['target']}: op mapping and memory", blocks or ["no target-specific report"]))
    warnings = sorted({w for t in targets for w in t.get("warnings", [])})
    out.append(("Warnings", warnings or ["none"]))
    return out


CSS = """body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:2em auto;color:#222;padding:0 1em}
h1{font-size:1.6em}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ddd;padding-bottom:.2em}
table{border-collapse:collapse;margin:.6em 0;font-size:.9em}th,td{border:1px solid #ccc;padding:.3em .6em;text-align:left}
th{background:#f3f5f7}img{max-width:100%;border:1px solid #eee}p.fail{color:#b00020;font-weight:bold}"""


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
            else:
                cls = " class='fail'" if str(b).startswith("QUALITY GATE FAILED") else ""
                parts.append(f"<p{cls}>{html.escape(str(b))}</p>")
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
            else:
                lines += [str(b), ""]
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
