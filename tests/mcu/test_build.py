"""edgeq build --target mcu / ethos-u: the generic pipeline with no target options, on the bundled model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgeq.config import BuildConfig


@pytest.mark.slow
def test_build_runs_with_no_target_options(tmp_path):
    from edgeq import api

    cfg = BuildConfig(targets=("mcu", "ethos-u"), method="ptq", out_dir=str(tmp_path / "out"), runs=3, warmup=1)
    r = api.build(cfg)
    assert set(r.targets) == {"mcu", "ethos-u"}

    mcu = json.loads((tmp_path / "out" / "mcu" / "build.json").read_text())
    int8 = next(v for v in mcu["variants"] if v["variant"] == "int8")
    assert int8["check"]["fits"] is True and int8["check"]["arena_bytes"] > 0
    assert int8["check"]["details"]["board"]["name"] == "stm32h7a3"
    assert int8["check"]["details"]["latency_estimate"]["latency_ms"] > 0
    assert not int8["compile"]["skipped"] and int8["compile"]["details"]["resolver_calls"]
    assert int8["latency_ms"]["p50"] > 0 and int8["latency_on"].startswith("mcu (host")

    ethos = json.loads((tmp_path / "out" / "ethos-u" / "build.json").read_text())
    int8 = next(v for v in ethos["variants"] if v["variant"] == "int8")
    assert int8["check"]["ok"] and int8["check"]["counts"]["cpu"] == 0
    assert int8["compile"]["output"].endswith("_vela.tflite")
    assert int8["compile"]["details"]["summary"]["inference_time_ms"] > 0
    assert "Ethos-U" in int8["bench_skipped"]  # no NPU here: the host CPU numbers stand in, marked

    # a second build into the same folder reuses it
    api.build(cfg)
    assert Path(tmp_path / "out" / "build.json").exists()
