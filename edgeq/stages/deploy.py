"""The deployment stages on one target: check, compile, bench.

Each takes the target's options as one mapping keyed as the target declares them
(:class:`edgeq.targets.base.TargetOption`); an option the target does not take at that stage is a
usage error naming its flag.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from edgeq.config import BenchConfig
from edgeq.errors import BadInput, Unavailable
from edgeq.modelio import Format, detect_format
from edgeq.targets import registry
from edgeq.targets.base import NO_OPTIONS, BenchResult, CompatReport, CompileResult, Stage
from edgeq.targets.registry import resolve


def check(model_path: str, target: str, options: Mapping[str, Any] = NO_OPTIONS) -> CompatReport:
    """What of ``model_path`` runs on ``target``'s accelerator, from the file (and the target's tools).

    Raises:
        UsageError: unknown target; an option ``target`` does not take at check.
        BadInput: not a model the target can take (with the fix).
        Unavailable: a tool the target's check needs is missing.
    """
    tgt = registry.get(target)
    return tgt.check(model_path, resolve(tgt, Stage.CHECK, options))


def compile(  # noqa: A001 - the stage's name
    models: Sequence[str],
    target: str,
    out_dir: str,
    options: Mapping[str, Any] = NO_OPTIONS,
    checked: Sequence[CompatReport] = (),
) -> CompileResult:
    """Compile ``models`` for ``target`` into ``out_dir`` (several only where the target co-compiles).

    ``checked`` is each model's :func:`check` with the same options, where the caller has it: the target
    takes its analysis from there (Vela's, TFLM's arena, the Edge TPU pre-flight) instead of redoing it.

    Raises:
        UsageError: unknown target; an option it does not take; more models than it compiles at once.
        BadInput, OutputExists: as the target's pre-flight and output checks raise.
        Unavailable: the target's compiler is required and missing.
        ConversionFailed: the compiler failed.
    """
    tgt = registry.get(target)
    return tgt.compile(list(models), out_dir, resolve(tgt, Stage.COMPILE, options), checked=tuple(checked))


def bench(
    model_path: str,
    target: str,
    cfg: BenchConfig,
    device: str | None = None,
    options: Mapping[str, Any] = NO_OPTIONS,
) -> BenchResult:
    """Benchmark a .tflite on ``target`` (warm-up excluded, p50/p90/p99).

    ``device`` is the target's device string (``usb:0`` for a Coral USB Accelerator); ``options``
    are the bench options the target declares (``host`` to run on a board over SSH, ...).

    Raises:
        UsageError: unknown target; an option or a device the target does not take.
        Unavailable: the target's runner is not available here.
        BadInput: the model cannot run (custom op, dynamic batch without ``cfg.batch``).
    """
    if detect_format(model_path) != Format.TFLITE:
        raise BadInput(
            f"{model_path} is not a .tflite model", "quantize it first: edgeq quantize MODEL -o model.tflite"
        )
    tgt = registry.get(target)
    runner = tgt.runner(device, resolve(tgt, Stage.BENCH, options, device))
    available = runner.availability()
    if not available.available:
        raise Unavailable(
            f"target {target} is not available: {available.reason}", "attach the device or choose another --target"
        )
    return runner.benchmark(model_path, cfg)
