"""The Helium ADD (runtime/eq_add_mve.c) chosen per core, and bit-exact with both references.

Fast: the kernel chosen per core and the stub a project without ADD gets; randomized single-ADD models
(element counts that leave every tail of the 4-lane pass, input, constant and output scales and zero points
drawn, activations, one broadcasting constant that takes the plain fallback) proven on the host.
Slow: the same models under QEMU mps3-an547 with MVE, each sample compared bit for bit with TFLM's reference
kernels and LiteRT's BUILTIN_REF, with a model whose rescales are exact powers of two so that the rounding
shifts meet ties, negative ones included.
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

NUM_SAMPLES = 10
HAVE_ARM = all(shutil.which(t) for t in ("arm-none-eabi-gcc", "qemu-system-arm"))


def add_model(seed: int, broadcast: bool = False) -> bytes:
    """x + c for a drawn shape (every size % 4 over seeds 0..3), scales, zero points and activation."""
    rng = np.random.default_rng(seed)
    shape = (1, int(rng.integers(2, 9)), int(rng.integers(2, 9)), int(rng.integers(1, 8)) * 4 + seed % 4)
    g = Graph()
    x = g.tensor(shape, name="input")
    _quantize(g, x, [float(rng.uniform(0.005, 0.2))], [int(rng.integers(-128, 128))])
    c_shape = (1, 1, 1, shape[3]) if broadcast else shape
    c = g.const(rng.integers(-128, 128, c_shape), "int8")
    _quantize(g, c, [float(rng.uniform(0.005, 0.2))], [int(rng.integers(-128, 128))])
    y = g.tensor(shape, name="output")
    _quantize(g, y, [float(rng.uniform(0.01, 0.3))], [int(rng.integers(-128, 128))])
    g.op("ADD", [x, c] if seed % 2 else [c, x], [y], fusedActivationFunction=int(rng.choice([0, 1, 3])))
    return g.bytes([x], [y])


def tie_model(seed: int) -> bytes:
    """x + c where every rescale is an exact power of two, so the rounding shifts meet ties, negative ones
    too: x's scale is 2^-30 against c's 2^-6 (x's term (x - zp) / 32, a tie at (x - zp) = 16 mod 32), c at
    its zero point (its term 0), the output scale 2^-22 (the sum / 8 in two rounding steps, ties at +-4)."""
    rng = np.random.default_rng(seed)
    g = Graph()
    x = g.tensor((1, 5, 7, 9), name="input")
    _quantize(g, x, [2.0**-30], [int(rng.integers(-20, 20))])
    zp = int(rng.integers(-128, 128))
    c = g.const(np.full((1, 5, 7, 9), zp), "int8")
    _quantize(g, c, [2.0**-6], [zp])
    y = g.tensor((1, 5, 7, 9), name="output")
    _quantize(g, y, [2.0**-22], [int(rng.integers(-100, 100))])
    g.op("ADD", [x, c], [y])
    return g.bytes([x], [y])


def _prove(data: bytes, folder, seed: int, cores: tuple[str, ...] = ()) -> dict:
    project = cgen.generate(data, "add", core="cortex-m55")
    assert "eq_add_mve(" in project.files["model.c"]
    project.write(folder)
    x = np.random.default_rng(seed).integers(-128, 128, (NUM_SAMPLES, project.input_size)).astype(np.int8)
    return cgen.prove(project, data, x, folder, cores=cores, timeout_s=120)


def _assert_exact(run: dict) -> None:
    assert run["bit_exact"] == NUM_SAMPLES, run
    refs = run["references"]
    if tflm.available():
        assert refs[cgen.TFLM_REF]["bit_exact"] == NUM_SAMPLES, refs
    assert refs[cgen.LITERT_REF]["bit_exact"] == NUM_SAMPLES, refs


def test_add_kernel_chosen_per_core() -> None:
    data = add_model(1)
    for core in cgen.CORES + (None,):
        project = cgen.generate(data, "add", core=core)
        if core == "cortex-m55":
            assert "eq_add_mve(" in project.files["model.c"]
            assert project.files["eq_add_mve.c"] == emit.runtime_text("eq_add_mve.c")
        else:
            assert "eq_add_mve(" not in project.files["model.c"]
            assert project.files["eq_add_mve.c"] == emit.unused_stub("eq_add_mve.c")


@pytest.mark.parametrize("seed", range(4))
def test_mve_add_bit_exact_on_host(tmp_path, seed) -> None:
    _assert_exact(_prove(add_model(seed), tmp_path, seed)["host"])


@pytest.mark.slow
@pytest.mark.skipif(not HAVE_ARM, reason="needs arm-none-eabi-gcc and qemu-system-arm")
def test_mve_add_bit_exact_on_qemu_m55(tmp_path) -> None:
    models = [add_model(seed, seed == 5) for seed in (0, 1, 2, 3, 5)] + [tie_model(8)]
    for seed, data in enumerate(models):
        proof = _prove(data, tmp_path / str(seed), seed, ("cortex-m55",))
        _assert_exact(proof["host"])
        run = proof["qemu"]["cortex-m55"]
        _assert_exact(run)
        assert run["equals_host_build"]
