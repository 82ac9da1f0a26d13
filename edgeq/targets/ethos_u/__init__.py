"""Arm Ethos-U NPUs through Vela: what runs on the NPU, the memory it needs, and Vela's cycle estimate.

- ``TARGET.check(model, {"accelerator": ...})`` runs Vela in a temporary folder and reports which of the
  model's ops stay on the CPU (and Vela's reason), SRAM and flash used, and the performance estimate.
- ``TARGET.compile([model], out_dir, {"accelerator": ..., "system_config": ...})`` keeps Vela's
  optimised ``<model>_vela.tflite``, its summary CSV and console log, and a parsed report.
- There is no runner: no Ethos-U NPU or FVP is attached here; Vela's numbers are estimates.

Which ops ran where is read back from Vela's output model (ops left outside an ``ethos-u`` custom op run
on the CPU), matched to the input model's ops by output tensor name.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeq.artifacts import (
    output_folder,
    refuse_special,
    sha256_bytes,
    stage_folder,
    tool_versions,
    write_bytes_atomic,
    write_json_atomic,
)
from edgeq.config import BenchConfig, IOType, Mode
from edgeq.errors import ConversionFailed, OutputExists, Unavailable
from edgeq.findings import Basis, Figure, Findings, Message, Placement, info, warning
from edgeq.targets import ethos_u_options as ethos_options
from edgeq.targets import toolversions
from edgeq.targets.base import (
    NO_OPTIONS,
    Availability,
    BenchResult,
    CompatReport,
    CompileResult,
    Stage,
    check_models,
    ops_table,
)
from edgeq.targets.ethos_u import summary, vela
from edgeq.targets.ethos_u.vela import VelaConfig
from edgeq.targets.registry import resolve
from edgeq.tflite import read_bytes, read_file, read_model_bytes

__all__ = ["TARGET", "EthosUTarget", "EthosUCompatReport", "EthosUCompileResult", "VelaConfig"]

TARGET_NAME = "ethos-u"
PROFILE = {"integer_only": True, "int16_activations": True, "cpu_fallback_splits_graph": False}
ETHOSU_OP = "ethos-u"
REPORT_SUFFIX = ".ethos-u.json"
ESTIMATE_NOTE = (
    "Vela's performance figures are compiler estimates ('For performance numbers the compiled network should "
    "be run on an FVP Model or FPGA')"
)


VELA_MODEL = "Vela's performance model"
MEMORY_FIGURES = (
    ("sram_used_bytes", "SRAM"),
    ("dram_used_bytes", "DRAM"),
    ("on_chip_flash_used_bytes", "on-chip flash"),
    ("off_chip_flash_used_bytes", "off-chip flash"),
)


@dataclass(frozen=True)
class VelaOutputs:
    """What Vela wrote for a check, kept in memory so that a compile given the check (``checked``) writes it
    instead of running Vela again: the optimised model, the summary CSV (its name and text), the console."""

    model: bytes
    console: str
    command: tuple[str, ...]
    csv_name: str | None = None
    csv_text: str | None = None


@dataclass(frozen=True)
class EthosUCompatReport(CompatReport):
    """Vela's check: ``findings.placement`` (COMPILED: Vela mapped the ops), Vela's memory figures and its
    latency estimate; ``details`` names the model (``model``, ``model_sha256``) and the config.

    ``vela`` holds Vela's outputs for a compile given this report; it is not part of the result's data
    (not in ``to_dict``, not compared)."""

    vela: VelaOutputs | None = field(default=None, repr=False, compare=False)

    def describe(self, model: str) -> list[str]:
        """The split as ``N op(s) on the NPU, M op(s) on the CPU``, the per-op table, Vela's messages."""
        head = f"{model} on {self.target}"
        p = self.findings.placement
        if p is not None:
            head += f": {p.on} op(s) on the NPU, {p.off} op(s) on the CPU"
        return [head, *ops_table(self.ops), *self.messages]


