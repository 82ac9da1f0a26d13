"""The DSP DEPTHWISE_CONV_2D (runtime/eq_dw_dsp.c) chosen per core, and bit-exact with TFLM's and LiteRT's
reference kernels.

Fast: the kernel each core's project calls (DSP on M4, M7, M33; plain on M55 and core-agnostic projects).
Slow: two seeded chains of depthwise layers (depth multiplier 1 and 2, 3x3 / 5x3 / 1x2 windows, strides 1
and 2, same and valid padding, dilation 2, channel counts that leave every tail of the 4-channel pass, a
dilated window as large as its image so nearly every pixel is on the border, per-channel filter scales and input zero
points from their own calibration ranges), generated for Cortex-M4 and run on the host with the intrinsics
emulated and under QEMU (mps2-an386; the first chain also on M7 and M33), each sample compared bit for bit with both references.
"""

from __future__ import annotations

import numpy as np
import pytest

from edgeq.targets.mcu import cgen
from edgeq.targets.mcu.cgen import dsp, emit, graph
from tests.mcu.cgen.dsp_shared import HAVE_ARM, assert_exact_with_both, samples, seeded_models

NUM_SAMPLES = 8
SPECS = (  # (kernel, stride, padding, dilation, depth multiplier); 22..26 pixels square shrink to 1x1
    ((3, 3), 1, "same", 1, 1),
    ((3, 3), 2, "valid", 1, 1),
    ((3, 3), 2, "same", 1, 2),
    ((3, 3), 1, "same", 2, 1),  # the dilated window spans the 5x5 image: one interior pixel, the rest border
    ((5, 3), 1, "valid", 1, 1),
    ((1, 2), 2, "valid", 1, 1),
)


def test_retarget_takes_the_dsp_depthwise_on_dsp_cores_only() -> None:
    from edgeq.targets.mcu.cgen.lower import Lowered

    low = Lowered(None, "eq_dwconv2d(&op3_p, {t1}, w2, b4, {t5});", (), "params", notes={"macs": 9})  # type: ignore[arg-type]
    for core in cgen.CORES + (None,):
        (got,) = dsp.retarget([low], core)
        if core in ("cortex-m4", "cortex-m7", "cortex-m33"):
            assert got.statement == "eq_dwconv2d_dsp(&op3_p, {t1}, w2, b4, {t5});"
            assert got.notes == {"macs": 9, "kernel": "eq_dwconv2d_dsp"} and "scratch_bytes" not in got.notes
            assert (got.consts, got.params) == (low.consts, low.params)  # the plain filter, no relayout
        else:
            assert got is low


def _chain(k, seed: int):
    """A seeded input shape and a chain of DepthwiseConv2D layers covering the kernel's paths and tails."""
    rng = np.random.default_rng(seed)
    h, w = int(rng.integers(22, 27)), int(rng.integers(22, 27))
    cin = int(rng.integers(5, 12)) | 1  # odd: the 4-channel pass leaves a tail
    acts = (None, "relu", "relu6")

    def build(t):
        for i, (kk, s, pad, d, dm) in enumerate(SPECS):
            t = k.layers.DepthwiseConv2D(
                kk, strides=s, padding=pad, dilation_rate=d, depth_multiplier=dm, activation=acts[i % 3]
            )(t)
        return t

    return (h, w, cin), build


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> list[tuple[str, bytes]]:
    return seeded_models(tmp_path_factory.mktemp("dw_models"), "dw", (5, 6), _chain)


def _depthwise(data: bytes, name: str) -> list:
    g = graph.read(data, name)
    return [(g, op) for op in g.ops if op.name == "DEPTHWISE_CONV_2D"]


@pytest.mark.slow
def test_chains_cover_multipliers_scales_and_zero_points(models) -> None:
    mults, zps = set(), set()
    for name, data in models:
        ops = _depthwise(data, name)
        assert len(ops) == len(SPECS)
        for g, op in ops:
            assert len(g.tensors[op.inputs[1]].scales) > 1  # per-channel filter scales
            mults.add(g.tensors[op.outputs[0]].shape[3] // g.tensors[op.inputs[0]].shape[3])
            zps.add(g.tensors[op.inputs[0]].zero_point)
    assert mults == {1, 2} and len(zps) > 3


@pytest.mark.slow
def test_generated_project_selects_depthwise_kernel_by_core(models) -> None:
    name, data = models[0]
    for core in cgen.CORES + (None,):
        files = cgen.generate(data, name, core=core).files
        model_c = files["model.c"]
        if dsp.uses_dsp(core):
            assert model_c.count("eq_dwconv2d_dsp(") == len(SPECS) and "eq_dwconv2d(" not in model_c
            assert "void eq_dwconv2d_dsp(" in files["eq_dw_dsp.c"]  # its own compile unit
            assert files["eq_conv_dsp.c"] == emit.unused_stub("eq_conv_dsp.c")  # no CONV_2D in the chain
        else:  # M55 takes its Helium kernel for depth multiplier 1 (tests/mcu/cgen/test_mve_depthwise.py)
            helium = sum(1 for s in SPECS if s[4] == 1) if core == "cortex-m55" else 0
            assert "eq_dwconv2d_dsp(" not in model_c and model_c.count("eq_dwconv2d_mve(") == helium
            assert model_c.count("eq_dwconv2d(") == len(SPECS) - helium
            assert files["eq_dw_dsp.c"] == emit.unused_stub("eq_dw_dsp.c")


@pytest.mark.slow
def test_dsp_depthwise_bit_exact_on_host(models, tmp_path) -> None:
    """The M4 project built for the host (intrinsics emulated in C), against TFLM's and LiteRT's kernels."""
    for name, data in models:
        project = cgen.generate(data, name, core="cortex-m4")
        project.write(tmp_path / name)
        proof = cgen.prove(project, data, samples(NUM_SAMPLES, project.input_size, 7), tmp_path / name, cores=())
        assert_exact_with_both(proof["host"], NUM_SAMPLES)


@pytest.mark.slow
@pytest.mark.skipif(not HAVE_ARM, reason="needs gcc, arm-none-eabi-gcc and qemu-system-arm")
def test_dsp_depthwise_bit_exact_on_qemu_m4(models, tmp_path) -> None:
    """Both chains on M4; the first also on M7 and M33 (the same DSP project, each core's build)."""
    for i, (name, data) in enumerate(models):
        project = cgen.generate(data, name, core="cortex-m4")
        project.write(tmp_path / name)
        inputs = samples(NUM_SAMPLES, project.input_size, 9)
        cores = ("cortex-m4", "cortex-m7", "cortex-m33") if i == 0 else ("cortex-m4",)
        proof = cgen.prove(project, data, inputs, tmp_path / name, cores=cores, timeout_s=120)
        assert_exact_with_both(proof["host"], NUM_SAMPLES)
        for core in cores:
            run = proof["qemu"][core]
            assert_exact_with_both(run, NUM_SAMPLES)
            assert run["instructions_per_inference"] > 0
