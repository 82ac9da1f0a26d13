"""Android phones: the model flavours their accelerators want, and numbers measured on the phone.

- ``TARGET.compile([keras_model], out_dir, {"data_path": ...})`` makes the flavours phones use: full int8
  for NNAPI and NPU/DSP delegates, fp16 for the GPU delegate, float32 as the baseline; each read
  back and verified, its sidecar carrying the I/O names, shapes and quantization parameters.
  Given a .tflite (what ``edgeq build`` passes), it verifies it and writes the same report.
- ``TARGET.runner(serial, {"delegates": "cpu,gpu,nnapi", ...})`` runs TFLite's own
  ``benchmark_model`` on the phone over adb, once per delegate, and returns the delegates side
  by side with the phone's model, SoC, ABI, Android version and NNAPI accelerators.
- ``TARGET.check(model)`` says which flavour a .tflite is and which delegates it suits.

Modules: flavours (convert, classify, verify), adb (device selection, timeouts, adb's errors),
bench (benchmark_model command lines, runs, results), benchparse (its output), elf (binary ABI).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeq.artifacts import output_folder
from edgeq.config import IOType, Mode
from edgeq.errors import UsageError
from edgeq.findings import Findings, Message, warning
from edgeq.findings import info as info_message
from edgeq.targets import android_options, toolversions
from edgeq.targets.android import flavours as fl
from edgeq.targets.android.bench import DELEGATES, AndroidBenchResult, AndroidRunner, BenchOptions
from edgeq.targets.base import NO_OPTIONS, CompatReport, CompileResult, Stage, check_models, ops_table
from edgeq.targets.registry import resolve
from edgeq.tflite import ModelInfo

__all__ = [
    "TARGET",
    "AndroidTarget",
    "AndroidCompatReport",
    "AndroidCompileResult",
    "AndroidRunner",
    "AndroidBenchResult",
    "BenchOptions",
    "DELEGATES",
    "PROFILE",
]

# The hardware as data for the quantization planner. Phones run float and integer models; NNAPI and
# the GPU delegate hand the ops they cannot run back to the CPU without stranding the rest.
PROFILE = {"integer_only": False, "int16_activations": True, "cpu_fallback_splits_graph": False}


@dataclass(frozen=True)
class AndroidCompatReport(CompatReport):
    """Which flavour a .tflite is: ``details`` has the flavour, the delegates it suits, ``counts`` (ops and
    float_ops: not an accelerator split) and its inputs and outputs. No placement: which delegate runs the
    ops is decided on the phone (``findings.no_accelerator`` says so)."""

    def describe(self, model: str) -> list[str]:
        c = self.details["counts"]
        return [
            f"{model} on {self.target}: {c['ops']} op(s), {c['float_ops']} computing in float",
            *ops_table(self.ops),
            *self.messages,
            f"delegates it suits, best first: {', '.join(self.details['delegates'])}",
        ]


@dataclass(frozen=True)
class AndroidCompileResult(CompileResult):
    """The phone flavours: ``details`` has ``flavours`` (path, size, delegates, I/O, verified), ``kind``
    (converted or verified) and ``report``."""

    def artifacts(self) -> list[str]:
        files = [x for f in self.details.get("flavours") or [] for x in (f.get("path"), f.get("sidecar")) if x]
        return [*files, self.details["report"]] if self.details.get("report") else files

    def describe(self) -> list[str]:
        from edgeq.report.fmt import table

        rows = []
        for f in self.details.get("flavours") or []:
            io = f.get("inputs") or [{}]
            rows.append(
                [
                    f.get("flavour"),
                    f.get("path"),
                    f"{f.get('size_bytes', 0):,}",
                    io[0].get("dtype"),
                    ", ".join(f.get("delegates") or []),
                    "ok" if f.get("verified") else "; ".join(f.get("problems") or []),
                ]
            )
        header = ["flavour", "file", "size_bytes", "input dtype", "for delegates", "verified"]
        return [table(rows, header), f"report: {self.details.get('report') or self.output}"]


def on_the_phone(delegates: Sequence[str]) -> str:
    """What runs the ops, for ``Findings.no_accelerator``: the delegates a flavour suits, decided on the phone."""
    if not delegates:
        return "all ops on the phone's CPU"
    return f"delegates {', '.join(d.upper() for d in delegates)}: which one runs is decided on the phone"


def _check_messages(art: fl.FlavourArtifact, info: ModelInfo) -> list[Message]:
    """The check's messages: the flavour's purpose (INFO); what keeps ops off a delegate (WARNING)."""
    purpose = fl.PURPOSE.get(art.flavour, "")
    messages = [info_message(f"flavour {art.flavour}: {purpose}")]
    messages += [warning(f"for the {art.flavour} flavour: {p}") for p in art.problems if p != purpose]
    for op in info.custom_ops:
        messages.append(
            warning(f"custom op {op}: no delegate takes it, it runs on the CPU (and needs the op registered)")
        )
    if any(t.is_dynamic for t in info.inputs):
        messages.append(
            warning(
                "dynamic input shape: the GPU delegate and NNAPI need static shapes; quantize the float model with --input-shape 1x..."
            )
        )
    if art.flavour == "mixed":
        messages.append(
            warning(
                f"{len(info.float_ops)} op(s) compute in float ({', '.join(sorted(set(info.float_ops)))}): "
                "under NNAPI or an NPU delegate they run on the CPU"
            )
        )
    return messages


class AndroidTarget:
    name = "android"
    description = "Android phones: float32/fp16/int8 flavours, benchmark_model over adb"
    build_mode = Mode.INT8
    build_io = IOType.INT8
    # `build` deploys these beside its float32 reference and int8 model, so every phone flavour is there
    build_extra_modes = (Mode.FP16,)
    profile = PROFILE
    options = android_options.OPTIONS
    max_models = 1
    device_help = android_options.DEVICE_HELP

    def check(self, model: str, options: Mapping[str, Any] = NO_OPTIONS) -> AndroidCompatReport:
        """Which flavour ``model`` is, which delegates suit it, and what would fall back to the CPU. No options.

        Raises:
            UsageError: any option (android's check takes none).
            BadInput: not a valid .tflite file, or an op LiteRT cannot resolve.
        """
        from edgeq import tflite
        from edgeq.runtime import open_session

        resolve(self, Stage.CHECK, options)
        model_path = model
        info = tflite.read_file(model_path)
        open_session(model_path, batch=1, origin=model_path)  # the phone's CPU path is this interpreter
        art = fl.describe(model_path)
        delegates = list(fl.DELEGATES_FOR.get(art.flavour, ()))
        ops = tuple({"op": name, "count": n} for name, n in info.op_histogram().items())
        findings = Findings(no_accelerator=on_the_phone(delegates), messages=tuple(_check_messages(art, info)))
        return AndroidCompatReport(
            target=self.name,
            ok=True,
            ops=ops,
            findings=findings,
            details={
                "flavour": art.flavour,
                "delegates": delegates,
                "counts": {"ops": len(info.ops), "float_ops": len(info.float_ops)},
                **art.io,
            },
        )

    def compile(
        self,
        models: Sequence[str],
        out_dir: str,
        options: Mapping[str, Any] = NO_OPTIONS,
        checked: Sequence[CompatReport] = (),
    ) -> AndroidCompileResult:
        """The flavours a phone needs, verified, with a report ``<stem>.android.json`` in ``out_dir``.

        One model at a time; ``checked`` is accepted and not needed (the compile reads the flavours back
        itself). Options (:mod:`edgeq.targets.android_options`): ``data_path``, ``data_samples``,
        ``flavours``, ``int8_io``, ``allow_float_ops``, ``overwrite``. A Keras/SavedModel model is converted
        to ``<stem>_float32.tflite``, ``<stem>_fp16.tflite`` and
        ``<stem>_int8.tflite`` (``flavours`` picks some; int8 needs ``data_path``). A .tflite (what the
        build pipeline passes) is not converted: it is read back, classified and verified, and the
        report is written (replacing an earlier one; it is derived from the model).

        Returns:
            CompileResult: ``output`` is the int8 model when made (else the last flavour; the input for a
            .tflite); ``details`` has ``flavours`` (path, sizes, delegates, I/O with scales and zero
            points, float ops) and ``report``.

        Raises:
            UsageError: int8 without data; flavour or I/O options given with a .tflite.
            OutputExists: an output exists and ``overwrite`` is not set.
            BadInput, ConversionFailed: as the conversion raises; a flavour that does not read back right.
        """
        from edgeq import SCHEMA_VERSION
        from edgeq.artifacts import sha256_file, write_json_atomic
        from edgeq.modelio import Format, detect_format

        (model_path,) = check_models(self, models)
        opts = resolve(self, Stage.COMPILE, options)
        data_path = opts.get("data_path")
        data_samples = opts.get("data_samples")
        flavours = opts.get("flavours")
        int8_io = opts.get("int8_io") or IOType.INT8
        allow_float_ops = bool(opts.get("allow_float_ops"))
        force = bool(opts.get("overwrite"))
        fmt = detect_format(model_path)
        out = output_folder(out_dir)
        stem = Path(model_path).stem
        report = out / f"{stem}{fl.REPORT_SUFFIX}"
        io = IOType(int8_io)
        if fmt == Format.TFLITE:
            if flavours is not None or data_path is not None:
                raise UsageError(
                    f"{model_path} is already a .tflite: --flavours and --data apply to a Keras model",
                    "pass the Keras model to make the flavours, or drop those options",
                )
            arts = [fl.describe(model_path)]
            output, kind = model_path, "verified"
        else:
            wanted = fl.parse_flavours(flavours)
            fl.refuse_existing(report, force)
            arts = fl.build(model_path, out, wanted, data_path, data_samples, io, force, allow_float_ops)
            output = next((a.path for a in arts if a.flavour == "int8"), arts[-1].path)
            kind = "converted"
        doc = {
            "schema_version": SCHEMA_VERSION,
            "target": self.name,
            "model": {"path": model_path, "format": fmt.value, "sha256": sha256_file(model_path)},
            "kind": kind,
            "flavours": [a.to_dict() for a in arts],
        }
        write_json_atomic(report, doc)
        warnings = [f"{a.flavour}: {p}" for a in arts for p in a.problems]
        return AndroidCompileResult(
            target=self.name,
            output=output,
            skipped=False,
            reason="" if kind == "converted" else "a .tflite runs on the phone as is; verified and reported",
            findings=Findings(messages=tuple(warning(w) for w in warnings)),
            details={"report": str(report), "kind": kind, "flavours": doc["flavours"], "warnings": warnings},
        )

    def tool_versions(self, stage: Stage, options: Mapping[str, Any] = NO_OPTIONS) -> dict[str, str]:
        """LiteRT for check and compile (they open the model in it); for bench, adb and the benchmark_model
        binary pushed to the phone (by content: it carries no version)."""
        from edgeq.artifacts import sha256_file
        from edgeq.targets.android.bench import find_binary

        opts = resolve(self, stage, options)
        if stage != Stage.BENCH:
            return {"ai-edge-litert": toolversions.package("ai-edge-litert")}
        binary = find_binary(opts.get("benchmark_binary"))
        return {
            "adb": toolversions.program(opts.get("adb") or "adb"),
            "benchmark_model": sha256_file(binary) if binary and Path(binary).is_file() else toolversions.ABSENT,
        }

    def runner(self, device: str | None = None, options: Mapping[str, Any] = NO_OPTIONS) -> AndroidRunner:
        """A runner for ``edgeq bench``: ``device`` is the phone's adb serial; options as declared in
        :mod:`edgeq.targets.android_options` (serial, delegates, ...). Threads, runs and warm-up come
        from the BenchConfig given to ``benchmark``."""
        return AndroidRunner(device, **resolve(self, Stage.BENCH, options, device))

    def supported_delegates(self) -> list[dict]:
        return [
            {
                "delegate": "cpu",
                "flag": "--use_xnnpack=false",
                "flavours": ["float32", "int8"],
                "note": "TFLite's own kernels",
            },
            {
                "delegate": "xnnpack",
                "flag": "--use_xnnpack=true",
                "flavours": ["float32", "fp16", "int8"],
                "note": "CPU, the default",
            },
            {
                "delegate": "gpu",
                "flag": "--use_gpu=true",
                "flavours": ["fp16", "float32"],
                "note": "OpenCL or OpenGL ES",
            },
            {
                "delegate": "nnapi",
                "flag": "--use_nnapi=true [--nnapi_accelerator_name=NAME]",
                "flavours": ["int8"],
                "note": "Android 8.1+, deprecated from Android 15",
            },
        ]


TARGET = AndroidTarget()
