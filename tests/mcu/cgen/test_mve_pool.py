"""The Helium MAX_POOL_2D and AVERAGE_POOL_2D (runtime/eq_pool_mve.c) chosen per core, and bit-exact with
TFLM's and LiteRT's reference kernels on randomized shapes (channel counts leaving tails of the 16- and
4-channel vectors, same and valid padding, strides, window sizes, batch 2, zero points, fused activations,
a global average pool): the kernel chosen per core and the stub otherwise (fast), and under QEMU mps3-an547
with MVE (slow; the host build runs the plain kernels).
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from edgeq.targets.mcu import cgen, tflm
from edgeq.targets.mcu.cgen import emit
from tests.coral.tflite_builder import Graph
from tests.mcu.cgen.test_tflm_exact import _quantize

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="no gcc on PATH")

NUM_SAMPLES = 8
HAVE_ARM = all(shutil.which(t) for t in ("arm-none-eabi-gcc", "qemu-system-arm"))


def pool_model(seed: int, kind: str, global_pool: bool = False) -> bytes:
    """One pooling op with drawn shape, window, stride, padding, activation; or a global one (window = image)."""
    rng = np.random.default_rng(seed)
    h, w, c = int(rng.integers(2, 12)), int(rng.integers(2, 12)), 16 * int(rng.integers(0, 3)) + 1 + 3 * seed
    kh, kw, stride = int(rng.integers(1, 4)), int(rng.integers(1, 4)), int(rng.integers(1, 3))
    kh, kw = min(kh, h), min(kw, w)
    same = seed % 2 == 0 and not global_pool
    if global_pool:
        kh, kw, stride = h, w, 1
    oh = -(-h // stride) if same else (h - kh) // stride + 1
    ow = -(-w // stride) if same else (w - kw) // stride + 1
    g = Graph()
    x = g.tensor((1 + seed % 2, h, w, c), name="input")
    scale, zp = float(rng.uniform(0.01, 0.2)), int(rng.integers(-100, 100))
    _quantize(g, x, [scale], [zp])
    y = g.tensor((1 + seed % 2, oh, ow, c), name="output")
    _quantize(g, y, [scale], [zp])
    g.op(
        kind,
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


def _prove(data: bytes, folder, seed: int, kernel: str) -> dict:
    project = cgen.generate(data, "pool", core="cortex-m55")
    assert f"{kernel}(" in project.files["model.c"]
    project.write(folder)
    x = np.random.default_rng(seed).integers(-128, 128, (NUM_SAMPLES, project.input_size)).astype(np.int8)
    return cgen.prove(project, data, x, folder, cores=("cortex-m55",), timeout_s=120)


def _assert_exact(run: dict) -> None:
    assert run["bit_exact"] == NUM_SAMPLES, run
    refs = run["references"]
    if tflm.available():
        assert refs[cgen.TFLM_REF]["bit_exact"] == NUM_SAMPLES, refs
    assert refs[cgen.LITERT_REF]["bit_exact"] == NUM_SAMPLES, refs


@pytest.mark.parametrize("kind", ["MAX_POOL_2D", "AVERAGE_POOL_2D"])
def test_pool_kernel_chosen_per_core(kind: str) -> None:
    data = pool_model(3, kind)
    mve_kernel = {"MAX_POOL_2D": "eq_max_pool_mve", "AVERAGE_POOL_2D": "eq_avg_pool_mve"}[kind]
    for core in cgen.CORES + (None,):
        project = cgen.generate(data, "pool", core=core)
        if core == "cortex-m55":
            assert f"{mve_kernel}(" in project.files["model.c"]
            assert project.files["eq_pool_mve.c"] == emit.runtime_text("eq_pool_mve.c")
        else:
            assert "_mve(" not in project.files["model.c"]
            assert project.files["eq_pool_mve.c"] == emit.unused_stub("eq_pool_mve.c")


@pytest.mark.slow
@pytest.mark.skipif(not HAVE_ARM, reason="needs arm-none-eabi-gcc and qemu-system-arm")
@pytest.mark.parametrize("kind", ["MAX_POOL_2D", "AVERAGE_POOL_2D"])
def test_mve_pool_bit_exact_on_qemu_m55(tmp_path, kind: str) -> None:
    kernel = {"MAX_POOL_2D": "eq_max_pool_mve", "AVERAGE_POOL_2D": "eq_avg_pool_mve"}[kind]
    cases = [(seed, False) for seed in range(4)] + [(5, True)]
    for seed, global_pool in cases:
        proof = _prove(pool_model(seed, kind, global_pool), tmp_path / str(seed), seed, kernel)
        _assert_exact(proof["host"])
        run = proof["qemu"]["cortex-m55"]
        _assert_exact(run)
        assert run["equals_host_build"]
