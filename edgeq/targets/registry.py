"""Target names to modules; a target module is imported only when it is asked for."""

from __future__ import annotations

import importlib

from edgeq.errors import UsageError
from edgeq.targets.base import Target

# name -> (module, one-line description). Later targets register here.
TARGETS: dict[str, tuple[str, str]] = {
    "cpu": ("edgeq.targets.cpu", "host CPU with the LiteRT interpreter (XNNPACK)"),
    "coral": ("edgeq.targets.coral", "Google Coral Edge TPU (edgetpu_compiler; pre-flight without it)"),
    "android": ("edgeq.targets.android", "Android phones: float32/fp16/int8 flavours, benchmark_model over adb"),
    "mcu": ("edgeq.targets.mcu", "microcontrollers with TensorFlow Lite Micro (op check, arena/flash fit, C export)"),
    "ethos-u": ("edgeq.targets.ethos_u", "Arm Ethos-U NPU (Vela: NPU/CPU split, SRAM/flash, cycle estimate)"),
}


def names() -> list[str]:
    return sorted(TARGETS)


def get(name: str) -> Target:
    """The target called ``name``.

    Raises:
        UsageError: unknown target (the message lists the known ones).
    """
    if name not in TARGETS:
        raise UsageError(f"unknown target {name!r}", f"choose one of: {', '.join(names())}")
    module = importlib.import_module(TARGETS[name][0])
    return module.TARGET
