"""Microcontrollers with TensorFlow Lite Micro: will it run, will it fit, and the firmware files.

- ``TARGET.check(model, {"board": ...})`` runs the model in TFLM's Python interpreter (in a child process):
  ops TFLM lacks are named (exit 3), the tensor arena is the size TFLM allocated (its
  RecordingMicroAllocator report, confirmed by allocating exactly that much; when that is not enough,
  the smallest arena TFLM accepts, found by bisection), flash is the model plus
  a documented runtime estimate, the fit is judged against a board profile (a misfit exits 6 with the
  numbers), and TFLM's outputs are compared with LiteRT's on the same inputs.
- ``TARGET.compile([model], out_dir, {"board": ...})`` writes model_data.cc/.h, op_resolver.h and main.cc.
- ``TARGET.runner(None, {"board": ...})`` times TFLM on the host (labelled host timing) and adds the board's
  latency estimate (labelled estimate, with its calibration error).

Modules: boards (profiles as data), ops (resolver table, flash/arena constants, pre-flight rules),
tflm (the child-process interpreter), tflm_worker (its entry point), parity, export, estimate.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgeq import __version__
from edgeq import findings as fd
from edgeq.artifacts import sha256_bytes, tool_versions
from edgeq.bench.timing import LatencyStats, host_environment
from edgeq.config import BenchConfig, IOType, Mode
from edgeq.errors import BadInput, QualityGateFailed, Unavailable, UnsupportedOp, UsageError
from edgeq.targets import mcu_options, toolversions
from edgeq.targets.base import NO_OPTIONS, Availability, BenchResult, CompatReport, CompileResult, Stage, check_models
from edgeq.targets.mcu import boards, estimate, export, figures, ops, parity, tflm
from edgeq.targets.registry import resolve
from edgeq.tflite import read_bytes, read_model_bytes

__all__ = ["TARGET", "McuTarget", "McuCompatReport", "McuCompileResult", "McuBenchResult", "boards", "estimate"]

TARGET_NAME = "mcu"
PROFILE = {"integer_only": True, "int16_activations": True, "cpu_fallback_splits_graph": False}
TOP_LEVEL_KEYS = ("arena_bytes", "flash_bytes", "unsupported_ops", "fits")


class McuCompatReport(CompatReport):
    """A CompatReport whose JSON also carries the four figures of the issue at the top level.

    ``details`` also names the model checked (``model``, ``model_sha256``): a compile given this report
    (``checked``) takes TFLM's arena from it instead of running TFLM again."""

    def to_dict(self) -> dict:
        doc = super().to_dict()
        for key in TOP_LEVEL_KEYS:
            doc[key] = self.details.get(key)
        return doc


class McuCompileResult(CompileResult):
    """The firmware export: ``details`` has export_dir, files, board, arena and flash figures, the check."""

    def artifacts(self) -> list[str]:
        return [str(f) for f in self.details.get("files") or []]

    def describe(self) -> list[str]:
        """The export, the board, TFLM's arena and flash figures, and the generated C's beside them."""
        from edgeq.targets.mcu.cgen.compile import footprint_line

        d = self.details
        lines = super().describe()
        if self.skipped:
            return lines
        lines.append(f"board: {d['board']}")
        lines += [f"{key}: {d[key]:,}" for key in ("arena_bytes", "tensor_arena_size_constant", "flash_bytes")]
        if d.get("c_runtime"):
            lines.append(footprint_line(d["c_runtime"], d["arena_bytes"], d["flash_bytes"]))
        return lines


class McuCCompileResult(CompileResult):
    """The generated C engine (``--runtime c``): ``details`` has the project, the proof (bit-exact counts,
    QEMU instruction counts), flash and RAM measured from the ELF, and TFLM's figures beside them."""

    def artifacts(self) -> list[str]:
        return [str(self.details["export_dir"])] if self.details.get("export_dir") else []

    def describe(self) -> list[str]:
        """The project, the memory plan, the proof on the host and under QEMU, RAM and flash beside TFLM's."""
        from edgeq.targets.mcu.cgen.compile import render

        return render(self.to_dict()).splitlines()


