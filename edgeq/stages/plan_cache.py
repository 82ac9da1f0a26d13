"""The planner's candidates cached across runs: a rerun after a crash or Ctrl-C does not rebuild them.

Each candidate the planner builds (plain int8, a technique, a selective denylist, int16x8, QAT) is kept as
its .tflite bytes in ``$EDGEQ_CACHE_DIR/plan`` (else ``$XDG_CACHE_HOME/edgeq/plan``, else
``~/.cache/edgeq/plan``), keyed (:func:`edgeq.build.keys.step_key`, the one key maker) by everything that
decides those bytes: the model's content hash and how it is loaded, the calibration samples' hash, the
candidate's name, method and denylist, the run's I/O type, AdaRound steps and QAT training data and config,
and the versions of the tools that build it (edgeq's own is in every key). An entry is written atomically
when its candidate finishes (:class:`edgeq.cache.Cache`: a temp folder renamed into place), so a run killed
mid-plan keeps the candidates already built; an entry whose files do not match their recorded sha256 is
rebuilt, never trusted.

Only the build is cached. The evaluation runs again on the cached bytes: it is seconds against the minutes
of AdaRound or QAT, and it is then always against this run's evaluation data, budget and target, which are
not in the key. Skips (a technique that does not apply) and failures are not cached: they cost nothing, or
should be retried.

A new candidate whose bytes depend on anything beyond these (the target's profile, the evaluation data)
must put it in its step's name or in :func:`open_cache`'s config, or a rerun would reuse the wrong bytes.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgeq.artifacts import sha256_bytes

if TYPE_CHECKING:
    from edgeq.cache import Cache
    from edgeq.config import DataConfig, IOType, LoadConfig, TrainConfig
    from edgeq.data import Dataset
    from edgeq.modelio import LoadedModel
    from edgeq.quantize.planner import Step

STAGE = "plan-candidate"
MODEL_FILE = "candidate.tflite"


def cache_home() -> Path:
    """Where planner candidates are kept: ``$EDGEQ_CACHE_DIR/plan``, else ``$XDG_CACHE_HOME/edgeq/plan``,
    else ``~/.cache/edgeq/plan``."""
    if os.environ.get("EDGEQ_CACHE_DIR"):
        return Path(os.environ["EDGEQ_CACHE_DIR"]) / "plan"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "edgeq" / "plan"


def data_hash(x: Any) -> str:
    """sha256 of an array's dtype, shape and values: the samples a candidate was calibrated on, whatever
    file, selection or preprocessing they came from."""
    import numpy as np

    arr = np.ascontiguousarray(x)
    digest = hashlib.sha256(f"{arr.dtype.str}{arr.shape}".encode())
    digest.update(arr.tobytes())
    return digest.hexdigest()


def planner_tools() -> dict[str, str]:
    """The versions of what builds a candidate: the converter, Keras, TF-MOT (QAT), onnx2tf (ONNX input)."""
    from edgeq.build.recipe import converter_tools, package

    return converter_tools() | {
        "tf-keras": package("tf-keras", "tf_keras"),
        "tensorflow-model-optimization": package("tensorflow-model-optimization"),
        "onnx2tf": package("onnx2tf"),
    }


class _Skip(Exception):  # noqa: N818 - not an error: a builder's reason it does not apply, carried out of the cache
    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


class PlanCache:
    """Candidates by key, for :attr:`edgeq.quantize.planner.Planner.cache`.

    ``holder`` is the plan's record of what was built (``holder["techniques"][name]``, ``holder["qat"]``):
    kept with the bytes and put back on a hit, so the chosen plan's sidecar is the same from the cache."""

    def __init__(self, cache: Cache, inputs: dict[str, str], config: dict[str, Any], holder: dict) -> None:
        self.cache = cache
        self.inputs = inputs
        self.config = config
        self.holder = holder

    @property
    def notes(self) -> list[str]:
        """Damaged entries found (and rebuilt), for people."""
        return self.cache.notes

    def key_parts(self, step: Step) -> dict[str, Any]:
        from edgeq.build.keys import step_key

        config = self.config | {
            "candidate": step.name,
            "method": step.method,
            "denylist": list(step.denylist),
            "interface": step.interface,  # a candidate built on the split model (its head cut into parts)
        }
        return step_key(self.inputs, config, planner_tools())

    def holds(self, step: Step) -> bool:
        """Whether the cache holds ``step``'s candidate whole (a build would read it, not make it)."""
        from edgeq.cache import damage, key_of

        if not self.cache.enabled:
            return False
        folder = self.cache.root / f"{STAGE}-{key_of({'stage': STAGE, **self.key_parts(step)})}"
        return folder.exists() and damage(folder)[0] is not None

    def build(self, step: Step, build: Callable[[], bytes | str]) -> tuple[bytes | str, bool]:
        """The candidate's bytes (or a builder's reason to skip it) and whether they came from the cache."""

        built: list[bytes] = []

        def fn(folder: Path) -> dict[str, Any]:
            data = build()
            if isinstance(data, str):
                raise _Skip(data)
            built.append(data)
            (folder / MODEL_FILE).write_bytes(data)
            record: dict[str, Any] = {"file": MODEL_FILE, "sha256": sha256_bytes(data), "size_bytes": len(data)}
            if step.name in self.holder.get("techniques", {}):
                record["techniques"] = self.holder["techniques"][step.name]
            if step.method == "qat" and "qat" in self.holder:
                record["qat"] = self.holder["qat"]
            return record

        try:
            result, folder = self.cache.run(STAGE, self.key_parts(step), fn, label=step.name)
        except _Skip as skip:
            return skip.why, False
        except OSError as exc:  # the cache could not be written (a full disk): the candidate still counts
            if not built:
                raise
            self.cache.notes.append(f"candidate {step.name!r} not cached: {exc.strerror or exc}")
            return built[0], False
        cached = self.cache.records[-1].cached
        if cached:
            try:
                data = (folder / MODEL_FILE).read_bytes()
            except OSError:
                data = b""  # gone since the check: rebuilt below
            if sha256_bytes(data) != result.get("sha256"):  # changed since the check: never trusted
                self.cache.notes.append(f"cache entry {folder.name} changed while read; rebuilt")
                self.cache.enabled = False
                try:
                    return self.build(step, build)
                finally:
                    self.cache.enabled = True
            self._restore(step, result)
            return data, True
        return built[0], False

    def _restore(self, step: Step, record: dict[str, Any]) -> None:
        if "techniques" in record:
            self.holder.setdefault("techniques", {})[step.name] = record["techniques"]
        if "qat" in record:
            self.holder["qat"] = record["qat"]


