"""The all-integer accuracy techniques, composed in their one valid order.

CLE rewrites the float Keras model, range selection edits the calibrated model between the
converter's calibration pass and quantization, and bias correction edits the int8 model; so a
build with any subset of them runs: CLE -> calibrate -> choose ranges -> quantize -> AdaRound the
weights -> correct biases (last, so the biases absorb what the final weights leave).
With no technique asked for this is the plain converter's model, byte for byte.

:func:`int8` is the entry point: it turns a :class:`~edgeq.config.TechniqueConfig` into a model.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from edgeq.config import QuantizeConfig, TechniqueConfig
from edgeq.data import Dataset
from edgeq.modelio import LoadedModel
from edgeq.quantize import adaround, bias_correction, cle, ranges


@dataclass(frozen=True)
class Techniques:
    """Which techniques a build uses (``--ranges``, ``--cle``, ``--adaround``, ``--bias-correction``)."""

    ranges: ranges.RangeConfig = field(default_factory=ranges.RangeConfig)
    cle: cle.CleConfig | None = None
    adaround: adaround.AdaRoundConfig | None = None
    bias_correction: bias_correction.BiasCorrectionConfig | None = None

    @property
    def label(self) -> str:
        parts = (["cle"] if self.cle else []) + (
            [self.ranges.label] if self.ranges.method != ranges.RangeMethod.MINMAX else []
        )
        parts += ["adaround"] if self.adaround else []
        parts += ["bias"] if self.bias_correction else []
        return "+".join(parts) or "minmax"

    @property
    def plain(self) -> bool:
        return self.label == "minmax"

    @classmethod
    def of(cls, cfg: TechniqueConfig) -> Techniques:
        """The techniques a config names."""
        return cls(
            ranges=ranges.RangeConfig.parse(cfg.ranges),
            cle=cle.CleConfig() if cfg.cle else None,
            adaround=adaround.AdaRoundConfig(steps=cfg.adaround_steps) if cfg.adaround else None,
            bias_correction=bias_correction.BiasCorrectionConfig() if cfg.bias_correction else None,
        )

    def to_dict(self) -> dict:
        return {
            "ranges": self.ranges.to_dict(),
            "cle": self.cle.to_dict() if self.cle else None,
            "adaround": self.adaround.to_dict() if self.adaround else None,
            "bias_correction": self.bias_correction.to_dict() if self.bias_correction else None,
        }


@dataclass(frozen=True)
class TechniquesResult:
    model: bytes
    label: str
    records: dict  # per technique, its result's to_dict (for the provenance sidecar)
    seconds: dict  # per step
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return {"applied": self.label, **self.records, "seconds": self.seconds, "notes": list(self.notes)}


def build_int8(
    model: LoadedModel,
    calib: Dataset,
    qcfg,
    techniques: Techniques,
    progress: Callable[[dict], None] | None = None,
) -> TechniquesResult:
    """int8 PTQ of ``model`` with ``techniques`` applied.

    Args:
        model: the float model (Keras for CLE).
        calib: representative data: calibrates, and feeds the range search and bias correction.
        qcfg: a :class:`~edgeq.config.QuantizeConfig` for int8 (I/O int8, uint8 or float).
        techniques: what to apply.
        progress: told ``{"event": "technique", "technique": "AdaRound", "number", "total", "op"}`` as
            AdaRound starts each op (the one technique that takes minutes).

    Raises:
        UsageError: not int8; CLE on a model that is not Keras.
        ConversionFailed: the converter failed.
    """
    seconds: dict[str, float] = {}
    records: dict = {}
    notes: list[str] = []
    start = time.perf_counter()
    if techniques.cle is not None:
        eq = cle.equalize(model, techniques.cle)
        model = eq.model
        records["cle"] = eq.to_dict()
        notes += eq.notes
        seconds["cle"] = time.perf_counter() - start
    rr = ranges.quantize_with_ranges(model, calib, qcfg, techniques.ranges)
    data, float_model = rr.model, rr.float_model
    if techniques.ranges.method != ranges.RangeMethod.MINMAX:
        records["ranges"] = rr.to_dict()
        notes += rr.notes
    seconds["quantize"] = rr.seconds
    if techniques.adaround is not None:
        start = time.perf_counter()
        ada = adaround.adaround(data, float_model, calib.x, techniques.adaround, _op_events(progress, "AdaRound"))
        data = ada.model
        records["adaround"] = ada.to_dict()
        notes += ada.notes
        seconds["adaround"] = time.perf_counter() - start
    if techniques.bias_correction is not None:
        start = time.perf_counter()
        bc = bias_correction.correct_bias(data, float_model, calib.x, techniques.bias_correction)
        data = bc.model
        records["bias_correction"] = bc.to_dict()
        notes += bc.notes
        seconds["bias_correction"] = time.perf_counter() - start
    return TechniquesResult(
        model=data,
        label=techniques.label,
        records=records,
        seconds={k: round(v, 3) for k, v in seconds.items()},
        notes=tuple(notes),
    )


def _op_events(progress: Callable[[dict], None] | None, technique: str) -> Callable[[int, int, str], None] | None:
    """A technique's per-op progress as ``technique`` events (None: nobody listens)."""
    if progress is None:
        return None
    return lambda n, total, op: progress(
        {"event": "technique", "technique": technique, "number": n, "total": total, "op": op}
    )


def int8(
    model: LoadedModel, calib: Dataset, qcfg: QuantizeConfig, progress: Callable[[dict], None] | None = None
) -> TechniquesResult:
    """int8 PTQ of ``model`` with the techniques ``qcfg.techniques`` names (``progress``: see :func:`build_int8`).

    Raises:
        UsageError: CLE asked for a model that is not Keras.
        ConversionFailed: the converter failed.
    """
    return build_int8(model, calib, qcfg, Techniques.of(qcfg.techniques), progress)
