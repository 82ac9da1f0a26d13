"""The model zoo: cards match the built models, every model is QAT-friendly and trains a step."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import edgeq.zoo as zoo
from edgeq.errors import USAGE, UsageError
from tests.conftest import ROOT

# MobileNetV2 is checked against its card at the default 224x224 (building is cheap), but
# quantized and trained at CIFAR size so the whole file stays well under a minute on 2 cores.
SMALL = {"mobilenet_v2": {"input_shape": (32, 32, 3), "alpha": 0.35, "num_classes": 10}}

# Layer types TF-MOT's default 8-bit scheme annotates and the TFLite converter turns into
# int8 builtins; anything else (Lambda, Activation, custom layers) has no place in the zoo.
QAT_FRIENDLY = {
    "InputLayer",
    "Conv2D",
    "DepthwiseConv2D",
    "Dense",
    "BatchNormalization",
    "ReLU",
    "Softmax",
    "Add",
    "MaxPooling2D",
    "AveragePooling2D",
    "GlobalAveragePooling2D",
    "ZeroPadding2D",
    "Flatten",
    "Reshape",
    "Dropout",
}
WEIGHT_LAYERS = {"Conv2D", "DepthwiseConv2D", "Dense"}


def _random_batch(model, kind: str, n: int):
    """Seeded inputs and targets: class ids for a classifier, the input itself for an autoencoder."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, *model.input_shape[1:])).astype(np.float32)
    return x, (x if kind == "autoencoder" else rng.integers(0, model.output_shape[-1], size=n))


@pytest.fixture(scope="module", params=zoo.names())
def small_model(request):
    """(name, model): each zoo model at its test size, built once for the module."""
    import tf_keras

    tf_keras.utils.set_random_seed(0)
    return request.param, zoo.build(request.param, **SMALL.get(request.param, {}))


@pytest.mark.parametrize("name", zoo.names())
def test_card_matches_default_build(name):
    card = zoo.card(name)
    model = zoo.build(name)
    assert (model.count_params(), zoo.count_macs(model)) == (card["parameters"], card["macs"])
    assert list(model.input_shape[1:]) == card["input"]["shape"]
    assert model.output_shape[-1] == card.get("num_classes", card.get("num_outputs"))
    assert card["kind"] == ("autoencoder" if card["loss"] == "mse" else "classifier")
    assert card["name"] == name and card["origin"] and card["reference"]


def test_mobilenet_v2_matches_keras_applications():
    import tf_keras

    ref = tf_keras.applications.MobileNetV2(weights=None, alpha=0.35, input_shape=(96, 96, 3), classes=7)
    ours = zoo.build("mobilenet_v2", alpha=0.35, input_shape=(96, 96, 3), num_classes=7)
    assert ours.count_params() == ref.count_params()
    assert zoo.count_macs(ours) == zoo.count_macs(ref)


def test_only_qat_friendly_layers(small_model):
    name, model = small_model
    config = model.get_config()["layers"]
    by_name = {layer["name"]: layer for layer in config}
    assert {layer["class_name"] for layer in config} <= QAT_FRIENDLY
    for layer in config:
        if layer["class_name"] in WEIGHT_LAYERS:
            # ReLU, ReLU6 and softmax are separate layers, so BN can fold into the conv.
            assert layer["config"]["activation"] == "linear", f"{name}: {layer['name']} fuses an activation"
        if layer["class_name"] == "BatchNormalization":
            (source,) = {node[0] for node in layer["inbound_nodes"][0]}
            assert by_name[source]["class_name"] in WEIGHT_LAYERS, f"{name}: {layer['name']} follows {source}"


def test_tfmot_quantize_model_accepts_and_wraps(small_model):
    import tensorflow_model_optimization as tfmot

    name, model = small_model
    qat = tfmot.quantization.keras.quantize_model(model)
    wrapped = {type(layer.layer).__name__ for layer in qat.layers if hasattr(layer, "layer")}
    assert wrapped & WEIGHT_LAYERS, name
    assert not [layer.name for layer in qat.layers if type(layer).__name__ in WEIGHT_LAYERS], "unwrapped weights"
    # One step through the fake-quant graph: the folded Conv-BN-ReLU wrappers must also train.
    qat.compile(optimizer="adam", loss=zoo.card(name)["loss"], run_eagerly=True)
    loss = qat.train_on_batch(*_random_batch(model, zoo.card(name)["kind"], 8))
    assert np.isfinite(loss)


def test_trains_a_few_steps(small_model):
    import tf_keras

    name, model = small_model
    card = zoo.card(name)
    x, y = _random_batch(model, card["kind"], 16)
    tf_keras.utils.set_random_seed(0)
    # Eager: two steps cost less than tracing the training graph of the bigger models.
    model.compile(optimizer="adam", loss=card["loss"], run_eagerly=True)
    history = model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    assert np.isfinite(history.history["loss"]).all()


@pytest.mark.slow
def test_fc_autoencoder_with_batch_norm_stays_int8_through_qat():
    """TF-MOT leaves Dense -> BatchNorm as float FULLY_CONNECTED ops after conversion; edgeq's
    QAT folds each such BatchNorm into its Dense first, so every op stays integer."""
    import tensorflow as tf
    import tensorflow_model_optimization as tfmot

    from edgeq.quantize import qat
    from edgeq.tflite import read_bytes

    model, notes = qat.prepare(zoo.build("fc_autoencoder", input_dim=64))
    assert len(notes) == 9 and not any(type(layer).__name__ == "BatchNormalization" for layer in model.layers)
    converter = tf.lite.TFLiteConverter.from_keras_model(tfmot.quantization.keras.quantize_model(model))
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    info = read_bytes(converter.convert())
    assert info.float_ops == [] and info.op_histogram()["FULLY_CONNECTED"] == 10


def test_bundled_mnist_weights_fit_the_factory():
    import tf_keras

    bundled = tf_keras.models.load_model(ROOT / "models" / "mnist_cnn.keras", compile=False)
    fresh = zoo.build("mnist_cnn")
    assert [layer.name for layer in fresh.layers] == [layer.name for layer in bundled.layers]
    assert [w.shape for w in fresh.get_weights()] == [w.shape for w in bundled.get_weights()]


def test_importing_the_zoo_and_reading_cards_skips_tensorflow():
    code = (
        "import sys, edgeq.zoo as z\n"
        "[z.card(n) for n in z.names()]\n"
        "z.markdown_table()\n"
        "print(sorted(m for m in ('tensorflow', 'tf_keras', 'keras') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_unknown_name_and_option_are_usage_errors():
    with pytest.raises(UsageError, match="unknown zoo model 'resnet50'") as err:
        zoo.build("resnet50")
    assert err.value.exit_code == USAGE
    assert err.value.hint == "choose one of: " + ", ".join(zoo.names())
    with pytest.raises(UsageError, match="unknown zoo model"):
        zoo.card("nope")
    with pytest.raises(UsageError, match="has no option alpha"):
        zoo.build("resnet8", alpha=0.5)
    with pytest.raises(UsageError, match="3 positive ints"):
        zoo.build("ds_cnn", input_shape=(49, 10))


def test_readme_table_is_generated_from_the_cards():
    assert zoo.markdown_table() in (ROOT / "models" / "README.md").read_text()
