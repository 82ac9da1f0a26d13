"""Each generated-C kernel against LiteRT's reference kernels (BUILTIN_REF), bit for bit.

Tiny single-op models are built in code with the TFLite converter on seeded random shapes, weights and
calibration ranges (so the quantization parameters vary), converted once per module; every case is then
generated, compiled with the host's gcc and run on 16 seeded int8 inputs.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from edgeq.targets.mcu import cgen
from tests.mcu.conftest import _keras, convert_int8

pytestmark = [pytest.mark.slow, pytest.mark.skipif(shutil.which("gcc") is None, reason="no gcc on PATH")]

NUM_SAMPLES = 16


def _cases(k, tf):
    """name -> (input shape, Keras layers applied to the input, expected op). Seeded, so shapes are fixed."""
    rng = np.random.default_rng(15)
    cases = {}
    for i in range(4):
        h, w = (int(v) for v in rng.integers(5, 12, 2))
        cin, cout = int(rng.integers(1, 6)), int(rng.integers(1, 9))
        kh, kw = (int(v) for v in rng.integers(1, 4, 2))
        stride = int(rng.integers(1, 3))
        dil = 1 if stride > 1 else int(rng.integers(1, 3))
        pad = ("same", "valid")[i % 2]
        act = (None, "relu", "relu6", None)[i]
        cases[f"conv{i}_{kh}x{kw}s{stride}d{dil}{pad}_{act}"] = (
            (h, w, cin),
            lambda t, a=(cout, (kh, kw), stride, pad, dil, act): k.layers.Conv2D(
                a[0], a[1], strides=a[2], padding=a[3], dilation_rate=a[4], activation=a[5]
            )(t),
            "CONV_2D",
        )
        mult = int(rng.integers(1, 3))
        cases[f"dwconv{i}_{kh}x{kw}s{stride}d{dil}m{mult}{pad}_{act}"] = (
            (h, w, cin),
            lambda t, a=((kh, kw), stride, pad, dil, mult, act): k.layers.DepthwiseConv2D(
                a[0], strides=a[1], padding=a[2], dilation_rate=a[3], depth_multiplier=a[4], activation=a[5]
            )(t),
            "DEPTHWISE_CONV_2D",
        )
        units, din = int(rng.integers(1, 40)), int(rng.integers(1, 64))
        cases[f"fc{i}_{din}to{units}_{act}"] = (
            (din,),
            lambda t, a=(units, act): k.layers.Dense(a[0], activation=a[1])(t),
            "FULLY_CONNECTED",
        )
        ps, pst = int(rng.integers(2, 4)), int(rng.integers(1, 3))
        cases[f"maxpool{i}_{ps}s{pst}{pad}"] = (
            (h, w, cin),
            lambda t, a=(ps, pst, pad): k.layers.MaxPooling2D(a[0], a[1], padding=a[2])(t),
            "MAX_POOL_2D",
        )
        cases[f"avgpool{i}_{ps}s{pst}{pad}"] = (
            (h, w, cin),
            lambda t, a=(ps, pst, pad): k.layers.AveragePooling2D(a[0], a[1], padding=a[2])(t),
            "AVERAGE_POOL_2D",
        )
        depth = int(rng.integers(2, 40))
        cases[f"softmax{i}_{depth}"] = ((depth,), lambda t: k.layers.Softmax()(t), "SOFTMAX")
        cases[f"add{i}_{cout}"] = (
            (h, w, cin),
            lambda t, a=cout: k.layers.Add()([k.layers.Conv2D(a, 1)(t), k.layers.Conv2D(a, 3, padding="same")(t)]),
            "ADD",
        )
        cases[f"add_bcast{i}_{cout}"] = (
            (h, w, cout),
            lambda t, a=rng.standard_normal(cout).astype(np.float32): t + tf.constant(a),
            "ADD",
        )
        cases[f"mul{i}_{cout}"] = (
            (h, w, cin),
            lambda t, a=cout: k.layers.Multiply()([k.layers.Conv2D(a, 1)(t), k.layers.Conv2D(a, 1)(t)]),
            "MUL",
        )
        axes = ([1, 2], [1], [3], [1, 2])[i]
        cases[f"mean{i}_axes{''.join(map(str, axes))}_keep{i % 2}"] = (
            (h, w, cin),
            lambda t, a=(axes, bool(i % 2)): tf.reduce_mean(k.layers.Conv2D(3, 1)(t), axis=a[0], keepdims=a[1]),
            "MEAN",
        )
        cases[f"concat{i}"] = (
            (h, w, cin),
            lambda t, a=(cout, (-1, 1, 2, -1)[i]): (
                tf.concat([k.layers.Conv2D(a[0], 1)(t), t], axis=a[1])
                if a[1] == -1
                else tf.concat([t, t * 1.0], axis=a[1])
            ),
            "CONCATENATION",
        )
        pads = [[0, 0], [int(v) for v in rng.integers(0, 3, 2)], [int(v) for v in rng.integers(0, 3, 2)], [0, i % 2]]
        cases[f"pad{i}"] = ((h, w, cin), lambda t, a=pads: tf.pad(t, a), "PAD")
        cases[f"reshape{i}"] = (
            (h, w, cin),
            lambda t, a=units: k.layers.Dense(a)(k.layers.Flatten()(t)),
            "RESHAPE",
        )
    # element-wise ops, tabulated by running LiteRT on the op alone (lut.py)
    unary = {
        "LOGISTIC": tf.nn.sigmoid,
        "TANH": tf.nn.tanh,
        "HARD_SWISH": lambda y: y * tf.nn.relu6(y + 3.0) * (1.0 / 6.0),  # the pattern the converter fuses
        "LEAKY_RELU": lambda y: tf.nn.leaky_relu(y, 0.1),
        "GELU": tf.nn.gelu,
    }
    for op_name, fn in unary.items():
        cases[op_name.lower()] = ((5, 6, 3), lambda t, f=fn: f(k.layers.Conv2D(4, 1)(t)), op_name)
    cases["relu_alone"] = ((7,), tf.nn.relu, "RELU")
    # a RESHAPE writing the model's output cannot alias its input: it copies into the caller's array
    cases["reshape_to_output"] = ((4, 5, 3), lambda t: k.layers.Flatten()(k.layers.Conv2D(2, 3)(t)), "RESHAPE")
    return cases


@pytest.fixture(scope="module")
def proofs(tmp_path_factory):
    """{case: (ops in the model, expected op, prove() result)} for every case."""
    from edgeq.tfimport import tensorflow

    tf = tensorflow()
    k = _keras()
    folder = tmp_path_factory.mktemp("cgen_kernels")
    rng = np.random.default_rng(0)
    out = {}
    for name, (shape, layer_fn, expected) in _cases(k, tf).items():
        inp = k.Input(shape)
        model = k.Model(inp, layer_fn(inp))
        # a calibration range of its own per case: input scales and zero points vary
        lo, hi = sorted(rng.uniform(-4, 4, 2))
        x = rng.uniform(lo, hi + 0.1, (8, *shape)).astype(np.float32)
        path = convert_int8(folder, name, model, shape, x)
        data = path.read_bytes()
        project = cgen.generate(data, name)
        project.write(folder / name)
        samples = np.random.default_rng(1).integers(-128, 128, (NUM_SAMPLES, project.input_size)).astype(np.int8)
        out[name] = (project.ops, expected, cgen.prove(project, data, samples, folder / name, cores=()))
    return out


def test_every_kernel_matches_builtin_ref(proofs):
    wrong = {
        n: f"{r['host']['bit_exact']}/{NUM_SAMPLES} bit-exact, max diff {r['host']['max_abs_diff_steps']}"
        for n, (_, _, r) in proofs.items()
        if r["host"]["bit_exact"] != NUM_SAMPLES
    }
    assert not wrong, "; ".join(f"{n}: {v}" for n, v in wrong.items())


def test_every_case_exercises_its_op(proofs):
    missing = [n for n, (ops, expected, _) in proofs.items() if expected not in ops]
    assert not missing, {n: proofs[n][0] for n in missing}


def test_fused_activations_are_covered(proofs):
    names = " ".join(proofs)
    for act in ("relu6", "relu", "None"):
        assert f"_{act}" in names