@dataclass(frozen=True)
class McuBenchResult(BenchResult):
    """Host TFLM timing (``stats``) and the board's latency ``estimate``, kept apart."""

    estimate: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        doc = super().to_dict()
        doc["timing_kind"] = "host"
        doc["estimate"] = self.estimate
        return doc


def _kib(n: int) -> str:
    return f"{n / 1024:,.1f} KiB"


def _load(model_path: str):
    data = read_model_bytes(model_path)
    return data, read_bytes(data, origin=str(model_path))


def _require_integer(info, board: boards.Board, origin: str) -> list[fd.Message]:
    """Refuse float compute on an integer-only board; return notes for float I/O conversions."""
    float_ops = [op for op in info.ops if op.compute in ("float", "hybrid")]
    conversions = [op for op in info.ops if op.compute == "conversion"]
    if board.integer_only and float_ops:
        names = sorted({op.name for op in float_ops})
        raise BadInput(
            f"{origin} computes in float ({len(float_ops)} op(s): {', '.join(names)}) and board {board.name} is "
            f"integer-only: {board.integer_only_reason}",
            "quantize to int8 first: edgeq quantize MODEL --mode int8 --data CALIBRATION.npz",
            details={"board": board.name, "float_ops": [op.to_dict() for op in float_ops]},
        )
    notes = []
    if float_ops:
        notes.append(
            fd.warning(
                f"{len(float_ops)} op(s) compute in float: TFLM runs them with float reference kernels (no "
                "CMSIS-NN); quantize to int8 for the optimized kernels"
            )
        )
    if conversions:
        notes.append(
            fd.info(
                "the model has float I/O: its QUANTIZE/DEQUANTIZE ops convert on the microcontroller; quantize with "
                "--io int8 to feed int8 directly"
            )
        )
    return notes


def _preflight(info, origin: str) -> None:
    found = ops.preflight(info)
    if found:
        first = found[0]
        raise BadInput(
            f"{origin}: {first['text']}",
            first["fix"],
            details={"preflight": found},
        )
    if any(t.is_dynamic for t in info.inputs):
        raise BadInput(
            f"{origin} has a dynamic input shape; TFLM needs static shapes",
            "quantize the float model with its input shape pinned: edgeq quantize FLOAT_MODEL --input-shape 1x...",
        )


def _largest_activation(info) -> tuple[int, Any]:
    """The largest non-constant tensor as (bytes, tensor); every one of them lives in TFLM's arena."""
    best: tuple[int, Any] = (0, None)
    for t in info.tensors:
        if not t.is_constant:
            try:
                itemsize = np.dtype(t.dtype).itemsize
            except TypeError:
                itemsize = 1
            nbytes = math.prod(max(d, 1) for d in t.shape) * itemsize
            best = max(best, (nbytes, t), key=lambda b: b[0])
    return best


def _activations_bounded(info, origin: str, board: boards.Board | None) -> None:
    """Refuse a model whose declared activations cannot be held, before TFLM runs it or samples are drawn
    for it: on ``board``, one tensor above its arena RAM cannot fit (exit 6); with no board to judge
    against, one above the generated C engine's cap is a corrupt or hand-edited model (exit 3)."""
    from edgeq.targets.mcu.cgen import shapes

    nbytes, t = _largest_activation(info)
    if t is None:
        return
    if board is None:
        if nbytes > shapes.MAX_TENSOR_BYTES:
            raise BadInput(
                f"{origin}: tensor {t.name!r} declares {list(t.shape)}, {nbytes:,} bytes, over the "
                f"{shapes.MAX_TENSOR_BYTES:,}-byte cap for a microcontroller model",
                shapes.REEXPORT,
            )
        return
    if nbytes > board.arena_ram_bytes:
        bigger = [b.name for b in boards.BOARDS.values() if b.arena_ram_bytes >= nbytes]
        raise QualityGateFailed(
            f"{origin} does not fit {board.name}: tensor {t.name!r} {list(t.shape)} alone takes {nbytes:,} bytes of "
            f"the tensor arena, over the {board.arena_ram_bytes:,} bytes of RAM for the arena (judged from the "
            "declared shapes, before TFLM ran)",
            f"boards it may fit: {', '.join(bigger)} (--board NAME)"
            if bigger
            else "no profiled board fits it: shrink the model (fewer channels, smaller input)",
            details={"board": board.name, "fits": False, "tensor": t.name, "tensor_bytes": nbytes},
        )


