"""The DSP CONV_2D (runtime/eq_conv_dsp.c) chosen per core, and bit-exact with LiteRT's reference kernels.

Fast: the filter layout, the choice of kernel per core and the scratch the memory plan gives it. Slow: two
seeded chains of convolutions (1x1 and 3x3, strides 1 and 2, same and valid padding, dilation, one input
channel, odd channel counts and pixel counts for every tail, per-channel filter scales and zero points from
their own calibration ranges), generated for Cortex-M4 and run under QEMU (mps2-an386; the first chain also
on M7 and M33) and on the host with the intrinsics emulated, each sample compared bit for bit with
BUILTIN_REF; the plain project of the same chain on the host and M55.
"""

from __future__ import annotations

import numpy as np
import pytest

from edgeq.targets.mcu import cgen
from edgeq.targets.mcu.cgen import dsp, emit, graph
from tests.mcu.cgen.dsp_shared import HAVE_ARM, samples, seeded_models

NUM_SAMPLES = 8


def test_dsp_filter_layout_pairs_taps_for_sxtb16() -> None:
    rows = np.arange(3 * 10, dtype=np.int8)  # 3 channels, k = 10: two groups of 4 and a tail of 2
    got = dsp.dsp_filter(rows, 3).tolist()
    # channels 0 and 1: groups of 4 taps interleaved, then each one's tail
    assert got[:20] == [0, 1, 2, 3, 10, 11, 12, 13, 4, 5, 6, 7, 14, 15, 16, 17, 8, 9, 18, 19]
    assert got[20:] == list(range(20, 30))  # a lone last channel stays a row


def test_dsp_cores() -> None:
    assert [c for c in cgen.CORES if dsp.uses_dsp(c)] == ["cortex-m4", "cortex-m7", "cortex-m33"]
    assert not dsp.uses_dsp(None)


def _chain(k, seed: int):
    """A seeded input shape and a chain of Conv2D layers covering the DSP kernel's paths and tails."""
    rng = np.random.default_rng(seed)
    h, w = (int(v) for v in rng.integers(7, 12, 2))
    cin = 1 if seed % 2 else int(rng.integers(2, 7))
    specs = [  # (kernel, stride, padding, dilation): 3x3 same, 1x1, 3x3 s2, dilated, 1x1 s2, 3x3 s2 valid
        (3, 1, "same", 1),
        (1, 1, "valid", 1),
        (3, 2, "same", 1),
        (3, 1, "same", 2),
        (1, 2, "valid", 1),
        (2, 1, "valid", 1),
    ]
    acts = (None, "relu", "relu6")

    def build(t):
        for i, (kk, s, pad, d) in enumerate(specs):
            cout = int(rng.integers(3, 12))
            t = k.layers.Conv2D(cout, kk, strides=s, padding=pad, dilation_rate=d, activation=acts[i % 3])(t)
        return t

    return (h, w, cin), build


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> list[tuple[str, bytes]]:
    return seeded_models(tmp_path_factory.mktemp("dsp_models"), "chain", (3, 4), _chain)


@pytest.mark.slow
def test_chains_cover_per_channel_scales_and_shapes(models) -> None:
    kernels, zps = set(), set()
    for name, data in models:
        g = graph.read(data, name)
        convs = [op for op in g.ops if op.name == "CONV_2D"]
        assert len(convs) == 6
        assert all(len(g.tensors[op.inputs[1]].scales) > 1 for op in convs)  # per-channel filter scales
        kernels |= {tuple(g.tensors[op.inputs[1]].shape[1:]) for op in convs}
        zps |= {g.tensors[op.inputs[0]].zero_point for op in convs}
    assert any(s[0] == s[1] == 1 for s in kernels) and any(s[0] == s[1] == 3 for s in kernels)
    assert any(s[2] == 1 for s in kernels)  # a first layer with one input channel
    assert len(zps) > 3


@pytest.mark.slow
def test_generated_project_selects_kernels_by_core(models) -> None:
    _, data = models[0]
    for core in cgen.CORES + (None,):
        project = cgen.generate(data, "chain", core=core)
        model_c = project.files["model.c"]
        if core in ("cortex-m4", "cortex-m7", "cortex-m33"):
            assert model_c.count("eq_conv2d_dsp(") == 6 and "eq_conv2d(" not in model_c
            assert "(int16_t*)(eq_arena + " in model_c  # im2col scratch planned in the arena
            assert "void eq_conv2d_dsp(" in project.files["eq_conv_dsp.c"]
            assert project.files["eq_dw_dsp.c"] == emit.unused_stub("eq_dw_dsp.c")  # no depthwise: its own unit stubbed
        else:  # M55 takes its Helium CONV_2D instead (tests/mcu/cgen/test_mve_conv.py)
            plain = 0 if core == "cortex-m55" else 6
            assert "eq_conv2d_dsp(" not in model_c and model_c.count("eq_conv2d(") == plain
            assert project.files["eq_conv_dsp.c"] == emit.unused_stub("eq_conv_dsp.c")  # no DSP code built or sized


@pytest.mark.slow
def test_scratch_is_planned_clear_of_live_buffers(models) -> None:
    from edgeq.targets.mcu.cgen import lower, plan

    _, data = models[1]
    g = graph.read(data, "chain")
    lowered = dsp.retarget(lower.lower(g), "cortex-m4")
    p = plan.make(g, lowered)
    assert set(p.scratch) == {low.op.index for low in lowered if low.op.name == "CONV_2D"}
    placed = [b for b in p.buffers if not b.external]
    for b in placed:
        assert b.offset + b.size <= p.arena_bytes
        for o in placed:
            live = not (o.last < b.first or o.first > b.last)
            if o is not b and live:
                assert o.offset + o.size <= b.offset or b.offset + b.size <= o.offset, (b, o)


@pytest.mark.slow
@pytest.mark.skipif(not HAVE_ARM, reason="needs gcc, arm-none-eabi-gcc and qemu-system-arm")
def test_dsp_conv_bit_exact_on_qemu_m4(models, tmp_path) -> None:
    """Both chains on M4; the first also on M7 and M33 (the same DSP project, each core's build)."""
    for i, (name, data) in enumerate(models):
        project = cgen.generate(data, name, core="cortex-m4")
        project.write(tmp_path / name)
        cores = ("cortex-m4", "cortex-m7", "cortex-m33") if i == 0 else ("cortex-m4",)
        proof = cgen.prove(
            project, data, samples(NUM_SAMPLES, project.input_size, 7), tmp_path / name, cores=cores, timeout_s=120
        )
        assert proof["host"]["bit_exact"] == NUM_SAMPLES, proof["host"]
        for core in cores:
            run = proof["qemu"][core]
            assert run["bit_exact"] == NUM_SAMPLES, (core, run)
            assert run["instructions_per_inference"] > 0
    # the project for M55 (its eq_conv_dsp.c a stub) still builds and matches, on the host and on M55
    name, data = models[0]
    project = cgen.generate(data, name, core="cortex-m55")
    project.write(tmp_path / "plain")
    proof = cgen.prove(
        project, data, samples(2, project.input_size, 8), tmp_path / "plain", cores=("cortex-m55",), timeout_s=120
    )
    assert proof["host"]["bit_exact"] == 2 and proof["qemu"]["cortex-m55"]["bit_exact"] == 2, proof
