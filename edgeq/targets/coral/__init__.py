"""Google Coral Edge TPU: a pre-flight that predicts edgetpu_compiler, and a wrapper that runs it.

- ``TARGET.check(model, options)`` predicts the compiler's per-op table from the .tflite alone (no compiler).
- ``TARGET.compile(models, out_dir, options, checked)`` runs the pre-flight (or reuses the check's, given
  in ``checked``), then edgetpu_compiler when it is installed (skipped, with the reason, when it is not),
  parses its console and .log, and compares them with the prediction.
- ``TARGET.profile`` is the hardware as data for the quantization planner; ``TARGET.cpu_ops(model)``
  says how many ops would leave the accelerator.

Modules: rules (supported ops and limits as data), preflight, compiler (subprocess), logparse, results
(the result types, their findings and their text).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

from edgeq.artifacts import output_folder
from edgeq.config import IOType, Mode
from edgeq.errors import ConversionFailed, OutputExists, Unavailable, UsageError
from edgeq.targets import coral_options, toolversions
from edgeq.targets.base import NO_OPTIONS, CompatReport, Stage, check_models
from edgeq.targets.coral import compiler, logparse, preflight, results, rules
from edgeq.targets.coral.compiler import CompileConfig
from edgeq.targets.coral.results import CoralCompatReport, CoralCompileResult
from edgeq.targets.registry import resolve

__all__ = ["TARGET", "CoralTarget", "CompileConfig", "CoralCompatReport", "CoralCompileResult", "PROFILE"]

PROFILE = rules.PROFILE
EDGETPU_CUSTOM_OP = "edgetpu-custom-op"


EDGETPU_LIBRARY = "libedgetpu.so.1"  # the Edge TPU runtime's delegate (Coral's libedgetpu1-std/-max)
DEVICE_PATTERN = re.compile(r"^(usb|pci)(:\d+)?$")


def edgetpu_runner(device: str | None = None, options: Mapping | None = None):  # options checked by the caller
    """Benchmark through libedgetpu: in this process, or on a board over SSH (``host``).

    ``device`` is a Coral device string (``usb``, ``usb:0``, ``pci:0``); the first invoke, which
    loads the parameters onto the TPU, is reported apart by the harness.
    """
    from edgeq.targets.cpu import LocalRunner
    from edgeq.targets.remote import SshRunner

    if device is not None and not DEVICE_PATTERN.match(device):
        raise UsageError(f"bad Edge TPU device {device!r}", "use usb, usb:0, pci or pci:0")
    options = dict(options or {})
    host = options.pop("host", None)
    if host is not None:
        return SshRunner(host=host, target="coral", delegate=EDGETPU_LIBRARY, device=device, **options)
    if options:
        raise UsageError(
            f"{', '.join('--' + k.replace('_', '-') for k in options)} needs --host", "add --host USER@BOARD"
        )
    return LocalRunner(target="coral", delegate=EDGETPU_LIBRARY, device=device)


def _compile_config(options: dict) -> CompileConfig:
    """A CompileConfig from checked options; ``overwrite`` unset (None) is decided by the caller."""
    options = {k: v for k, v in options.items() if k in {f.name for f in fields(CompileConfig)}}
    if isinstance(options.get("intermediate_tensors"), str):
        options["intermediate_tensors"] = tuple(t for t in options["intermediate_tensors"].split(",") if t)
    options["overwrite"] = bool(options.get("overwrite"))
    return CompileConfig(**options)


def _summary(pred: preflight.Prediction) -> dict:
    return {
        "runtime_version": pred.runtime_version,
        "ops": pred.table(),
        "counts": pred.counts,
        "first_unmapped": pred.first_unmapped,
        "memory": pred.memory,
    }


def _count_custom_ops(path: Path) -> int | None:
    """How many edgetpu-custom-op ops the compiled model holds (read back; never trust a tool's word)."""
    from edgeq.tflite import custom_op_count

    try:
        return custom_op_count(path.read_bytes(), EDGETPU_CUSTOM_OP)
    except OSError:
        return None


def _stems(models: list[str]) -> list[str]:
    """The models' stems, refused when two would write the same compiled file."""
    stems = [Path(m).stem for m in models]
    dup = sorted({s for s in stems if stems.count(s) > 1})
    if dup:
        raise UsageError(
            f"two models named {dup[0]}.tflite would write the same {dup[0]}_edgetpu.tflite", "rename one of them"
        )
    return stems


def _refuse_existing(out: Path, stems: list[str], overwrite: bool | None) -> None:
    """Refuse outputs that exist, unless ``overwrite``; unset, an earlier edgeq compile's are replaced."""
    for stem in stems:
        ours = (out / f"{stem}.coral-check.json").exists()
        if overwrite or (overwrite is None and ours):
            continue
        for name in (f"{stem}_edgetpu.tflite", f"{stem}_edgetpu.log", f"{stem}.coral-check.json"):
            if (out / name).exists():
                raise OutputExists(f"output already exists: {out / name}", "pass --force to overwrite it")


def _reused(model: str, runtime_version: int, checked: Sequence[CompatReport]) -> preflight.Prediction | None:
    """The pre-flight a check already made of ``model`` for the same runtime version, if one is in ``checked``."""
    for report in checked:
        pred = report.prediction if isinstance(report, CoralCompatReport) else None
        if pred is None or pred.runtime_version != runtime_version:
            continue
        try:
            if os.path.samefile(pred.model, model):
                return pred
        except OSError:
            continue
    return None


class CoralTarget:
    name = "coral"
    description = "Google Coral Edge TPU (edgetpu_compiler; pre-flight without it)"
    build_mode = Mode.INT8
    build_io = IOType.INT8  # int8 I/O: no QUANTIZE/DEQUANTIZE left on the CPU
    profile = PROFILE
    options = coral_options.OPTIONS
    max_models = None  # edgetpu_compiler co-compiles several models (they share the on-chip cache)
    device_help = coral_options.DEVICE_HELP
    ops_source = "docs/coral.md"
    other_ops = "any other op runs on the CPU"

    # --- check ---------------------------------------------------------------------------------------

    def predict(self, model_path: str, runtime_version: int = rules.DEFAULT_RUNTIME_VERSION) -> preflight.Prediction:
        return preflight.predict(model_path, runtime_version)

    def check(self, model: str, options: Mapping[str, Any] = NO_OPTIONS) -> CoralCompatReport:
        """Predict the compiler's verdict for ``model`` (options: ``runtime_version``).

        Raises:
            UsageError: an option coral does not take at check.
            BadInput: not a TFLite model, or one the compiler rejects whole (dynamic shapes, batch > 1,
                float or dynamic-range ops, 16-bit activations), with the fix.
        """
        runtime = resolve(self, Stage.CHECK, options).get("runtime_version")
        pred = preflight.predict(model, rules.DEFAULT_RUNTIME_VERSION if runtime is None else int(runtime))
        return self.report(pred)

    def report(self, pred: preflight.Prediction) -> CoralCompatReport:
        details = pred.to_dict()  # notes (documented limits that cannot be predicted) stay in details
        details.pop("ops")
        return CoralCompatReport(
            target=self.name,
            ok=pred.counts["cpu"] == 0,
            ops=tuple(pred.table()),
            findings=results.check_findings(pred),
            details=details,
            prediction=pred,
        )

    def cpu_ops(self, model_path: str, runtime_version: int = rules.DEFAULT_RUNTIME_VERSION) -> int:
        """How many ops of ``model_path`` would leave the accelerator (for the quantization planner)."""
        return preflight.predict(model_path, runtime_version).counts["cpu"]

    def supported_ops(self, runtime_version: int | None = None) -> list[dict]:
        return rules.table(runtime_version)

    def requirements(self) -> list[dict]:
        return [{"id": r.id, "text": r.text, "fix": r.fix, "source": r.source} for r in rules.REQUIREMENTS]

    # --- compile -------------------------------------------------------------------------------------

    def compile(
        self,
        models: Sequence[str],
        out_dir: str,
        options: Mapping[str, Any] = NO_OPTIONS,
        checked: Sequence[CompatReport] = (),
    ) -> CoralCompileResult:
        """Pre-flight, then edgetpu_compiler on one or several models (co-compiled in one call).

        A missing compiler gives ``skipped=True`` with the reason. ``options`` are :class:`CompileConfig`
        fields (as declared in :mod:`edgeq.targets.coral_options`). ``overwrite``: True replaces existing
        outputs, False refuses; unset (a pipeline's call) replaces an earlier edgeq compile of the same
        model (its pre-flight report exists) and refuses anything else. ``checked``: the check's report of
        each model (same runtime version); its pre-flight is reused instead of predicting again.

        Returns:
            CoralCompileResult: ``output`` is the first compiled model (the input when skipped); ``details``
            has per model the pre-flight, the compiler's parsed report and their differences; ``findings``
            the first model's placement and memory as the compiler reported them.

        Raises:
            UsageError: contradictory options.
            BadInput: a model breaks a requirement (the pre-flight runs first); outputs exist.
            Unavailable: the compiler is missing and required, or cannot be run.
            ConversionFailed: the compiler failed, timed out, or mapped nothing to the Edge TPU.
        """
        models = check_models(self, models)
        opts = resolve(self, Stage.COMPILE, options)
        cfg = _compile_config(opts)
        stems = _stems(models)
        out = output_folder(out_dir)
        predictions = [
            _reused(m, cfg.runtime_version, checked) or preflight.predict(m, cfg.runtime_version) for m in models
        ]
        _refuse_existing(out, stems, opts.get("overwrite"))
        entries = self._write_preflight(models, stems, predictions, out)
        details: dict[str, Any] = {"target": self.name, "config": cfg.to_dict(), "models": entries, "warnings": []}
        path = compiler.find(cfg.compiler)
        if path is None:
            reason = f"edgetpu_compiler is not installed (not on PATH); {compiler.INSTALL_HINT}"
            if cfg.require_compiler:
                raise Unavailable("edgetpu_compiler is not installed (not on PATH)", compiler.INSTALL_HINT)
            details.update(compiler={"path": None, "version": None, "available": False}, command=None)
            details["steps"] = {"preflight": "done", "compile": "skipped"}
            return CoralCompileResult(self.name, output=models[0], skipped=True, reason=reason, details=details)
        details["compiler"] = {"path": path, "version": compiler.version(path, cfg.timeout_s), "available": True}
        details["steps"] = {"preflight": "done", "compile": "failed"}
        console = self._run_compiler(path, models, stems, predictions, out, cfg, details)
        details["steps"]["compile"] = "done"
        details["console"] = {k: v for k, v in console.to_dict().items() if k != "models"}
        self._write_provenance(entries, cfg, details)
        findings = results.compile_findings(entries, details["warnings"])
        first = entries[0]["outputs"][0]
        return CoralCompileResult(self.name, output=first, skipped=False, reason="", findings=findings, details=details)

    def _write_preflight(self, models, stems, predictions, out: Path) -> list[dict[str, Any]]:
        """Write each model's pre-flight report beside the outputs; the per-model entries of the result."""
        from edgeq.artifacts import write_json_atomic

        entries: list[dict[str, Any]] = []
        for model, stem, pred in zip(models, stems, predictions, strict=True):
            report_path = out / f"{stem}.coral-check.json"
            write_json_atomic(report_path, {"model": model, "target": self.name, "preflight": pred.to_dict()})
            entries.append({"input": model, "preflight_report": str(report_path), "preflight": _summary(pred)})
        return entries

    def _run_compiler(self, path: str, models, stems, predictions, out: Path, cfg: CompileConfig, details: dict):
        """Run edgetpu_compiler into a staging folder, check it made every model, and collect its outputs."""
        from edgeq.artifacts import stage_folder

        entries = details["models"]
        tmp = stage_folder(out, "edgetpu")  # named with the pid: the next run removes it once this one is dead
        try:
            args = [path, *cfg.flags(), "-o", str(tmp), *[str(Path(m).resolve()) for m in models]]
            details["command"] = args
            run = compiler.run(args, cfg.timeout_s)
            console = logparse.parse_console(run.output)
            failure = compiler.failure_of(run, console)
            produced = {stem: sorted(p.name for p in tmp.glob(f"{stem}*_edgetpu.tflite")) for stem in stems}
            if failure is None:
                missing = [stem for stem in stems if not produced[stem]]
                if missing:
                    failure = f"edgetpu_compiler reported success but wrote no {missing[0]}_edgetpu.tflite"
            if failure is not None:
                raise ConversionFailed(
                    f"edgetpu_compiler failed: {failure}",
                    compiler.failure_hint(failure, cfg),
                    details={
                        "command": args,
                        "returncode": run.returncode,
                        "output": compiler.tail(run.output),
                        "preflight": [e["preflight"] for e in entries],
                    },
                )
            self._collect(entries, stems, predictions, console, tmp, out, produced, cfg, details)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return console

    def tool_versions(self, stage: Stage, options: Mapping[str, Any] = NO_OPTIONS) -> dict[str, str]:
        """edgetpu_compiler's version for compile (``options["compiler"]`` or the one on PATH; "absent" when
        there is none, so installing it redoes the compile); check is edgeq's own pre-flight, and bench
        runs LiteRT with the Edge TPU delegate."""
        if stage == Stage.COMPILE:
            explicit = resolve(self, stage, options).get("compiler")
            try:
                path = compiler.find(explicit)
            except Unavailable:
                path = None
            return {compiler.EXECUTABLE: toolversions.program(path, parse=compiler.parse_version)}
        if stage == Stage.BENCH:
            return {"ai-edge-litert": toolversions.package("ai-edge-litert")}
        return {}

    def _collect(self, entries, stems, predictions, console, tmp: Path, out: Path, produced, cfg, details) -> None:
        """Match the compiler's blocks and logs to the models, compare with the prediction, move outputs."""
        from edgeq.artifacts import refuse_special

        blocks = list(console.models)
        for i, (entry, stem, pred) in enumerate(zip(entries, stems, predictions, strict=True)):
            mine = [b for b in blocks if Path(b.input_model).stem == stem]
            block = mine[-1] if mine else (blocks[i] if i < len(blocks) else None)
            logs = sorted(tmp.glob(f"{stem}*_edgetpu.log"))
            log_rows: list[logparse.OpRow] = []
            for log in logs:
                for rep in logparse.parse_log(log.read_text(errors="replace")):
                    log_rows.extend(rep.ops)
            table = log_rows or (list(block.ops) if block else [])
            complete = bool(log_rows) or bool(block and block.table_complete)
            diffs = logparse.compare(pred.table(), table) if complete else []
            compiled = block.to_dict() if block else {}
            compiled["ops"] = [r.to_dict() for r in table]
            compiled["table_source"] = "log" if log_rows else ("console" if table else None)
            if log_rows:  # the .log is the full record; its table gives the counts
                tpu = sum(r.count for r in log_rows if r.on_tpu)
                compiled["counts"] = {"tpu": tpu, "cpu": sum(r.count for r in log_rows) - tpu}
            entry["compiler"] = compiled
            entry["differences"] = diffs
            entry["matches_prediction"] = (not diffs) if complete else None
            if diffs and cfg.changes_partitioning:
                entry["note"] = "-a, -d or -i change the partitioning; the pre-flight predicts the default"
            if diffs:
                details["warnings"].append(
                    f"{stem}: the compiler's table differs from the pre-flight in {len(diffs)} row(s): "
                    + "; ".join(
                        f"{d['op']} '{d['status']}' predicted {d['predicted']}, got {d['compiler']}" for d in diffs
                    )
                )
            outputs = []
            for name in produced[stem]:
                refuse_special(out / name)  # a device or FIFO there is never replaced
                os.replace(tmp / name, out / name)
                outputs.append(str(out / name))
            entry["outputs"] = outputs
            entry["output"] = outputs[0]
            entry["logs"] = []
            for log in logs:
                refuse_special(out / log.name)
                os.replace(log, out / log.name)
                entry["logs"].append(str(out / log.name))
            n_custom = _count_custom_ops(Path(outputs[0]))
            entry["edgetpu_custom_ops"] = n_custom
            if n_custom == 0 and (block is None or block.num_subgraphs):
                details["warnings"].append(
                    f"{stem}: {Path(outputs[0]).name} holds no {EDGETPU_CUSTOM_OP} although the compiler reported "
                    "success: nothing of it runs on the Edge TPU"
                )

    def _write_provenance(self, entries, cfg: CompileConfig, details: dict) -> None:
        from edgeq.artifacts import provenance, sha256_file, sidecar_path, write_json_atomic

        for entry in entries:
            for output in entry["outputs"]:
                doc = provenance(
                    "compile",
                    cfg.to_dict(),
                    {"model": entry["input"]},
                    target=self.name,
                    compiler={k: details["compiler"][k] for k in ("path", "version")},
                    compiler_command=details["command"],
                    preflight=entry["preflight"],
                    compiler_report=entry["compiler"],
                    differences=entry["differences"],
                )
                doc["output"] = {"path": output, "sha256": sha256_file(output), "size_bytes": os.path.getsize(output)}
                side = sidecar_path(output)
                write_json_atomic(side, doc)
                entry.setdefault("sidecars", []).append(str(side))

    def runner(self, device: str | None = None, options: Mapping[str, Any] = NO_OPTIONS):
        """The Edge TPU through libedgetpu, here or on a board over SSH (``host``): see :func:`edgetpu_runner`."""
        return edgetpu_runner(device, resolve(self, Stage.BENCH, options, device))


TARGET = CoralTarget()