def _op_rows(info) -> list[dict]:
    rows = []
    for name, count in info.op_histogram().items():
        rows.append(
            {
                "op": name,
                "count": count,
                "status": "supported",
                "resolver": ops.resolver_method(name),
                "cmsis_nn": name in ops.CMSIS_NN_OPS,
            }
        )
    return rows


def _unsupported_error(origin: str, missing: list[dict], info, board: boards.Board) -> UnsupportedOp:
    names = [m["op"] for m in missing]
    counts = ", ".join(f"{m['op']} (x{m['count']}, op #{', #'.join(str(i) for i in m['indices'])})" for m in missing)
    hints = [f"{op}: {ops.ALTERNATIVES[op]}" for op in names if op in ops.ALTERNATIVES]
    hint = "; ".join(hints) if hints else "rebuild the model without it, or register a custom kernel in TFLM"
    unsupported = set(names)
    table = [dict(r, status="unsupported" if r["op"] in unsupported else "supported") for r in _op_rows(info)]
    return UnsupportedOp(
        f"TFLM has no kernel for {len(names)} op(s) of {origin}: {counts}",
        hint,
        details={
            "unsupported_ops": missing,
            "ops": table,
            "board": board.name,
            "fits": None,
            "tflm_version": tflm.version(),
        },
    )


def _checked_report(
    checked: Sequence[CompatReport], model_path: str, data: bytes, brd: boards.Board
) -> CompatReport | None:
    """The check of ``model_path`` (these bytes) on ``brd`` among ``checked``, or None: a report of another
    model, other bytes (the file changed since) or another board is not this compile's."""
    sha = sha256_bytes(data)
    path = Path(model_path).resolve()
    for report in checked:
        d = report.details
        if (
            report.target == TARGET_NAME
            and d.get("model_sha256") == sha
            and d.get("model") is not None
            and Path(d["model"]).resolve() == path
            and (d.get("board") or {}).get("name") == brd.name
        ):
            return report
    return None


