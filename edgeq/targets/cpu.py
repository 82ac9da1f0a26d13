"""The host CPU, run with the LiteRT interpreter. Every other target's baseline."""

from __future__ import annotations

import gc
import importlib.metadata
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from edgeq.bench.timing import host_environment, measure
from edgeq.config import BenchConfig, IOType, Mode
from edgeq.errors import Unavailable, UsageError
from edgeq.findings import Findings
from edgeq.native_probe import seeded_input
from edgeq.runtime import Session, open_session
from edgeq.targets import remote_options, toolversions
from edgeq.targets.base import NO_OPTIONS, Availability, BenchResult, CompatReport, CompileResult, Stage, check_models
from edgeq.targets.registry import resolve
from edgeq.tflite import read_file

ON_THE_CPU = "all ops on the CPU"  # Findings.no_accelerator: the CPU target has no accelerator


class LocalRunner:
    """Runs a .tflite in this process, optionally through a delegate library (libedgetpu for
    the Edge TPU). Input data is seeded random in the model's dtype."""

    def __init__(self, target: str = "cpu", delegate: str | None = None, device: str | None = None) -> None:
        self.target = target
        self.delegate = delegate
        self.device = device
        self.session: Session | None = None
        self._x: np.ndarray | None = None

    def _load_delegate(self) -> Any:
        from ai_edge_litert.interpreter import load_delegate

        assert self.delegate is not None
        return load_delegate(self.delegate, {"device": self.device} if self.device else {})

    def availability(self) -> Availability:
        if self.delegate is None:
            return Availability(True)
        # LiteRT's Delegate.__del__ raises on a delegate that failed to load; that noise is not news
        hook, sys.unraisablehook = sys.unraisablehook, lambda _unraisable: None
        try:
            self._load_delegate()
        except (ValueError, OSError, RuntimeError) as exc:
            where = f" on {self.device}" if self.device else ""
            return Availability(False, f"cannot load {self.delegate}{where}: {str(exc).strip().splitlines()[0][:160]}")
        finally:
            gc.collect()
            sys.unraisablehook = hook
        return Availability(True)

    def load(self, model_path: str, cfg: BenchConfig) -> None:
        delegates = None
        if self.delegate is not None:
            available = self.availability()
            if not available.available:
                raise Unavailable(
                    available.reason, "attach the device and install its runtime, or benchmark with --target cpu"
                )
            delegates = [self._load_delegate()]
        self.session = open_session(
            model_path, num_threads=cfg.num_threads, batch=cfg.batch, origin=model_path, delegates=delegates
        )
        inp = self.session.input
        self._x = seeded_input(np.dtype(inp["dtype"]), tuple(inp["shape"]))  # what the native probe ran

    def invoke(self) -> None:
        assert self.session is not None and self._x is not None
        self.session.interpreter.set_tensor(self.session.input["index"], self._x)
        self.session.interpreter.invoke()

    def benchmark(self, model_path: str, cfg: BenchConfig) -> BenchResult:
        self.load(model_path, cfg)
        stats = measure(self.invoke, cfg.num_runs, cfg.warmup_runs)
        env = host_environment()
        env["runtime"] = f"ai-edge-litert {importlib.metadata.version('ai-edge-litert')}"
        if self.delegate:
            env["delegate"] = self.delegate
        device = "host" if self.delegate is None else (self.device or "default device")
        return BenchResult(target=self.target, device=device, stats=stats, num_threads=cfg.num_threads, environment=env)


class CpuTarget:
    name = "cpu"
    description = "host CPU with the LiteRT interpreter (XNNPACK)"
    build_mode = Mode.INT8
    build_io = IOType.INT8
    profile = {"integer_only": False, "int16_activations": True, "cpu_fallback_splits_graph": False}
    options = remote_options.OPTIONS
    max_models = 1
    device_help = remote_options.DEVICE_HELP

    def check(self, model: str, options: Mapping[str, Any] = NO_OPTIONS) -> CompatReport:
        """Open ``model`` in LiteRT: an op it lacks is named (BadInput). No options."""
        resolve(self, Stage.CHECK, options)
        model_path = model
        info = read_file(model_path)
        open_session(model_path, batch=1, origin=model_path)  # raises naming any op LiteRT lacks
        ops = tuple({"op": name, "count": n, "status": "supported"} for name, n in info.op_histogram().items())
        return CompatReport(target=self.name, ok=True, ops=ops, findings=Findings(no_accelerator=ON_THE_CPU))

    def compile(
        self,
        models: Sequence[str],
        out_dir: str,
        options: Mapping[str, Any] = NO_OPTIONS,
        checked: Sequence[CompatReport] = (),
    ) -> CompileResult:
        """Nothing to compile: the CPU runs the .tflite as is (a skipped result). No options; ``checked`` is
        accepted and not needed.

        Raises:
            BadInput: the file is not a .tflite (nothing to skip: it cannot run as is).
        """
        (model_path,) = check_models(self, models)
        resolve(self, Stage.COMPILE, options)
        read_file(model_path)  # a Keras file or a corrupt .tflite is an error, not "nothing to compile"
        return CompileResult(
            target=self.name,
            output=model_path,
            skipped=True,
            reason="the CPU runs the .tflite as is",
            findings=Findings(no_accelerator=ON_THE_CPU),
        )

    def tool_versions(self, stage: Stage, options: Mapping[str, Any] = NO_OPTIONS) -> dict[str, str]:
        """LiteRT for check (it opens the model) and bench; compile runs nothing."""
        resolve(self, stage, options)
        if stage == Stage.COMPILE:
            return {}
        return {"ai-edge-litert": toolversions.package("ai-edge-litert")}

    def runner(self, device: str | None = None, options: Mapping[str, Any] = NO_OPTIONS):
        """This machine's CPU, or a board's CPU over SSH with ``options["host"]`` (``remote_options``)."""
        options = resolve(self, Stage.BENCH, options, device)
        if "host" in options:
            from edgeq.targets.remote import SshRunner

            return SshRunner(target="cpu", **options)
        if options:
            raise UsageError(
                f"{', '.join('--' + k.replace('_', '-') for k in options)} needs --host", "add --host USER@BOARD"
            )
        return LocalRunner()


TARGET = CpuTarget()
