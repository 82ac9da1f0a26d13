"""Target names to modules; a target module is imported only when it is asked for.

Each target's option declarations live in a light module of their own, so that the CLI can build its
flags (and ``--help``) from them without importing the targets.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from edgeq.errors import UsageError
from edgeq.targets.base import Declares, Stage, Target, TargetOption, not_applicable


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


def resolve(
    target: Declares, stage: Stage, options: Mapping[str, Any] | None, device: str | None = None
) -> dict[str, Any]:
    """The options ``target`` receives for ``stage``: those given (None values dropped), checked.

    Raises:
        UsageError: an option (or ``device``) the target does not take at this stage, named by its
            flag; an option no target declares, named by its key.
    """
    given = {k: v for k, v in (options or {}).items() if v is not None}
    mine = {o.key: o for o in target.options if stage in o.stages}
    for key in given:
        if key in mine:
            continue
        flag = _flag_of(key, target)
        if flag is None:
            known = ", ".join(sorted(mine)) or "none"
            raise UsageError(f"unknown option {key!r} for target {target.name}", f"{stage.value} options: {known}")
        raise not_applicable(flag, target.name, stage)
    if device is not None and target.device_help is None:
        raise not_applicable("--device", target.name, stage)
    return given


def _flag_of(key: str, target: Declares) -> str | None:
    for o in target.options:
        if o.key == key:
            return o.flag
    for decls in all_options().values():  # every target's declarations, for a key this one lacks
        for o in decls:
            if o.key == key:
                return o.flag
    return None
