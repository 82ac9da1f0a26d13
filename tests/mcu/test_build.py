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
    assert int8["latency_kind"] == "measured" and int8["latency_where"].startswith("host")
    # the verdict: fits from the check (flash counts an estimated runtime), latency the board estimate
    fits = mcu["verdict"]["fits"]
    assert fits["ok"] and fits["basis"] == "estimated" and 0 < fits["ram_bytes"] <= fits["ram_limit"]
    assert fits["flash_bytes"] == int8["check"]["flash_bytes"] and fits["flash_limit"] == 2 * 1024 * 1024
    lat = mcu["verdict"]["latency_ms"]
    assert lat["kind"] == "estimated" and lat["where"] == "stm32h7a3" and "calibrated" in lat["note"]
    assert lat["value"] == int8["check"]["details"]["latency_estimate"]["latency_ms"]
    # the firmware folder is deployed beside the model, as a copy, and nothing points into .cache
    firmware = tmp_path / "out" / "mcu" / "mnist_cnn_int8_tflm"
    assert "mnist_cnn_int8_tflm/" in mcu["artifacts"] and (firmware / "model_data.cc").is_file()
    assert not any(p.is_symlink() for p in firmware.rglob("*"))
    assert len(mcu["artifacts"]) == len(set(mcu["artifacts"]))
    assert ".cache" not in json.dumps(mcu["variants"][1]["compile"]["output"])
    assert mcu["status"] == "ok" and not any("fits" in w for w in mcu["warnings"])
    # the generated C engine's RAM and flash beside TFLM's (sized, not proven: no QEMU in a build)
    c = int8["compile"]["details"]["c_runtime"]
    line = next(m for m in mcu["info"] if m.startswith("generated C (--runtime c)"))
    assert c["available"] and c["mcpu"] == "cortex-m7" and c["flash_bytes"] > 0 and c["stack_bytes"] is None
    assert c["arena_bytes"] <= c["static_ram_bytes"] < int8["check"]["arena_bytes"]
    assert "TFLM: arena" in line and "flash" in line

    ethos = json.loads((tmp_path / "out" / "ethos-u" / "build.json").read_text())
    int8 = next(v for v in ethos["variants"] if v["variant"] == "int8")
    assert int8["check"]["ok"] and int8["check"]["counts"]["cpu"] == 0
    assert int8["compile"]["output"].endswith("_vela.tflite")
    assert int8["compile"]["details"]["summary"]["inference_time_ms"] > 0
    assert "Ethos-U" in int8["bench_skipped"]  # no NPU here: the host CPU numbers stand in, marked

    # a second build into the same folder reuses it
    api.build(cfg)
    assert Path(tmp_path / "out" / "build.json").exists()
