"""Quantization-aware training with TensorFlow Model Optimization, for real models.

TF-MOT's ``quantize_model`` stops at the first layer its default 8-bit registry does not know.
edgeq instead decides per layer (:func:`plan`): layers the registry supports are annotated as
TF-MOT would; simple layers without weights (Rescaling, Multiply, ...) get an output-only
QuantizeConfig; everything else is left float during training and reported with what that
means on each kind of target. Then ``quantize_apply`` builds the QAT model.
"""

from __future__ import annotations

import enum
import re
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from edgeq import keras_objects
from edgeq.errors import BadInput

# Layers without weights whose output can simply be fake-quantized: the converter gives them
# int8 kernels (MUL/ADD/SUB/MAXIMUM/MINIMUM), so simulating an int8 output is exact. (Not ELU:
# TF 2.21's converter keeps ELU in float even in plain PTQ.)
OUTPUT_ONLY = ("Rescaling", "Multiply", "Subtract", "Maximum", "Minimum", "Average")
FOLDABLE_BEFORE_BN = ("Conv2D", "DepthwiseConv2D")  # TF-MOT's own Conv -> BN transforms


class Status(enum.StrEnum):
    TFMOT = "quantized"  # TF-MOT's default 8-bit scheme
    OUTPUT_ONLY = "quantized (output only)"  # edgeq's OutputQuantizeConfig
    FLOAT = "float during training"


@dataclass(frozen=True)
class LayerPlan:
    name: str
    layer_type: str
    status: Status
    reason: str = ""

    def to_dict(self) -> dict:
        return {"layer": self.name, "type": self.layer_type, "status": self.status.value, "reason": self.reason}


def _tfmot() -> Any:
    return keras_objects.tfmot()


output_config_class = keras_objects.output_config_class


def clone_layer(layer: Any) -> Any:
    """A fresh copy of ``layer`` (for ``clone_model``). A Lambda keeps its live Python function:
    going through its serialized config would need unsafe deserialization, and the user already
    trusted this model when it was loaded."""
    if type(layer).__name__ == "Lambda":
        import tf_keras

        config = layer.get_config()
        return tf_keras.layers.Lambda(
            layer.function, output_shape=layer._output_shape, arguments=config.get("arguments"), name=layer.name
        )
    return layer.__class__.from_config(layer.get_config())


def scope() -> AbstractContextManager:
    """The deserialization scope for QAT models (TF-MOT wrappers and edgeq's config)."""
    return keras_objects.qat_scope()


def _inbound_layers(layer: Any) -> list[Any]:
    nodes = getattr(layer, "_inbound_nodes", [])
    if not nodes:
        return []
    inbound = nodes[0].inbound_layers
    return list(inbound) if isinstance(inbound, (list, tuple)) else [inbound]


def _consumers(config: dict, name: str) -> list[str]:
    return [
        layer["name"]
        for layer in config["layers"]
        if any(h[0] == name for node in layer.get("inbound_nodes", []) for h in node)
    ]


def _last_axis(axis: Any, rank: int) -> bool:
    axes = axis if isinstance(axis, (list, tuple)) else [axis]
    return len(axes) == 1 and axes[0] in (-1, rank - 1)


