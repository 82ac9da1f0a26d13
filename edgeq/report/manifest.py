"""Reading a build folder's manifests for the report, checked against the shape the report reads.

``edgeq report RUN_DIR`` renders JSON that may have been edited, truncated or written by another
version. Every field the renderer touches is declared here with its type; a manifest that does
not match is bad input naming the file and the field, never a KeyError from deep in rendering.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeq.config import Method
from edgeq.errors import BadInput
from edgeq.findings import Basis, Level
from edgeq.paths import shown

NUM = (int, float)


@dataclass(frozen=True)
class Opt:
    """A field that may be missing or null; it is then filled with ``default``."""

    shape: Any
    default: Any = None


@dataclass(frozen=True)
class OneOf:
    """A string field that must be one of ``values`` (an enum shared with JSON)."""

    values: tuple[str, ...]


@dataclass(frozen=True)
class MapOf:
    """A JSON object whose keys are names and whose values all have ``shape``."""

    shape: Any


LATENCY_KINDS = OneOf(("measured", "predicted", "estimated"))
BASIS = OneOf(tuple(b.value for b in Basis))
FIGURE = {
    "value": NUM,
    "unit": str,
    "basis": BASIS,
    "where": Opt(str, ""),
    "how": Opt(str, ""),
    "error": Opt(str, ""),
    "via": Opt(str, ""),
    "low": Opt(NUM),
    "high": Opt(NUM),
}
# edgeq.findings.Findings.to_dict(): what the report judges a target by
FINDINGS = {
    "placement": Opt(
        {"accelerator": str, "on": int, "off": int, "basis": BASIS, "first_off": Opt(str, "")},
    ),
    "no_accelerator": Opt(str, ""),
    "board": Opt({"name": str, "core": Opt(str, ""), "title": Opt(str, "")}),
    "fit": Opt(
        {
            "ram": FIGURE,
            "flash": FIGURE,
            "ram_limit_bytes": int,
            "flash_limit_bytes": int,
            "ram_what": Opt(str, "arena"),  # TFLM's arena, or the C engine's static RAM + stack
        }
    ),
    "latency": Opt(FIGURE),
    "instructions": Opt(FIGURE),
    "proof": Opt({"exact": int, "total": int, "reference": str, "where": Opt(str, "")}),
    "memory": Opt(MapOf(FIGURE), {}),
    "messages": Opt([{"level": OneOf(tuple(v.value for v in Level)), "text": str}], []),
}
INTERVAL_FIELDS = {"estimate": NUM, "low": NUM, "high": NUM, "n": int, "confidence": NUM, "method": str}
INTERVALS = {
    what: Opt({"what": OneOf((what,)), **INTERVAL_FIELDS}) for what in ("accuracy_drop_points", "agreement", "sqnr_db")
}
OUTPUT = {
    "name": str,
    "role": OneOf(("class_scores", "regression", "embedding", "boxes", "scores", "yolo_head")),  # edgeq.bench.tasks
    "shape": [int],
    "sqnr_db": NUM,
    "cosine_similarity": NUM,
    "mean_abs_error": NUM,
    "max_abs_error": NUM,
    "agreement": Opt(NUM),
    "degenerate": Opt(str),
    "constant_reference": Opt(NUM),  # the float reference's value where it is constant over the data
}

# A shape is a type (or tuple of types), a dict of field shapes (a JSON object), a one-element
# list holding the shape of every item (a JSON array), or a OneOf (a string enum).
VARIANT = {
    "variant": str,
    "size_bytes": int,
    "accuracy": Opt(NUM),
    "worst_class_drop_points": Opt(NUM),
    "latency_ms": Opt({"p50": Opt(NUM), "p99": Opt(NUM), "mean": Opt(NUM)}),  # benchmark_model prints no percentiles
    "float_ops": Opt((int, str)),
    "latency_on": Opt(str),
    "check": Opt({"ops": Opt([dict], [])}),
    "compile": Opt({"skipped": Opt(bool, False), "reason": Opt(str, ""), "output": Opt(str)}),
    "bench_skipped": Opt(str),
    "latency_kind": Opt(LATENCY_KINDS),
    "intervals": Opt(INTERVALS),
    "outputs": Opt([OUTPUT]),
    "latency_where": Opt(str),
    "latency_via": Opt(str, ""),
}
PLAN_STEP = {
    "name": str,
    "skipped": Opt(str, ""),
    "failed": Opt(str, ""),  # a candidate that raised: its one-line reason (the plan went on)
    "meets": Opt(bool, False),
    "misses": Opt([str], []),
    "accuracy": Opt(NUM),
    "size_bytes": Opt(int),
    "num_float_ops": Opt(int),
    "num_ops": Opt(int),
    "ops_off_accelerator": Opt(int),
}
TARGET = {
    "target": str,
    "description": Opt(str, ""),
    "status": Opt(OneOf(("ok", "failed")), "ok"),
    "error": Opt({"type": Opt(str), "message": Opt(str, ""), "hint": Opt(str, ""), "exit_code": Opt(int)}),
    "artifacts": Opt([str], []),
    "findings": Opt(FINDINGS),  # None: a manifest from an older edgeq, whose verdict says to rebuild
    "variants": [VARIANT],
    "plan": Opt({"chosen": Opt(str), "stopped_because": Opt(str, ""), "steps": Opt([PLAN_STEP], [])}),
    # what the build judged the int8 model by (a default one said as such); None: no evaluation, or not auto
    "budget": Opt({"max_drop": Opt(NUM), "min_sqnr": Opt(NUM), "why": Opt(str, ""), "text": Opt(str, "")}),
}
TOP = {
    "status": Opt(OneOf(("running", "ok", "failed"))),
    "config": {"method": OneOf(tuple(m.value for m in Method)), "max_drop": Opt(NUM)},
    "inputs": {"model": str, "data": Opt(str), "eval_data": Opt(str)},
    "targets": [str],
    "stages": [{"name": str, "cached": bool, "seconds": NUM}],
    "gate_failures": Opt([str], []),
    "failed_targets": Opt([str], []),
    "debug": Opt(
        {
            "dir": str,
            "worst_layers": Opt([{"index": int, "op": str, "tensor_name": str, "rmse_over_scale": NUM}], []),
            "classes_that_lost_most": Opt(
                [
                    {
                        "class": (int, str),
                        "reference_accuracy": Opt(NUM),
                        "quantized_accuracy": Opt(NUM),
                        "drop_points": Opt(NUM),
                    }
                ],
                [],
            ),
        }
    ),
}
TARGET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")  # a folder inside the build: no separators, no ".."

_KINDS = {bool: "true or false", int: "an integer", float: "a number", str: "a string", dict: "an object"}


def _describe(shape: Any) -> str:
    if isinstance(shape, (dict, MapOf)):
        return "an object"
    if isinstance(shape, list):
        return "an array"
    types = shape if isinstance(shape, tuple) else (shape,)
    if set(types) == {int, float}:
        return "a number"
    return " or ".join(_KINDS.get(t, t.__name__) for t in types)


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    return {int: "an integer", float: "a number", str: "a string", list: "an array", dict: "an object"}.get(
        type(value), type(value).__name__
    )


def _is(value: Any, types: type | tuple) -> bool:
    types = types if isinstance(types, tuple) else (types,)
    if isinstance(value, bool):  # JSON true is not a number
        return bool in types
    return isinstance(value, types)


def conform(value: Any, shape: Any, where: str, file: Path) -> Any:
    """``value`` checked against ``shape``, with missing optional fields filled in.

    Raises:
        BadInput: the first field that does not match, named by its path (``variants[0].size_bytes``).
    """
    if isinstance(shape, Opt):
        return shape.default if value is None else conform(value, shape.shape, where, file)
    if isinstance(shape, OneOf):
        if not isinstance(value, str) or value not in shape.values:
            got = json.dumps(value, default=str)
            got = got if len(got) <= 40 else got[:37] + "..."
            raise BadInput(
                f"{shown(file)}: `{where}` must be one of {', '.join(shape.values)}, got {shown(got)}",
                "the manifest was edited or damaged; re-run the same edgeq build to rewrite it",
            )
        return value
    ok = (
        isinstance(value, dict)
        if isinstance(shape, (dict, MapOf))
        else isinstance(value, list)
        if isinstance(shape, list)
        else _is(value, shape)
    )
    if not ok:
        got = json.dumps(value, default=str)
        got = got if len(got) <= 40 else got[:37] + "..."
        field = f"`{where}`" if where else "the document"
        raise BadInput(
            f"{shown(file)}: {field} must be {_describe(shape)}, got {shown(got)} ({_json_kind(value)})",
            "the manifest was edited or damaged; re-run the same edgeq build to rewrite it",
        )
    if isinstance(shape, dict):
        out = dict(value)
        for key, sub in shape.items():
            if key not in value and not isinstance(sub, Opt):
                raise BadInput(
                    f"{shown(file)}: `{where + '.' if where else ''}{key}` is missing",
                    "the manifest was edited or damaged; re-run the same edgeq build to rewrite it",
                )
            out[key] = conform(value.get(key), sub, f"{where}.{key}" if where else key, file)
        return out
    if isinstance(shape, MapOf):
        return {k: conform(v, shape.shape, f"{where}.{k}", file) for k, v in value.items()}
    if isinstance(shape, list):
        return [conform(v, shape[0], f"{where}[{i}]", file) for i, v in enumerate(value)]
    return value


def _check_intervals(target: dict, file: Path) -> None:
    """Each variant's intervals are intervals (an estimate inside its bounds, at least one sample)."""
    from edgeq.bench.stats import Interval

    for i, v in enumerate(target["variants"]):
        for what, d in (v.get("intervals") or {}).items():
            if d is None:
                continue
            try:
                Interval.from_dict(d)
            except ValueError as exc:
                raise BadInput(
                    f"{shown(file)}: `variants[{i}].intervals.{what}` is not an interval ({exc})",
                    "the manifest was edited or damaged; re-run the same edgeq build to rewrite it",
                ) from exc


