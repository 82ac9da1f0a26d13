"""What the kernel tests for the core (test_dsp_*.py, test_mve_*.py) share: the toolchain check, seeded int8
samples, seeded int8 models of a layer chain, a proof of one model's Cortex-M4 project (the DSP kernel
asserted in model.c) and the bit-exact check against both references."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from edgeq.targets.mcu import cgen, tflm
from tests.mcu.conftest import _keras, convert_int8

HAVE_ARM = all(shutil.which(t) for t in ("gcc", "arm-none-eabi-gcc", "qemu-system-arm"))


def samples(n: int, size: int, seed: int) -> np.ndarray:
    """n seeded int8 inputs of ``size`` values."""
    return np.random.default_rng(seed).integers(-128, 128, (n, size)).astype(np.int8)


def seeded_models(folder: Path, prefix: str, seeds: tuple[int, ...], chain) -> list[tuple[str, bytes]]:
    """One int8 model per seed of the layers ``chain(keras, seed)`` returns (input shape, build function),
    calibrated on seeded inputs; named ``prefix`` + seed."""
    k = _keras()
    out = []
    for seed in seeds:
        shape, build = chain(k, seed)
        inp = k.Input(shape)
        model = k.Model(inp, build(inp))
        rng = np.random.default_rng(seed)
        lo, hi = sorted(rng.uniform(-3, 3, 2))
        x = rng.uniform(lo, hi + 0.2, (8, *shape)).astype(np.float32)
        out.append((f"{prefix}{seed}", convert_int8(folder, f"{prefix}{seed}", model, shape, x).read_bytes()))
    return out


def prove_dsp(data: bytes, kernel: str, folder: Path, seed: int, n: int, cores: tuple[str, ...] = ()) -> dict:
    """The model's Cortex-M4 project, which must call ``kernel``, proven on the host and on ``cores``."""
    project = cgen.generate(data, "model", core="cortex-m4")
    assert f"{kernel}(" in project.files["model.c"]
    project.write(folder)
    return cgen.prove(project, data, samples(n, project.input_size, seed), folder, cores=cores, timeout_s=120)


def assert_exact_with_both(run: dict, n: int) -> None:
    """Every one of n samples bit-exact with TFLM's reference kernels (when installed) and LiteRT's."""
    assert run["bit_exact"] == n, run
    refs = run["references"]
    if tflm.available():
        assert refs[cgen.TFLM_REF]["bit_exact"] == n, refs
    assert refs[cgen.LITERT_REF]["bit_exact"] == n, refs
