"""Target names to modules; a target module is imported only when it is asked for.

Each target's option declarations live in a light module of their own, so that the CLI can build its
flags (and ``--help``) from them without importing the targets.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from edgeq.errors import UsageError
from edgeq.targets.base import Stage, Target, TargetOption


@dataclass(frozen=True)
class Entry:
    module: str  # defines TARGET
    options: str  # defines OPTIONS, a tuple of TargetOption (imports nothing heavy)
    description: str


TARGETS: dict[str, Entry] = {
    "cpu": Entry("edgeq.targets.cpu", "edgeq.targets.remote_options", "host CPU with the LiteRT interpreter (XNNPACK)"),
    "coral": Entry(
        "edgeq.targets.coral",
        "edgeq.targets.coral_options",
        "Google Coral Edge TPU (edgetpu_compiler; pre-flight without it)",
    ),
    "android": Entry(
        "edgeq.targets.android",
        "edgeq.targets.android_options",
        "Android phones: float32/fp16/int8 flavours, benchmark_model over adb",
    ),
    "mcu": Entry(
        "edgeq.targets.mcu",
        "edgeq.targets.mcu_options",
        "microcontrollers with TensorFlow Lite Micro (op check, arena/flash fit, C export)",
    ),
    "ethos-u": Entry(
        "edgeq.targets.ethos_u",
        "edgeq.targets.ethos_u_options",
        "Arm Ethos-U NPU (Vela: NPU/CPU split, SRAM/flash, cycle estimate)",
    ),
}


def names() -> list[str]:
    return sorted(TARGETS)


def _entry(name: str) -> Entry:
    if name not in TARGETS:
        raise UsageError(f"unknown target {name!r}", f"choose one of: {', '.join(names())}")
    return TARGETS[name]


def get(name: str) -> Target:
    """The target called ``name``.

    Raises:
        UsageError: unknown target (the message lists the known ones).
    """
    module = importlib.import_module(_entry(name).module)
    return module.TARGET


def options(name: str) -> tuple[TargetOption, ...]:
    """The options target ``name`` declares, without importing the target."""
    return tuple(importlib.import_module(_entry(name).options).OPTIONS)


def all_options() -> dict[str, tuple[TargetOption, ...]]:
    """Every target's declared options, by target name."""
    return {name: options(name) for name in names()}


def options_for(stage: Stage) -> dict[str, list[tuple[str, TargetOption]]]:
    """The union over targets of the options ``stage`` uses: key -> [(target, declaration), ...]."""
    union: dict[str, list[tuple[str, TargetOption]]] = {}
    for name, decls in all_options().items():
        for o in decls:
            if stage in o.stages:
                union.setdefault(o.key, []).append((name, o))
    return union


def device_help(name: str) -> str | None:
    """What target ``name``'s runner takes as a device string (None: no device), without importing it."""
    return getattr(importlib.import_module(_entry(name).options), "DEVICE_HELP", None)
