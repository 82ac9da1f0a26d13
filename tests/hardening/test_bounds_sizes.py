"""Declared tensor sizes against a budget before anything is allocated, and inputs generated in the
model's dtype (not int64/float64 cast down)."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from edgeq.errors import BadInput
from tests.adversarial.mutate import load, pack
from tests.adversarial.resources import SEED, with_shapes


def test_input_declared_past_the_tensor_budget_is_refused():
    # 2 GiB of int8: under the old "corrupt" cap (2**31), over the 1 GiB activation budget
    data = with_shapes(SEED.read_bytes(), input_shape=[1, 32768, 32768, 2])
    from edgeq.tflite import MAX_ACTIVATION_TENSOR_BYTES, validate

    with pytest.raises(BadInput) as info:
        validate(data, "big.tflite")
    msg = str(info.value)
    assert "[1, 32768, 32768, 2]" in msg and "2,147,483,648 bytes" in msg and "1 GiB per activation tensor" in msg
    assert "serving_default_input_1:0" in msg
    assert info.value.details["cap_bytes"] == MAX_ACTIVATION_TENSOR_BYTES


def test_activations_past_the_total_budget_are_refused():
    # each tensor exactly at the per-tensor cap, together past the total
    data = with_shapes(SEED.read_bytes(), input_shape=[1, 32768, 32768, 1], output_shape=[1, 32768, 32768, 1])
    from edgeq.tflite import validate

    with pytest.raises(BadInput, match="activations .* declare .* bytes, more than edgeq's budget of 2 GiB"):
        validate(data, "big.tflite")


def test_seed_model_is_within_budget():
    from edgeq.tflite import validate

    model = load(SEED.read_bytes())
    validate(pack(model), "seed.tflite")


def test_inspect_refuses_before_allocating(run_cli, tmp_path):
    path = tmp_path / "big.tflite"
    path.write_bytes(with_shapes(SEED.read_bytes(), input_shape=[1, 32768, 32768, 2]))
    r = run_cli("--json", "inspect", path)
    assert r.exit_code == 3, r.stdout
    assert "per activation tensor" in r.json["error"]["message"]


@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.int16, np.int32, np.float32, np.float16, np.bool_])
def test_seeded_input_is_drawn_in_the_model_dtype(dtype):
    from edgeq.native_probe import seeded_input

    shape = (1, 256, 256, 16)
    tracemalloc.start()
    x = seeded_input(np.dtype(dtype), shape)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert x.dtype == np.dtype(dtype) and x.shape == shape
    # the old int64/float64 draw peaked at 8x (int8) to 2x (float32) the input; allow the float16 cast
    assert peak <= 2.1 * max(x.nbytes, np.prod(shape) * 4 if dtype == np.float16 else 0), (peak, x.nbytes)


def _huge_header(fh) -> None:
    np.lib.format.write_array_header_1_0(fh, {"descr": "<f4", "fortran_order": False, "shape": (100_000, 1_000_000)})


@pytest.mark.parametrize("kind", ["npy", "npz"])
def test_data_array_declaring_terabytes_is_refused_from_its_header(tmp_path, kind):
    """A 100-byte file whose header claims 400 GB: refused before anything is allocated (was a MemoryError)."""
    import zipfile

    from edgeq import data
    from edgeq.config import DataConfig

    path = tmp_path / f"huge.{kind}"
    if kind == "npy":
        with open(path, "wb") as fh:
            _huge_header(fh)
    else:
        with zipfile.ZipFile(path, "w") as zf, zf.open("x.npy", "w") as fh:
            _huge_header(fh)
    with pytest.raises(BadInput, match=r"declares shape \[100000, 1000000\] of float32: 400,000,000,000 bytes"):
        data.load(DataConfig(path=str(path)))
