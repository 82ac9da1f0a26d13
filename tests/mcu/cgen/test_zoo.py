"""Whole zoo models through the generated C runtime: bit-exact with BUILTIN_REF on the host, and under QEMU.

The models are the MCU tests' session models (tests/mcu/conftest.py): the bundled MNIST CNN in int8 and
the MLPerf Tiny architectures (random weights, BatchNorm statistics from the calibration batch).
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from edgeq.targets.mcu import cgen
from tests.mcu.conftest import MLPERF_TINY

pytestmark = pytest.mark.slow
ZOO = ("bundled_int8", *MLPERF_TINY)
ARM_TOOLS = ("arm-none-eabi-gcc", "arm-none-eabi-size", "qemu-system-arm")


def _samples(project, n: int, seed: int = 3) -> np.ndarray:
    return np.random.default_rng(seed).integers(-128, 128, (n, project.input_size)).astype(np.int8)


@pytest.mark.skipif(shutil.which("gcc") is None, reason="no gcc on PATH")
@pytest.mark.parametrize("name", ZOO)
def test_zoo_model_bit_exact_on_host(mcu_models, tmp_path, name):
    data = mcu_models[name].read_bytes()
    project = cgen.generate(data, name)
    project.write(tmp_path)
    result = cgen.prove(project, data, _samples(project, 24), tmp_path, cores=())
    assert result["host"]["bit_exact"] == 24, result["host"]
    assert result["not_proven"] == []
    # the plan is data: every activation buffer has a lifetime and either an arena offset or the caller's array
    assert project.plan["arena_bytes"] == project.arena_bytes > 0
    for buf in project.plan["buffers"]:
        assert buf["lifetime_ops"][0] <= buf["lifetime_ops"][1]
        assert buf["offset"] in ("in", "out") or 0 <= buf["offset"] <= project.arena_bytes - buf["size_bytes"]


def _overlaps(a: dict, b: dict) -> bool:
    live = not (a["lifetime_ops"][1] < b["lifetime_ops"][0] or b["lifetime_ops"][1] < a["lifetime_ops"][0])
    return live and a["offset"] < b["offset"] + b["size_bytes"] and b["offset"] < a["offset"] + a["size_bytes"]


@pytest.mark.parametrize("name", ZOO)
def test_memory_plan_never_overlaps_live_buffers(mcu_models, name):
    project = cgen.generate(mcu_models[name].read_bytes(), name)
    arena = [b for b in project.plan["buffers"] if isinstance(b["offset"], int)]
    clashes = [(a["tensors"], b["tensors"]) for i, a in enumerate(arena) for b in arena[i + 1 :] if _overlaps(a, b)]
    assert not clashes


@pytest.mark.skipif(bool([t for t in ARM_TOOLS if shutil.which(t) is None]), reason="no arm-none-eabi-gcc or QEMU")
@pytest.mark.parametrize("name", ("bundled_int8", "ds_cnn"))
def test_zoo_model_bit_exact_under_qemu_cortex_m4(mcu_models, tmp_path, name):
    data = mcu_models[name].read_bytes()
    project = cgen.generate(data, name)
    project.write(tmp_path)
    result = cgen.prove(project, data, _samples(project, 3), tmp_path, cores=("cortex-m4",))
    m4 = result["qemu"]["cortex-m4"]
    assert m4["bit_exact"] == 3 and m4["equals_host_build"], m4
    assert m4["machine"] == "mps2-an386"
    assert m4["instructions_provenance"] == "QEMU instruction count, not board cycles"
    # mps2's 25 MHz SysTick under -icount shift=0: 40 instructions a tick, measured by the program itself
    assert m4["instructions_per_tick"] == pytest.approx(40.0, rel=0.01)
    # a naive -O2 kernel retires several instructions per multiply-accumulate
    assert m4["instructions_per_inference"] > 2 * project.macs
    # measured from the objects: at least the constants the generator wrote, plus the kernels' code
    assert m4["flash_bytes"] > project.constant_bytes
    assert m4["static_ram_bytes"] >= project.arena_bytes
    assert 0 < m4["stack_bytes"] < 4096
