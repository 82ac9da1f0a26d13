"""The Helium CONV_2D (runtime/eq_conv_mve.c) chosen for Cortex-M55 only, and bit-exact with TFLM's and
LiteRT's reference kernels under QEMU (mps3-an547).

Fast: the choice of kernel per core, the scratch size. Slow: two seeded chains of convolutions (1x1 and 3x3
and 2x2, strides 1 and 2, same and valid padding, dilation, one input channel, filter depths k that are not
a multiple of 16 and ones that are, odd channel counts, pixel counts not a multiple of 3, per-channel filter
scales and random zero points from their own calibration ranges), generated for Cortex-M55 and run under
QEMU, each sample compared bit for bit with TFLM's reference kernels and BUILTIN_REF; the host build (the
kernel falls back to eq_conv2d there) with them.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from edgeq.targets.mcu import cgen
from edgeq.targets.mcu.cgen import emit, graph, lower, mve, plan
from tests.mcu.cgen.dsp_shared import seeded_models

NUM_SAMPLES = 6
HAVE_ARM = all(shutil.which(t) for t in ("gcc", "arm-none-eabi-gcc", "qemu-system-arm"))
SPECS = (  # (kernel, stride, padding, dilation)
    (3, 1, "same", 1),
    (1, 1, "valid", 1),
    (3, 2, "same", 1),
    (3, 1, "same", 2),
    (1, 2, "valid", 1),
    (2, 1, "valid", 1),
    (1, 1, "same", 1),
)


def _chain(k, seed: int):
    """A seeded input shape and a chain of Conv2D layers covering the Helium kernel's paths and tails."""
    rng = np.random.default_rng(seed)
    h, w = (int(v) for v in rng.integers(7, 12, 2))
    cin = 1 if seed % 2 else int(rng.integers(2, 7))
    acts = (None, "relu", "relu6")
    # channel counts: odd ones (a lone last channel), 16 and 32 (the 1x1 after them reads the input in place)
    couts = [int(rng.integers(3, 12)), 16, int(rng.integers(13, 20)) | 1, 32, int(rng.integers(3, 12)), 16, 17]

    def build(t):
        for i, (kk, s, pad, d) in enumerate(SPECS):
            t = k.layers.Conv2D(couts[i], kk, strides=s, padding=pad, dilation_rate=d, activation=acts[i % 3])(t)
        return t

    return (h, w, cin), build


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> list[tuple[str, bytes]]:
    return seeded_models(tmp_path_factory.mktemp("mve_models"), "chain", (5, 6), _chain)


@pytest.mark.slow
def test_chains_cover_the_kernel_paths(models) -> None:
    depths, zps, pixels = set(), set(), set()
    for name, data in models:
        g = graph.read(data, name)
        convs = [op for op in g.ops if op.name == "CONV_2D"]
        assert len(convs) == len(SPECS)
        assert all(len(g.tensors[op.inputs[1]].scales) > 1 for op in convs)  # per-channel filter scales
        depths |= {int(np.prod(g.tensors[op.inputs[1]].shape[1:])) for op in convs}
        zps |= {g.tensors[op.inputs[0]].zero_point for op in convs}
        pixels |= {int(np.prod(g.tensors[op.outputs[0]].shape[1:3])) % 3 for op in convs}
        assert any(g.tensors[op.inputs[1]].shape[3] == 1 for op in convs) == (name == "chain5")
    assert any(d % 16 for d in depths) and any(d % 16 == 0 for d in depths) and any(d < 16 for d in depths)
    assert len(zps) > 3 and pixels - {0}  # zero points vary; some ops end on a group of fewer than 3 pixels


@pytest.mark.slow
def test_generated_project_selects_kernel_by_core(models) -> None:
    _, data = models[0]
    for core in cgen.CORES + (None,):
        project = cgen.generate(data, "chain", core=core)
        model_c = project.files["model.c"]
        if core == "cortex-m55":
            assert model_c.count("eq_conv2d_mve(") == len(SPECS) and "eq_conv2d(" not in model_c
            assert "(int8_t*)(eq_arena + " in model_c  # im2col scratch planned in the arena
            assert "void eq_conv2d_mve(" in project.files["eq_conv_mve.c"]
        else:
            assert "eq_conv2d_mve(" not in model_c
            assert project.files["eq_conv_mve.c"] == emit.unused_stub("eq_conv_mve.c")  # no Helium code built


