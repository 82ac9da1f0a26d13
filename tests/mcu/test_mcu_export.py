"""edgeq compile --target mcu: firmware files that compile, hold the model's bytes, and register exactly its ops."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from edgeq.errors import OutputExists, UnsupportedOp
from edgeq.targets import registry
from edgeq.targets.mcu import export, ops
from edgeq.tflite import read_file
from tests.mcu.conftest import MLPERF_TINY

STUBS = Path(__file__).resolve().parent / "tflm_stubs"

DUMP = r"""
#include <cstdint>
#include <cstdio>
#include "model_data.h"
int main(int argc, char** argv) {
  if (reinterpret_cast<std::uintptr_t>(g_model_data) % 16 != 0) return 2;
  std::FILE* f = std::fopen(argv[1], "wb");
  std::fwrite(g_model_data, 1, g_model_data_len, f);
  std::fclose(f);
  std::printf("%zu\n", kTensorArenaSize);
  return 0;
}
"""


@pytest.fixture(scope="module")
def mcu():
    return registry.get("mcu")


@pytest.fixture(scope="module")
def exports(mcu, mcu_models, tmp_path_factory):
    out = tmp_path_factory.mktemp("mcu_export")
    return out, {name: mcu.compile([str(mcu_models[name])], str(out)) for name in (*MLPERF_TINY, "bundled_int8")}


@pytest.mark.parametrize("name", [*MLPERF_TINY, "bundled_int8"])
def test_export_writes_the_firmware_files(exports, mcu_models, name):
    out, results = exports
    r = results[name]
    folder = out / f"{mcu_models[name].stem}_tflm"
    assert Path(r.details["export_dir"]) == folder and not r.skipped
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [*export.FILES, export.MANIFEST, f"{mcu_models[name].stem}.tflite"]
    )
    assert Path(r.output).read_bytes() == mcu_models[name].read_bytes()
    manifest = json.loads((folder / export.MANIFEST).read_text())
    assert manifest["arena_bytes"] == r.details["arena_bytes"] == r.details["check"]["arena_bytes"]
    assert manifest["tensor_arena_size_constant"] == ops.arena_with_margin(manifest["arena_bytes"])
    assert manifest["model"]["sha256"] and manifest["files"]["model_data.cc"]["sha256"]
    header = (folder / "model_data.h").read_text()
    assert f"kTensorArenaSize = {manifest['tensor_arena_size_constant']};" in header


@pytest.mark.parametrize("name", [*MLPERF_TINY, "bundled_int8"])
def test_resolver_registers_exactly_the_ops_used(exports, mcu_models, name):
    out, _ = exports
    text = (out / f"{mcu_models[name].stem}_tflm" / "op_resolver.h").read_text()
    used = list(dict.fromkeys(op.name for op in read_file(mcu_models[name]).ops))
    calls = re.findall(r"resolver\.(Add\w+)\(\)", text)
    assert calls == [ops.resolver_method(op) for op in used]
    assert len(set(calls)) == len(calls)
    assert f"kNumModelOps = {len(used)};" in text and "MicroMutableOpResolver<kNumModelOps>" in text


def test_model_data_compiles_and_holds_the_model_bytes(exports, mcu_models, gxx, tmp_path):
    """Compile and link model_data.cc with the system g++: the array is the .tflite, 16-byte aligned."""
    out, results = exports
    folder = out / f"{mcu_models['bundled_int8'].stem}_tflm"
    (tmp_path / "dump.cc").write_text(DUMP)
    exe = tmp_path / "dump"
    subprocess.run(
        [
            gxx,
            "-std=c++17",
            "-Wall",
            "-Werror",
            "-I",
            str(folder),
            str(folder / "model_data.cc"),
            str(tmp_path / "dump.cc"),
            "-o",
            str(exe),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    run = subprocess.run([str(exe), str(tmp_path / "bytes.bin")], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, "g_model_data is not 16-byte aligned" if run.returncode == 2 else run.stderr
    assert (tmp_path / "bytes.bin").read_bytes() == mcu_models["bundled_int8"].read_bytes()
    assert int(run.stdout) == results["bundled_int8"].details["tensor_arena_size_constant"]


@pytest.mark.parametrize("name", [*MLPERF_TINY, "bundled_int8"])
def test_main_and_resolver_compile_against_stub_headers(exports, mcu_models, gxx, name):
    """Syntax and types of main.cc + op_resolver.h against STUBS of the TFLM headers (tests/mcu/tflm_stubs)."""
    out, _ = exports
    folder = out / f"{mcu_models[name].stem}_tflm"
    proc = subprocess.run(
        [
            gxx,
            "-std=c++17",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-fsyntax-only",
            "-I",
            str(STUBS),
            "-I",
            str(folder),
            str(folder / "main.cc"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr


def test_model_data_cc_syntax_for_every_model(exports, mcu_models, gxx):
    out, _ = exports
    for name in MLPERF_TINY:
        folder = out / f"{mcu_models[name].stem}_tflm"
        subprocess.run([gxx, "-std=c++17", "-fsyntax-only", str(folder / "model_data.cc")], check=True, timeout=300)


def test_refuses_to_overwrite_without_force(mcu, mcu_models, tmp_path):
    model = str(mcu_models["bundled_int8"])
    mcu.compile([model], str(tmp_path), {"overwrite": False})
    with pytest.raises(OutputExists) as e:
        mcu.compile([model], str(tmp_path), {"overwrite": False})
    assert "--force" in e.value.hint
    mcu.compile([model], str(tmp_path))  # a pipeline's call replaces edgeq's own earlier export
    mcu.compile([model], str(tmp_path), {"overwrite": True})
    # staging folders are gone: only the export itself
    assert [p.name for p in tmp_path.iterdir()] == [f"{mcu_models['bundled_int8'].stem}_tflm"]


def test_does_not_replace_a_foreign_folder_unless_forced(mcu, mcu_models, tmp_path):
    model = mcu_models["bundled_int8"]
    foreign = tmp_path / f"{model.stem}_tflm"
    foreign.mkdir()
    (foreign / "mine.c").write_text("int x;\n")
    with pytest.raises(OutputExists):
        mcu.compile([str(model)], str(tmp_path))
    assert (foreign / "mine.c").exists()
    mcu.compile([str(model)], str(tmp_path), {"overwrite": True})
    assert not (foreign / "mine.c").exists() and (foreign / "model_data.cc").exists()


def test_missing_op_fails_before_anything_is_written(mcu, mcu_models, tmp_path):
    with pytest.raises(UnsupportedOp, match="TILE"):
        mcu.compile([str(mcu_models["tile"])], str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_compile_on_a_named_board(mcu, mcu_models, tmp_path):
    r = mcu.compile([str(mcu_models["ds_cnn"])], str(tmp_path), {"board": "nrf52840"})
    assert r.details["board"] == "nrf52840"
    assert json.loads((Path(r.details["export_dir"]) / export.MANIFEST).read_text())["board"] == "nrf52840"


def test_relative_model_and_output_paths(mcu, mcu_models, tmp_path, monkeypatch):
    import shutil

    shutil.copy(mcu_models["bundled_int8"], tmp_path / "m.tflite")
    monkeypatch.chdir(tmp_path)
    r = mcu.compile(["m.tflite"], "out")
    assert (tmp_path / "out" / "m_tflm" / "model_data.cc").exists() and Path(r.output).exists()


def test_resolver_covers_ops_in_every_subgraph(mcu, mcu_models, tmp_path):
    """A WHILE loop's body is a second subgraph: its ops must be registered too."""
    assert set(read_file(mcu_models["while_loop"]).op_histogram()) == {"WHILE"}  # the main subgraph alone
    r = mcu.compile([str(mcu_models["while_loop"])], str(tmp_path))
    assert r.details["resolver_calls"][0] == "AddWhile"
    assert {"AddLess", "AddAdd", "AddMul"} <= set(r.details["resolver_calls"])
    assert r.details["check"]["details"]["parity"]["bit_exact"]
