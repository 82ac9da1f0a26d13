"""The reference model zoo: Keras factories with model cards, built in code and never downloaded.

Every model is a plain tf_keras functional model made of built-in layers only, in the form
quantization-aware training (TF-MOT) and the TFLite converter handle best: Conv -> BatchNorm
-> ReLU with no fused ``activation=``, ReLU / ReLU6 / Softmax as separate layers, no Lambda
and no custom layers. Each module holds a factory and a ``MODEL_CARD`` dict (task, input,
classes or outputs, loss, parameters, MACs, published size, origin).

Importing this package, listing names and reading cards do not import TensorFlow; only
:func:`build` does. The trained, bundled model is ``models/mnist_cnn.keras``; every other
entry is an untrained, randomly initialised architecture.
"""

from __future__ import annotations

import copy
import importlib
import inspect
from types import ModuleType
from typing import Any

from edgeq.errors import UsageError
from edgeq.zoo._common import count_macs

__all__ = ["ZOO", "build", "card", "count_macs", "markdown_table", "names"]

# name -> (module, factory). Modules are imported on first use.
ZOO: dict[str, tuple[str, str]] = {
    "mnist_cnn": ("edgeq.zoo.mnist_cnn", "build_mnist_cnn"),
    "ds_cnn": ("edgeq.zoo.ds_cnn", "build_ds_cnn"),
    "resnet8": ("edgeq.zoo.resnet8", "build_resnet8"),
    "mobilenet_v1_025": ("edgeq.zoo.mobilenet_v1", "build_mobilenet_v1"),
    "fc_autoencoder": ("edgeq.zoo.fc_autoencoder", "build_fc_autoencoder"),
    "mobilenet_v2": ("edgeq.zoo.mobilenet_v2", "build_mobilenet_v2"),
}


def names() -> list[str]:
    """Return the zoo's model names in registry order."""
    return list(ZOO)


def _module(name: str) -> ModuleType:
    if name not in ZOO:
        raise UsageError(f"unknown zoo model {name!r}", f"choose one of: {', '.join(ZOO)}")
    return importlib.import_module(ZOO[name][0])


def card(name: str) -> dict:
    """Return a copy of the model card of ``name``, without importing TensorFlow.

    Raises:
        UsageError: ``name`` is not in the zoo.
    """
    return copy.deepcopy(_module(name).MODEL_CARD)


def build(name: str, **kwargs: Any) -> Any:
    """Build the uncompiled ``tf_keras.Model`` ``name``; keyword arguments go to its factory.

    Args:
        name: a key of :data:`ZOO`.
        **kwargs: factory options, e.g. ``input_shape=(32, 32, 3), num_classes=10, alpha=0.35``
            for ``mobilenet_v2``; the card describes the defaults.

    Returns:
        A fresh, randomly initialised, uncompiled ``tf_keras.Model``.

    Raises:
        UsageError: ``name`` is not in the zoo, an option is not one the factory takes,
            or an option value is invalid.
    """
    factory = getattr(_module(name), ZOO[name][1])
    signature = inspect.signature(factory)
    unknown = sorted(set(kwargs) - set(signature.parameters))
    if unknown:
        raise UsageError(
            f"zoo model {name!r} has no option {', '.join(unknown)}",
            f"its options are: {', '.join(signature.parameters)}",
        )
    return factory(**kwargs)


def markdown_table() -> str:
    """The zoo as a Markdown table, one row per card (what models/README.md shows)."""
    rows = [
        "| Name | Task | Input | Classes / outputs | Parameters | MACs | Published reference | Origin |",
        "|---|---|---|---|---:|---:|---|---|",
    ]
    for name in ZOO:
        c = card(name)
        outputs = c["num_classes"] if "num_classes" in c else f"{c['num_outputs']} (reconstruction)"
        shape = "x".join(str(d) for d in c["input"]["shape"])
        ref = c["reference"]
        source = f"[source]({ref})" if ref.startswith("https://") else f"`{ref}`"
        rows.append(
            f"| `{name}` | {c['task']} | {shape} | {outputs} | {c['parameters']:,} | {c['macs']:,} "
            f"| {c['published'] or '-'} | {c['origin']} ({source}) |"
        )
    return "\n".join(rows) + "\n"
