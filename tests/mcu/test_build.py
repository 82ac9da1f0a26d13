"""edgeq build --target mcu / ethos-u: the generic pipeline with no target options, on the bundled model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgeq.config import BuildConfig
from edgeq.findings import Basis, Findings, Level


@pytest.mark.slow
def test_build_runs_with_no_target_options(tmp_path):
    from edgeq import api

    cfg = BuildConfig(targets=("mcu", "ethos-u"), method="ptq", out_dir=str(tmp_path / "out"), runs=3, warmup=1)
    r = api.build(cfg)
    assert set(r.targets) == {"mcu", "ethos-u"}

    mcu = json.loads((tmp_path / "out" / "mcu" / "build.json").read_text())
    assert not {"verdict", "info", "warnings"} & set(mcu)
    int8 = next(v for v in mcu["variants"] if v["variant"] == "int8")
    assert int8["check"]["ok"] is True and not int8["compile"]["skipped"]
    assert int8["latency_ms"]["p50"] > 0 and int8["latency_on"].startswith("mcu (host")
    assert int8["latency_kind"] == "measured" and int8["latency_where"].startswith("host")
    found = Findings.from_dict(mcu["findings"])
    assert found.board is not None and found.board.name == "stm32h7a3"
    assert found.placement is None and found.no_accelerator
    # fits from the check: the arena measured by TFLM on the host, flash with an estimated runtime
    fit = found.fit
    assert fit is not None and fit.ok and fit.ram_what == "arena" and 0 < fit.ram.value <= fit.ram_limit_bytes
    assert fit.ram.basis == Basis.MEASURED and fit.flash.basis == Basis.ESTIMATED
    assert fit.flash_limit_bytes == 2 * 1024 * 1024
    # latency: the board estimate (the host's TFLM timing stays in the variant row)
    lat = found.latency
    assert lat is not None and lat.basis == Basis.ESTIMATED and lat.how and lat.value > 0
    levels = {m.text: m.level for m in found.messages}
    assert not any("fits" in text for text, level in levels.items() if level != Level.INFO)
    line = next(t for t, level in levels.items() if t.startswith("generated C (--runtime c)"))
    assert levels[line] == Level.INFO and "TFLM: arena" in line and "flash" in line
    assert mcu["tools"]["tflite-micro"] != "absent"
    # the firmware folder is deployed beside the model, as a copy, and nothing points into .cache
    firmware = tmp_path / "out" / "mcu" / "mnist_cnn_int8_tflm"
    assert "mnist_cnn_int8_tflm/" in mcu["artifacts"] and (firmware / "model_data.cc").is_file()
    assert not any(p.is_symlink() for p in firmware.rglob("*"))
    assert len(mcu["artifacts"]) == len(set(mcu["artifacts"]))
    assert ".cache" not in json.dumps(mcu["variants"][1]["compile"]["output"])
    assert mcu["status"] == "ok"

    ethos = json.loads((tmp_path / "out" / "ethos-u" / "build.json").read_text())
    int8 = next(v for v in ethos["variants"] if v["variant"] == "int8")
    placement = Findings.from_dict(ethos["findings"]).placement
    assert placement is not None and placement.basis == Basis.COMPILED and placement.off == 0 and placement.on > 0
    assert "Ethos-U" in placement.accelerator and ethos["tools"]["ethos-u-vela"] != "absent"
    assert int8["compile"]["output"].endswith("_vela.tflite")
    assert "Ethos-U" in int8["bench_skipped"]  # no NPU here: the host CPU numbers stand in, marked

    # a second build into the same folder reuses it
    api.build(cfg)
    assert Path(tmp_path / "out" / "build.json").exists()
