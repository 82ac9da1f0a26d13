"""FULLY_CONNECTED, CONV_2D and DEPTHWISE_CONV_2D of the generated C engine, bit for bit with TFLM's reference
kernels (the tflite-micro interpreter: what runs on the device), on randomized shapes, zero points, scales
(per-tensor and per-channel), biases and fused activations.

The single-op models are written directly with LiteRT's schema (no converter, so any quantization
parameters can be drawn); each is generated, built with the host's gcc and proven by :func:`cgen.prove`,
which runs TFLM's and LiteRT's reference kernels on the same seeded inputs.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from edgeq.errors import BadInput
from edgeq.targets.mcu import cgen, tflm
from tests.coral.tflite_builder import Graph, s

pytestmark = [
    pytest.mark.skipif(shutil.which("gcc") is None, reason="no gcc on PATH"),
    pytest.mark.skipif(not tflm.available(), reason="tflite-micro is not installed"),
]

NUM_SAMPLES = 24


def _quantize(g: Graph, idx: int, scales, zero_points, dim: int = 0) -> None:
    q = s.QuantizationParametersT()
    q.scale = [float(v) for v in scales]
    q.zeroPoint = [int(v) for v in zero_points]
    q.quantizedDimension = dim
    g.tensors[idx].quantization = q


def fc_model(rng: np.random.Generator, per_channel: bool) -> bytes:
    """One FULLY_CONNECTED with drawn depths, batch, zero points, scales, bias (or none) and activation."""
    din, dout, batch = int(rng.integers(1, 97)), int(rng.integers(1, 41)), int(rng.integers(1, 4))
    g = Graph()
    x = g.tensor((batch, din), name="input")
    s_in = float(rng.uniform(0.002, 0.3))
    _quantize(g, x, [s_in], [rng.integers(-128, 128)])
    w = g.const(rng.integers(-127, 128, (dout, din)), "int8")
    ws = rng.uniform(0.0005, 0.05, dout if per_channel else 1)
    _quantize(g, w, ws, [0] * len(ws))
    inputs = [x, w]
    if rng.random() < 0.8:
        b = g.const(rng.integers(-20000, 20000, dout), "int32")
        _quantize(g, b, s_in * ws, [0] * len(ws))
        inputs.append(b)
    else:
        inputs.append(-1)
    y = g.tensor((batch, dout), name="output")
    _quantize(g, y, [rng.uniform(0.005, 0.6)], [rng.integers(-128, 128)])
    g.op("FULLY_CONNECTED", inputs, [y], fusedActivationFunction=int(rng.choice([0, 1, 3])))
    return g.bytes([x], [y])


def conv_model(rng: np.random.Generator, depthwise: bool) -> bytes:
    """One CONV_2D or DEPTHWISE_CONV_2D with drawn shapes, stride, padding, per-channel scales, zero points."""
    h, w_, cin = int(rng.integers(3, 10)), int(rng.integers(3, 10)), int(rng.integers(1, 7))
    kh, kw, stride = int(rng.integers(1, 4)), int(rng.integers(1, 4)), int(rng.integers(1, 3))
    same = bool(rng.integers(0, 2))
    mult = int(rng.integers(1, 3)) if depthwise else 1
    cout = cin * mult if depthwise else int(rng.integers(1, 9))
    oh = -(-h // stride) if same else (h - kh) // stride + 1
    ow = -(-w_ // stride) if same else (w_ - kw) // stride + 1
    g = Graph()
    x = g.tensor((1, h, w_, cin), name="input")
    s_in = float(rng.uniform(0.002, 0.3))
    _quantize(g, x, [s_in], [rng.integers(-128, 128)])
    shape = (1, kh, kw, cout) if depthwise else (cout, kh, kw, cin)
    wt = g.const(rng.integers(-127, 128, shape), "int8")
    ws = rng.uniform(0.0005, 0.05, cout)
    _quantize(g, wt, ws, [0] * cout, dim=3 if depthwise else 0)
    b = g.const(rng.integers(-20000, 20000, cout), "int32")
    _quantize(g, b, s_in * ws, [0] * cout)
    y = g.tensor((1, max(oh, 1), max(ow, 1), cout), name="output")
    _quantize(g, y, [rng.uniform(0.005, 0.6)], [rng.integers(-128, 128)])
    opts = dict(
        padding=0 if same else 1, strideH=stride, strideW=stride, fusedActivationFunction=int(rng.choice([0, 1, 3]))
    )
    if depthwise:
        g.op("DEPTHWISE_CONV_2D", [x, wt, b], [y], depthMultiplier=mult, **opts)
    else:
        g.op("CONV_2D", [x, wt, b], [y], **opts)
    return g.bytes([x], [y])


def _prove(data: bytes, folder, seed: int, cores=()) -> dict:
    project = cgen.generate(data, "test")
    project.write(folder)
    x = np.random.default_rng(seed).integers(-128, 128, (NUM_SAMPLES, project.input_size)).astype(np.int8)
    return cgen.prove(project, data, x, folder, cores=cores)


def _assert_tflm_exact(cmp: dict) -> None:
    tflm_cmp = cmp["references"][cgen.TFLM_REF]
    assert tflm_cmp["bit_exact"] == tflm_cmp["num_samples"] == NUM_SAMPLES, tflm_cmp
    assert cmp["against"] == cgen.TFLM_REF and cmp["bit_exact"] == NUM_SAMPLES


@pytest.mark.parametrize("seed", range(8))
def test_fully_connected_is_bit_exact_with_tflm(tmp_path, seed):
    data = fc_model(np.random.default_rng(1000 + seed), per_channel=seed % 2 == 1)
    proof = _prove(data, tmp_path, seed)
    assert cgen.TFLM_REF in proof["reference"], proof["not_proven"]
    _assert_tflm_exact(proof["host"])
    assert cgen.TFLM_REF in cgen.matched(proof["host"])


@pytest.mark.parametrize("per_channel", [False, True])
def test_where_the_references_differ_the_engine_follows_tflm(tmp_path, per_channel):
    """Seed 4 draws FC layers whose requantization LiteRT (double rescale) and TFLM (Q31 multiplier and
    shift) round differently on some accumulators: the engine matches TFLM on every sample, not LiteRT."""
    data = fc_model(np.random.default_rng(4), per_channel)
    proof = _prove(data, tmp_path, 4)
    _assert_tflm_exact(proof["host"])
    litert = proof["host"]["references"][cgen.LITERT_REF]
    assert litert["bit_exact"] < NUM_SAMPLES and litert["max_abs_diff_steps"] == 1
    assert cgen.matched(proof["host"]) == [cgen.TFLM_REF]
    # the references' own FC output tensors differ on some of the first samples, the engine's follow TFLM
    agree = proof["ops_references_agree"]["FULLY_CONNECTED"]
    assert agree["num_samples"] == cgen.PER_OP_SAMPLES and agree["agree"] < agree["num_samples"]
    assert proof["ops_matched"] == {"FULLY_CONNECTED": [cgen.TFLM_REF]}


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("depthwise", [False, True])
def test_convolutions_are_bit_exact_with_tflm(tmp_path, seed, depthwise):
    data = conv_model(np.random.default_rng(2000 + seed), depthwise)
    proof = _prove(data, tmp_path, seed)
    _assert_tflm_exact(proof["host"])


@pytest.mark.slow
@pytest.mark.skipif(
    any(shutil.which(t) is None for t in ("arm-none-eabi-gcc", "qemu-system-arm")), reason="no Arm toolchain/QEMU"
)
def test_fully_connected_on_cortex_m4_under_qemu_is_bit_exact_with_tflm(tmp_path):
    data = fc_model(np.random.default_rng(4), per_channel=True)
    proof = _prove(data, tmp_path, 4, cores=("cortex-m4",))
    m4 = proof["qemu"]["cortex-m4"]
    _assert_tflm_exact(m4)
    assert m4["equals_host_build"] and cgen.matched(m4) == [cgen.TFLM_REF]


def test_an_asymmetric_per_channel_filter_is_refused():
    """TFLM's per-channel FULLY_CONNECTED ignores filter zero points (it assumes them zero), LiteRT's not."""
    g = Graph()
    x = g.tensor((1, 4), name="input")
    w = g.const(np.ones((5, 4)), "int8")
    _quantize(g, w, [0.01, 0.02, 0.03, 0.04, 0.05], [0, 0, 2, 0, 0])
    y = g.tensor((1, 5), name="output")
    g.op("FULLY_CONNECTED", [x, w, -1], [y])
    with pytest.raises(BadInput, match=r"asymmetric \(non-zero zero point\) per-channel filter"):
        cgen.generate(g.bytes([x], [y]), "test")