class McuRunner:
    """Times the model in TFLM's Python interpreter on this host and adds the board's latency estimate.

    The host timing measures TFLM's reference kernels on this machine's CPU; it is not the board's
    latency. The estimate is.
    """

    def __init__(self, board: boards.Board, timeout_s: float = tflm.DEFAULT_TIMEOUT_S) -> None:
        self.board = board
        self.timeout_s = timeout_s
        self._interp: tflm.Interpreter | None = None

    def availability(self) -> Availability:
        if not tflm.available():
            return Availability(False, f"the TFLM Python interpreter is not installed ({tflm.INSTALL_HINT})")
        return Availability(True)

    def load(self, model_path: str, cfg: BenchConfig) -> None:
        """Run the model once in a child process (TFLM may abort), then keep an interpreter here."""
        data, info = _load(model_path)
        _preflight(info, model_path)
        _activations_bounded(info, model_path, None)
        inputs = parity.make_inputs(info, 1)
        probe = tflm.probe(model_path, info, inputs, timeout_s=self.timeout_s)
        if probe.unsupported_ops:
            raise _unsupported_error(model_path, probe.unsupported_ops, info, self.board)
        tflm.require_ok(probe, model_path)
        from tflite_micro import runtime

        interp: tflm.Interpreter = runtime.Interpreter.from_bytes(data, arena_size=tflm.initial_arena(len(data)))
        for i, x in enumerate(inputs):
            interp.set_input(x[0], i)
        self._interp = interp  # only once its inputs are set: a failed load leaves nothing to invoke

    def invoke(self) -> None:
        if self._interp is None:
            raise Unavailable("the model is not loaded", "call load() first")
        self._interp.invoke()

    def benchmark(self, model_path: str, cfg: BenchConfig) -> McuBenchResult:
        """Host timing (warm-up excluded, first invoke apart) in a child process, plus the board estimate.

        Raises:
            UnsupportedOp: TFLM lacks an op of the model.
            BadInput: TFLM cannot run the model.
        """
        data, info = _load(model_path)
        _preflight(info, model_path)
        _activations_bounded(info, model_path, None)
        inputs = parity.make_inputs(info, 1)
        bench = {"num_runs": cfg.num_runs, "warmup_runs": cfg.warmup_runs}
        probe = tflm.probe(model_path, info, inputs, bench=bench, timeout_s=self.timeout_s)
        if probe.unsupported_ops:
            raise _unsupported_error(model_path, probe.unsupported_ops, info, self.board)
        tflm.require_ok(probe, model_path)
        t = probe.timing or {}
        stats = LatencyStats(
            first_invoke_ms=t["first_invoke_ms"],
            num_runs=t["num_runs"],
            warmup_runs=t["warmup_runs"],
            **t["latency_ms"],
        )
        est = estimate.estimate(info, self.board)
        env = host_environment()
        env["runtime"] = f"tflite-micro {tflm.version()} (Python interpreter, reference kernels)"
        notes = [fd.info("host timing: TFLM's reference kernels on this machine's CPU, not the microcontroller")]
        if est.get("latency_ms") is not None:
            notes.append(
                fd.info(
                    f"estimate for {self.board.name} ({self.board.core} @ {self.board.clock_hz / 1e6:.0f} MHz): "
                    f"{est['latency_ms']:.2f} ms per inference ({estimate.basis(est)})"
                )
            )
        else:
            notes.append(fd.info(f"no latency estimate for {self.board.name}: {est['reason']}"))
        if cfg.num_threads != 1:
            notes.append(fd.warning(f"TFLM is single-threaded: --threads {cfg.num_threads} does not apply"))
        return McuBenchResult(
            target="mcu",
            device=f"host ({env.get('cpu') or env.get('machine')}) via TFLM",
            stats=stats,
            num_threads=1,
            environment=env,
            notes=tuple(m.text for m in notes),
            findings=figures.host_bench(self.board, est, notes),
            estimate=est,
        )


