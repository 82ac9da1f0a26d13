"""The Helium DEPTHWISE_CONV_2D (runtime/eq_dw_mve.c) chosen per core, and bit-exact with TFLM's and LiteRT's
reference kernels.

Fast: the kernel each core's project calls (eq_dwconv2d_mve on M55 for depth multiplier 1, plain otherwise),
the per-channel interior sums, and the stub a project without the kernel gets.
Slow: two seeded chains of depthwise layers (depth multiplier 1 and 2, 3x3 / 5x3 / 1x2 windows, strides 1
and 2, same and valid padding, dilation 2, an odd channel count that leaves a predicated tail after a full
16-channel pass, 8 channels (two pixels per pass), a dilated window as large as its image, per-channel
filter scales and input zero points from their own calibration ranges), generated for Cortex-M55 and run on
the host (plain fallback) and under QEMU mps3-an547 with MVE, each sample compared bit for bit with both
references.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from edgeq.targets.mcu import cgen, tflm
from edgeq.targets.mcu.cgen import emit, graph, mve
from edgeq.targets.mcu.cgen.lowered import Const, Lowered
from tests.mcu.cgen.dsp_shared import seeded_models

NUM_SAMPLES = 6
HAVE_ARM = all(shutil.which(t) for t in ("gcc", "arm-none-eabi-gcc", "qemu-system-arm"))
SPECS = (  # (kernel, stride, padding, dilation, depth multiplier); 22..26 pixels square shrink to 1x1
    ((3, 3), 1, "same", 1, 1),
    ((3, 3), 2, "valid", 1, 1),
    ((3, 3), 2, "same", 1, 2),
    ((3, 3), 1, "same", 2, 1),  # the dilated window spans the 5x5 image: one interior pixel, the rest border
    ((5, 3), 1, "valid", 1, 1),
    ((1, 2), 2, "valid", 1, 1),
)


class _Op:
    index, inputs = 3, (1, 2, 4)


def _dw_low(dm: int, out_c: int = 3) -> Lowered:
    w = np.arange(-9, 9 * out_c - 9, dtype=np.int8).reshape(1, 3, 3, out_c)
    consts = (
        Const("op3_mult", "int32_t", np.array([2**30, 2**30 + 5, 2**31 - 1, 7][:out_c], dtype=np.int32)),
        Const("op3_shift", "int32_t", np.array([-3, 2, 0, -31][:out_c], dtype=np.int32)),
        Const("w2", "int8_t", w),
        Const("w4", "int32_t", np.array([5, -7, 2**31 - 1, 0][:out_c], dtype=np.int64)),
    )
    params = (
        f"static const eq_conv_t op3_p = {{1, 5, 5, {out_c // dm}, 5, 5, {out_c}, 3, 3, 1, 1, 1, 1, 1, 1, "
        f"{dm}, 17, -3, -128, 127, op3_mult, op3_shift, 0}};"
    )
    return Lowered(_Op(), "eq_dwconv2d(&op3_p, {t1}, w2, w4, {t5});", consts, params)  # type: ignore[arg-type]


def test_retarget_takes_the_mve_depthwise_on_m55_for_multiplier_1_only() -> None:
    low = _dw_low(1)
    for core in cgen.CORES + (None,):
        (got,) = mve.retarget([low], core)
        if core == "cortex-m55":
            assert got.statement == "eq_dwconv2d_mve(&op3_p, {t1}, w2, w4, {t5});"
            assert got.params.endswith("op3_mult, op3_shift, op3_dwtab};")
            (words,) = [c.values for c in got.consts if c.name == "op3_dwtab"]
            assert len(words) == 65 and words[64] == 3  # flags: a shift > 0 (2), one >= 0 (2 and 0)
            table = words[:64].reshape(4, 16)
            w = low.consts[2].values.astype(np.int64).reshape(9, 3)
            start = (np.array([5, -7, 2**31 - 1]) + 17 * w.sum(axis=0) + 2**31) % 2**32 - 2**31
            # channels 0, 1, 2 sit at positions 0, 8, 4 (accumulators of channels 0+4j, 2+4j, 1+4j, 3+4j)
            assert table[:, [0, 8, 4]].tolist() == [
                start.tolist(),  # wraps as the int32 accumulator does
                [2**30, 2**30 + 5, 2**31 - 1],
                [0, 2, 0],
                [-3, 0, 0],
            ]
            assert not table[:, [1, 2, 3, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15]].any()  # padding
        else:
            assert got is low
    low2 = _dw_low(2, 4)
    assert mve.retarget([low2], "cortex-m55")[0] is low2


def test_table_repeats_channels_across_lanes_when_they_divide_16() -> None:
    low = mve.retarget([_dw_low(1, 4)], "cortex-m55")[0]
    (table,) = [c.values[:64].reshape(4, 16) for c in low.consts if c.name == "op3_dwtab"]
    lane_channel = mve.DW_ORDER % 4  # position i holds lane DW_ORDER[i], channel DW_ORDER[i] % 4
    for ch in range(4):
        same = table[:, lane_channel == ch]
        assert same.shape[1] == 4 and (same == same[:, :1]).all()
    assert table[2, mve.DW_ORDER == 1].tolist() == [2] and table[3, mve.DW_ORDER == 0].tolist() == [-3]


def test_table_flags_say_which_shifts_occur() -> None:
    w, mult = np.ones((1, 3, 3, 2), dtype=np.int8), np.array([2**30, 2**30])
    for shift, flags in (([-1, -5], 0), ([0, -5], 2), ([3, -5], 3), ([3, 1], 3)):
        assert mve.dw_table(w, None, 7, mult, np.array(shift))[-1] == flags


def test_unused_mve_depthwise_file_is_a_stub() -> None:
    files = {"eq_dw_mve.c": emit.runtime_text("eq_dw_mve.c")}
    low = Lowered(None, "eq_dwconv2d(&op3_p, {t1}, w2, 0, {t5});")  # type: ignore[arg-type]
    assert emit.leave_out_unused(files, [low])["eq_dw_mve.c"] == emit.unused_stub("eq_dw_mve.c")
    used = Lowered(None, "eq_dwconv2d_mve(&op3_p, {t1}, w2, 0, {t5});")  # type: ignore[arg-type]
    assert emit.leave_out_unused(files, [used])["eq_dw_mve.c"] == files["eq_dw_mve.c"]


def _chain(k, seed: int):
    rng = np.random.default_rng(seed)
    h, w = int(rng.integers(22, 27)), int(rng.integers(22, 27))
    cin = int(rng.integers(5, 12)) | 1  # odd: the last 16-channel pass is predicated
    cin = cin + 16 if seed % 2 else 8  # one full pass before it; 8 divides 16: two pixels share a pass
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
    return seeded_models(tmp_path_factory.mktemp("dw_mve_models"), "dwm", (15, 16), _chain)


@pytest.mark.slow
def test_generated_project_selects_mve_depthwise_by_core(models) -> None:
    name, data = models[0]
    g = graph.read(data, name)
    assert len({g.tensors[op.inputs[0]].zero_point for op in g.ops if op.name == "DEPTHWISE_CONV_2D"}) > 2
    dm1 = sum(1 for s in SPECS if s[4] == 1)
    for core in cgen.CORES + (None,):
        model_c = cgen.generate(data, name, core=core).files["model.c"]
        if core == "cortex-m55":
            assert model_c.count("eq_dwconv2d_mve(") == dm1 and model_c.count("eq_dwconv2d(") == len(SPECS) - dm1
        else:
            assert "eq_dwconv2d_mve(" not in model_c


def _samples(n: int, size: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(-128, 128, (n, size)).astype(np.int8)


def _assert_exact_with_both(cmp: dict, n: int) -> None:
    assert cmp["bit_exact"] == n, cmp
    refs = cmp["references"]
    if tflm.available():
        assert refs[cgen.TFLM_REF]["bit_exact"] == n, refs
    assert refs[cgen.LITERT_REF]["bit_exact"] == n, refs


@pytest.mark.slow
@pytest.mark.skipif(not HAVE_ARM, reason="needs gcc, arm-none-eabi-gcc and qemu-system-arm")
def test_mve_depthwise_bit_exact_on_qemu_m55(models, tmp_path) -> None:
    for name, data in models:
        project = cgen.generate(data, name, core="cortex-m55")
        project.write(tmp_path / name)
        proof = cgen.prove(
            project,
            data,
            _samples(NUM_SAMPLES, project.input_size, 9),
            tmp_path / name,
            cores=("cortex-m55",),
            timeout_s=120,
        )
        _assert_exact_with_both(proof["host"], NUM_SAMPLES)
        run = proof["qemu"]["cortex-m55"]
        _assert_exact_with_both(run, NUM_SAMPLES)
        assert run["instructions_per_inference"] > 0