def fold_dense_batchnorm(model: Any) -> tuple[Any, list[tuple[str, str]]]:
    """Fold each BatchNormalization that follows a linear Dense into that Dense.

    TF-MOT folds BatchNormalization only into convolutions; after a Dense it stays a separate
    op and the converted FULLY_CONNECTED ops come out float. The fold is exact at inference:
    ``W' = W * g``, ``b' = (b - mean) * g + beta`` with ``g = gamma / sqrt(var + eps)``.

    Returns:
        A functional tf_keras model without those BatchNormalization layers, and the
        (dense, batchnorm) pairs that were folded.
    """
    import numpy as np
    import tf_keras

    if type(model).__name__ == "Sequential":
        model = tf_keras.Model(model.inputs, model.outputs, name=model.name)
    config = model.get_config()
    by_name = {layer["name"]: layer for layer in config["layers"]}
    pairs = []
    for layer in config["layers"]:
        if layer["class_name"] != "BatchNormalization" or len(layer["inbound_nodes"]) != 1:
            continue
        inbound = layer["inbound_nodes"][0]
        prev = by_name.get(inbound[0][0]) if len(inbound) == 1 else None
        if (
            prev is not None
            and prev["class_name"] == "Dense"
            and prev["config"].get("activation") == "linear"
            and _consumers(config, prev["name"]) == [layer["name"]]
            and _last_axis(layer["config"].get("axis"), len(model.get_layer(prev["name"]).output_shape))
        ):
            pairs.append((prev["name"], layer["name"]))
    if not pairs:
        return model, []
    dropped = {bn: dense for dense, bn in pairs}

    def rewire(history: list) -> list:
        return [[dropped.get(h[0], h[0]), *h[1:]] for h in history]

    layers = []
    for layer in config["layers"]:
        if layer["name"] in dropped:
            continue
        if any(layer["name"] == dense for dense, _ in pairs):
            layer = {**layer, "config": {**layer["config"], "use_bias": True}}
        layers.append({**layer, "inbound_nodes": [rewire(node) for node in layer.get("inbound_nodes", [])]})
    new_config = {**config, "layers": layers, "output_layers": rewire(config["output_layers"])}
    folded = tf_keras.Model.from_config(new_config)
    for layer in folded.layers:
        old = model.get_layer(layer.name)
        if layer.name not in [d for d, _ in pairs]:
            layer.set_weights(old.get_weights())
            continue
        bn = model.get_layer(next(b for d, b in pairs if d == layer.name))
        kernel = old.kernel.numpy()
        bias = old.bias.numpy() if old.use_bias else np.zeros(kernel.shape[-1], kernel.dtype)
        gamma = bn.gamma.numpy() if bn.scale else np.ones_like(bias)
        beta = bn.beta.numpy() if bn.center else np.zeros_like(bias)
        g = gamma / np.sqrt(bn.moving_variance.numpy() + bn.epsilon)
        layer.set_weights([kernel * g, (bias - bn.moving_mean.numpy()) * g + beta])
    return folded, pairs


def prepare(model: Any) -> tuple[Any, list[str]]:
    """Rewrite what QAT cannot handle as given but can exactly: Dense -> BN becomes one Dense."""
    folded, pairs = fold_dense_batchnorm(model)
    return folded, [
        f"folded {bn} into {dense} before QAT (TF-MOT folds BatchNormalization only into convolutions)"
        for dense, bn in pairs
    ]


