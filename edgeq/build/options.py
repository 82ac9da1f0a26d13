"""The target options of a build, resolved and checked once, before any stage runs.

Each target declares its options as data (:class:`edgeq.targets.base.TargetOption`); the build takes every
one whose stages it runs (check, compile, bench) and that is ``in_build``, and a target's ``device``. They
come from the command line (``BuildConfig.options``: each goes to every chosen target that declares it) and
from edgeq.toml's ``[targets.NAME]`` tables (``BuildConfig.target_options``: one target each, keyed by the
flag's name, ``board``, ``runtime-version`` or ``runtime_version``), the command line winning. An option
that applies to none of the chosen targets is the one usage error, naming its flag and the targets that
take it. Only the target protocol and the registry are used: no target's internals.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from edgeq.config import BuildConfig
from edgeq.errors import BadInput, EdgeqError, UsageError
from edgeq.targets import registry
from edgeq.targets.base import Runner, Stage, Target, TargetOption, not_applicable

BUILD_STAGES = (Stage.CHECK, Stage.COMPILE, Stage.BENCH)
DEVICE = "device"  # not a TargetOption: the runner's device string, for targets with a device_help


@dataclass(frozen=True)
class TargetSettings:
    """What one target of a build is given: its checked options per stage, and its device (bench)."""

    stages: Mapping[Stage, Mapping[str, Any]] = field(default_factory=dict)
    device: str | None = None

    def of(self, stage: Stage) -> dict[str, Any]:
        """The options ``stage`` receives (a copy)."""
        return dict(self.stages.get(stage) or {})

    def key(self, *stages: Stage) -> dict[str, Any]:
        """The part of a step's cache key these settings make for ``stages`` (bench adds the device)."""
        doc: dict[str, Any] = {s.value: _plain(self.of(s)) for s in stages}
        if Stage.BENCH in stages and self.device is not None:
            doc[DEVICE] = self.device
        return doc

    def to_dict(self) -> dict[str, Any]:
        """For the manifest (provenance): every stage's options and the device."""
        return self.key(*BUILD_STAGES) | {DEVICE: self.device}


@dataclass(frozen=True)
class Chosen:
    """The targets of a build, by name, with their settings and the runners made from them."""

    targets: Mapping[str, Target]
    settings: Mapping[str, TargetSettings]
    runners: Mapping[str, Runner]


