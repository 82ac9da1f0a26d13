"""The cache key of a build step, computed in one place: the step's inputs, its config and the versions of
the tools it runs (each target says its own, :meth:`edgeq.targets.base.Target.tool_versions`). Installing
or upgrading a tool changes the keys of exactly the steps that run it, and of the steps that take their
output as input (their input hashes change); the quantization, which runs no target tool, keeps its key."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from edgeq import __version__
from edgeq.targets.base import NO_OPTIONS, Stage, Target

# Bumped when the shape of a key changes, so that a cache written by an older edgeq is recomputed once
# (4: tool versions in the key of check-and-compile and of benchmarks; 5: edgeq's version in every key,
# check and compile cached as two steps).
KEY_FORMAT = 5


def step_key(inputs: Mapping[str, Any], config: Mapping[str, Any], tools: Mapping[str, str]) -> dict[str, Any]:
    """The parts of a step's cache key (``edgeq.cache.Cache.run`` hashes them).

    Args:
        inputs: the content hashes of what the step reads (a model's sha256, ...).
        config: what the step is asked to do (target, settings, the host it measures on).
        tools: the versions of the tools it runs, by name ("absent" for one that is not installed).

    edgeq's own version is in every key: what a step computes is edgeq's code as much as the tools'.
    """
    return {
        "inputs": dict(inputs),
        "config": dict(config),
        "tools": dict(sorted(tools.items())),
        "edgeq": __version__,
        "format": KEY_FORMAT,
    }


def target_tools(
    tgt: Target, stages: Iterable[Stage], options: Mapping[Stage, Mapping[str, Any]] | None = None
) -> dict[str, str]:
    """The versions of the tools ``tgt`` runs in ``stages`` (with each stage's options), by tool name."""
    tools: dict[str, str] = {}
    for stage in stages:
        tools.update(tgt.tool_versions(stage, (options or {}).get(stage, NO_OPTIONS)))
    return tools
