"""Pure functions: fidelity metrics, config validation, errors, latency statistics."""

from __future__ import annotations

import numpy as np
import pytest

from edgeq.bench import fidelity, timing
from edgeq.config import BenchConfig, IOType, Mode, QuantizeConfig
from edgeq.errors import EXIT_CODES, BadInput, ConversionFailed, QualityGateFailed, Unavailable, UsageError


def test_sqnr_known_value():
    ref = np.ones((10, 4))
    test = ref + 0.1  # noise power 0.01 per element vs signal 1 -> 20 dB
    assert fidelity.sqnr_db(ref, test) == pytest.approx(20.0)
    assert fidelity.sqnr_db(ref, ref) == float("inf")


def test_cosine_and_accuracy():
    ref = np.array([[1.0, 0.0], [0.0, 1.0]])
    assert fidelity.cosine_similarity(ref, ref * 3) == pytest.approx(1.0)
    assert fidelity.cosine_similarity(ref, ref[:, ::-1]) == pytest.approx(0.0)
    assert fidelity.top1_accuracy(ref, np.array([0, 0])) == 0.5


def test_compare_reports_drop_in_points():
    ref = np.eye(4)
    test = np.eye(4)[[0, 1, 2, 0]]
    res = fidelity.compare(ref, test, np.arange(4))
    assert res["reference"]["accuracy"] == 1.0 and res["quantized"]["accuracy"] == 0.75
    assert res["accuracy_drop_points"] == 25.0 and res["agreement"] == 0.75


def test_labels_must_fit_outputs():
    with pytest.raises(BadInput, match="4 outputs"):
        fidelity.check_labels(np.zeros((3, 4)), np.array([0, 1, 7]), "d.npz")


def test_quantize_config_defaults_and_conflicts():
    assert QuantizeConfig().io == IOType.INT8
    assert QuantizeConfig(mode=Mode.FP16).io == IOType.FLOAT
    with pytest.raises(UsageError) as exc:
        QuantizeConfig(mode=Mode.DYNAMIC, io=IOType.INT8)
    assert (
        exc.value.one_line() == "dynamic quantization cannot have int8 I/O; use --mode int8 with --data for integer I/O"
    )
    with pytest.raises(UsageError, match="int16x8 quantization cannot have uint8"):
        QuantizeConfig(mode=Mode.INT16X8, io=IOType.UINT8)
    with pytest.raises(UsageError, match="--batch"):
        QuantizeConfig(batch=0)
    with pytest.raises(UsageError, match="--runs"):
        BenchConfig(num_runs=0)


def test_exit_codes_defined_once():
    assert EXIT_CODES[0] == "ok"
    assert [
        UsageError.exit_code,
        BadInput.exit_code,
        ConversionFailed.exit_code,
        Unavailable.exit_code,
        QualityGateFailed.exit_code,
    ] == [2, 3, 4, 5, 6]


def test_latency_stats_exclude_first_and_warmup():
    calls = []

    def invoke():
        calls.append(1)

    stats = timing.measure(invoke, num_runs=20, warmup_runs=5)
    assert len(calls) == 1 + 5 + 20
    assert stats.num_runs == 20 and stats.warmup_runs == 5
    s = timing.summarize(100.0, [1.0] * 98 + [5.0, 9.0], 3)
    assert s.first_invoke_ms == 100.0 and s.p50 == 1.0 and s.max == 9.0 and s.p99 > s.p90