def _plain(opts: Mapping[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in sorted(opts.items())}


def build_options(decls: tuple[TargetOption, ...]) -> list[TargetOption]:
    """The declarations of a target the build takes (a stage it runs, ``in_build``)."""
    return [o for o in decls if o.in_build and o.stages & set(BUILD_STAGES)]


def _spellings(o: TargetOption) -> tuple[str, ...]:
    """The edgeq.toml names of an option: its flag's name (kebab or snake case) and its key."""
    name = o.flag.removeprefix("--")
    return (name, name.replace("-", "_"), o.key)


def _value(o: TargetOption, value: Any, where: str, error: type[EdgeqError]) -> Any:
    """``value`` checked against the declaration (type, choices, bound); a list becomes a tuple."""
    items = list(value) if o.multiple and isinstance(value, (list, tuple)) else [value]
    for v in items:
        if o.is_flag or o.type is bool:
            ok = isinstance(v, bool)
        elif o.type is int:
            ok = isinstance(v, int) and not isinstance(v, bool)
        elif o.type is float:
            ok = isinstance(v, (int, float)) and not isinstance(v, bool)
        else:
            ok = isinstance(v, str) and (o.path is None or v.strip() != "")
        if ok and o.choices and v not in o.choices:
            ok = False
        if not ok:
            want = f"one of {', '.join(o.choices)}" if o.choices else (o.type.__name__ + (" (a list)" * o.multiple))
            raise error(
                f"{where}: {o.flag} takes {want}, got {v!r}", f"e.g. {o.flag} {o.choices[0] if o.choices else '...'}"
            )
        if o.bound is not None:
            o.bound.check(o.flag, v)  # out of range: the usage error the command line gives
    return tuple(items) if o.multiple else value


def _table(name: str, table: Mapping[str, Any]) -> dict[str, Any]:
    """``[targets.NAME]`` of edgeq.toml as option keys, each value checked.

    Raises:
        BadInput: an unknown target, a key the target's build does not take, a value of the wrong type.
        UsageError: a number outside its option's range (as on the command line).
    """
    if name not in registry.TARGETS:
        raise BadInput(
            f"unknown target {name!r} in [targets.{name}] of edgeq.toml", f"targets: {', '.join(registry.names())}"
        )
    decls = build_options(registry.options(name))
    by_name = {s: o for o in decls for s in _spellings(o)}
    takes_device = registry.device_help(name) is not None
    out: dict[str, Any] = {}
    for key, value in table.items():
        if key == DEVICE and takes_device:
            out[DEVICE] = _value(
                TargetOption(DEVICE, "--device", frozenset(BUILD_STAGES), ""), value, f"[targets.{name}]", BadInput
            )
            continue
        o = by_name.get(key)
        if o is None:
            known = sorted({o.flag.removeprefix("--") for o in decls} | ({DEVICE} if takes_device else set()))
            raise BadInput(
                f"unknown key {key!r} in [targets.{name}] of edgeq.toml", f"{name} takes: {', '.join(known) or 'none'}"
            )
        out[o.key] = _value(o, value, f"[targets.{name}] {key}", BadInput)
    return out


def _declaring(key: str, decls: Mapping[str, tuple[TargetOption, ...]]) -> list[str]:
    return [name for name, ds in decls.items() if any(o.key == key for o in build_options(ds))]


def _given(cfg: BuildConfig, chosen: list[str]) -> dict[str, list[str]]:
    """The command line's options: for each, the chosen targets it goes to.

    Raises:
        UsageError: an option that applies to none of the chosen targets (its flag and the targets that
            take it named), or that no target declares.
    """
    every = registry.all_options()
    device_takers = [n for n in registry.names() if registry.device_help(n) is not None]
    goes_to: dict[str, list[str]] = {}
    for key, value in cfg.options.items():
        if value is None:
            continue
        takers = device_takers if key == DEVICE else _declaring(key, every)
        flag = "--device" if key == DEVICE else next((o.flag for n in takers for o in every[n] if o.key == key), None)
        if flag is None:
            raise UsageError(f"unknown build option {key!r}", "see edgeq build --help for the target options")
        mine = [n for n in chosen if n in takers]
        if not mine:
            raise not_applicable(flag, ",".join(chosen), "build", takers)
        goes_to[key] = mine
    return goes_to


def resolve(cfg: BuildConfig, targets: Mapping[str, Target]) -> dict[str, TargetSettings]:
    """Every chosen target's settings: its edgeq.toml table, overridden by the command line, split per
    stage and checked through :func:`edgeq.targets.registry.resolve`.

    Raises:
        UsageError: an option that applies to none of the chosen targets; a value out of range.
        BadInput: an edgeq.toml table naming an unknown target or key, or a value of the wrong type.
    """
    tables = {name: _table(name, table) for name, table in cfg.target_options.items()}
    goes_to = _given(cfg, list(targets))
    settings: dict[str, TargetSettings] = {}
    for name, tgt in targets.items():
        merged = dict(tables.get(name) or {})
        for key, names in goes_to.items():
            if name in names:
                o = next((o for o in tgt.options if o.key == key), None)
                merged[key] = cfg.options[key] if o is None else _value(o, cfg.options[key], o.flag, UsageError)
        device = merged.pop(DEVICE, None)
        stages = {
            stage: registry.resolve(
                tgt,
                stage,
                {k: v for k, v in merged.items() if any(o.key == k and stage in o.stages for o in tgt.options)},
                device if stage == Stage.BENCH else None,
            )
            for stage in BUILD_STAGES
        }
        settings[name] = TargetSettings(stages, device)
    return settings
