"""What ``quantize`` returns, whichever route made the model (converter, techniques, litert-quantizer)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from edgeq.artifacts import sidecar_path
from edgeq.config import QuantizeConfig


@dataclass(frozen=True)
class QuantizeResult:
    output: str
    sidecar: str
    mode: str
    size_bytes: int
    reference_size_bytes: int | None  # the float .tflite's size; None when not asked for (no extra conversion)
    float_ops: list[str]
    inputs: list[dict]
    outputs: list[dict]
    ops: dict[str, int]
    num_calibration_samples: int
    warnings: list[str] = field(default_factory=list)
    # the all-integer techniques applied (label, per-technique record, notes); None for other modes
    techniques: dict | None = None

    @classmethod
    def of(
        cls,
        out: Path,
        cfg: QuantizeConfig,
        data: bytes,
        info,
        float_ops: list[str],
        reference_size_bytes: int | None,
        num_calibration_samples: int,
        warnings: list[str],
        techniques: dict | None = None,
    ) -> QuantizeResult:
        """The result of verified bytes ``data`` written to ``out`` (``info``: their flatbuffer.ModelInfo)."""
        return cls(
            output=str(out),
            sidecar=str(sidecar_path(out)),
            mode=cfg.mode.value,
            size_bytes=len(data),
            reference_size_bytes=reference_size_bytes,
            float_ops=float_ops,
            inputs=[t.to_dict() for t in info.inputs],
            outputs=[t.to_dict() for t in info.outputs],
            ops=info.op_histogram(),
            num_calibration_samples=num_calibration_samples,
            warnings=warnings,
            techniques=techniques,
        )

    def to_dict(self) -> dict:
        d = dict(self.__dict__)
        d["size_ratio"] = round(self.size_bytes / self.reference_size_bytes, 4) if self.reference_size_bytes else None
        return d
