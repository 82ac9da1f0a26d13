"""The DSP FULLY_CONNECTED (runtime/eq_fc_dsp.c) chosen per core, and bit-exact with both references.

Fast: the folded bias, the kernel chosen per core (weights re-laid out, the plain arrays not emitted), and
randomized single-FC models (odd and even depths, every k % 4 tail, batch > 1, an odd and even number of
output rows, per-tensor and per-channel scales, input and output zero points, an asymmetric per-tensor
filter, bias or none, activations) generated for Cortex-M4 and built for the host with the intrinsics
emulated, each sample compared bit for bit with TFLM's reference kernels and LiteRT's BUILTIN_REF by
:func:`cgen.prove`. Slow: the same models under QEMU on Cortex-M4 (mps2-an386), one on M7 and M33.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from edgeq.targets.mcu import cgen, tflm
from edgeq.targets.mcu.cgen import dsp, emit
from tests.coral.tflite_builder import Graph
from tests.mcu.cgen.dsp_shared import HAVE_ARM, prove_dsp
from tests.mcu.cgen.test_tflm_exact import _quantize

pytestmark = [
    pytest.mark.skipif(shutil.which("gcc") is None, reason="no gcc on PATH"),
    pytest.mark.skipif(not tflm.available(), reason="tflite-micro is not installed"),
]

NUM_SAMPLES = 12


def fc_model(seed: int, w_zero_point: int = 0) -> bytes:
    """One FULLY_CONNECTED with drawn depth and rows (every k % 4 and out_depth % 4 over seeds 0..7), batch, scales, zero points, bias, activation."""
    rng = np.random.default_rng(seed)
    din = int(rng.integers(1, 200)) // 4 * 4 + seed % 4 + (4 if seed % 4 == 0 else 0)
    dout = 4 * int(rng.integers(0, 10)) + (seed // 2) % 4  # every out_depth % 4: quads, a pair, a lone row
    dout, batch = dout if dout else 4, 1 + seed % 3
    per_channel = seed % 2 == 1 and w_zero_point == 0
    g = Graph()
    x = g.tensor((batch, din), name="input")
    s_in = float(rng.uniform(0.002, 0.3))
    _quantize(g, x, [s_in], [rng.integers(-128, 128)])
    w = g.const(rng.integers(-127, 128, (dout, din)), "int8")
    ws = rng.uniform(0.0005, 0.05, dout if per_channel else 1)
    _quantize(g, w, ws, [w_zero_point] * len(ws))
    inputs = [x, w]
    if seed % 5 != 2:
        b = g.const(rng.integers(-20000, 20000, dout), "int32")
        _quantize(g, b, s_in * ws, [0] * len(ws))
        inputs.append(b)
    else:
        inputs.append(-1)
    y = g.tensor((batch, dout), name="output")
    _quantize(g, y, [rng.uniform(0.005, 0.6)], [rng.integers(-128, 128)])
    g.op("FULLY_CONNECTED", inputs, [y], fusedActivationFunction=int(rng.choice([0, 1, 3])))
    return g.bytes([x], [y])


def _prove(data: bytes, folder, seed: int, cores: tuple[str, ...] = ()) -> dict:
    return prove_dsp(data, "eq_fully_connected_dsp", folder, seed, NUM_SAMPLES, cores)


def _assert_exact(run: dict) -> None:
    """Bit-exact with TFLM's reference kernels on every sample, and with LiteRT's wherever they agree."""
    refs = run["references"]
    assert refs[cgen.TFLM_REF]["bit_exact"] == NUM_SAMPLES, refs
    assert run["against"] == cgen.TFLM_REF and run["bit_exact"] == NUM_SAMPLES
    assert refs[cgen.LITERT_REF]["max_abs_diff_steps"] <= 1  # the documented requantization difference only


def test_fc_bias_folds_the_input_offset_exactly() -> None:
    rng = np.random.default_rng(0)
    w = rng.integers(-127, 128, (5, 13)).astype(np.int8)
    bias = rng.integers(-(2**31), 2**31, 5).astype(np.int64)
    x = rng.integers(-128, 128, 13).astype(np.int64)
    xo, wo = 77, -3
    folded = dsp.fc_bias(w, bias, xo, wo).astype(np.int64)
    want = ((w.astype(np.int64) + wo) * (x + xo)).sum(axis=1) + bias
    got = w.astype(np.int64) @ x + folded + wo * x.sum()
    assert ((got - want) % 2**32 == 0).all()  # the same int32 accumulator, modulo 2^32 as in C
    assert dsp.fc_bias(w, None, 0, 0).tolist() == [0] * 5


def test_fc_kernel_chosen_per_core() -> None:
    data = fc_model(3)
    for core in cgen.CORES + (None,):
        project = cgen.generate(data, "fc", core=core)
        model_c = project.files["model.c"]
        if core in ("cortex-m4", "cortex-m7", "cortex-m33"):
            assert "eq_fully_connected_dsp(" in model_c and "eq_fully_connected(" not in model_c
            assert "_bias_dsp[" in model_c and "void eq_fully_connected_dsp(" in project.files["eq_fc_dsp.c"]
        else:
            other = (
                "eq_fully_connected_mve(" if core == "cortex-m55" else "eq_fully_connected("
            )  # M55: its Helium kernel (test_mve_*.py)
            assert "eq_fully_connected_dsp(" not in model_c and other in model_c
            assert project.files["eq_fc_dsp.c"] == emit.unused_stub("eq_fc_dsp.c")


def test_a_project_without_fc_leaves_the_fc_kernel_out() -> None:
    g = Graph()
    x = g.tensor((1, 8), name="input")
    _quantize(g, x, [0.1], [3])
    y = g.tensor((1, 8), name="output")
    _quantize(g, y, [0.1], [3])
    g.op("RELU", [x], [y])
    project = cgen.generate(g.bytes([x], [y]), "relu", core="cortex-m4")
    assert project.files["eq_fc_dsp.c"] == emit.unused_stub("eq_fc_dsp.c")


@pytest.mark.parametrize("seed", range(8))
def test_dsp_fc_bit_exact_on_host(tmp_path, seed) -> None:
    proof = _prove(fc_model(seed), tmp_path, seed)
    _assert_exact(proof["host"])


def test_dsp_fc_asymmetric_per_tensor_filter_on_host(tmp_path) -> None:
    proof = _prove(fc_model(6, w_zero_point=5), tmp_path, 6)
    _assert_exact(proof["host"])


@pytest.mark.slow
@pytest.mark.skipif(not HAVE_ARM, reason="needs arm-none-eabi-gcc and qemu-system-arm")
def test_dsp_fc_bit_exact_on_qemu(tmp_path) -> None:
    for seed in (1, 2, 7):
        cores = ("cortex-m4", "cortex-m7", "cortex-m33") if seed == 1 else ("cortex-m4",)
        proof = _prove(fc_model(seed, w_zero_point=0 if seed != 2 else -4), tmp_path / str(seed), seed, cores)
        _assert_exact(proof["host"])
        for core in cores:
            run = proof["qemu"][core]
            _assert_exact(run)
            assert run["equals_host_build"]
