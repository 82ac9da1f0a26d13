"""The Helium FULLY_CONNECTED (runtime/eq_fc_mve.c) chosen per core, and bit-exact with both references.

Fast: the kernel chosen per core (the folded bias emitted, the plain bias not), the stub a project without
FULLY_CONNECTED gets, and randomized single-FC models (test_dsp_fc.fc_model: every in_depth % 16 tail over
the seeds, 4-row passes and leftover rows, batch > 1, per-tensor and per-channel scales, zero points, an
asymmetric per-tensor filter, bias or none, activations) generated for Cortex-M55 and proven on the host
(the folded arithmetic in scalar C). Slow: the same models under QEMU mps3-an547 with MVE.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from edgeq.targets.mcu import cgen, tflm
from edgeq.targets.mcu.cgen import emit
from tests.mcu.cgen.test_dsp_fc import fc_model

pytestmark = [
    pytest.mark.skipif(shutil.which("gcc") is None, reason="no gcc on PATH"),
    pytest.mark.skipif(not tflm.available(), reason="tflite-micro is not installed"),
]

NUM_SAMPLES = 10
HAVE_ARM = all(shutil.which(t) for t in ("arm-none-eabi-gcc", "qemu-system-arm"))


def _prove(data: bytes, folder, seed: int, cores: tuple[str, ...] = ()) -> dict:
    project = cgen.generate(data, "fc", core="cortex-m55")
    model_c = project.files["model.c"]
    assert "eq_fully_connected_mve(" in model_c and "_bias_mve" in model_c
    assert "eq_fully_connected(" not in model_c
    project.write(folder)
    x = np.random.default_rng(seed).integers(-128, 128, (NUM_SAMPLES, project.input_size)).astype(np.int8)
    return cgen.prove(project, data, x, folder, cores=cores, timeout_s=120)


def _assert_exact(run: dict) -> None:
    """Bit-exact with TFLM's reference kernels on every sample, and with LiteRT's within its documented step."""
    refs = run["references"]
    assert refs[cgen.TFLM_REF]["bit_exact"] == NUM_SAMPLES, refs
    assert run["against"] == cgen.TFLM_REF and run["bit_exact"] == NUM_SAMPLES
    assert refs[cgen.LITERT_REF]["max_abs_diff_steps"] <= 1


def test_fc_kernel_chosen_per_core() -> None:
    data = fc_model(3)
    for core in cgen.CORES + (None,):
        project = cgen.generate(data, "fc", core=core)
        model_c = project.files["model.c"]
        if core == "cortex-m55":
            assert "eq_fully_connected_mve(" in model_c
            assert project.files["eq_fc_mve.c"] == emit.runtime_text("eq_fc_mve.c")
        else:
            assert "eq_fully_connected_mve(" not in model_c
            assert project.files["eq_fc_mve.c"] == emit.unused_stub("eq_fc_mve.c")


@pytest.mark.parametrize("seed", range(8))
def test_mve_fc_bit_exact_on_host(tmp_path, seed) -> None:
    _assert_exact(_prove(fc_model(seed), tmp_path, seed)["host"])


def test_mve_fc_asymmetric_per_tensor_filter_on_host(tmp_path) -> None:
    _assert_exact(_prove(fc_model(6, w_zero_point=5), tmp_path, 6)["host"])


@pytest.mark.slow
@pytest.mark.skipif(not HAVE_ARM, reason="needs arm-none-eabi-gcc and qemu-system-arm")
def test_mve_fc_bit_exact_on_qemu_m55(tmp_path) -> None:
    for seed in (1, 2, 5, 7):
        wzp = -4 if seed == 2 else 0
        proof = _prove(fc_model(seed, w_zero_point=wzp), tmp_path / str(seed), seed, ("cortex-m55",))
        _assert_exact(proof["host"])
        run = proof["qemu"]["cortex-m55"]
        _assert_exact(run)
        assert run["equals_host_build"]
