"""What the Coral target returns: the pre-flight's report and the compile's result, their typed findings
(placement on the Edge TPU, its parameter memory, messages with their level) and their text for people.

The check predicts (basis PREDICTED, the memory split ESTIMATED); edgetpu_compiler's report replaces them
where it ran (COMPILED): the build merges the two with :meth:`edgeq.findings.Findings.then`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from edgeq.findings import Basis, Figure, Findings, Message, Placement, info, warning
from edgeq.targets.base import CompatReport, CompileResult, ops_table
from edgeq.targets.coral import preflight

ACCELERATOR = "Edge TPU"
# The names of the Edge TPU's memory figures in Findings.memory (a later stage's figure of the same name
# replaces an earlier one's: the compiler's on-chip and streamed bytes replace the pre-flight's estimate).
PARAMETERS = "parameters on the Edge TPU"
ON_CHIP = "parameters cached on chip"
STREAMED = "parameters streamed from the host"
REMAINING = "on-chip memory remaining"
_COMPILER = "edgetpu_compiler's report"


@dataclass(frozen=True)
class CoralCompatReport(CompatReport):
    """The pre-flight's prediction: ``details`` has runtime_version, counts, first_unmapped, memory (cached
    vs streamed) and notes; ``prediction`` is the pre-flight itself, which a compile given this report
    reuses instead of predicting again (not serialized)."""

    prediction: preflight.Prediction | None = field(default=None, compare=False, repr=False)

    def describe(self, model: str) -> list[str]:
        d = self.details
        counts = d["counts"]
        head = f"{model} on {self.target} (Edge TPU runtime {d['runtime_version']})"
        head += ": " + ", ".join(f"{n} op(s) on the {k.upper()}" for k, n in counts.items())
        mem = d["memory"]
        return [
            head,
            *ops_table(self.ops),
            f"parameters on the accelerator: {mem['parameter_bytes_on_tpu']:,} bytes; estimated on-chip "
            f"{mem['cached_bytes_estimate']:,} bytes, streamed {mem['streamed_bytes_estimate']:,} bytes "
            f"(on-chip memory ~{mem['on_chip_bytes'] / 2**20:.0f} MiB)",
            *self.messages,
            *(f"note: {n}" for n in d.get("notes") or []),
        ]


def _mib(n: int | None) -> str:
    return "-" if n is None else f"{n / 2**20:.2f} MiB"


@dataclass(frozen=True)
class CoralCompileResult(CompileResult):
    """Per model (``details["models"]``): the pre-flight, the compiler's parsed report and their differences.
    ``findings`` are the first model's (the one ``output`` names); the others' placements are INFO messages."""

    def artifacts(self) -> list[str]:
        files: list[str] = []
        for m in self.details.get("models") or []:
            files += [m["preflight_report"], *m.get("outputs", []), *m.get("logs", []), *m.get("sidecars", [])]
        return files

    def describe(self) -> list[str]:
        doc = self.details
        comp = doc.get("compiler") or {}
        if self.skipped:
            lines = [f"compile: skipped ({self.reason})"]
        else:
            lines = [f"compiled with {comp.get('path')} (version {comp.get('version')})"]
        for m in doc.get("models") or []:
            lines += _model_lines(m)
        return lines


def _model_lines(m: dict) -> list[str]:
    """One model of a compile for people: the pre-flight, then the compiler's report and the differences."""
    pre = m.get("preflight") or {}
    counts = pre.get("counts") or {}
    lines = [
        f"{m['input']}: pre-flight {counts.get('tpu')} op(s) on the Edge TPU, {counts.get('cpu')} on the CPU "
        f"(report: {m.get('preflight_report')})"
    ]
    first = pre.get("first_unmapped")
    if first:
        lines.append(f"  first unmapped: #{first['index']} {first['op']}: {first['reason']}")
    c = m.get("compiler")
    if not c:
        return lines
    cc = c.get("counts") or {}
    lines.append(
        f"  compiler: {', '.join(m.get('outputs') or [])}; {cc.get('tpu')} op(s) on the Edge TPU, "
        f"{cc.get('cpu')} on the CPU; {c.get('num_subgraphs')} Edge TPU subgraph(s)"
    )
    lines.append(
        f"  parameters: cached on chip {_mib(c.get('on_chip_cached_bytes'))}, on-chip remaining "
        f"{_mib(c.get('on_chip_remaining_bytes'))}, streamed {_mib(c.get('off_chip_streamed_bytes'))}"
    )
    rows = c.get("ops") or []
    if rows:
        from edgeq.report.fmt import table

        lines.append(table([[x["op"], x["count"], x["status"]] for x in rows], ["op", "count", "status"]))
    if m.get("matches_prediction") is True:
        lines.append("  the compiler's table matches the pre-flight")
    for d in m.get("differences") or []:
        lines.append(f"  differs: {d['op']} '{d['status']}': predicted {d['predicted']}, compiler {d['compiler']}")
    return lines


# --- findings ------------------------------------------------------------------------------------


