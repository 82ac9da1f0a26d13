"""Moving a Keras 3 model to tf_keras (config and weights), which TF-MOT needs for QAT.

The translation works on the public ``get_config()`` of Functional and Sequential models:
Keras 3 serialization wrappers become tf_keras ones, renamed arguments are renamed, and keys
tf_keras does not know are dropped and reported. A layer class with no tf_keras equivalent is
named in the error.
"""

from __future__ import annotations

import inspect
from typing import Any

from edgeq.errors import BadInput

# Keras 3 argument name -> tf_keras argument name, per layer class.
RENAMED_ARGS = {
    "LeakyReLU": {"negative_slope": "alpha"},
    "InputLayer": {"batch_shape": "batch_input_shape"},
}
# Activations both Keras name alike but compute differently: moving them over would silently change the model.
DIFFERENT_ACTIVATIONS = {"hard_sigmoid": "Keras 3 computes relu6(x + 3) / 6, tf_keras clip(0.2 * x + 0.5, 0, 1)"}
_ACTIVATION_KEYS = ("activation", "recurrent_activation")
_BASE_LAYER_KEYS = {"name", "trainable", "dtype", "input_shape", "batch_input_shape", "batch_size", "input_dim"}


def _plain(value: Any) -> Any:
    """Keras 3 wraps objects as {module, class_name, config, registered_name}; tf_keras wants
    {class_name, config}, and a dtype policy as its name."""
    if isinstance(value, dict):
        if value.get("class_name") == "DTypePolicy":
            return value["config"]["name"]
        if "module" in value and "class_name" in value:
            return {"class_name": value["class_name"], "config": _object_config(value)}
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _object_config(value: dict) -> Any:
    """The config of a serialized initializer/regularizer/constraint, keeping only the
    arguments the tf_keras class takes (Keras 3 added some, e.g. input_axes)."""
    import tf_keras

    config = _plain(value.get("config"))
    family = str(value.get("module", "")).rsplit(".", 1)[-1]
    cls = getattr(getattr(tf_keras, family, None), value["class_name"], None)
    if cls is None or not isinstance(config, dict):
        return config
    accepted = set(inspect.signature(cls.__init__).parameters)
    if any(p.kind == p.VAR_KEYWORD for p in inspect.signature(cls.__init__).parameters.values()):
        return config
    return {k: v for k, v in config.items() if k in accepted}


def _layer_config(layer_cfg: dict, dropped: list[str]) -> dict:
    import tf_keras

    class_name = layer_cfg["class_name"]
    cls = getattr(tf_keras.layers, class_name, None)
    if cls is None:
        name = layer_cfg.get("config", {}).get("name", class_name)
        raise BadInput(
            f"layer {name!r} ({class_name}) has no tf_keras equivalent, and QAT needs tf_keras",
            "rebuild the model with tf_keras layers, or quantize it with PTQ (without --qat)",
        )
    config = _plain(layer_cfg.get("config", {}))
    for key in _ACTIVATION_KEYS:
        _check_activation(config.get("name", class_name), config.get(key))
    renames = RENAMED_ARGS.get(class_name, {})
    accepted = set(inspect.signature(cls.__init__).parameters) | _BASE_LAYER_KEYS
    out = {}
    for key, value in config.items():
        key = renames.get(key, key)
        if key in accepted:
            out[key] = value
        else:
            dropped.append(f"{config.get('name', class_name)}.{key}")
    return {"class_name": class_name, "config": out, "name": out.get("name")}


def _check_activation(layer: str, activation: Any) -> None:
    """Refuse an activation tf_keras lacks (hard_silu, ...) or computes differently (hard_sigmoid)."""
    import tf_keras

    if not isinstance(activation, str):
        return
    why = DIFFERENT_ACTIVATIONS.get(activation)
    if why is None:
        try:
            tf_keras.activations.get(activation)
            return
        except (ValueError, TypeError):
            why = "tf_keras has no such activation"
    raise BadInput(
        f"layer {layer!r} uses activation {activation!r} with no tf_keras equivalent ({why}), and QAT needs tf_keras",
        "quantize it with PTQ (without --qat), or rebuild the model with tf_keras activations",
    )


def _history(arg: Any) -> Any:
    """Keras 3 inbound args (keras tensors, lists of them) -> tf_keras [name, node, tensor, {}]."""
    if isinstance(arg, dict) and arg.get("class_name") == "__keras_tensor__":
        name, node, tensor = arg["config"]["keras_history"]
        return [[name, node, tensor, {}]]
    if isinstance(arg, list):
        return [h for a in arg for h in _history(a)]
    raise BadInput("model has a layer called with non-tensor arguments", "rebuild the model with tf_keras for QAT")


def to_tf_keras(model: Any) -> tuple[Any, list[str]]:
    """A tf_keras copy of a Keras 3 Functional or Sequential model, with its weights.

    Returns:
        The tf_keras model and the Keras 3-only config keys that were dropped.

    Raises:
        BadInput: a subclassed model, or a layer without a tf_keras equivalent.
    """
    import tf_keras

    config = model.get_config()
    dropped: list[str] = []
    if type(model).__name__ == "Sequential":
        layers = [_layer_config(layer, dropped) for layer in config["layers"]]
        new = tf_keras.Sequential.from_config({"name": config.get("name"), "layers": layers})
    elif "layers" in config and "input_layers" in config:
        layers = []
        for layer in config["layers"]:
            translated = _layer_config(layer, dropped)
            nodes = layer.get("inbound_nodes", [])
            translated["inbound_nodes"] = [_history(n["args"][0]) if n.get("args") else [] for n in nodes]
            layers.append(translated)
        new = tf_keras.Model.from_config(
            {
                "name": config.get("name"),
                "layers": layers,
                "input_layers": _endpoints(config["input_layers"]),
                "output_layers": _endpoints(config["output_layers"]),
            }
        )
    else:
        raise BadInput(
            f"{type(model).__name__} is a subclassed Keras 3 model; QAT needs a Functional or Sequential model",
            "rebuild it with the functional API",
        )
    for layer in model.layers:
        weights = layer.get_weights()
        if weights:
            new.get_layer(layer.name).set_weights(weights)
    return new, dropped


def _endpoints(value: Any) -> list:
    # a single endpoint is [name, node, tensor]; several are a list of those
    if value and isinstance(value[0], str):
        return [value]
    return value
