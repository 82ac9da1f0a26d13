"""Never trust a converter's success: read back what it produced.

Checks the input/output dtypes against what was asked and lists every op that still
computes in float. Integer modes with float islands fail unless float ops are allowed.
"""

from __future__ import annotations

from dataclasses import dataclass

from edgeq.config import IOType, QuantizeConfig
from edgeq.errors import ConversionFailed
from edgeq.tflite import ModelInfo

_IO_DTYPE = {IOType.FLOAT: "float32", IOType.INT8: "int8", IOType.UINT8: "uint8", IOType.INT16: "int16"}


@dataclass(frozen=True)
class Verification:
    info: ModelInfo
    float_ops: tuple[str, ...]
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(info: ModelInfo, cfg: QuantizeConfig) -> Verification:
    """Compare the converted model with ``cfg``; integer modes must have no float ops."""
    problems: list[str] = []
    want = _IO_DTYPE[cfg.io_type]
    for kind, tensors in (("input", info.inputs), ("output", info.outputs)):
        for t in tensors:
            if t.dtype != want:
                problems.append(f"{kind} {t.name!r} is {t.dtype}, not the {want} asked for")
    float_ops = tuple(info.float_ops)
    if cfg.mode.needs_data and float_ops:
        names = sorted(set(float_ops))
        problems.append(f"{len(float_ops)} ops still compute in float: {', '.join(names)}")
    return Verification(info=info, float_ops=float_ops, problems=tuple(problems))


def require(v: Verification, cfg: QuantizeConfig) -> None:
    """Raise unless the verification passed (float ops alone pass with allow_float_ops).

    Raises:
        ConversionFailed: I/O dtypes differ from what was asked, or float islands remain.
    """
    float_ok = cfg.allow_float_ops or cfg.selective  # selective quantization asks for float ops
    problems = [p for p in v.problems if not (float_ok and "compute in float" in p)]
    if problems:
        raise ConversionFailed(
            "converted model is not what was asked: " + "; ".join(problems),
            "pass --allow-float-ops to keep float ops"
            if v.float_ops and not cfg.allow_float_ops
            else "check the model's ops with edgeq inspect",
            details={"float_ops": list(v.float_ops), "problems": problems},
        )