class McuTarget:
    name = TARGET_NAME
    description = "microcontrollers with TensorFlow Lite Micro (TFLM check, arena/flash fit, C export)"
    build_mode = Mode.INT8
    build_io = IOType.INT8
    profile = PROFILE
    default_board = boards.DEFAULT_BOARD
    options = mcu_options.OPTIONS
    max_models = 1
    device_help = mcu_options.DEVICE_HELP
    ops_source = "docs/mcu.md"
    other_ops = "a model with any other op is refused (TFLM has no kernel for it)"

    # --- check ---------------------------------------------------------------------------------------

    def check(self, model: str, options: Mapping[str, Any] = NO_OPTIONS) -> McuCompatReport:
        """Run ``model`` in TFLM and judge it against ``board`` (default :data:`boards.DEFAULT_BOARD`).

        Options (:mod:`edgeq.targets.mcu_options`): ``board``, ``parity_samples`` (default 8 seeded
        inputs), ``timeout_s`` (per TFLM child process, 300).

        Returns:
            McuCompatReport: ``details`` has arena_bytes (what TFLM allocated), arena (head/tail and
            breakdown, exactness check), arena_bytes_with_margin, flash_bytes (model + runtime estimate)
            and flash, fits and fit, unsupported_ops ([]), board, parity, latency_estimate, tflm_version.

        Raises:
            UsageError: unknown board; an option mcu does not take at check.
            BadInput: not a TFLite model; float compute on an integer-only board; a model TFLM would
                abort on or cannot prepare.
            UnsupportedOp: TFLM has no kernel for an op (all such ops are named).
            QualityGateFailed: the arena or the flash does not fit the board (the numbers in details); a
                declared activation alone exceeds the board's arena RAM (judged before TFLM runs).
            Unavailable: tflite-micro is not installed.
        """
        model_path = model
        opts = resolve(self, Stage.CHECK, options)
        parity_samples = int(opts.get("parity_samples", parity.DEFAULT_SAMPLES))
        timeout_s = float(opts.get("timeout_s", tflm.DEFAULT_TIMEOUT_S))
        brd = boards.get(opts.get("board"))
        data, info = _load(model_path)
        notes = _require_integer(info, brd, model_path)
        _preflight(info, model_path)
        _activations_bounded(info, model_path, brd)
        if parity_samples < 1:
            raise BadInput(f"parity needs at least one sample, got {parity_samples}", "e.g. --parity-samples 8")
        inputs = parity.make_inputs(info, parity_samples, parity.DEFAULT_SEED)
        probe = tflm.probe(model_path, info, inputs, timeout_s=timeout_s)
        if probe.unsupported_ops:
            raise _unsupported_error(model_path, probe.unsupported_ops, info, brd)
        tflm.require_ok(probe, model_path)
        details = self._details(model_path, data, info, brd, probe, inputs)
        if not details["fits"]:
            fit = details["fit"]
            parts = []
            if not fit["ram"]["fits"]:
                parts.append(
                    f"tensor arena {details['arena_bytes']:,} bytes > {fit['ram']['available_bytes']:,} bytes of RAM "
                    f"for the arena (over by {-fit['ram']['headroom_bytes']:,})"
                )
            if not fit["flash"]["fits"]:
                parts.append(
                    f"flash {details['flash_bytes']:,} bytes (model {details['flash']['model_bytes']:,} + runtime "
                    f"estimate {details['flash']['runtime_estimate_bytes']:,}) > {fit['flash']['available_bytes']:,} "
                    f"bytes (over by {-fit['flash']['headroom_bytes']:,})"
                )
            computes_float = any(op.compute in ("float", "hybrid") for op in info.ops)
            bigger = [
                b.name
                for b in boards.BOARDS.values()
                if b.arena_ram_bytes >= details["arena_bytes"]
                and b.flash_bytes >= details["flash_bytes"]
                and not (b.integer_only and computes_float)
            ]
            hint = (
                f"boards it fits: {', '.join(bigger)} (--board NAME on check, compile, bench and build; "
                f"default {mcu_options.BOARD_NAMES[0]}); or shrink the model"
                if bigger
                else "no profiled board fits it: shrink the model (fewer channels, smaller input)"
            )
            raise QualityGateFailed(f"{model_path} does not fit {brd.name}: " + "; ".join(parts), hint, details=details)
        return McuCompatReport(
            target=self.name,
            ok=True,
            ops=tuple(_op_rows(info)),
            findings=figures.check(details, brd, self._messages(details) + notes),
            details=details,
        )

    def _details(self, model_path: str, data: bytes, info, brd: boards.Board, probe: tflm.Probe, inputs) -> dict:
        arena_bytes = int(probe.arena_bytes or 0)
        distinct = len(tflm.op_names(data))
        runtime_bytes = ops.runtime_flash_bytes(distinct)
        flash_bytes = len(data) + runtime_bytes
        ram_fits = arena_bytes <= brd.arena_ram_bytes
        flash_fits = flash_bytes <= brd.flash_bytes
        par = parity.parity(model_path, info, inputs, probe.outputs or [], parity.DEFAULT_SEED)
        return {
            "model": str(model_path),
            "model_sha256": sha256_bytes(data),
            "board": brd.to_dict(),
            "arena_bytes": arena_bytes,
            "arena": {
                "source": "TFLM RecordingMicroAllocator report ('Arena allocation total'), checked by allocating "
                "exactly that arena; the smallest arena TFLM accepts when the total falls short. tflite-micro "
                f"{tflm.version()} Python interpreter (reference kernels, 64-bit host)",
                **probe.arena,
            },
            "arena_bytes_with_margin": ops.arena_with_margin(arena_bytes),
            "arena_margin_basis": ops.ARENA_MARGIN_BASIS,
            "flash_bytes": flash_bytes,
            "flash": {
                "model_bytes": len(data),
                "runtime_estimate_bytes": runtime_bytes,
                "distinct_ops": distinct,
                "basis": ops.RUNTIME_FLASH_BASIS,
            },
            "fits": ram_fits and flash_fits,
            "fit": {
                "ram": {
                    "fits": ram_fits,
                    "needed_bytes": arena_bytes,
                    "available_bytes": brd.arena_ram_bytes,
                    "headroom_bytes": brd.arena_ram_bytes - arena_bytes,
                    "margin_fits": ops.arena_with_margin(arena_bytes) <= brd.arena_ram_bytes,
                },
                "flash": {
                    "fits": flash_fits,
                    "needed_bytes": flash_bytes,
                    "available_bytes": brd.flash_bytes,
                    "headroom_bytes": brd.flash_bytes - flash_bytes,
                },
            },
            "unsupported_ops": [],
            "parity": par,
            "latency_estimate": estimate.estimate(info, brd),
            "io": probe.io,
            "tflm_version": tflm.version(),
        }

    @staticmethod
    def _messages(d: dict) -> list[fd.Message]:
        b = d["board"]
        arena = d["arena"]
        if arena.get("allocates_at_report_total", True):
            arena_line = (
                f"tensor arena: TFLM allocated {d['arena_bytes']:,} bytes (head {arena.get('head_bytes') or 0:,} + "
                f"tail {arena.get('tail_bytes') or 0:,}; an arena of exactly that size allocates)"
            )
        else:
            arena_line = (
                f"tensor arena: {d['arena_bytes']:,} bytes, the smallest TFLM accepts; its allocation report says "
                f"{arena.get('report_total_bytes'):,}, but the kernels' temporary allocations while they prepare "
                "need more"
            )
        parity_line = "parity: " + parity.summary(d["parity"])
        msgs = [
            fd.info(arena_line + f"; firmware constant with margin {d['arena_bytes_with_margin']:,}"),
            fd.info(
                f"flash: model {d['flash']['model_bytes']:,} + TFLM runtime ~{d['flash']['runtime_estimate_bytes']:,} "
                f"(estimate, {d['flash']['distinct_ops']} kernels) = {d['flash_bytes']:,} bytes"
            ),
            fd.info(
                f"{b['name']}: arena {_kib(d['arena_bytes'])} of {_kib(b['arena_ram_bytes'])} RAM, flash "
                f"{_kib(d['flash_bytes'])} of {_kib(b['flash_bytes'])}: fits"
            ),
            # TFLM and LiteRT's reference kernels run the same integer arithmetic: a difference is worth reading
            fd.info(parity_line) if d["parity"]["bit_exact"] else fd.warning(parity_line),
        ]
        if not d["fit"]["ram"]["margin_fits"]:
            msgs.append(
                fd.warning(
                    f"the arena fits but not with the export's margin ({d['arena_bytes_with_margin']:,} bytes): "
                    "trim kTensorArenaSize to arena_used_bytes() on the device"
                )
            )
        est = d["latency_estimate"]
        if est.get("latency_ms") is not None:
            msgs.append(fd.info(f"latency estimate on {b['name']}: {est['latency_ms']:.2f} ms ({estimate.basis(est)})"))
        if arena.get("allocates_at_arena_bytes") is False:
            msgs.append(fd.warning(f"an arena of exactly {d['arena_bytes']:,} bytes did not allocate on a re-check"))
        return msgs

    # --- compile -------------------------------------------------------------------------------------

    def compile(
        self,
        models: Sequence[str],
        out_dir: str,
        options: Mapping[str, Any] = NO_OPTIONS,
        checked: Sequence[CompatReport] = (),
    ) -> McuCompileResult | McuCCompileResult:
        """Check the model (as :meth:`check`), then export the firmware files to ``out_dir/<stem>_tflm``.

        One model at a time. Options (:mod:`edgeq.targets.mcu_options`): ``board``, ``timeout_s``,
        ``overwrite``, ``runtime``, ``proof_samples``. ``checked``: the check of the model on the same board
        (:meth:`check`'s report); when one matches (same path, same bytes, same board), TFLM's arena and
        flash are taken from it instead of running TFLM again.

        ``runtime="c"`` generates edgeq's own C engine instead (``out_dir/<stem>_c``, see
        :mod:`edgeq.targets.mcu.cgen`), proven bit-exact against LiteRT's reference kernels on the host and,
        with arm-none-eabi-gcc and QEMU, on the board's core (``proof_samples`` seeded samples, default 20).

        ``overwrite``: True replaces an existing export folder, False refuses (the CLI passes ``--force``);
        None, a pipeline's call, replaces an earlier edgeq export and refuses anything else.

        Returns:
            CompileResult: ``output`` is the exported copy of the .tflite; ``details`` lists the files,
            the arena figures, the resolver calls and the check; ``findings`` the board, the arena constant,
            the generated C's figures (``runtime="c"``: the fit measured from the firmware, the proof and
            the instruction count under QEMU).

        Raises:
            as :meth:`check`; OutputExists when the folder may not be replaced.
        """
        (model_path,) = check_models(self, models)
        opts = resolve(self, Stage.COMPILE, options)
        brd = boards.get(opts.get("board"))
        if opts.get("runtime") != "c" and opts.get("proof_samples") is not None:
            raise UsageError("--proof-samples applies to --runtime c", "drop --proof-samples or add --runtime c")
        data, info = _load(model_path)
        reused = _checked_report(checked, model_path, data, brd)
        if opts.get("runtime") == "c":
            return self._compile_c(model_path, out_dir, opts, info, reused)
        report = reused or self.check(model_path, {k: opts.get(k) for k in ("board", "timeout_s")})
        return self._export_tflm(model_path, out_dir, opts.get("overwrite"), data, info, brd, report)

    def _export_tflm(
        self, model_path: str, out_dir: str, overwrite: bool | None, data: bytes, info, brd, report: CompatReport
    ) -> McuCompileResult:
        """The firmware files for TFLM, with the arena of ``report`` (the model's check on ``brd``)."""
        d = report.details
        provenance = {
            "edgeq": __version__,
            "model_name": Path(model_path).name,
            "model_sha256": sha256_bytes(data),
            "model_bytes": len(data),
        }
        files = export.render(Path(model_path), data, info, d["arena_bytes"], provenance)
        op_names = tflm.op_names(data)
        manifest = {
            "target": self.name,
            "model": {"path": str(model_path), "sha256": provenance["model_sha256"], "size_bytes": len(data)},
            "board": d["board"]["name"],
            "arena_bytes": d["arena_bytes"],
            "tensor_arena_size_constant": d["arena_bytes_with_margin"],
            "arena_margin_basis": ops.ARENA_MARGIN_BASIS,
            "ops": op_names,
            "resolver_calls": export.resolver_calls(op_names),
            "flash_bytes": d["flash_bytes"],
            "parity_bit_exact": d["parity"]["bit_exact"],
            "tool_versions": {**tool_versions(), "tflite-micro": tflm.version()},
        }
        final = export.write(out_dir, model_path, files, manifest, overwrite)
        stem = Path(model_path).stem
        details = {
            "target": self.name,
            "export_dir": str(final),
            "files": [str(final / name) for name in files] + [str(final / export.MANIFEST)],
            "board": d["board"]["name"],
            "arena_bytes": d["arena_bytes"],
            "tensor_arena_size_constant": d["arena_bytes_with_margin"],
            "num_ops": len(op_names),
            "resolver_calls": manifest["resolver_calls"],
            "flash_bytes": d["flash_bytes"],
            "check": report.to_dict(),
        }
        # what the generated C engine would take instead, beside TFLM's figures (no proof here: that is
        # compile --runtime c's job)
        from edgeq.targets.mcu.cgen import compile as cgen_compile

        details["c_runtime"] = cgen_compile.footprint(data, str(model_path), brd)
        line = cgen_compile.footprint_line(details["c_runtime"], d["arena_bytes"], d["flash_bytes"])
        return McuCompileResult(
            self.name,
            output=str(final / f"{stem}.tflite"),
            # the check's findings (the export is its arena) with what the export adds
            findings=report.findings.then(figures.tflm_compile(details, brd, line)),
            details=details,
        )

    def _compile_c(
        self, model_path: str, out_dir: str, opts: Mapping[str, Any], info, reused: CompatReport | None
    ) -> McuCCompileResult:
        from edgeq.targets.mcu.cgen import compile as cgen_compile

        brd = boards.get(opts.get("board"))
        timeout_s = float(opts.get("timeout_s") or tflm.DEFAULT_TIMEOUT_S)
        samples = opts.get("proof_samples")
        if samples is not None and samples < 1:
            raise UsageError(f"--proof-samples must be at least 1, got {samples}", "e.g. --proof-samples 20")
        details = cgen_compile.compile_c(
            model_path,
            out_dir,
            brd,
            overwrite=opts.get("overwrite"),
            timeout_s=timeout_s,
            proof_samples=cgen_compile.DEFAULT_PROOF_SAMPLES if samples is None else int(samples),
            tflm_check=lambda: reused or self.check(model_path, {"board": brd.name, "timeout_s": timeout_s}),
            inputs_fn=lambda n: parity.sample_chunks(info.inputs[0], n, parity.DEFAULT_SEED),
        )
        return McuCCompileResult(
            self.name, output=details["export_dir"], findings=figures.c_compile(details, brd), details=details
        )

    def tool_versions(self, stage: Stage, options: Mapping[str, Any] = NO_OPTIONS) -> dict[str, str]:
        """tflite-micro for every stage (the TFLM probe, export and timing); compile also sizes the C engine
        with arm-none-eabi-gcc; with ``runtime="c"``, compile and bench build and run it (gcc, QEMU)."""
        opts = resolve(self, stage, options)
        tools = {"tflite-micro": tflm.version() or toolversions.ABSENT}
        if stage == Stage.COMPILE:
            tools["arm-none-eabi-gcc"] = toolversions.program("arm-none-eabi-gcc")
        if opts.get("runtime") == "c":
            for prog in ("gcc", "arm-none-eabi-gcc", "qemu-system-arm"):
                tools[prog] = toolversions.program(prog)
        return tools

    # --- bench ---------------------------------------------------------------------------------------

    def runner(self, device: str | None = None, options: Mapping[str, Any] = NO_OPTIONS):
        """Host TFLM timing plus the ``board``'s latency estimate (``options["board"]``); with
        ``runtime="c"``, the generated C engine under QEMU on the board's core, counting instructions
        (:class:`edgeq.targets.mcu.cgen.bench.McuCRunner`).
        ``device`` is refused: on-device runs are not implemented, so it would be silently ignored."""
        opts = resolve(self, Stage.BENCH, options, device)
        brd = boards.get(opts.get("board"))
        if opts.get("runtime") == "c":
            from edgeq.targets.mcu.cgen.bench import McuCRunner

            return McuCRunner(brd)
        return McuRunner(brd)

    # --- tables --------------------------------------------------------------------------------------

    def supported_ops(self, runtime_version: int | None = None) -> list[dict]:
        return ops.table()

    def requirements(self) -> list[dict]:
        rows = [{"id": r.id, "text": r.text, "fix": r.fix, "source": r.source} for r in ops.RULES]
        rows.append(
            {
                "id": "static-shapes",
                "text": "Tensor shapes are static (TFLM does not resize tensors).",
                "fix": "quantize the float model with its input shape pinned: edgeq quantize FLOAT_MODEL --input-shape 1x...",
                "source": "TFLM",
            }
        )
        return rows

    def board_table(self) -> list[dict]:
        """The board profiles (``--board`` takes their names)."""
        return boards.table()


TARGET = McuTarget()
