"""Per-layer quantization error metrics, pure numpy.

The debugger reports, for each quantized tensor, error statistics of the int8 result against
float computation on the same inputs. ``rmse / scale`` compares the error with the
quantization step: uniform rounding noise alone gives 1/sqrt(12) ~ 0.289, so a layer far
above that loses more than rounding (clipping, a range stretched by outliers).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

HEALTHY_RMSE_OVER_SCALE = 1 / math.sqrt(12)
SUSPECT_RMSE_OVER_SCALE = 0.7  # the threshold the TFLite debugger guide uses to pick layers


@dataclass(frozen=True)
class LayerStat:
    index: int  # graph order among the debugged tensors
    op: str
    tensor_index: int
    tensor_name: str
    num_elements: int
    mean_error: float
    max_abs_error: float
    rmse: float
    scale: float
    zero_point: int
    rmse_over_scale: float
    range_min: float  # the float range the int8 tensor can represent
    range_max: float

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def layer_stat(
    index: int, op: str, tensor_index: int, tensor_name: str, stats: dict, scale: float, zero_point: int
) -> LayerStat:
    rmse = math.sqrt(max(float(stats["mean_squared_error"]), 0.0))
    return LayerStat(
        index=index,
        op=op,
        tensor_index=tensor_index,
        tensor_name=tensor_name,
        num_elements=int(float(stats["num_elements"])),
        mean_error=float(stats["mean_error"]),
        max_abs_error=float(stats["max_abs_error"]),
        rmse=rmse,
        scale=float(scale),
        zero_point=int(zero_point),
        rmse_over_scale=rmse / scale if scale else float("nan"),
        range_min=(-128 - zero_point) * scale,
        range_max=(127 - zero_point) * scale,
    )


def worst(stats: list[LayerStat], n: int = 5) -> list[LayerStat]:
    """The ``n`` layers with the largest rmse/scale (NaN last)."""
    return sorted(stats, key=lambda s: -s.rmse_over_scale if s.rmse_over_scale == s.rmse_over_scale else math.inf)[:n]