@pytest.mark.slow
def test_scratch_holds_accumulators_and_padded_columns(models) -> None:
    _, data = models[1]
    g = graph.read(data, "chain")
    lowered = mve.retarget(lower.lower(g), "cortex-m55")
    convs = [low for low in lowered if low.op.name == "CONV_2D"]
    for low in convs:
        out_c, k_h, k_w, in_c = g.tensors[low.op.inputs[1]].shape
        direct = k_h == k_w == 1 and in_c % 16 == 0  # a 1x1 filter never pads, SAME or VALID
        columns = 0 if direct else 3 * (-(-k_h * k_w * in_c // 16) * 16)
        assert (
            low.notes["scratch_bytes"] == 12 * -(-out_c // 4) * 4 + 12 * (out_c + out_c % 2) + columns
            and low.notes["kernel"] == "eq_conv2d_mve"
        )
    assert set(plan.make(g, lowered).scratch) == {low.op.index for low in convs}


def test_other_ops_and_cores_unchanged() -> None:
    assert mve.uses_mve("cortex-m55") and not mve.uses_mve("cortex-m4") and not mve.uses_mve(None)
    assert mve.retarget([], "cortex-m4") == []


@pytest.mark.slow
@pytest.mark.skipif(not HAVE_ARM, reason="needs gcc, arm-none-eabi-gcc and qemu-system-arm")
def test_mve_conv_bit_exact_on_qemu_m55(models, tmp_path) -> None:
    """Both chains on M55 (Helium) and the host (the plain fallback), against TFLM and LiteRT."""
    for name, data in models:
        project = cgen.generate(data, name, core="cortex-m55")
        assert "eq_conv2d_mve(" in project.files["model.c"]
        project.write(tmp_path / name)
        rng = np.random.default_rng(11)
        samples = rng.integers(-128, 128, (NUM_SAMPLES, project.input_size)).astype(np.int8)
        proof = cgen.prove(project, data, samples, tmp_path / name, cores=("cortex-m55",), timeout_s=120)
        assert proof["host"]["bit_exact"] == NUM_SAMPLES, proof["host"]
        run = proof["qemu"]["cortex-m55"]
        assert run["bit_exact"] == NUM_SAMPLES, run
        assert set(cgen.matched(run)) == {cgen.TFLM_REF, cgen.LITERT_REF}, run
        assert run["instructions_per_inference"] > 0


# eq_conv2d and eq_conv2d_mve side by side on one build: per-channel multipliers and shifts picked so that
# the rounding right shift meets ties of both signs (-1 .. -4 with a multiplier of 1/2), left shifts, shift
# 0 and a large right shift; a 1x1 conv that reads the input in place and a padded 3x3 one through im2col;
# the 1x1 conv again in the kernel's other requantization modes: no left shift, and every channel shifting right.
_MULTS = (1 << 30, 1 << 30, 1 << 30, 1 << 30, 1518500250, 1 << 29, 2147483647)
_SHIFTS = (-1, -2, -3, -4, 0, 2, -9)
_SHIFT_SETS = {"shift_m": (-1, -2, -3, -4, 0, -5, -9), "shift_r": (-1, -2, -3, -4, -1, -5, -9)}
_BLOCKS = 4 + 2 * len(_SHIFT_SETS)  # outputs: plain and Helium per conv
_H = _W = 5
_IC = 32
_OC = len(_MULTS)


def _srdhm(a: np.ndarray, b: int) -> np.ndarray:
    ab = a.astype(object) * b
    return np.array([int((v + (1 << 30 if v >= 0 else 1 - (1 << 30))) / (1 << 31)) for v in ab], dtype=object)


def _pair_model_c(w1: np.ndarray, w3: np.ndarray, bias: np.ndarray, in_off: int) -> str:
    def arr(name: str, ctype: str, values) -> str:
        return f"static const {ctype} {name}[] = {{{', '.join(str(int(v)) for v in np.ravel(values))}}};"

    lines = [
        '#include "model.h"',
        '#include "eq_kernels.h"',
        arr("w1", "int8_t", w1),
        arr("w3", "int8_t", w3),
        arr("bias", "int32_t", bias),
        arr("mult", "int32_t", _MULTS),
        arr("shift", "int32_t", _SHIFTS),
        *(arr(name, "int32_t", values) for name, values in _SHIFT_SETS.items()),
        arr("wsum1", "int32_t", w1.reshape(_OC, -1).sum(axis=1)),
        arr("wsum3", "int32_t", w3.reshape(_OC, -1).sum(axis=1)),
        f"static const eq_conv_t c1 = {{1, {_H}, {_W}, {_IC}, {_H}, {_W}, {_OC}, 1, 1, 1, 1, 1, 1, 0, 0, 1, "
        f"{in_off}, -3, -128, 127, mult, shift, wsum1}};",
        f"static const eq_conv_t c3 = {{1, {_H}, {_W}, 3, {_H}, {_W}, {_OC}, 3, 3, 1, 1, 1, 1, 1, 1, 1, "
        f"{in_off}, -3, -128, 127, mult, shift, wsum3}};",
        *(
            f"static const eq_conv_t c1{name[-1]} = {{1, {_H}, {_W}, {_IC}, {_H}, {_W}, {_OC}, 1, 1, 1, 1, 1, 1, 0, "
            f"0, 1, {in_off}, -3, -128, 127, mult, {name}, wsum1}};"
            for name in _SHIFT_SETS
        ),
        "static int32_t scratch[256];",
        "static int8_t x3[75];",
        "void model_reset(void) {}",
        "int model_invoke(const int8_t* in, int8_t* out) {",
        "  const int32_t n = 25 * 7;",
        "  for (int i = 0; i < 75; ++i) x3[i] = in[(i / 3) * 32 + i % 3];",
        "  eq_conv2d(&c1, in, w1, bias, out);",
        "  eq_conv2d_mve(&c1, in, w1, bias, out + n, (int8_t*)scratch);",
        "  eq_conv2d(&c3, x3, w3, bias, out + 2 * n);",
        "  eq_conv2d_mve(&c3, x3, w3, bias, out + 3 * n, (int8_t*)scratch);",
        *(
            f"  eq_conv2d(&c1{name[-1]}, in, w1, bias, out + {4 + 2 * i} * n);\n"
            f"  eq_conv2d_mve(&c1{name[-1]}, in, w1, bias, out + {5 + 2 * i} * n, (int8_t*)scratch);"
            for i, name in enumerate(_SHIFT_SETS)
        ),
        "  return 0;",
        "}",
    ]
    return "\n".join(lines) + "\n"


@pytest.mark.slow
@pytest.mark.skipif(not HAVE_ARM, reason="needs gcc, arm-none-eabi-gcc and qemu-system-arm")
def test_requantization_ties_match_the_plain_kernel_on_qemu_m55(models, tmp_path) -> None:
    from edgeq.targets.mcu.cgen import toolchain

    rng = np.random.default_rng(21)
    w1 = rng.integers(-127, 128, (_OC, _IC)).astype(np.int8)
    w3 = rng.integers(-127, 128, (_OC, 3, 3, 3)).astype(np.int8)
    bias = rng.integers(-2000, 2000, _OC).astype(np.int32)
    in_off = 5
    x = rng.integers(-128, 128, (4, _H * _W * _IC)).astype(np.int8)
    # the ties this input gives the 1x1 conv: the high multiply's result, halfway between two shifted values
    acc = (x.reshape(-1, _IC).astype(np.int64) + in_off) @ w1.T.astype(np.int64) + bias
    ties = {"neg": 0, "pos": 0}
    for c in range(4):
        r = -_SHIFTS[c]
        hi = _srdhm(acc[:, c], _MULTS[c])
        for v in hi:
            if v & ((1 << r) - 1) == 1 << (r - 1):
                ties["neg" if v < 0 else "pos"] += 1
    assert ties["neg"] > 10 and ties["pos"] > 10, ties
    project = cgen.generate(models[0][1], "chain", core="cortex-m55")
    project.write(tmp_path)
    (tmp_path / "model.c").write_text(_pair_model_c(w1, w3, bias, in_off))
    h = (tmp_path / "model.h").read_text()
    h = h.replace(f"#define MODEL_INPUT_SIZE {project.input_size}\n", f"#define MODEL_INPUT_SIZE {_H * _W * _IC}\n")
    h = h.replace(
        f"#define MODEL_OUTPUT_SIZE {project.output_size}\n", f"#define MODEL_OUTPUT_SIZE {_BLOCKS * 25 * _OC}\n"
    )
    (tmp_path / "model.h").write_text(h)
    build = toolchain.arm_build(tmp_path, tmp_path / "build", "cortex-m55", timeout_s=120)
    got = toolchain.qemu_run(Path(build["elf"]), "cortex-m55", x, _BLOCKS * 25 * _OC, timeout_s=120)["outputs"]
    blocks = np.split(got, _BLOCKS, axis=1)
    plain1, plain3 = blocks[0], blocks[2]
    assert all(np.array_equal(blocks[i], blocks[i + 1]) for i in range(0, _BLOCKS, 2))
    assert not np.array_equal(blocks[4], blocks[6])  # the shift sets differ in their outputs
    assert len(np.unique(plain1)) > 20 and len(np.unique(plain3)) > 20  # not clamped to a constant
