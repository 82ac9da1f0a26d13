"""The techniques composed: none is the plain converter; all of them stay all-int8."""

from __future__ import annotations

import pytest

from edgeq import tflite
from edgeq.config import IOType, QuantizeConfig
from edgeq.quantize import bias_correction, cle, ranges
from edgeq.quantize.adaround import AdaRoundConfig
from edgeq.quantize.techniques import Techniques, build_int8


def test_labels():
    assert Techniques().label == "minmax" and Techniques().plain
    full = Techniques(
        ranges.RangeConfig.parse("mse"), cle.CleConfig(), AdaRoundConfig(), bias_correction.BiasCorrectionConfig()
    )
    assert full.label == "cle+mse+adaround+bias"
    assert full.to_dict()["ranges"]["method"] == "mse"


@pytest.mark.slow
def test_no_technique_is_the_plain_converter_and_all_stay_int8(bundled):
    assert build_int8(bundled.model, bundled.calib, QuantizeConfig(), Techniques()).model == bundled.plain
    full = Techniques(
        ranges.RangeConfig.parse("mse"),
        cle.CleConfig(),
        AdaRoundConfig(steps=20),
        bias_correction.BiasCorrectionConfig(),
    )
    result = build_int8(bundled.model, bundled.calib, QuantizeConfig(io=IOType.UINT8), full)
    info = tflite.read_bytes(result.model)
    assert not info.float_ops
    assert info.inputs[0].dtype == "uint8" and info.outputs[0].dtype == "uint8"
    assert set(result.records) == {"cle", "ranges", "adaround", "bias_correction"}
    assert result.records["cle"]["pairs"] and result.records["bias_correction"]["corrected"]
