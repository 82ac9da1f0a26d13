"""The host CPU, run with the LiteRT interpreter. Every other target's baseline."""

from __future__ import annotations

import importlib.metadata

import numpy as np

from edgeq.bench.timing import host_environment, measure
from edgeq.config import BenchConfig, IOType, Mode
from edgeq.flatbuffer import read_file
from edgeq.runtime import Session, open_session
from edgeq.targets.base import Availability, BenchResult, CompatReport, CompileResult


class LocalRunner:
    """Runs a .tflite in this process. Input data is seeded random in the model's dtype."""

    def __init__(self) -> None:
        self.session: Session | None = None
        self._x: np.ndarray | None = None

    def availability(self) -> Availability:
        return Availability(True)

    def load(self, model_path: str, cfg: BenchConfig) -> None:
        self.session = open_session(model_path, num_threads=cfg.num_threads, batch=cfg.batch, origin=model_path)
        inp = self.session.input
        rng = np.random.default_rng(0)
        dtype = np.dtype(inp["dtype"])
        if np.issubdtype(dtype, np.integer):
            info = np.iinfo(dtype)
            self._x = rng.integers(info.min, info.max, size=inp["shape"], endpoint=True).astype(dtype)
        else:
            self._x = rng.standard_normal(inp["shape"]).astype(dtype)

    def invoke(self) -> None:
        assert self.session is not None and self._x is not None
        self.session.interpreter.set_tensor(self.session.input["index"], self._x)
        self.session.interpreter.invoke()

    def benchmark(self, model_path: str, cfg: BenchConfig) -> BenchResult:
        self.load(model_path, cfg)
        stats = measure(self.invoke, cfg.num_runs, cfg.warmup_runs)
        env = host_environment()
        env["runtime"] = f"ai-edge-litert {importlib.metadata.version('ai-edge-litert')}"
        return BenchResult(target="cpu", device="host", stats=stats, num_threads=cfg.num_threads, environment=env)


class CpuTarget:
    name = "cpu"
    description = "host CPU with the LiteRT interpreter (XNNPACK)"
    build_mode = Mode.INT8
    build_io = IOType.INT8
    profile = {"integer_only": False, "int16_activations": True, "cpu_fallback_splits_graph": False}

    def check(self, model_path: str) -> CompatReport:
        info = read_file(model_path)
        open_session(model_path, batch=1, origin=model_path)  # raises naming any op LiteRT lacks
        ops = tuple({"op": name, "count": n, "status": "supported"} for name, n in info.op_histogram().items())
        return CompatReport(target=self.name, ok=True, ops=ops)

    def compile(self, model_path: str, out_dir: str) -> CompileResult:
        return CompileResult(target=self.name, output=model_path, skipped=True, reason="the CPU runs the .tflite as is")

    def runner(self, device: str | None = None) -> LocalRunner:
        return LocalRunner()


TARGET = CpuTarget()