def _read(file: Path) -> Any:
    try:
        return json.loads(file.read_bytes())
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise BadInput(f"cannot read {shown(file)} ({exc.strerror})", "check the build folder") from exc
    except (ValueError, RecursionError) as exc:
        raise BadInput(f"{shown(file)} is not valid JSON", "re-run the same edgeq build to rewrite it") from exc


def _debug_dir(recorded: Path, run_dir: Path) -> Path:
    """The debugger's folder: recorded relative to where the build ran, which need not be here."""
    if recorded.is_absolute() or recorded.is_dir():
        return recorded
    in_build = run_dir / ".cache" / recorded.name
    return in_build if in_build.is_dir() else recorded


def load(run_dir: Path) -> tuple[dict, list[dict]]:
    """The top manifest and one per target, checked and with optional fields filled in.

    Raises:
        BadInput: not a build folder, an unfinished build, or a manifest that is missing,
            not JSON, or not shaped like an edgeq build manifest (the file and field named).
    """
    top_path = run_dir / "build.json"
    try:
        raw = _read(top_path)
    except FileNotFoundError as exc:
        raise BadInput(f"{shown(run_dir)} has no build.json", "pass the -o folder of an edgeq build") from exc
    if isinstance(raw, dict) and raw.get("status") == "running":
        raise BadInput(
            f"the build in {shown(run_dir)} has not finished", "re-run the same edgeq build: it resumes from the cache"
        )
    top = conform(raw, TOP, "", top_path)
    if top["debug"] is not None:
        top["debug"]["dir"] = str(_debug_dir(Path(top["debug"]["dir"]), run_dir))
    if not top["targets"]:
        raise BadInput(f"{shown(top_path)}: `targets` is empty", "re-run the same edgeq build to rewrite it")
    targets = []
    for i, name in enumerate(top["targets"]):
        if not TARGET_NAME.fullmatch(name):
            raise BadInput(
                f"{shown(top_path)}: `targets[{i}]` is not a target name: {shown(name)!r}",
                "re-run the same edgeq build to rewrite it",
            )
        path = run_dir / name / "build.json"
        try:
            raw_t = _read(path)
            if isinstance(raw_t, dict) and raw_t.get("status") == "failed":
                raw_t.setdefault("variants", [])  # a target that failed may have built nothing
            t = conform(raw_t, TARGET, "", path)
        except FileNotFoundError as exc:
            if name in top["failed_targets"]:  # failed before its folder was written: report it in place
                targets.append(conform({"target": name, "status": "failed", "variants": []}, TARGET, "", path))
                continue
            raise BadInput(f"{shown(path)} is missing", "re-run the same edgeq build to rewrite it") from exc
        _check_intervals(t, path)
        if not t["variants"] and t["status"] != "failed":
            raise BadInput(f"{shown(path)}: `variants` is empty", "re-run the same edgeq build to rewrite it")
        targets.append(t)
    return top, targets
