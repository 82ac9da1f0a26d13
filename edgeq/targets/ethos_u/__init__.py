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
from pathlib import Path
from typing import Any

from edgeq.artifacts import (
    output_folder,
    refuse_special,
    sha256_file,
    stage_folder,
    tool_versions,
    write_bytes_atomic,
    write_json_atomic,
)
from edgeq.config import BenchConfig, IOType, Mode
from edgeq.errors import ConversionFailed, OutputExists, Unavailable
from edgeq.targets import ethos_u_options as ethos_options
from edgeq.targets import toolversions
from edgeq.targets.base import NO_OPTIONS, Availability, BenchResult, CompatReport, CompileResult, Stage, check_models
from edgeq.targets.ethos_u import summary, vela
from edgeq.targets.ethos_u.vela import VelaConfig
from edgeq.targets.registry import resolve
from edgeq.tflite import read_bytes, read_file, read_model_bytes

__all__ = ["TARGET", "EthosUTarget", "EthosUCompileResult", "VelaConfig"]

PROFILE = {"integer_only": True, "int16_activations": True, "cpu_fallback_splits_graph": False}
ETHOSU_OP = "ethos-u"
REPORT_SUFFIX = ".ethos-u.json"
ESTIMATE_NOTE = (
    "Vela's performance figures are compiler estimates ('For performance numbers the compiled network should "
    "be run on an FVP Model or FPGA')"
)


class EthosUCompileResult(CompileResult):
    """Vela's output: ``details`` has the config, Vela's parsed summary (memory, cycles, estimated time),
    the per-op placement and ``files`` (model, summary_csv, console_log, report)."""

    def artifacts(self) -> list[str]:
        return [f for f in (self.details.get("files") or {}).values() if f]


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