def check_messages(pred: preflight.Prediction) -> list[Message]:
    """The pre-flight's messages: an op off the Edge TPU, verdicts resting on unconfirmed rules and
    predicted streaming are warnings (a person should read them before deploying)."""
    messages = []
    first = pred.first_unmapped
    if first is not None:
        tail = f"; {first['ops_stranded_after']} op(s) after it stranded on the CPU" if first["splits_graph"] else ""
        guess = "" if first["confirmed"] else " (a guess: the rule behind it is unconfirmed)"
        messages.append(warning(f"first unmapped: #{first['index']} {first['op']}: {first['reason']}{tail}{guess}"))
    if pred.unconfirmed:
        messages.append(
            warning(
                f"{pred.unconfirmed} op verdict(s) rest on unconfirmed rules (basis 'guess'); the compiler may "
                "decide otherwise: compile with edgetpu_compiler to know"
            )
        )
    mem = pred.memory
    if mem["streaming_predicted"]:
        messages.append(
            warning(
                f"parameters on the Edge TPU ({mem['parameter_bytes_on_tpu']:,} bytes) exceed the ~8 MiB on-chip "
                f"memory: about {mem['streamed_bytes_estimate']:,} bytes would be streamed from the host on every "
                "inference"
            )
        )
    return messages


def check_findings(pred: preflight.Prediction) -> Findings:
    """The pre-flight as findings: the predicted placement (PREDICTED, by edgeq's rules for the compiler)
    and the parameter memory: on the TPU PREDICTED (the constants of the ops predicted on it), the on-chip
    and streamed split ESTIMATED (against the nominal on-chip memory; the compiler decides its own)."""
    counts, first = pred.counts, pred.first_unmapped
    mem = pred.memory
    budget = f"~{mem['on_chip_bytes'] / 2**20:.0f} MiB"
    rules = f"edgeq's pre-flight rules for the Edge TPU runtime {pred.runtime_version}"
    split_error = "the compiler's own split differs: it also caches per-layer buffers and pads"
    return Findings(
        placement=Placement(
            ACCELERATOR,
            counts["tpu"],
            counts["cpu"],
            Basis.PREDICTED,
            first_off=f"{first['op']}: {first['reason']}" if first else "",
        ),
        memory={
            PARAMETERS: Figure(
                mem["parameter_bytes_on_tpu"],
                "bytes",
                Basis.PREDICTED,
                how=f"constant tensors of the ops on the TPU ({rules})",
            ),
            ON_CHIP: Figure(
                mem["cached_bytes_estimate"],
                "bytes",
                Basis.ESTIMATED,
                how=f"parameters on the Edge TPU up to the {budget} on-chip memory",
                error=split_error,
            ),
            STREAMED: Figure(
                mem["streamed_bytes_estimate"],
                "bytes",
                Basis.ESTIMATED,
                how=f"parameters on the Edge TPU beyond the {budget} on-chip memory",
                error=split_error,
            ),
        },
        messages=tuple(check_messages(pred)),
    )


def _first_off(compiled: dict) -> str:
    """The first row of the compiler's table that is not mapped, in its words ("MEAN: reduces ...")."""
    row = next((r for r in compiled.get("ops") or [] if not r.get("on_tpu")), None)
    return f"{row['op']}: {row['status']}" if row else ""


def _compiled_placement(compiled: dict) -> Placement | None:
    counts = compiled.get("counts") or {}
    if counts.get("tpu") is None or counts.get("cpu") is None:
        return None  # the compiler said nothing countable: the check's prediction stays
    return Placement(ACCELERATOR, int(counts["tpu"]), int(counts["cpu"]), Basis.COMPILED, _first_off(compiled))


def _compiled_memory(compiled: dict) -> dict[str, Figure]:
    figures = {
        ON_CHIP: "on_chip_cached_bytes",
        STREAMED: "off_chip_streamed_bytes",
        REMAINING: "on_chip_remaining_bytes",
    }
    return {
        name: Figure(compiled[key], "bytes", Basis.COMPILED, how=_COMPILER)
        for name, key in figures.items()
        if compiled.get(key) is not None
    }


def compile_findings(entries: list[dict[str, Any]], warnings: list[str]) -> Findings:
    """The compile as findings: the FIRST model's placement and memory as edgetpu_compiler reported them
    (COMPILED; it is the model ``output`` names, the one a build deploys), each other co-compiled model's
    counts as an INFO message, and the compile's warnings (the table differs from the pre-flight, no
    edgetpu-custom-op in the output) as WARNINGs."""
    first = entries[0].get("compiler") or {}
    messages: list[Message] = []
    for entry in entries[1:]:
        counts = (entry.get("compiler") or {}).get("counts") or {}
        if counts.get("tpu") is not None:
            messages.append(
                info(
                    f"{entry['input']}: {counts['tpu']} op(s) on the Edge TPU, {counts['cpu']} on the CPU "
                    "(edgetpu_compiler, co-compiled)"
                )
            )
    messages += [warning(w) for w in warnings]
    return Findings(placement=_compiled_placement(first), memory=_compiled_memory(first), messages=tuple(messages))
