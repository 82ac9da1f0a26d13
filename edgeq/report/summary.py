"""The summary of a sweep (several models in one build): a model x target table of the verdicts.

Rendered from summary.json alone (the document :mod:`edgeq.build.sweep` writes), into summary.md and a
self-contained summary.html, with the report's own escaping (:func:`edgeq.report.render.md_cell`,
``html.escape``): a model's path is a string a user chose, shown as typed and never as markup. Each
figure's text is the one the model's own report shows, its basis (measured, predicted, estimated) in it.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from edgeq.artifacts import Outputs, check_writable
from edgeq.paths import printable
from edgeq.report.fmt import table
from edgeq.report.render import CSS, md_cell

HEADER = ["model", "target", "fidelity", "on the accelerator", "fits the board", "latency on the target"]


def _failed_cell(model: Mapping[str, Any], t: Mapping[str, Any]) -> str:
    """A failed target's cell: FAILED, the model's exit code, and the one-line reason."""
    return f"FAILED (exit {model['exit_code']}): {t.get('failure') or model.get('reason') or 'no reason recorded'}"


def rows(doc: Mapping[str, Any]) -> list[tuple[bool, list[str]]]:
    """(failed, cells) per model and target, in the sweep's order; a failed cell says why in one line."""
    out = []
    for m in doc["models"]:
        for t in m["targets"]:
            if t["status"] == "failed":
                out.append((True, [m["model"], t["target"], _failed_cell(m, t), "-", "-", "-"]))
            else:
                fid = t["fidelity"] + ("; QUALITY GATE FAILED" if t["status"] == "gate failed" else "")
                out.append((False, [m["model"], t["target"], fid, t["accelerator"], t["fit"], t["latency"]]))
    return out


def headline(doc: Mapping[str, Any]) -> str:
    """ "3 models x 2 targets: 2 built, 1 failed (exit 3: bad input (model, data, config))" """
    n, failed = len(doc["models"]), len(doc["failed_models"])
    said = f"{n} model{'s' * (n != 1)} x {len(doc['targets'])} target{'s' * (len(doc['targets']) != 1)}"
    return f"{said}: {n - failed} built, {failed} failed (exit {doc['exit_code']}: {doc['exit_meaning']})"


def ran_text(ran: Mapping[str, Any] | None) -> str:
    """Where a model's build task ran, as a status's tail: " on HOST (node 1f2e3d4c5b6a)", and
    ", retried: 2 attempts (a worker died)" where it took more than one ("" when not recorded)."""
    if not ran or not ran.get("host"):
        return ""
    node = str(ran.get("node") or "")
    said = f" on {ran['host']}" + (f" (node {node[:12]})" if node not in ("", "in-process", "pool", "ray") else "")
    attempts = int(ran.get("attempts") or 1)
    return said + (f", retried: {attempts} attempts (a worker died)" if attempts > 1 else "")


def _folders(doc: Mapping[str, Any]) -> list[list[str]]:
    return [
        [
            m["model"],
            m["folder"] + "/",
            f"built{ran_text(m.get('ran'))}" if m["ok"] else f"FAILED (exit {m['exit_code']}): {m['reason']}",
        ]
        for m in doc["models"]
    ]


FOLDERS_HEADER = ["model", "build folder", "status"]


def to_text(doc: Mapping[str, Any]) -> str:
    """The summary for a terminal (the CLI prints it)."""
    return "\n".join(
        [
            headline(doc),
            "",
            table([cells for _, cells in rows(doc)], HEADER),
            "",
            table(_folders(doc), FOLDERS_HEADER),
            "",
            f"summary: {doc['out_dir']}/summary.md (and .html, .json)",
        ]
    )


def _md_row(cells: list[str]) -> str:
    # every cell literal: the model's path as given, and the reasons and figures that quote paths and names
    return "| " + " | ".join(md_cell(c, literal=True) for c in cells) + " |"


def to_markdown(doc: Mapping[str, Any]) -> str:
    lines = ["# edgeq sweep summary", "", md_cell(headline(doc)), "", "## Verdicts", ""]
    lines += ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += [_md_row(cells) for _, cells in rows(doc)]
    lines += ["", "## Build folders", "", "| " + " | ".join(FOLDERS_HEADER) + " |", "|" + "---|" * 3]
    lines += [_md_row(cells) for cells in _folders(doc)]
    lines += ["", "Each folder holds the model's build and its report (report.md, report.html).", ""]
    return "\n".join(lines)


def _html_rows(doc: Mapping[str, Any]) -> str:
    body = ""
    for failed, cells in rows(doc):
        head = f"<th>{html.escape(cells[0])}</th><td>{html.escape(cells[1])}</td>"
        if failed:
            body += f"<tr class='bad'>{head}<td colspan='{len(HEADER) - 2}'>{html.escape(cells[2])}</td></tr>"
        else:
            body += f"<tr>{head}" + "".join(f"<td>{html.escape(c)}</td>" for c in cells[2:]) + "</tr>"
    return body


def _html_folders(doc: Mapping[str, Any]) -> str:
    body = ""
    for m, (model, folder, status) in zip(doc["models"], _folders(doc), strict=True):
        link = html.escape(folder)
        if m.get("report"):  # the folder name is made of [A-Za-z0-9._-] (edgeq.build.sweep), escaped all the same
            link = f"<a href='{html.escape(m['report'], quote=True)}'>{link}</a>"
        body += f"<tr><th>{html.escape(model)}</th><td>{link}</td><td>{html.escape(status)}</td></tr>"
    return body


def to_html(doc: Mapping[str, Any]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in HEADER)
    folders = "".join(f"<th>{html.escape(h)}</th>" for h in FOLDERS_HEADER)
    return "\n".join(
        [
            "<!doctype html><html><head><meta charset='utf-8'><title>edgeq sweep summary</title>",
            f"<style>{CSS}</style></head><body>",
            "<h1>edgeq sweep summary</h1>",
            f"<p>{html.escape(headline(doc))}</p>",
            "<h2>Verdicts</h2>",
            f"<div class='wide'><table class='verdict'><thead><tr>{head}</tr></thead>"
            f"<tbody>{_html_rows(doc)}</tbody></table></div>",
            "<h2>Build folders</h2>",
            f"<div class='wide'><table><thead><tr>{folders}</tr></thead><tbody>{_html_folders(doc)}</tbody></table></div>",
            "</body></html>",
        ]
    )


def write(out: Path, doc: Mapping[str, Any]) -> list[Path]:
    """summary.json, summary.md and summary.html in ``out``, together or none."""
    check_writable(out, "the build folder")
    with Outputs(out) as staged:
        staged.write_bytes("summary.json", printable(json.dumps(doc, indent=2, default=str)).encode())
        staged.write_bytes("summary.md", printable(to_markdown(doc)).encode())
        staged.write_bytes("summary.html", printable(to_html(doc)).encode())
    return [out / "summary.json", out / "summary.md", out / "summary.html"]