class EthosUTarget:
    name = "ethos-u"
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

    def _report(self, res: dict, cfg: VelaConfig) -> CompatReport:
        rows = res["placement"]["ops"]
        counts = res["counts"]
        first = next((r for r in rows if not r["on_npu"]), None)
        first_unmapped = (
            {
                "index": first["index"],
                "op": first["op"],
                "reason": first.get("reason", ""),
                "splits_graph": False,
                "ops_stranded_after": 0,
            }
            if first
            else None
        )
        s = res["summary"]
        messages = []
        if first:
            messages.append(f"first op on the CPU: #{first['index']} {first['op']}: {first.get('reason', '')}")
        if counts["npu"] == 0:
            floats = res["original"].float_ops
            why = (
                f"the model computes in float ({len(floats)} op(s)); the Ethos-U runs int8/int16 only: quantize with "
                "--mode int8"
                if floats
                else "Vela mapped none of its ops"
            )
            messages.append(f"nothing runs on the NPU: {why}")
        mem = [
            f"{label} {s[key] / 1024:,.2f} KiB"
            for key, label in (
                ("sram_used_bytes", "SRAM"),
                ("dram_used_bytes", "DRAM"),
                ("on_chip_flash_used_bytes", "on-chip flash"),
                ("off_chip_flash_used_bytes", "off-chip flash"),
            )
            if s.get(key)
        ]
        if mem:
            messages.append("Vela memory: " + ", ".join(mem))
        if s.get("inference_time_ms") and counts["npu"]:
            messages.append(
                f"Vela estimate on {cfg.accelerator} ({s.get('system_config')}, {s.get('memory_mode')}): "
                f"{s['inference_time_ms']:.3f} ms, {s['inferences_per_second']:,.1f} inferences/s, "
                f"{(s.get('cycles') or {}).get('total'):,} cycles (NPU-side estimate; CPU ops not included)"
            )
        details = {
            "config": cfg.to_dict(),
            "vela_version": vela.version(),
            "summary": s,
            "npu_custom_ops": res["placement"]["npu_custom_ops"],
            "cpu_ops_in_output": res["placement"]["cpu_ops_in_output"],
            "placement": rows,
            "estimate_note": ESTIMATE_NOTE,
        }
        return CompatReport(
            target=self.name,
            ok=counts["cpu"] == 0,
            ops=tuple(_table(rows)),
            messages=tuple(messages),
            counts=counts,
            first_unmapped=first_unmapped,
            details=details,
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

    def check(self, model: str, options: Mapping[str, Any] = NO_OPTIONS) -> CompatReport:
        """Run Vela on ``model`` (in a temporary folder) and report the NPU/CPU split.

        Options (:mod:`edgeq.targets.ethos_u_options`): ``accelerator``
        (default ethos-u55-128), ``system_config`` and ``memory_mode`` (defaults per NPU family, from
        Vela's Arm/vela.ini), ``optimise`` (Performance | Size), ``timeout_s`` (600).

        Returns:
            CompatReport: ``counts`` {npu, cpu} over the model's ops, ``first_unmapped``, per-op table,
            ``details.summary`` (Vela's CSV numbers: SRAM/flash used, cycles, inference time).

        Raises:
            UsageError: an unknown accelerator, system config or memory mode.
            BadInput: not a TFLite model.
            Unavailable: Vela is not installed.
            ConversionFailed: Vela failed or timed out.
        """
        model_path = model
        cfg = self._config(resolve(self, Stage.CHECK, options))
        read_model_bytes(model_path)
        with tempfile.TemporaryDirectory(prefix="edgeq-vela-") as tmp:
            res = self._vela(model_path, Path(tmp), cfg)
            return self._report(res, cfg)

    # --- compile -------------------------------------------------------------------------------------

    def outputs(self, model_path: str, cfg: VelaConfig) -> list[str]:
        stem = Path(model_path).stem
        return [
            f"{stem}_vela.tflite",
            f"{stem}_summary_{cfg.system_config}.csv",
            f"{stem}_vela.log",
            f"{stem}{REPORT_SUFFIX}",
        ]

    def compile(self, models: Sequence[str], out_dir: str, options: Mapping[str, Any] = NO_OPTIONS) -> CompileResult:
        """Compile with Vela into ``out_dir``: ``<stem>_vela.tflite``, Vela's summary CSV, its console as
        ``<stem>_vela.log`` and the parsed report ``<stem>.ethos-u.json``.

        One model at a time. Options as in :meth:`check`, plus ``overwrite``: True replaces existing
        outputs, False refuses (the CLI passes ``--force``); None (a pipeline's call) replaces an earlier
        edgeq compile of the same model (its report exists) and refuses anything else.

        Returns:
            CompileResult: ``output`` is the optimised .tflite; ``details`` has the config, Vela's parsed
            summary (NPU/CPU operators, SRAM and flash used, cycles, inference time, inferences per
            second), the per-op placement, and the files.

        Raises:
            as :meth:`check`; OutputExists when outputs exist and may not be replaced.
        """
        (model_path,) = check_models(self, models)
        merged = resolve(self, Stage.COMPILE, options)
        cfg = self._config(merged)
        overwrite = merged.get("overwrite")
        read_model_bytes(model_path)
        out = output_folder(out_dir)
        names = self.outputs(model_path, cfg)
        ours = (out / names[-1]).exists()
        if overwrite is False or (overwrite is None and not ours):
            for name in names:
                if (out / name).exists():
                    raise OutputExists(f"output already exists: {out / name}", "pass --force to overwrite it")
        staging = stage_folder(out, "vela")  # named with the pid: the next run removes it once this one is dead
        try:
            res = self._vela(model_path, staging, cfg)
            report = self._report(res, cfg)
            stem = res["stem"]
            write_bytes_atomic(staging / f"{stem}_vela.log", res["run"].console.encode())
            files = {
                "model": out / names[0],
                "summary_csv": out / names[1] if res["csv"] is not None else None,
                "console_log": out / names[2],
                "report": out / names[3],
            }
            details = {
                "target": self.name,
                "input": str(model_path),
                "command": res["run"].args,
                "config": cfg.to_dict(),
                "vela_version": vela.version(),
                "summary": res["summary"],
                "counts": res["counts"],
                "npu_custom_ops": report.details["npu_custom_ops"],
                "cpu_ops_in_output": report.details["cpu_ops_in_output"],
                "placement": report.details["placement"],
                "messages": list(report.messages),
                "estimate_note": ESTIMATE_NOTE,
                "files": {k: (str(v) if v is not None else None) for k, v in files.items()},
            }
            doc = {
                "model": {"path": str(model_path), "sha256": sha256_file(model_path)},
                "target": self.name,
                "tool_versions": {**tool_versions(), "ethos-u-vela": vela.version()},
                **details,
            }
            write_json_atomic(staging / names[3], doc)
            if res["csv"] is not None and res["csv"].name != names[1]:
                os.replace(res["csv"], staging / names[1])
            for name in names:
                refuse_special(out / name)  # a device or FIFO there is never replaced
            for name in names:
                if (staging / name).exists():
                    os.replace(staging / name, out / name)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        if res["counts"]["npu"] == 0:
            details["warnings"] = [m for m in report.messages if m.startswith("nothing runs on the NPU")]
        return EthosUCompileResult(self.name, output=str(files["model"]), details=details)

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
