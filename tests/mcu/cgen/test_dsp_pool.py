"""The DSP MAX_POOL_2D (runtime/eq_pool_dsp.c: 4 channels per word with SSUB8 + SEL) chosen per core, and
bit-exact with TFLM's and LiteRT's reference kernels on randomized shapes (every channel count % 4, same and
valid padding, strides, window sizes, zero points, fused activations), on the host with the byte max
emulated and (slow) under QEMU on Cortex-M4, M7 and M33.
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


def pool_model(seed: int) -> bytes:
    """One MAX_POOL_2D with drawn shape (channels % 4 = seed % 4), window, stride, padding, activation."""
    rng = np.random.default_rng(seed)
    h, w, c = int(rng.integers(2, 12)), int(rng.integers(2, 12)), 4 * int(rng.integers(0, 4)) + seed % 4
    c = c if c else 4
    kh, kw, stride = int(rng.integers(1, 4)), int(rng.integers(1, 4)), int(rng.integers(1, 3))
    kh, kw = min(kh, h), min(kw, w)
    same = seed % 2 == 0
    oh = -(-h // stride) if same else (h - kh) // stride + 1
    ow = -(-w // stride) if same else (w - kw) // stride + 1
    g = Graph()
    x = g.tensor((1 + seed % 2, h, w, c), name="input")
    scale, zp = float(rng.uniform(0.01, 0.2)), int(rng.integers(-100, 100))
    _quantize(g, x, [scale], [zp])
    y = g.tensor((1 + seed % 2, oh, ow, c), name="output")
    _quantize(g, y, [scale], [zp])
    g.op(
        "MAX_POOL_2D",
        [x],
        [y],
        padding=0 if same else 1,
        strideH=stride,
        strideW=stride,
        filterHeight=kh,
        filterWidth=kw,
        fusedActivationFunction=int(rng.choice([0, 1, 3])),
    )
    return g.bytes([x], [y])


def _prove(data: bytes, folder, seed: int, cores: tuple[str, ...] = ()) -> dict:
    return prove_dsp(data, "eq_max_pool_dsp", folder, seed, NUM_SAMPLES, cores)


def _assert_exact(run: dict) -> None:
    assert_exact_with_both(run, NUM_SAMPLES)


def test_pool_kernel_chosen_per_core() -> None:
    data = pool_model(3)
    for core in cgen.CORES + (None,):
        project = cgen.generate(data, "pool", core=core)
        model_c = project.files["model.c"]
        if dsp.uses_dsp(core):
            assert "eq_max_pool_dsp(" in model_c and "eq_max_pool(" not in model_c
            assert "void eq_max_pool_dsp(" in project.files["eq_pool_dsp.c"]
        else:
            other = (
                "eq_max_pool_mve(" if core == "cortex-m55" else "eq_max_pool("
            )  # M55: its Helium kernel (test_mve_*.py)
            assert "eq_max_pool_dsp(" not in model_c and other in model_c
            assert project.files["eq_pool_dsp.c"] == emit.unused_stub("eq_pool_dsp.c")


@pytest.mark.parametrize("seed", range(8))
def test_dsp_max_pool_bit_exact_on_host(tmp_path, seed) -> None:
    _assert_exact(_prove(pool_model(seed), tmp_path, seed)["host"])


@pytest.mark.slow
@pytest.mark.skipif(not HAVE_ARM, reason="needs arm-none-eabi-gcc and qemu-system-arm")
def test_dsp_max_pool_bit_exact_on_qemu(tmp_path) -> None:
    for seed in (1, 2, 6):
        cores = ("cortex-m4", "cortex-m7", "cortex-m33") if seed == 1 else ("cortex-m4",)
        proof = _prove(pool_model(seed), tmp_path / str(seed), seed, cores)
        _assert_exact(proof["host"])
        for core in cores:
            _assert_exact(proof["qemu"][core])
            assert proof["qemu"][core]["equals_host_build"]
