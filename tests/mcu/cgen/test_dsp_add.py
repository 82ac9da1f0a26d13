"""The DSP ADD (runtime/eq_add_dsp.c: without broadcast one flat loop with the requantization of eq_dsp.h;
with broadcast the plain eq_add) chosen per core, and bit-exact with TFLM's and LiteRT's reference kernels on
seeded shapes, scales, zero points and fused activations, same-shape and broadcast operands, on the host
with the intrinsics emulated and (slow) under QEMU on Cortex-M4, M7 and M33.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from edgeq.targets.mcu import cgen, tflm
from edgeq.targets.mcu.cgen import dsp, emit
from tests.coral.tflite_builder import Graph
from tests.mcu.cgen.dsp_shared import HAVE_ARM, assert_exact_with_both, prove_dsp
from tests.mcu.cgen.test_tflm_exact import _quantize

pytestmark = [
    pytest.mark.skipif(shutil.which("gcc") is None, reason="no gcc on PATH"),
    pytest.mark.skipif(not tflm.available(), reason="tflite-micro is not installed"),
]

NUM_SAMPLES = 8


def add_model(seed: int) -> bytes:
    """One ADD of the input and a constant: the same shape (even seeds) or one value per channel (odd)."""
    rng = np.random.default_rng(seed)
    h, w, c = int(rng.integers(1, 9)), int(rng.integers(1, 9)), int(rng.integers(1, 13))
    g = Graph()
    x = g.tensor((1, h, w, c), name="input")
    _quantize(g, x, [float(rng.uniform(0.005, 0.3))], [int(rng.integers(-128, 128))])
    shape = (1, h, w, c) if seed % 2 == 0 else (c,)
    k = g.tensor(shape, data=rng.integers(-128, 128, shape).astype(np.int8))
    _quantize(g, k, [float(rng.uniform(0.005, 0.3))], [int(rng.integers(-128, 128))])
    y = g.tensor((1, h, w, c), name="output")
    _quantize(g, y, [float(rng.uniform(0.01, 0.5))], [int(rng.integers(-128, 128))])
    g.op("ADD", [x, k], [y], fusedActivationFunction=int(rng.choice([0, 1, 3])))
    return g.bytes([x], [y])


def _prove(data: bytes, folder, seed: int, cores: tuple[str, ...] = ()) -> dict:
    return prove_dsp(data, "eq_add_dsp", folder, seed, NUM_SAMPLES, cores)


def _assert_exact(run: dict) -> None:
    assert_exact_with_both(run, NUM_SAMPLES)


def test_add_kernel_chosen_per_core() -> None:
    data = add_model(2)
    for core in cgen.CORES + (None,):
        project = cgen.generate(data, "add", core=core)
        model_c = project.files["model.c"]
        if dsp.uses_dsp(core):
            assert "eq_add_dsp(" in model_c and "eq_add(" not in model_c
            assert "void eq_add_dsp(" in project.files["eq_add_dsp.c"]
        else:
            other = "eq_add_mve(" if core == "cortex-m55" else "eq_add("  # M55: its Helium kernel (test_mve_*.py)
            assert "eq_add_dsp(" not in model_c and other in model_c
            assert project.files["eq_add_dsp.c"] == emit.unused_stub("eq_add_dsp.c")


@pytest.mark.parametrize("seed", range(8))
def test_dsp_add_bit_exact_on_host(tmp_path, seed) -> None:
    _assert_exact(_prove(add_model(seed), tmp_path, seed)["host"])


@pytest.mark.slow
@pytest.mark.skipif(not HAVE_ARM, reason="needs arm-none-eabi-gcc and qemu-system-arm")
def test_dsp_add_bit_exact_on_qemu(tmp_path) -> None:
    for seed in (2, 3, 4):
        cores = ("cortex-m4", "cortex-m7", "cortex-m33") if seed == 2 else ("cortex-m4",)
        proof = _prove(add_model(seed), tmp_path / str(seed), seed, cores)
        _assert_exact(proof["host"])
        for core in cores:
            _assert_exact(proof["qemu"][core])
            assert proof["qemu"][core]["equals_host_build"]
