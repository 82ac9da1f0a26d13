"""Float I/O through the generated C: QUANTIZE (float32 -> int8) at the input and DEQUANTIZE (int8 -> float32)
at the output, bit for bit with LiteRT's reference kernels (BUILTIN_REF) on seeded random shapes and
quantization ranges; inputs cover the whole quantized range, beyond it (clamping) and rounding ties."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from edgeq.errors import BadInput
from edgeq.targets.mcu import cgen
from edgeq.tflite import read_bytes
from tests.mcu.conftest import _keras

pytestmark = [pytest.mark.slow, pytest.mark.skipif(shutil.which("gcc") is None, reason="no gcc on PATH")]
ARM_TOOLS = ("arm-none-eabi-gcc", "arm-none-eabi-size", "qemu-system-arm")
NUM_SAMPLES = 16


def _convert_float_io(model, shape: tuple, x: np.ndarray) -> bytes:
    """Full int8 compute with the converter's default float32 input and output (QUANTIZE/DEQUANTIZE)."""
    from edgeq.tfimport import tensorflow

    tf = tensorflow()
    spec = tf.TensorSpec((1, *shape), tf.float32)
    conc = tf.function(lambda t: model(t), input_signature=[spec]).get_concrete_function()
    conv = tf.lite.TFLiteConverter.from_concrete_functions([conc], model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: ([x[i : i + 1].astype(np.float32)] for i in range(len(x)))
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    return conv.convert()


def _inputs(data: bytes, n: int, rng) -> np.ndarray:
    """Uniform over the input's quantized range widened by half (so some values clamp), with rounding ties."""
    info = read_bytes(data, origin="m")
    t = info.inputs[0]
    quantize = next(op for op in info.ops if op.name == "QUANTIZE" and op.inputs[0] == t.index)
    q = info.tensors[quantize.outputs[0]]  # the float input has no quantization: its QUANTIZE's output has
    s, z = q.scales[0], q.zero_points[0]
    lo, hi = s * (-128 - z), s * (127 - z)
    span = hi - lo
    x = rng.uniform(lo - span / 2, hi + span / 2, (n, int(np.prod(t.shape)))).astype(np.float32)
    ties = ((rng.integers(-140, 140, x[0].size) + 0.5) * s).astype(np.float32)
    x[0] = ties
    return x


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    from edgeq.tfimport import tensorflow

    tensorflow()
    k = _keras()
    rng = np.random.default_rng(150)
    folder = tmp_path_factory.mktemp("float_io")
    out = {}
    for i in range(4):
        h, w, c = (int(v) for v in rng.integers(3, 9, 3))
        units = int(rng.integers(2, 20))
        layers = {
            0: lambda t, u=units: k.layers.Conv2D(u, 3, padding="same", activation="relu")(t),
            1: lambda t, u=units: k.layers.Dense(u)(k.layers.Flatten()(t)),
            2: lambda t, u=units: k.layers.Softmax()(k.layers.Dense(u)(k.layers.Flatten()(t))),
            3: lambda t: k.layers.Activation("sigmoid")(k.layers.DepthwiseConv2D(3)(t)),
        }
        inp = k.Input((h, w, c))
        model = k.Model(inp, layers[i](inp))
        lo, hi = sorted(rng.uniform(-5, 5, 2))
        x = rng.uniform(lo, hi + 0.2, (8, h, w, c)).astype(np.float32)
        data = _convert_float_io(model, (h, w, c), x)
        project = cgen.generate(data, f"float_io{i}")
        project.write(folder / str(i))
        out[i] = (data, project, folder / str(i), _inputs(data, NUM_SAMPLES, rng))
    return out


def test_the_models_have_float_io_with_quantize_and_dequantize(cases):
    for _, project, _, _ in cases.values():
        assert project.input_dtype == project.output_dtype == "float32"
        assert "QUANTIZE" in project.ops and "DEQUANTIZE" in project.ops
        assert project.io_bytes == 4 * (project.input_size + project.output_size)


def test_float_io_bit_exact_on_the_host(cases):
    for i, (data, project, folder, x) in cases.items():
        r = cgen.prove(project, data, x, folder, cores=())
        assert r["host"]["bit_exact"] == NUM_SAMPLES, (i, r["host"])
        header = (folder / "model.h").read_text()
        assert "int model_invoke(const float* in, float* out);" in header


@pytest.mark.skipif(any(shutil.which(t) is None for t in ARM_TOOLS), reason="no arm-none-eabi-gcc or QEMU")
def test_float_io_bit_exact_under_qemu(cases):
    """Soft-float on the Cortex-M (-mfloat-abi=soft) rounds as the host's SSE does: IEEE single and double."""
    data, project, folder, x = cases[2]
    r = cgen.prove(project, data, x[:4], folder, cores=("cortex-m4",))
    assert r["qemu"]["cortex-m4"]["bit_exact"] == 4 and r["qemu"]["cortex-m4"]["equals_host_build"]


def test_float_inside_the_model_is_still_refused():
    """DEQUANTIZE feeding more ops computes in float: not an I/O edge, refused with the fix."""
    from edgeq.tfimport import tensorflow

    tensorflow()
    k = _keras()
    inp = k.Input((6,))
    model = k.Model(inp, k.layers.Dense(3)(inp))
    tf = tensorflow()
    data = tf.lite.TFLiteConverter.from_keras_model(model).convert()  # no quantization: float compute
    with pytest.raises(BadInput, match="computes in float"):
        cgen.generate(data, "float_model")