def plan(model: Any) -> list[LayerPlan]:
    """Decide, per layer, how QAT treats it (see the module docstring)."""
    from tensorflow_model_optimization.python.core.quantization.keras.default_8bit import (
        default_8bit_quantize_registry as registry_module,
    )

    registry = registry_module.Default8BitQuantizeRegistry()
    plans = []
    for layer in model.layers:
        kind = type(layer).__name__
        if kind == "InputLayer":
            continue
        if kind == "BatchNormalization":
            before = _inbound_layers(layer)
            prev = before[0] if len(before) == 1 else None
            prev_kind = type(prev).__name__ if prev is not None else ""
            act = getattr(getattr(prev, "activation", None), "__name__", "linear")
            if prev is not None and prev_kind in FOLDABLE_BEFORE_BN and act == "linear":
                plans.append(LayerPlan(layer.name, kind, Status.TFMOT, f"folded into {prev.name}"))
            elif prev is not None and prev_kind in FOLDABLE_BEFORE_BN:
                plans.append(
                    LayerPlan(
                        layer.name,
                        kind,
                        Status.FLOAT,
                        f"follows {prev.name} with a fused {act}: build Conv -> BN -> ReLU",
                    )
                )
            else:
                plans.append(
                    LayerPlan(
                        layer.name,
                        kind,
                        Status.FLOAT,
                        "BatchNormalization not after a convolution: TF-MOT cannot fold it",
                    )
                )
        elif kind == "Activation" and not registry.supports(layer):
            plans.append(LayerPlan(layer.name, kind, Status.FLOAT, "activation TF-MOT does not quantize"))
        elif registry.supports(layer):
            try:
                registry.get_quantize_config(layer)
                plans.append(LayerPlan(layer.name, kind, Status.TFMOT))
            except Exception as exc:  # the registry refuses some configs of supported classes
                plans.append(LayerPlan(layer.name, kind, Status.FLOAT, str(exc).splitlines()[0][:200]))
        elif kind in OUTPUT_ONLY:
            plans.append(LayerPlan(layer.name, kind, Status.OUTPUT_ONLY, "no weights: its output is fake-quantized"))
        elif kind in ("Lambda", "TFOpLambda", "SlicingOpLambda"):
            plans.append(
                LayerPlan(layer.name, kind, Status.FLOAT, "arbitrary Python code: TF-MOT cannot know its quantization")
            )
        else:
            plans.append(LayerPlan(layer.name, kind, Status.FLOAT, f"TF-MOT 0.8 has no 8-bit scheme for {kind}"))
    return plans


def target_impact(plans: list[LayerPlan]) -> list[str]:
    """What each float-during-training layer means on the kinds of target edgeq builds for."""
    floats = [p for p in plans if p.status == Status.FLOAT]
    if not floats:
        return []
    names = ", ".join(f"{p.name} ({p.layer_type})" for p in floats)
    return [
        f"{len(floats)} layers trained without fake quantization: {names}",
        "cpu: they are calibrated after training like PTQ (or kept float if their op has no int8 kernel)",
        "coral / ethos-u / mcu (integer-only): any of them whose op stays float after conversion falls back "
        "to the CPU, and on the Edge TPU every op after it leaves the accelerator too",
    ]


def apply(model: Any, plans: list[LayerPlan]) -> Any:
    """Build the QAT model: annotate per ``plans``, then ``quantize_apply``.

    Raises:
        BadInput: TF-MOT still refuses the model; the layer is named when TF-MOT names it.
    """
    import tf_keras

    tfmot = _tfmot()
    qk = tfmot.quantization.keras
    by_name = {p.name: p for p in plans}
    config_cls = output_config_class()

    def clone(layer: Any) -> Any:
        new = clone_layer(layer)
        p = by_name.get(layer.name)
        if p is None or p.status == Status.FLOAT:
            return new
        if p.status == Status.OUTPUT_ONLY:
            return qk.quantize_annotate_layer(new, quantize_config=config_cls())
        return qk.quantize_annotate_layer(new)

    annotated = tf_keras.models.clone_model(model, clone_function=clone)
    annotated.set_weights(model.get_weights())
    # quantize_apply clones the model through its config; a Lambda's code was already trusted
    # when the model was loaded (--trust-model / --custom-objects), so let it through here
    has_code = any(type(layer).__name__ == "Lambda" for layer in model.layers)
    from tf_keras.src.saving.serialization_lib import SafeModeScope

    try:
        with scope(), SafeModeScope(safe_mode=not has_code):
            return qk.quantize_apply(annotated)
    except (RuntimeError, ValueError, TypeError) as exc:
        text = str(exc)
        m = re.search(r"Layer ([\w/.-]+)", text)
        where = f" at layer {m.group(1)}" if m else ""
        raise BadInput(
            f"TF-MOT cannot build the QAT model{where}: {text.splitlines()[0][:200]}",
            "quantize without --qat (PTQ), or rebuild that part as Conv -> BN -> ReLU",
        ) from exc