def open_cache(
    model: LoadedModel,
    calib: Dataset,
    holder: dict,
    io: IOType,
    adaround_steps: int,
    load_cfg: LoadConfig,
    train_data: DataConfig | None = None,
    train_cfg: TrainConfig | None = None,
    root: Path | None = None,
) -> PlanCache | None:
    """The candidate cache of one plan (:func:`edgeq.stages.plan.plan`'s arguments that change what its
    candidates are), or None when the model has no content hash to key it by or the cache folder cannot be
    made: the plan then builds every candidate, as without a cache.

    Args:
        holder: the plan's record of what was built (kept with the bytes, put back on a hit).
        io, adaround_steps, load_cfg: the run's I/O type, AdaRound steps and how the model is loaded.
        train_data, train_cfg: the QAT candidate's training data (its file hashed into the key) and config;
            None without QAT, or for the plan's default config.
    """
    from edgeq.artifacts import sha256_file
    from edgeq.cache import Cache

    if not model.sha256:
        return None
    inputs = {"model": model.sha256, "calibration": data_hash(calib.x)}
    config: dict[str, Any] = {"io": io.value, "adaround_steps": adaround_steps, "load": load_cfg.to_dict()}
    if train_data is not None:
        inputs["train_data"] = sha256_file(train_data.path)
        config |= {"train_data": train_data.to_dict(), "train": train_cfg.to_dict() if train_cfg else None}
    try:
        root = root or cache_home()
        root.mkdir(parents=True, exist_ok=True)
        cache = Cache(root)
    except OSError:
        return None
    return PlanCache(cache, inputs, config, holder)