class EthosUCompileResult(CompileResult):
    """Vela's output: ``details`` has the config, Vela's parsed summary (memory, cycles, estimated time),
    the per-op placement and ``files`` (model, summary_csv, console_log, report)."""

    def artifacts(self) -> list[str]:
        return [f for f in (self.details.get("files") or {}).values() if f]

    def describe(self) -> list[str]:
        """The outputs, then Vela's summary numbers as a table."""
        from edgeq.report.fmt import table

        lines = super().describe()
        summary = self.details.get("summary") or {}
        numbers = {k: v for k, v in summary.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        if numbers:
            lines.append(table([[k, v] for k, v in numbers.items()], ["", "value"]))
        return lines


class EthosURunner:
    REASON = "no Ethos-U NPU or Corstone FVP is attached; Vela's cycle estimate is in edgeq compile --target ethos-u"

    def availability(self) -> Availability:
        return Availability(False, self.REASON)

    def load(self, model_path: str, cfg: BenchConfig) -> None:
        raise Unavailable(self.REASON, "use edgeq compile --target ethos-u for Vela's estimate")

    def invoke(self) -> None:
        raise Unavailable(self.REASON, "use edgeq compile --target ethos-u for Vela's estimate")

    def benchmark(self, model_path: str, cfg: BenchConfig) -> BenchResult:
        raise Unavailable(self.REASON, "use edgeq compile --target ethos-u for Vela's estimate")


def placement(original, compiled) -> dict:
    """Where each op of the input model ended up: matched by output tensor name against the ops Vela
    left on the CPU (everything else went into ``ethos-u`` custom ops). An op without outputs (CALL_ONCE,
    ASSIGN_VARIABLE) has no name to match: it is on the CPU while the compiled model keeps as many of
    its kind, as Vela keeps them."""
    cpu_ops = [op for op in compiled.ops if op.name != ETHOSU_OP]
    cpu_outputs = {compiled.tensors[o].name for op in cpu_ops for o in op.outputs if o >= 0}
    # op name -> how many output-less ops of that kind the compiled model kept on the CPU
    outputless: dict[str, int] = {}
    for op in cpu_ops:
        if not any(o >= 0 for o in op.outputs):
            outputless[op.name] = outputless.get(op.name, 0) + 1
    rows = []
    for op in original.ops:
        names = {original.tensors[o].name for o in op.outputs if o >= 0}
        if names:
            on_npu = not (names & cpu_outputs)
        else:
            on_npu = outputless.get(op.name, 0) == 0
            if not on_npu:
                outputless[op.name] -= 1
        rows.append({"index": op.index, "op": op.name, "on_npu": on_npu, "outputs": sorted(names)})
    return {
        "ops": rows,
        "npu_custom_ops": sum(1 for op in compiled.ops if op.name == ETHOSU_OP),
        "cpu_ops_in_output": sorted(op.name for op in compiled.ops if op.name != ETHOSU_OP),
    }


def _attach_reasons(rows: list[dict], fallbacks: list[dict]) -> None:
    by_ofm = {f["ofm"]: f["reason"] for f in fallbacks}
    for r in rows:
        if not r["on_npu"]:
            r["reason"] = next((by_ofm[o] for o in r["outputs"] if o in by_ofm), "left on the CPU by Vela")


def _table(rows: list[dict]) -> list[dict]:
    """The per-op table (op, count, status) the check shows, in first-use order."""
    table: dict[tuple[str, bool], dict] = {}
    for r in rows:
        key = (r["op"], r["on_npu"])
        entry = table.setdefault(
            key, {"op": r["op"], "count": 0, "status": "npu" if r["on_npu"] else "cpu", "on_npu": r["on_npu"]}
        )
        entry["count"] += 1
        if not r["on_npu"] and "reason" not in entry:
            entry["reason"] = r.get("reason", "")
    return list(table.values())


def _findings(res: dict, cfg: VelaConfig) -> Findings:
    """Vela's result as findings: the placement it compiled, its memory figures, its latency estimate, and
    the messages with their level."""
    rows = res["placement"]["ops"]
    counts = res["counts"]
    s = res["summary"]
    first = next((r for r in rows if not r["on_npu"]), None)
    messages: list[Message] = []
    if first:
        messages.append(warning(f"first op on the CPU: #{first['index']} {first['op']}: {first.get('reason', '')}"))
    if counts["npu"] == 0:
        floats = res["original"].float_ops
        why = (
            f"the model computes in float ({len(floats)} op(s)); the Ethos-U runs int8/int16 only: quantize with "
            "--mode int8"
            if floats
            else "Vela mapped none of its ops"
        )
        messages.append(warning(f"nothing runs on the NPU: {why}"))
    used = [(label, s[key]) for key, label in MEMORY_FIGURES if s.get(key)]
    if used:
        messages.append(info("Vela memory: " + ", ".join(f"{label} {n / 1024:,.2f} KiB" for label, n in used)))
    where = (
        f"{cfg.accelerator} ({s.get('system_config') or cfg.system_config}, {s.get('memory_mode') or cfg.memory_mode})"
    )
    latency = None
    if s.get("inference_time_ms") and counts["npu"]:
        messages.append(
            info(
                f"Vela estimate on {cfg.accelerator} ({s.get('system_config')}, {s.get('memory_mode')}): "
                f"{s['inference_time_ms']:.3f} ms, {s['inferences_per_second']:,.1f} inferences/s, "
                f"{(s.get('cycles') or {}).get('total'):,} cycles (NPU-side estimate; CPU ops not included)"
            )
        )
        latency = Figure(
            s["inference_time_ms"],
            "ms",
            Basis.ESTIMATED,
            where=where,
            how=VELA_MODEL,
            error="not given by Vela, which says to run on an FVP or FPGA for performance numbers; the NPU's "
            "work only, ops on the CPU not included",
        )
    return Findings(
        placement=Placement(
            f"Ethos-U NPU ({cfg.accelerator})",
            counts["npu"],
            counts["cpu"],
            Basis.COMPILED,
            first_off=f"{first['op']}: {first.get('reason', '')}" if first else "",
        ),
        latency=latency,
        memory={label: Figure(n, "bytes", Basis.COMPILED, where=where, how="Vela's summary") for label, n in used},
        messages=tuple(messages),
    )


def _same_config(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """The same Vela configuration (the timeout changes nothing Vela makes)."""
    return {k: v for k, v in a.items() if k != "timeout_s"} == {k: v for k, v in b.items() if k != "timeout_s"}


def _checked_report(
    checked: Sequence[CompatReport], model_path: str, sha256: str, cfg: VelaConfig
) -> EthosUCompatReport | None:
    """The check of ``model_path`` (these bytes) by this Vela with ``cfg`` among ``checked``, with its Vela
    outputs; None when there is none (another model, other bytes, another config or Vela)."""
    path = Path(model_path).resolve()
    for report in checked:
        if not isinstance(report, EthosUCompatReport) or report.vela is None:
            continue
        d = report.details
        if (
            d.get("model_sha256") == sha256
            and d.get("model") is not None
            and Path(d["model"]).resolve() == path
            and _same_config(d.get("config") or {}, cfg.to_dict())
            and d.get("vela_version") == vela.version()
        ):
            return report
    return None


def _compile_details(report: EthosUCompatReport, model_path: str, files: Mapping[str, Path | None]) -> dict:
    d = report.details
    assert report.vela is not None
    return {
        "target": TARGET_NAME,
        "input": str(model_path),
        "command": list(report.vela.command),
        "config": d["config"],
        "vela_version": d["vela_version"],
        "summary": d["summary"],
        "counts": d["counts"],
        "npu_custom_ops": d["npu_custom_ops"],
        "cpu_ops_in_output": d["cpu_ops_in_output"],
        "placement": d["placement"],
        "estimate_note": ESTIMATE_NOTE,
        "files": {k: (str(v) if v is not None else None) for k, v in files.items()},
    }


def _write_outputs(staging: Path, names: list[str], report: EthosUCompatReport, details: dict) -> None:
    """Vela's outputs and the parsed report into ``staging``, under the names the compile promises."""
    outs = report.vela
    assert outs is not None
    write_bytes_atomic(staging / names[0], outs.model)
    if outs.csv_text is not None:
        write_bytes_atomic(staging / names[1], outs.csv_text.encode())
    write_bytes_atomic(staging / names[2], outs.console.encode())
    doc = {
        "model": {"path": details["input"], "sha256": report.details["model_sha256"]},
        "target": TARGET_NAME,
        "tool_versions": {**tool_versions(), "ethos-u-vela": vela.version()},
        **details,
        "findings": report.findings.to_dict(),
    }
    write_json_atomic(staging / names[3], doc)


class EthosUTarget:
    name = TARGET_NAME
    description = "Arm Ethos-U NPU (Vela: NPU/CPU split, SRAM/flash, cycle estimate)"
    build_mode = Mode.INT8
    build_io = IOType.INT8
    profile = PROFILE
    options = ethos_options.OPTIONS
    max_models = 1
    device_help = ethos_options.DEVICE_HELP

    def _vela(self, model_path: str, work: Path, cfg: VelaConfig) -> dict:
        """Run Vela into ``work`` and read everything back."""
        original = read_file(model_path)
        run = vela.run(model_path, work, cfg)
        stem = Path(model_path).stem
        out_model = work / f"{stem}_vela.tflite"
        csvs = sorted(work.glob(f"{stem}_summary_*.csv"))
        if not out_model.exists():
            raise ConversionFailed(
                f"Vela reported success but wrote no {out_model.name}",
                "run vela by hand to see why",
                details={"command": run.args, "output": run.console[-4000:]},
            )
        compiled = read_bytes(out_model.read_bytes(), origin=str(out_model))
        parsed = summary.summarize(csvs[-1].read_text() if csvs else None, run.console)
        where = placement(original, compiled)
        _attach_reasons(where["ops"], parsed["fallbacks"])
        cpu = sum(1 for r in where["ops"] if not r["on_npu"])
        return {
            "original": original,
            "stem": stem,
            "run": run,
            "out_model": out_model,
            "csv": csvs[-1] if csvs else None,
            "summary": parsed,
            "placement": where,
            "counts": {"npu": len(where["ops"]) - cpu, "cpu": cpu},
        }

    def _report(self, res: dict, cfg: VelaConfig, model_path: str, sha256: str) -> EthosUCompatReport:
        rows = res["placement"]["ops"]
        counts = res["counts"]
        details = {
            "model": str(model_path),
            "model_sha256": sha256,
            "config": cfg.to_dict(),
            "vela_version": vela.version(),
            "summary": res["summary"],
            "counts": counts,
            "npu_custom_ops": res["placement"]["npu_custom_ops"],
            "cpu_ops_in_output": res["placement"]["cpu_ops_in_output"],
            "placement": rows,
            "estimate_note": ESTIMATE_NOTE,
        }
        out = res["out_model"]
        csv = res["csv"]
        outputs = VelaOutputs(
            model=out.read_bytes(),
            console=res["run"].console,
            command=tuple(res["run"].args),
            csv_name=csv.name if csv is not None else None,
            csv_text=csv.read_text() if csv is not None else None,
        )
        return EthosUCompatReport(
            target=self.name,
            ok=counts["cpu"] == 0,
            ops=tuple(_table(rows)),
            findings=_findings(res, cfg),
            details=details,
            vela=outputs,
        )

    # --- check ---------------------------------------------------------------------------------------

    @staticmethod
    def _config(opts: dict) -> VelaConfig:
        return VelaConfig(
            opts.get("accelerator") or vela.DEFAULT_ACCELERATOR,
            opts.get("system_config"),
            opts.get("memory_mode"),
            opts.get("optimise") or "Performance",
            float(opts.get("timeout_s") or vela.DEFAULT_TIMEOUT_S),
        )

    def check(self, model: str, options: Mapping[str, Any] = NO_OPTIONS) -> EthosUCompatReport:
        """Run Vela on ``model`` (in a temporary folder) and report the NPU/CPU split.

        Options (:mod:`edgeq.targets.ethos_u_options`): ``accelerator``
        (default ethos-u55-128), ``system_config`` and ``memory_mode`` (defaults per NPU family, from
        Vela's Arm/vela.ini), ``optimise`` (Performance | Size), ``timeout_s`` (600).

        Returns:
            EthosUCompatReport: ``findings`` with the placement Vela compiled (ops on the NPU and on the
            CPU, the first on the CPU and Vela's reason), Vela's SRAM/flash figures and latency estimate;
            the per-op table; ``details.summary`` (Vela's CSV numbers: SRAM/flash used, cycles, inference
            time). Vela's outputs stay with the report (``vela``) for a compile given it.

        Raises:
            UsageError: an unknown accelerator, system config or memory mode.
            BadInput: not a TFLite model.
            Unavailable: Vela is not installed.
            ConversionFailed: Vela failed or timed out.
        """
        model_path = model
        cfg = self._config(resolve(self, Stage.CHECK, options))
        sha = sha256_bytes(read_model_bytes(model_path))
        with tempfile.TemporaryDirectory(prefix="edgeq-vela-") as tmp:
            res = self._vela(model_path, Path(tmp), cfg)
            return self._report(res, cfg, model_path, sha)

    # --- compile -------------------------------------------------------------------------------------

    def outputs(self, model_path: str, cfg: VelaConfig) -> list[str]:
        stem = Path(model_path).stem
        return [
            f"{stem}_vela.tflite",
            f"{stem}_summary_{cfg.system_config}.csv",
            f"{stem}_vela.log",
            f"{stem}{REPORT_SUFFIX}",
        ]

    def compile(
        self,
        models: Sequence[str],
        out_dir: str,
        options: Mapping[str, Any] = NO_OPTIONS,
        checked: Sequence[CompatReport] = (),
    ) -> EthosUCompileResult:
        """Compile with Vela into ``out_dir``: ``<stem>_vela.tflite``, Vela's summary CSV, its console as
        ``<stem>_vela.log`` and the parsed report ``<stem>.ethos-u.json``.

        One model at a time. Options as in :meth:`check`, plus ``overwrite``: True replaces existing
        outputs, False refuses (the CLI passes ``--force``); None (a pipeline's call) replaces an earlier
        edgeq compile of the same model (its report exists) and refuses anything else. ``checked``: the
        check of the model with the same options; when one matches (same path, same bytes, same Vela
        config and version), its Vela outputs are written instead of running Vela again.

        Returns:
            EthosUCompileResult: ``output`` is the optimised .tflite; ``findings`` as the check's;
            ``details`` has the config, Vela's parsed summary (NPU/CPU operators, SRAM and flash used,
            cycles, inference time, inferences per second), the per-op placement, and the files.

        Raises:
            as :meth:`check`; OutputExists when outputs exist and may not be replaced.
        """
        (model_path,) = check_models(self, models)
        merged = resolve(self, Stage.COMPILE, options)
        cfg = self._config(merged)
        overwrite = merged.get("overwrite")
        sha = sha256_bytes(read_model_bytes(model_path))
        out = output_folder(out_dir)
        names = self.outputs(model_path, cfg)
        ours = (out / names[-1]).exists()
        if overwrite is False or (overwrite is None and not ours):
            for name in names:
                if (out / name).exists():
                    raise OutputExists(f"output already exists: {out / name}", "pass --force to overwrite it")
        report = _checked_report(checked, model_path, sha, cfg)
        staging = stage_folder(out, "vela")  # named with the pid: the next run removes it once this one is dead
        try:
            if report is None:
                report = self._report(self._vela(model_path, staging, cfg), cfg, model_path, sha)
            assert report.vela is not None  # every report this target makes carries its outputs
            files = {
                "model": out / names[0],
                "summary_csv": out / names[1] if report.vela.csv_text is not None else None,
                "console_log": out / names[2],
                "report": out / names[3],
            }
            details = _compile_details(report, model_path, files)
            _write_outputs(staging, names, report, details)
            for name in names:
                refuse_special(out / name)  # a device or FIFO there is never replaced
            for name in names:
                if (staging / name).exists():
                    os.replace(staging / name, out / name)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return EthosUCompileResult(self.name, output=str(files["model"]), findings=report.findings, details=details)

    def tool_versions(self, stage: Stage, options: Mapping[str, Any] = NO_OPTIONS) -> dict[str, str]:
        """Vela's version for check and compile (both run it); bench runs nothing."""
        resolve(self, stage, options)
        if stage in (Stage.CHECK, Stage.COMPILE):
            return {"ethos-u-vela": vela.version() or toolversions.ABSENT}
        return {}

    def runner(self, device: str | None = None, options: Mapping[str, Any] = NO_OPTIONS) -> EthosURunner:
        """A runner that says why nothing runs here (no NPU or FVP); no device, no options."""
        resolve(self, Stage.BENCH, options, device)
        return EthosURunner()


TARGET = EthosUTarget()
