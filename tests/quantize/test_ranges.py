"""Range selection: minmax is the plain converter byte for byte; mse helps the bundled CNN."""

from __future__ import annotations

import numpy as np
import pytest

from edgeq.config import QuantizeConfig
from edgeq.errors import UsageError
from edgeq.quantize import ranges
from tests.quantize.conftest import predict_tflite


@pytest.mark.parametrize("text", ["percentile:150", "percentile:0", "percentile:-1", "percentile:abc", "percentile"])
def test_bad_percentile_is_a_usage_error_naming_ranges(text):
    with pytest.raises(UsageError) as err:
        ranges.RangeConfig.parse(text)
    assert "--ranges" in err.value.message and err.value.hint
    assert err.value.exit_code == 2


@pytest.mark.parametrize("text", ["kl", "mse:3", "minmax:1"])
def test_unknown_method_is_a_usage_error(text):
    with pytest.raises(UsageError, match="--ranges|range method"):
        ranges.RangeConfig.parse(text)


def test_parse_round_trips_the_label():
    assert ranges.RangeConfig.parse("percentile:99.99").label == "percentile:99.99"
    assert ranges.RangeConfig.parse(" MSE ").method == ranges.RangeMethod.MSE


def test_mse_range_is_never_worse_than_the_full_range():
    rng = np.random.default_rng(0)
    for values in (rng.laplace(size=20000), np.abs(rng.normal(size=20000)), rng.uniform(-1, 3, 20000)):
        lo, hi = float(values.min()), float(values.max())
        best = ranges.mse_range(values, lo, hi)
        assert ranges.int8_error(values, *best) <= ranges.int8_error(values, lo, hi)


@pytest.mark.slow
def test_minmax_is_the_plain_converter_byte_for_byte(bundled):
    cfg = QuantizeConfig()
    result = ranges.quantize_with_ranges(bundled.model, bundled.calib, cfg, ranges.RangeConfig())
    assert result.model == bundled.plain
    assert result.edited == ()
    # the edit route itself (unpack, repack, quantize) with ranges unchanged is also byte-identical
    calibrated = ranges.calibrate(bundled.model, bundled.calib, cfg)
    from edgeq.quantize import tflite_edit

    repacked = tflite_edit.pack(tflite_edit.unpack(calibrated.model))
    assert ranges.quantize_calibrated(calibrated, repacked, cfg.io_type) == bundled.plain


@pytest.mark.slow
def test_mse_ranges_raise_sqnr_and_keep_the_model_contract(bundled):
    from edgeq import tflite
    from edgeq.bench import fidelity

    result = ranges.quantize_with_ranges(
        bundled.model, bundled.calib, QuantizeConfig(), ranges.RangeConfig.parse("mse")
    )
    plain_db = fidelity.sqnr_db(bundled.reference, predict_tflite(bundled.plain, bundled.eval_x))
    mse_db = fidelity.sqnr_db(bundled.reference, predict_tflite(result.model, bundled.eval_x))
    assert mse_db > plain_db + 1.0, (plain_db, mse_db)  # measured +2.8 dB on 1000 eval samples
    new, old = tflite.read_bytes(result.model), tflite.read_bytes(bundled.plain)
    assert [op.name for op in new.ops] == [op.name for op in old.ops]
    assert not new.float_ops
    # graph input and output keep the calibrated scale; the softmax output scale is the fixed 1/256
    assert new.inputs[0].scales == old.inputs[0].scales and new.outputs[0].scales == old.outputs[0].scales
    assert new.outputs[0].scales == pytest.approx((1 / 256,))
    # MAX_POOL outputs have their input's scale
    pools = [op for op in new.ops if op.name == "MAX_POOL_2D"]
    assert pools and all(new.tensors[op.outputs[0]].scales == new.tensors[op.inputs[0]].scales for op in pools)
    assert any(e.why == "mse" for e in result.edited)
    assert result.to_dict()["method"] == "mse"


@pytest.mark.slow
def test_percentile_100_is_minmax_and_not_int8_is_refused(bundled):
    from edgeq.config import Mode

    result = ranges.quantize_with_ranges(
        bundled.model, bundled.calib, QuantizeConfig(), ranges.RangeConfig.parse("percentile:100")
    )
    assert result.model == bundled.plain
    with pytest.raises(UsageError, match="--mode int8"):
        ranges.calibrate(bundled.model, bundled.calib, QuantizeConfig(mode=Mode.INT16X8))
