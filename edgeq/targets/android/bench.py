"""Benchmarking a .tflite on a phone with TFLite's ``benchmark_model``, one run per delegate.

The steps, each a function whose command line tests can build without a phone:

1. pick the device (``adb devices -l``; ``--serial`` when several are attached) and read its
   properties (``adb shell getprop``: model, SoC, ABIs, Android version);
2. check the benchmark binary's ELF header against the phone's ABIs before pushing anything;
3. ``adb push`` the binary and the model to ``/data/local/tmp/edgeq``, ``chmod 755`` the binary;
4. per delegate, ``adb shell 'echo EDGEQ_PID=$$; exec benchmark_model --graph=... <delegate flags>'``
   with a timeout (the printed PID lets edgeq kill the run on the phone if it hangs);
5. parse each output (:mod:`edgeq.targets.android.benchparse`) into a :class:`DelegateRun` and put
   the delegates side by side in an :class:`AndroidBenchResult`.

The numbers are benchmark_model's own, measured on the phone: edgeq reports what the tool printed
(mean, std, min, max; p5/median/p95 when the build prints them) and never invents percentiles.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from edgeq.bench.timing import LatencyStats
from edgeq.config import BenchConfig
from edgeq.errors import ConversionFailed, Unavailable, UsageError
from edgeq.findings import NONE, Basis, Figure, Findings, warning
from edgeq.targets.addresses import adb_serial
from edgeq.targets.android import adb as adb_mod
from edgeq.targets.android import benchparse, elf
from edgeq.targets.base import Availability

DELEGATES = ("cpu", "xnnpack", "gpu", "nnapi")
ENV_BINARY = "EDGEQ_BENCHMARK_MODEL"
REMOTE_BINARY = f"{adb_mod.REMOTE_DIR}/benchmark_model"
DEFAULT_RUN_TIMEOUT_S = 600.0
NNAPI_DEPRECATED_SDK = 35  # Android 15
NNAPI_ACCELERATOR_NAME_SDK = 29  # --nnapi_accelerator_name needs Android 10
NIGHTLY = "https://storage.googleapis.com/tensorflow-nightly-public/prod/tensorflow/release/lite/tools/nightly/latest/"
BINARY_FILES = {
    "arm64-v8a": "android_aarch64_benchmark_model",
    "armeabi-v7a": "android_arm_benchmark_model",
    "x86_64": "android_x86_64_benchmark_model",
    "x86": "android_x86_benchmark_model",
}
BINARY_HINT = (
    f"download TFLite's prebuilt benchmark_model for the phone's ABI ({NIGHTLY}android_aarch64_benchmark_model for "
    "64-bit ARM phones, android_arm_benchmark_model for 32-bit ones) or build it (bazel build -c opt "
    "--config=android_arm64 tensorflow/lite/tools/benchmark:benchmark_model), then pass --benchmark-binary PATH "
    f"or set {ENV_BINARY}=PATH (docs/android.md)"
)
_PID = re.compile(r"^EDGEQ_PID=(\d+)\s*$", re.MULTILINE)
_SAFE = re.compile(r"[^A-Za-z0-9._-]")


def parse_delegates(value: str | tuple[str, ...] | list[str] | None) -> tuple[str, ...]:
    """``"cpu,gpu"`` or ``("cpu", "gpu")`` to a checked tuple in the given order, duplicates dropped.

    Raises:
        UsageError: an unknown delegate, or none.
    """
    if value is None:
        return ("cpu",)
    items = value.split(",") if isinstance(value, str) else list(value)
    out: list[str] = []
    for item in items:
        for name in str(item).split(","):
            name = name.strip().lower()
            if not name:
                continue
            if name not in DELEGATES:
                raise UsageError(
                    f"unknown delegate {name!r}", f"choose from {', '.join(DELEGATES)}, e.g. --delegate cpu,gpu"
                )
            if name not in out:
                out.append(name)
    if not out:
        raise UsageError("no delegate given", f"choose from {', '.join(DELEGATES)}")
    return tuple(out)


@dataclass(frozen=True)
class BenchOptions:
    """How benchmark_model runs on the phone. ``None`` leaves the value to the BenchConfig or the tool.

    Args:
        delegates: run once per delegate, in this order: cpu (TFLite's own kernels, XNNPACK off),
            xnnpack, gpu, nnapi.
        nnapi_accelerator: an NNAPI device name (``qti-dsp``, ``google-edgetpu``, ...) [--nnapi_accelerator_name].
        threads: CPU threads [--num_threads].
        runs: timed runs, a minimum: the tool also runs for at least 1 s [--num_runs].
        warmup: warm-up runs, a minimum (at least 0.5 s) [--warmup_runs].
        op_profiling: per-op timings, delegate partitions as one node each [--enable_op_profiling].
        cpu_mask: pin to these cores with ``taskset MASK`` (e.g. ``f0`` for the big cores of many phones).
        extra_args: more benchmark_model flags, passed as given (e.g. ``--min_secs=0``).
        timeout_s: limit for one benchmark_model run; the run is killed on the phone after it.
        adb_timeout_s: limit for each other adb call.
    """

    delegates: tuple[str, ...] = ("cpu",)
    nnapi_accelerator: str | None = None
    threads: int | None = None
    runs: int | None = None
    warmup: int | None = None
    op_profiling: bool = False
    cpu_mask: str | None = None
    extra_args: tuple[str, ...] = ()
    timeout_s: float = DEFAULT_RUN_TIMEOUT_S
    adb_timeout_s: float = adb_mod.DEFAULT_TIMEOUT_S

    def __post_init__(self) -> None:
        object.__setattr__(self, "delegates", parse_delegates(self.delegates))
        object.__setattr__(self, "extra_args", tuple(self.extra_args))
        if self.nnapi_accelerator is not None and "nnapi" not in self.delegates:
            raise UsageError(
                "--nnapi-accelerator needs the nnapi delegate", "add nnapi to --delegate, e.g. --delegate cpu,nnapi"
            )
        if self.nnapi_accelerator is not None and not re.fullmatch(r"[\w.:+-]+", self.nnapi_accelerator):
            raise UsageError(
                f"bad NNAPI accelerator name {self.nnapi_accelerator!r}", "e.g. --nnapi-accelerator qti-dsp"
            )
        if self.threads is not None and self.threads < 1:
            raise UsageError(f"--threads must be at least 1, got {self.threads}", "e.g. --threads 4")
        if self.runs is not None and self.runs < 1:
            raise UsageError(f"--runs must be at least 1, got {self.runs}", "e.g. --runs 50")
        if self.warmup is not None and self.warmup < 0:
            raise UsageError(f"--warmup must be 0 or more, got {self.warmup}", "e.g. --warmup 5")
        if self.cpu_mask is not None and not re.fullmatch(r"[0-9a-fA-F]+", self.cpu_mask):
            raise UsageError(f"--cpu-mask must be a hex mask, got {self.cpu_mask!r}", "e.g. --cpu-mask f0")
        for arg in self.extra_args:
            if not arg.startswith("--") or "=" not in arg:
                raise UsageError(
                    f"benchmark_model flag {arg!r} is not of the form --name=value", "e.g. --benchmark-arg --min_secs=0"
                )
        if self.timeout_s <= 0 or self.adb_timeout_s <= 0:
            raise UsageError("timeouts must be positive", "e.g. --timeout-s 600")

    def to_dict(self) -> dict:
        d = dict(self.__dict__)
        d["delegates"] = list(self.delegates)
        d["extra_args"] = list(self.extra_args)
        return d


def remote_model_path(model_path: str) -> str:
    return f"{adb_mod.REMOTE_DIR}/{_SAFE.sub('_', Path(model_path).name)}"


def benchmark_flags(delegate: str, remote_model: str, opts: BenchOptions) -> list[str]:
    """benchmark_model's flags for one delegate (see tensorflow/lite/tools/benchmark/README.md)."""
    flags = [f"--graph={remote_model}"]
    if opts.threads is not None:
        flags.append(f"--num_threads={opts.threads}")
    if opts.runs is not None:
        flags.append(f"--num_runs={opts.runs}")
    if opts.warmup is not None:
        flags.append(f"--warmup_runs={opts.warmup}")
    if delegate == "cpu":
        # XNNPACK is applied by default; false runs TFLite's own kernels (the README's wording)
        flags.append("--use_xnnpack=false")
    elif delegate == "xnnpack":
        flags.append("--use_xnnpack=true")
    elif delegate == "gpu":
        flags.append("--use_gpu=true")
    elif delegate == "nnapi":
        flags.append("--use_nnapi=true")
        if opts.nnapi_accelerator:
            flags.append(f"--nnapi_accelerator_name={opts.nnapi_accelerator}")
    else:  # parse_delegates guards this
        raise UsageError(f"unknown delegate {delegate!r}", f"choose from {', '.join(DELEGATES)}")
    if opts.op_profiling:
        flags.append("--enable_op_profiling=true")
    flags.extend(opts.extra_args)
    return flags


def shell_command(flags: list[str], opts: BenchOptions, remote_binary: str = REMOTE_BINARY) -> str:
    """The one string given to ``adb shell``: print the shell's PID, then exec benchmark_model in it."""
    argv = ([f"taskset {opts.cpu_mask}"] if opts.cpu_mask else []) + [shlex.join([remote_binary, *flags])]
    return "echo EDGEQ_PID=$$; exec " + " ".join(argv)


def device_info(serial: str, props: dict[str, str], device: adb_mod.Device | None = None) -> dict:
    """The phone as edgeq reports it, from ``getprop``."""
    abilist = props.get("ro.product.cpu.abilist") or props.get("ro.product.cpu.abi") or ""
    soc_model = props.get("ro.soc.model")  # Android 12+
    soc = " ".join(p for p in (props.get("ro.soc.manufacturer"), soc_model) if p) if soc_model else None
    sdk = props.get("ro.build.version.sdk")
    return {
        "serial": serial,
        "manufacturer": props.get("ro.product.manufacturer"),
        "model": props.get("ro.product.model") or (device.attrs.get("model") if device else None),
        "device": props.get("ro.product.device") or (device.attrs.get("device") if device else None),
        "soc": soc or props.get("ro.board.platform") or props.get("ro.hardware"),
        "hardware": props.get("ro.hardware"),
        "abi": props.get("ro.product.cpu.abi") or (abilist.split(",")[0] if abilist else None),
        "abilist": [a for a in abilist.split(",") if a],
        "android_version": props.get("ro.build.version.release"),
        "sdk": int(sdk) if sdk and sdk.isdigit() else None,
        "build_fingerprint": props.get("ro.build.fingerprint"),
        "transport": dict(device.attrs) if device else {},
    }


def find_binary(explicit: str | None) -> str | None:
    """The benchmark_model to push: ``explicit``, else ``$EDGEQ_BENCHMARK_MODEL``, else None."""
    return explicit or os.environ.get(ENV_BINARY) or None


def check_binary(path: str | None, abilist: list[str] | None = None) -> elf.ElfInfo:
    """Read the binary's ABI and refuse one the phone cannot run.

    Raises:
        Unavailable: no binary given, missing, not ELF, a Linux (glibc) build, or an ABI not in ``abilist``.
    """
    if not path:
        raise Unavailable("no benchmark_model binary given", BINARY_HINT)
    p = Path(path)
    if not p.is_file():
        raise Unavailable(f"benchmark binary not found: {path}", BINARY_HINT)
    info = elf.read(p)
    if info.is_android is False:
        raise Unavailable(
            f"{path} is a Linux build of benchmark_model (loader {info.interpreter}), not an Android one",
            BINARY_HINT,
        )
    if abilist and info.abi not in abilist:
        want = BINARY_FILES.get(abilist[0], "a build for " + abilist[0])
        raise Unavailable(
            f"{path} is built for {info.abi or f'ELF machine {info.machine}'}, but the phone runs {', '.join(abilist)}",
            f"use {want} ({NIGHTLY}{want}) or build for {abilist[0]}; pass it with --benchmark-binary",
            details={"binary_abi": info.abi, "device_abis": abilist},
        )
    return info


# --- results -------------------------------------------------------------------------------------


def _ms(us: float | None) -> float | None:
    return None if us is None else round(us / 1000.0, 4)


@dataclass(frozen=True)
class DelegateRun:
    """One benchmark_model run on the phone with one delegate."""

    delegate: str
    status: str  # ok | failed | timeout
    command: tuple[str, ...]
    flags: tuple[str, ...]
    parsed: benchparse.BenchmarkOutput | None
    output: str = ""
    error: str | None = None
    notes: tuple[str, ...] = ()
    nnapi_accelerator: str | None = None
    duration_s: float | None = None
    log: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def verdict(self) -> benchparse.DelegateVerdict | None:
        if self.parsed is None or self.delegate == "cpu":
            return None
        return self.parsed.delegate(self.delegate)

    @property
    def ran_on(self) -> str | None:
        """Where the model actually ran, from what benchmark_model said."""
        if not self.ok:
            return None
        if self.delegate == "cpu":
            return "cpu"
        v = self.verdict
        applied = v.applied if v else "unknown"
        if self.delegate == "xnnpack":
            return {"all": "cpu (xnnpack)", "partial": "cpu (xnnpack + tflite kernels)", "none": "cpu"}.get(
                applied, "cpu (xnnpack?)"
            )
        name = self.delegate
        if self.delegate == "nnapi" and self.nnapi_accelerator:
            name = f"nnapi:{self.nnapi_accelerator}"
        if self.nnapi_accelerator == "nnapi-reference":
            return "cpu (nnapi-reference)"
        return {"all": name, "partial": f"{name} + cpu", "none": "cpu"}.get(applied, f"{name}?")

    @property
    def cpu_fallback(self) -> bool | None:
        """True when some or all of the model ran on the CPU instead of the delegate."""
        if self.delegate in ("cpu", "xnnpack") or not self.ok:
            return None
        if self.nnapi_accelerator == "nnapi-reference":
            return True
        v = self.verdict
        return v.falls_back_to_cpu if v else None

    def latency_ms(self) -> dict | None:
        p = self.parsed
        if p is None or not self.ok:
            return None
        inf = p.inference
        mean_us = inf.avg_us if inf and inf.avg_us is not None else p.inference_avg_us
        return {
            "mean": _ms(mean_us),
            "std": _ms(inf.std_us) if inf else None,
            "min": _ms(inf.min_us) if inf else None,
            "max": _ms(inf.max_us) if inf else None,
            "p5": _ms(inf.p5_us) if inf else None,
            "p50": _ms(inf.median_us) if inf else None,
            "p95": _ms(inf.p95_us) if inf else None,
        }

    def stats(self) -> LatencyStats | None:
        """The run as edgeq's :class:`LatencyStats` (p90/p99 are None: benchmark_model does not print them)."""
        lat = self.latency_ms()
        p = self.parsed
        if lat is None or p is None or lat["mean"] is None:
            return None
        first = p.first_inference_us
        if first is None and p.warmup is not None:
            first = p.warmup.first_us if p.warmup.first_us is not None else p.warmup.curr_us
        return LatencyStats(
            first_invoke_ms=_ms(first),
            num_runs=p.inference.count if p.inference else None,
            warmup_runs=p.warmup.count if p.warmup else None,  # not printed: unknown
            p50=lat["p50"],
            p90=None,
            p99=None,
            mean=lat["mean"],
            std=lat["std"],
            min=lat["min"],
            max=lat["max"],
        )

    def cpu_ops(self) -> list[dict]:
        """With op profiling: the node types that ran outside the delegate, and their share of the time."""
        p = self.parsed
        if p is None or self.delegate == "cpu":
            return []
        prof = p.profile("Regular Benchmark Runs") or p.profile("Regular")
        if prof is None:
            return []
        rows = prof.by_node_type or prof.run_order
        return [
            {
                "node_type": r.node_type,
                "avg_ms": r.values.get("avg_ms"),
                "pct": r.values.get("avg_pct", r.values.get("pct")),
            }
            for r in rows
            if r.node_type not in benchparse.DELEGATE_NODE_TYPES
        ]

    def to_dict(self) -> dict:
        p = self.parsed
        v = self.verdict
        d: dict = {
            "delegate": self.delegate,
            "status": self.status,
            "ran_on": self.ran_on,
            "cpu_fallback": self.cpu_fallback,
            "nnapi_accelerator": self.nnapi_accelerator,
            "latency_ms": self.latency_ms(),
            "error": self.error,
            "notes": list(self.notes),
            "command": list(self.command),
            "duration_s": self.duration_s,
            "log": self.log,
        }
        if p is not None:
            d.update(
                init_ms=_ms(p.init_us),
                first_inference_ms=_ms(p.first_inference_us),
                warmup_avg_ms=_ms(p.warmup_avg_us),
                inference_avg_ms=_ms(p.inference_avg_us),
                num_runs=p.inference.count if p.inference else None,
                warmup_runs=p.warmup.count if p.warmup else None,
                memory_mb=dict(p.memory),
                delegate_report=v.to_dict() if v else None,
                errors=list(p.errors),
                tflite_version=p.tflite_version,
                op_profile=[s.to_dict() for s in p.profiles] if p.profiles else None,
                cpu_ops=self.cpu_ops() or None,
            )
        d["output_tail"] = "\n".join(self.output.splitlines()[-40:])
        return d


VIA = "over adb"


def bench_findings(device: str, device_info: dict, runs: Sequence[DelegateRun], notes: Sequence[str]) -> Findings:
    """The latency of the first delegate that ran (MEASURED on the phone by benchmark_model, brought back
    over adb: p50 where it printed one, else the mean; min and max as the range), the notes and each
    delegate that failed as WARNINGs."""
    messages = [warning(n) for n in notes]
    messages += [warning(f"the {r.delegate} delegate failed on the phone: {r.error}") for r in runs if not r.ok]
    run = next((r for r in runs if r.ok), None)
    lat = (run.latency_ms() if run else None) or {}
    value, what = (lat.get("p50"), "p50") if lat.get("p50") is not None else (lat.get("mean"), "mean")
    if run is None or value is None:
        return Findings(messages=tuple(messages))
    n = run.parsed.inference.count if run.parsed and run.parsed.inference else None
    phone = " ".join(str(device_info[k]) for k in ("manufacturer", "model") if device_info.get(k))
    latency = Figure(
        value,
        "ms",
        Basis.MEASURED,
        where=f"{phone} ({device})" if phone else device,
        how=f"{what} of {n if n is not None else '?'} runs of benchmark_model, {run.delegate} delegate",
        via=VIA,
        low=lat.get("min"),
        high=lat.get("max"),
    )
    return Findings(latency=latency, messages=tuple(messages))


@dataclass(frozen=True)
class AndroidBenchResult:
    """The delegates side by side on one phone."""

    target: str
    device: str  # the serial
    device_info: dict
    model: dict
    binary: dict
    options: dict
    delegates: tuple[DelegateRun, ...]
    notes: tuple[str, ...] = ()
    num_threads: int | None = None
    via: str = VIA  # as BenchResult.via: the phone is named by `device`, its figures come back through adb
    findings: Findings = NONE  # the first delegate's latency (MEASURED on the phone, over adb), warnings

    def describe(self, model: str) -> list[str]:
        """What ``edgeq bench`` prints: the phone, the delegates side by side, the notes."""
        from edgeq.report.fmt import ms, table

        rows = [
            [
                x["delegate"],
                x["status"],
                x["ran_on"],
                ms(x["mean_ms"]),
                ms(x["std_ms"]),
                ms(x["init_ms"]),
                ms(x["first_ms"]),
                x["speedup_vs_cpu"] or "-",
                x["note"],
            ]
            for x in self.table()
        ]
        header = ["delegate", "status", "ran on", "mean ms", "std ms", "init ms", "first ms", "vs cpu", "note"]
        return [f"{model} on {self.target} ({self.device})", table(rows, header), *self.notes]

    @property
    def primary(self) -> DelegateRun | None:
        """The first delegate that ran (the order given)."""
        for run in self.delegates:
            if run.ok:
                return run
        return None

    @property
    def stats(self) -> LatencyStats:
        """The first successful delegate's statistics (what a one-number pipeline reads)."""
        run = self.primary
        s = run.stats() if run else None
        if s is None:
            raise ConversionFailed("no delegate produced timings on the phone", "see the per-delegate errors")
        return s

    @property
    def environment(self) -> dict:
        versions = {r.parsed.tflite_version for r in self.delegates if r.parsed and r.parsed.tflite_version}
        return {
            **self.device_info,
            "benchmark_binary": self.binary,
            "tflite_version": sorted(versions)[0] if versions else None,
            "runtime": "TFLite benchmark_model on the phone, via adb",
        }

    def run(self, delegate: str) -> DelegateRun | None:
        for r in self.delegates:
            if r.delegate == delegate:
                return r
        return None

    def table(self) -> list[dict]:
        """One row per delegate: the numbers to compare, and speed-up against cpu when it ran."""
        base = self.run("cpu")
        base_mean = (base.latency_ms() or {}).get("mean") if base and base.ok else None
        rows = []
        for r in self.delegates:
            lat = r.latency_ms() or {}
            p = r.parsed
            mean = lat.get("mean")
            rows.append(
                {
                    "delegate": r.delegate if not r.nnapi_accelerator else f"nnapi:{r.nnapi_accelerator}",
                    "status": r.status,
                    "ran_on": r.ran_on,
                    "mean_ms": mean,
                    "std_ms": lat.get("std"),
                    "p50_ms": lat.get("p50"),
                    "init_ms": _ms(p.init_us) if p else None,
                    "first_ms": _ms(p.first_inference_us) if p else None,
                    "speedup_vs_cpu": round(base_mean / mean, 3) if base_mean and mean else None,
                    "note": r.error or (r.notes[0] if r.notes else ""),
                }
            )
        return rows

    def to_dict(self) -> dict:
        primary = self.primary
        doc: dict = {
            "target": self.target,
            "device": self.device,
            "device_info": self.device_info,
            "model": self.model,
            "benchmark_binary": self.binary,
            "options": self.options,
            "num_threads": self.num_threads,
            "delegates": [r.to_dict() for r in self.delegates],
            "table": self.table(),
            "notes": list(self.notes),
            "via": self.via,
            "findings": self.findings.to_dict(),
        }
        stats = primary.stats() if primary else None
        if stats is not None:
            doc["primary_delegate"] = primary.delegate if primary else None
            doc.update(stats.to_dict())
        return doc


# --- notes ----------------------------------------------------------------------------------------


def _delegate_notes(
    run_delegate: str, parsed: benchparse.BenchmarkOutput, opts: BenchOptions, flavour: str | None
) -> list[str]:
    notes: list[str] = []
    v = parsed.delegate(run_delegate) if run_delegate != "cpu" else None
    if run_delegate == "nnapi":
        acc = opts.nnapi_accelerator
        if acc and parsed.nnapi_accelerators and acc not in parsed.nnapi_accelerators:
            notes.append(
                f"NNAPI accelerator {acc!r} is not one the phone lists ({', '.join(parsed.nnapi_accelerators)})"
            )
        if acc == "nnapi-reference":
            notes.append("nnapi-reference is NNAPI's CPU implementation: these are CPU numbers")
        if v is not None and v.applied == "none":
            notes.append(
                "NNAPI fell back to the CPU: it took no op of this model, so the whole model ran on TFLite's CPU kernels"
            )
        elif v is not None and v.applied == "partial":
            notes.append(
                f"NNAPI fell back to the CPU in part: it ran {v.kernels} partition(s) and the ops between them ran on the CPU"
                + ("" if opts.op_profiling else " (--op-profiling shows which)")
            )
        if flavour in ("float32", "fp16"):
            notes.append("NPU/DSP accelerators behind NNAPI want full-int8 models; this is a float model")
    elif run_delegate == "gpu" and v is not None:
        if v.unsupported_ops:
            ops = ", ".join(f"{u['op']} ({u['reason'] or 'unsupported'})" for u in v.unsupported_ops)
            notes.append(f"GPU delegate does not support: {ops}")
        if v.applied == "none":
            notes.append("the GPU delegate took no op: the whole model ran on the CPU")
        elif v.applied == "partial":
            split = (
                f"{v.gpu_ops} op(s) on the GPU, {v.cpu_ops} on the CPU"
                if v.gpu_ops is not None
                else "some ops on the CPU"
            )
            notes.append(f"the GPU delegate fell back to the CPU in part: {split}")
        if flavour == "int8":
            notes.append("the GPU delegate computes in float: an fp16 model is the flavour for it")
    elif run_delegate == "xnnpack" and v is not None and v.applied == "partial":
        notes.append(f"XNNPACK took {v.kernels} partition(s); the other ops ran on TFLite's kernels")
    if parsed.unconsumed_flags:
        notes.append(
            f"this benchmark_model ignored flags it does not know: {' '.join(parsed.unconsumed_flags)} (an older build?)"
        )
    if (
        parsed.inference
        and parsed.inference.requested_runs
        and parsed.inference.count != parsed.inference.requested_runs
    ):
        notes.append(
            f"benchmark_model ran {parsed.inference.count} timed runs for --num_runs={parsed.inference.requested_runs} "
            "(it also runs for at least min_secs, 1 s by default, and stops at max_secs)"
        )
    return notes


def _failure_text(parsed: benchparse.BenchmarkOutput, output: str, returncode: int) -> str:
    detail = [e for e in parsed.errors if not e.startswith("Restored original execution plan")]
    head = parsed.failure or ("no timings in the output" if returncode == 0 else f"exit code {returncode}")
    if detail and detail[0] not in head:
        return f"{head} ({detail[0]})"
    if not parsed.errors and not parsed.failure:
        tail = [line for line in output.strip().splitlines() if line.strip()][-1:] or [""]
        return f"{head}: {tail[0][:200]}" if tail[0] else head
    return head


def model_flavour(model_path: str) -> str | None:
    try:
        from edgeq.targets.android import flavours

        return flavours.classify_file(model_path)
    except Exception:  # the model's problems are the tool's to report; this is only for notes
        return None


class AndroidRunner:
    """Runs benchmark_model on a phone over adb, once per delegate. Build with ``TARGET.runner(...)``."""

    def __init__(
        self,
        device: str | None = None,
        *,
        serial: str | None = None,
        delegates: str | tuple[str, ...] | list[str] = ("cpu",),
        nnapi_accelerator: str | None = None,
        threads: int | None = None,
        runs: int | None = None,
        warmup: int | None = None,
        op_profiling: bool = False,
        cpu_mask: str | None = None,
        extra_args: tuple[str, ...] | list[str] = (),
        benchmark_binary: str | None = None,
        adb: str | None = None,
        timeout_s: float = DEFAULT_RUN_TIMEOUT_S,
        adb_timeout_s: float = adb_mod.DEFAULT_TIMEOUT_S,
        log_dir: str | None = None,
    ) -> None:
        if device is not None and device.startswith("adb:"):
            device = device[4:]
        adb_serial(device, "--device")
        adb_serial(serial)
        if device and serial and device != serial:
            raise UsageError(f"device {device!r} and --serial {serial!r} disagree", "give one of them")
        self.serial = serial or device or None
        self.opts = BenchOptions(
            delegates=tuple(parse_delegates(delegates)),
            nnapi_accelerator=nnapi_accelerator,
            threads=threads,
            runs=runs,
            warmup=warmup,
            op_profiling=op_profiling,
            cpu_mask=cpu_mask,
            extra_args=tuple(extra_args),
            timeout_s=timeout_s,
            adb_timeout_s=adb_timeout_s,
        )
        self.binary = find_binary(benchmark_binary)
        self.adb_path = adb
        self.log_dir = log_dir
        self._prepared: tuple | None = None

    # --- Runner protocol -----------------------------------------------------------------------

    def availability(self) -> Availability:
        """Available when adb runs, a device is attached and a benchmark binary is given.

        A device that is attached but unusable (unauthorized, offline, several without --serial)
        counts as available here, so that :meth:`benchmark` raises the error that names the fix.
        """
        try:
            path = adb_mod.find(self.adb_path)
        except Unavailable as exc:
            return Availability(False, exc.one_line())
        if not self.binary:
            return Availability(False, f"no benchmark_model binary given; {BINARY_HINT}")
        if not Path(self.binary).is_file():
            return Availability(False, f"benchmark binary not found: {self.binary}")
        try:
            devices = adb_mod.Adb(path, timeout_s=self.opts.adb_timeout_s).devices()
        except (Unavailable, UsageError) as exc:
            return Availability(False, exc.one_line())
        if not devices:
            return Availability(False, "no Android device attached (adb devices lists none)")
        if self.serial and self.serial not in {d.serial for d in devices}:
            return Availability(False, f"device {self.serial!r} not attached")
        return Availability(True)

    def load(self, model_path: str, cfg: BenchConfig | None = None) -> None:
        """Pick the device, check the binary's ABI, push the binary and the model."""
        self._prepared = self._prepare(model_path)

    def invoke(self) -> None:
        raise UsageError(
            "single invokes are not timed from the host on Android",
            "benchmark_model times the runs on the phone: call benchmark() (edgeq bench --target android)",
        )

    def benchmark(self, model_path: str, cfg: BenchConfig | None = None) -> AndroidBenchResult:
        """Run benchmark_model once per delegate and put the results side by side.

        ``cfg`` supplies runs, warm-up and threads where the runner was not given them.

        Raises:
            BadInput: the model is not a .tflite file.
            Unavailable: adb, the device or the binary cannot be used (typed, with the fix).
            UsageError: several devices and no serial; bad options.
            ConversionFailed: every delegate failed on the phone.
        """
        from edgeq import tflite

        tflite.read_file(model_path)  # a BadInput for anything that is not a valid .tflite
        opts = self._effective(cfg)
        adb, device, info, bin_info = self._prepared if self._prepared else self._prepare(model_path)
        self._prepared = None
        remote_model = remote_model_path(model_path)
        flavour = model_flavour(model_path)
        runs: list[DelegateRun] = []
        try:
            for delegate in opts.delegates:
                runs.append(self._run_one(adb, delegate, remote_model, opts, flavour, model_path))
        finally:
            try:  # best effort: leave the binary (next run re-pushes anyway), remove the model
                adb.call("shell", f"rm -f {shlex.quote(remote_model)}", timeout_s=adb_mod.KILL_TIMEOUT_S, check=False)
            except Unavailable:
                pass
        accelerators = next((r.parsed.nnapi_accelerators for r in runs if r.parsed and r.parsed.nnapi_accelerators), ())
        info = dict(info, nnapi_accelerators=list(accelerators) or None)
        notes = self._notes(opts, info)
        result = AndroidBenchResult(
            target="android",
            device=device.serial,
            device_info=info,
            model={
                "path": model_path,
                "size_bytes": Path(model_path).stat().st_size,
                "flavour": flavour,
                "remote": remote_model,
            },
            binary={"path": self.binary, **bin_info.to_dict()},
            options=opts.to_dict(),
            delegates=tuple(runs),
            notes=tuple(notes),
            num_threads=opts.threads,
            findings=bench_findings(device.serial, info, runs, notes),
        )
        if not any(r.ok for r in runs):
            summary = "; ".join(f"{r.delegate}: {r.error}" for r in runs)
            details = {"delegates": [r.to_dict() for r in runs], "device": info}
            if all(r.status == "timeout" for r in runs):
                raise Unavailable(
                    f"benchmark_model did not finish on the phone ({summary})",
                    "raise --timeout-s for a large model, or replug the phone",
                    details=details,
                )
            raise ConversionFailed(
                f"benchmark_model failed on the phone for every delegate ({summary})",
                "try --delegate cpu first; see docs/android.md for delegate failures",
                details=details,
            )
        return result

    # --- steps -----------------------------------------------------------------------------------

    def _effective(self, cfg: BenchConfig | None) -> BenchOptions:
        o = self.opts
        if cfg is None:
            return o
        if cfg.batch is not None:
            raise UsageError(
                "--batch does not apply to android: benchmark_model runs the model's own input shape",
                "convert the model with the batch you want (edgeq quantize --batch N) and drop --batch",
            )
        return BenchOptions(
            delegates=o.delegates,
            nnapi_accelerator=o.nnapi_accelerator,
            threads=o.threads if o.threads is not None else cfg.num_threads,
            runs=o.runs if o.runs is not None else cfg.num_runs,
            warmup=o.warmup if o.warmup is not None else cfg.warmup_runs,
            op_profiling=o.op_profiling,
            cpu_mask=o.cpu_mask,
            extra_args=o.extra_args,
            timeout_s=o.timeout_s,
            adb_timeout_s=o.adb_timeout_s,
        )

    def _prepare(self, model_path: str):
        if not self.binary:
            raise Unavailable("no benchmark_model binary given", BINARY_HINT)
        check_binary(self.binary)  # before touching the phone: missing file, not ELF, a Linux build
        adb = adb_mod.Adb(adb_mod.find(self.adb_path), timeout_s=self.opts.adb_timeout_s)
        device = adb.select(self.serial)
        adb = adb.with_serial(device.serial)
        info = device_info(device.serial, adb.getprop(), device)
        bin_info = check_binary(self.binary, info["abilist"] or None)
        adb.shell(f"mkdir -p {adb_mod.REMOTE_DIR}", what="adb shell mkdir")
        adb.push(self.binary, REMOTE_BINARY)
        adb.shell(f"chmod 755 {REMOTE_BINARY}", what="adb shell chmod")
        adb.push(model_path, remote_model_path(model_path))
        return adb, device, info, bin_info

    def _run_one(
        self,
        adb: adb_mod.Adb,
        delegate: str,
        remote_model: str,
        opts: BenchOptions,
        flavour: str | None,
        model_path: str,
    ) -> DelegateRun:
        flags = benchmark_flags(delegate, remote_model, opts)
        command = shell_command(flags, opts)
        argv = adb.argv("shell", command)
        acc = opts.nnapi_accelerator if delegate == "nnapi" else None
        try:
            r = adb_mod.run(argv, opts.timeout_s)
        except adb_mod.AdbTimeout as exc:
            self._kill_remote(adb, exc.stdout)
            output = _PID.sub("", exc.stdout + exc.stderr)
            parsed = benchparse.parse(output)
            return DelegateRun(
                delegate,
                "timeout",
                tuple(argv),
                tuple(flags),
                parsed,
                output=output,
                error=f"benchmark_model did not finish within {opts.timeout_s:g} s (killed on the phone)",
                nnapi_accelerator=acc,
                duration_s=opts.timeout_s,
                log=self._log(model_path, delegate, output),
            )
        found = adb_mod.classify(r.stderr) if r.returncode != 0 else None
        if found:  # adb itself failed (device went away, unauthorized after a reboot, ...)
            raise adb_mod.error_for(found[0], found[1], adb.serial)
        output = _PID.sub("", r.stdout + ("\n" + r.stderr if r.stderr else "")).lstrip("\n")
        parsed = benchparse.parse(output)
        if parsed.exec_failure or _cannot_start(output):
            raise Unavailable(
                f"the phone cannot run {self.binary}: {parsed.exec_failure or _cannot_start(output)}",
                "use the benchmark_model build for the phone's ABI; " + BINARY_HINT,
                details={"command": argv, "output": output[-2000:]},
            )
        ok = not parsed.failed and parsed.has_timings
        notes = _delegate_notes(delegate, parsed, opts, flavour)
        return DelegateRun(
            delegate,
            "ok" if ok else "failed",
            tuple(argv),
            tuple(flags),
            parsed,
            output=output,
            error=None if ok else _failure_text(parsed, output, r.returncode),
            notes=tuple(notes),
            nnapi_accelerator=acc,
            duration_s=round(r.duration_s, 3),
            log=self._log(model_path, delegate, output),
        )

    def _kill_remote(self, adb: adb_mod.Adb, partial_stdout: str) -> None:
        m = _PID.search(partial_stdout)
        if not m:
            return
        try:
            adb.call("shell", f"kill {m.group(1)}", timeout_s=adb_mod.KILL_TIMEOUT_S, check=False)
        except Unavailable:
            pass

    def _log(self, model_path: str, delegate: str, output: str) -> str | None:
        if not self.log_dir:
            return None
        from edgeq.artifacts import write_bytes_atomic

        folder = Path(self.log_dir)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{Path(model_path).stem}.{delegate}.benchmark_model.txt"
        write_bytes_atomic(path, output.encode())
        return str(path)

    def _notes(self, opts: BenchOptions, info: dict) -> list[str]:
        notes = []
        sdk = info.get("sdk")
        if "nnapi" in opts.delegates and sdk is not None:
            if sdk >= NNAPI_DEPRECATED_SDK:
                notes.append(
                    f"Android {info.get('android_version')} (API {sdk}): NNAPI is deprecated from Android 15 on; "
                    "Google's migration guide points to LiteRT (Google Play services) with the GPU delegate, "
                    "and NPUs are reached through vendor delegates (Qualcomm, MediaTek, Google Tensor)"
                )
            if sdk < NNAPI_ACCELERATOR_NAME_SDK and opts.nnapi_accelerator:
                notes.append(f"--nnapi_accelerator_name needs Android 10 (API 29); this phone has API {sdk}")
            if sdk == 28:
                notes.append(
                    "some Android 9 phones fail to use NNAPI for models in /data/local/tmp (benchmark_model README)"
                )
        return notes


def _cannot_start(output: str) -> str | None:
    """The shell's words when the pushed binary cannot be started at all."""
    for line in output.splitlines():
        if REMOTE_BINARY in line and any(w in line for w in ("Permission denied", "not found", "No such file")):
            return line.strip()
    return None
