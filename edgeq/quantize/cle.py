"""Cross-layer equalization (CLE) of a Keras model before int8 conversion.

For two weighted layers in a row (conv or dense, depthwise into pointwise), connected only through
positively homogeneous, per-channel layers (ReLU, LeakyReLU, max/average pooling, BatchNormalization,
Dropout, zero padding, Flatten), scaling the first layer's output channel c by 1/s_c and the second
layer's matching input weights by s_c leaves the float function unchanged. Choosing
s_c = sqrt(r1_c / r2_c), where r1_c and r2_c are the weight ranges of channel c in the two layers,
gives both layers the same per-channel range (Nagel et al., "Data-Free Quantization", 2019), so one
per-tensor activation scale fits every channel.

BatchNormalization right after a linear conv/dense is folded into it first (the BN layer is left in
place as an identity, so the model's structure does not change); a BN further along the path is
kept and made to commute with the scaling (its mean and beta scale with the channel).

Not equalized, each with the reason in the result: paths through Add, Concatenate or any layer
that mixes channels or branches (residuals: the other branch would need the same scale); a layer
output used by more than one layer; ReLU6 and other clipping or non-homogeneous activations (the
clip at 6 would move with the scale; ReLU6 is skipped, not rewritten); depthwise convs as the
second layer of a pair (that needs conv-depthwise-conv triplets, not done here).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgeq.errors import BadInput, UsageError
from edgeq.modelio import LoadedModel

_HOMOGENEOUS_ACTIVATIONS = ("linear", "relu")
_PASS_THROUGH = (
    "MaxPooling2D",
    "MaxPooling1D",
    "AveragePooling2D",
    "GlobalAveragePooling2D",
    "GlobalMaxPooling2D",
    "Dropout",
    "SpatialDropout2D",
    "ZeroPadding2D",
)


@dataclass(frozen=True)
class CleConfig:
    """How far equalization iterates over chains of pairs (a layer in two pairs moves twice).

    Args:
        max_sweeps: passes over all pairs at most.
        tolerance: stop when every scale of a pass is within ``1 +- tolerance``.
    """

    max_sweeps: int = 20
    tolerance: float = 1e-3

    def __post_init__(self) -> None:
        if self.max_sweeps < 1:
            raise UsageError(f"CLE needs at least one sweep, got {self.max_sweeps}", "e.g. max_sweeps=20")
        if not self.tolerance > 0:
            raise UsageError(f"CLE tolerance must be positive, got {self.tolerance}", "e.g. tolerance=1e-3")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class CleResult:
    """The equalized model and what was done: pairs equalized, pairs skipped with the reason."""

    model: LoadedModel
    pairs: tuple[str, ...]
    skipped: tuple[str, ...]
    folded_batchnorm: tuple[str, ...]
    sweeps: int
    max_scale: float  # the largest ratio between two channels' scales of one pair, first sweep
    seconds: float
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def changed(self) -> bool:
        return bool(self.pairs or self.folded_batchnorm)

    def to_dict(self) -> dict:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "model"}
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()} | {"seconds": round(self.seconds, 3)}


@dataclass
class _Pair:
    first: Any
    second: Any
    path: list[Any]  # layers between them
    flatten_channels: int | None  # channels before a Flatten into a Dense (rows c, c+C, ...)

    def label(self) -> str:
        through = f" (through {', '.join(layer.name for layer in self.path)})" if self.path else ""
        return f"{self.first.name} -> {self.second.name}{through}"


def not_keras(model_path: str) -> tuple[str, str] | None:
    """Why ``--cle`` cannot run on the model the user gave at ``model_path``, and the fix, in the terms of
    what they gave (an ONNX file, a SavedModel, a .tflite, never the SavedModel an ONNX file becomes);
    None for a Keras model (.keras, .h5)."""
    from pathlib import Path

    from edgeq.modelio import Format, detect_format

    fmt = detect_format(model_path)
    name = Path(model_path).name or str(model_path)
    if fmt.is_keras_file:
        return None
    plain = "drop --cle (--ranges mse, --bias-correction and --adaround work without it)"
    if fmt == Format.ONNX:
        return (
            f"{name} is an ONNX model; edgeq runs it as the TensorFlow graph onnx2tf converts it to, "
            "which has no Keras layers to rescale",
            f"{plain}, or export the model as a .keras file",
        )
    if fmt == Format.TFLITE:
        return f"{name} is a .tflite, quantized by litert-quantizer", f"{plain}, or pass the Keras model it came from"
    return (
        f"{name} is a SavedModel, a graph without Keras layers to rescale",
        f"{plain}, or pass the .keras or .h5 file",
    )


def refuse_unless_keras(model_path: str) -> None:
    """Refuse ``--cle`` before any work unless ``model_path`` is a Keras model.

    Raises:
        UsageError: an ONNX file, a SavedModel or a .tflite, named as such.
    """
    why = not_keras(model_path)
    if why is not None:
        raise UsageError(f"--cle needs a Keras model (.keras, .h5): {why[0]}", why[1])


def equalize(model: LoadedModel, cfg: CleConfig = CleConfig()) -> CleResult:
    """Cross-layer equalize a copy of a Keras model (the input model is not changed).

    Returns:
        The equalized model (the same object when nothing could be equalized: a note says why)
        and the pairs equalized and skipped.

    Raises:
        UsageError: the model is not a Keras model (a SavedModel has no layers to rescale).
        BadInput: the model cannot be cloned (custom layers without a config).
    """
    start = time.perf_counter()
    if not model.is_keras:  # the stages refuse first, naming the user's file (refuse_unless_keras)
        raise UsageError(
            "cross-layer equalization needs a Keras model (.keras, .h5), not a graph (SavedModel, ONNX)",
            "pass the .keras or .h5 model, or quantize without --cle",
        )
    keras_model = _clone(model.obj)
    layers = keras_model.layers
    consumers = _consumers(keras_model)
    outputs = {id(t._keras_history[0]) for t in _as_list(keras_model.outputs) if hasattr(t, "_keras_history")}
    folded = _fold_batchnorm(layers, consumers, outputs)
    pairs: list[_Pair] = []
    skipped: list[str] = []
    for layer in layers:
        if _kind(layer) not in ("conv", "depthwise", "dense"):
            continue
        pair = _find_pair(layer, consumers, outputs)
        if isinstance(pair, str):
            skipped.append(f"{layer.name}: {pair}")
        else:
            pairs.append(pair)
    sweeps, max_scale = 0, 1.0
    for sweeps in range(1, cfg.max_sweeps + 1):
        worst = 0.0
        for pair in pairs:
            s = _equalize_pair(pair)
            worst = max(worst, float(np.max(np.abs(s - 1.0))))
            if sweeps == 1:
                max_scale = max(max_scale, float(s.max() / s.min()))
        if worst < cfg.tolerance:
            break
    notes: list[str] = []
    if not pairs:
        notes.append(
            "no equalizable conv/dense pair (every path goes through a residual, a shared output, ReLU6 or "
            "another non-homogeneous layer): the model is quantized as it is"
        )
    if not pairs and not folded:
        result_model = model
    else:
        result_model = dataclasses.replace(model, obj=keras_model)
    return CleResult(
        model=result_model,
        pairs=tuple(p.label() for p in pairs),
        skipped=tuple(skipped),
        folded_batchnorm=tuple(folded),
        sweeps=sweeps if pairs else 0,
        max_scale=round(max_scale, 3),
        seconds=time.perf_counter() - start,
        notes=tuple(notes),
    )


def _as_list(x: Any) -> list:
    return list(x) if isinstance(x, (list, tuple)) else [x]


def _clone(keras_model: Any) -> Any:
    if type(keras_model).__module__.startswith("tf_keras"):
        import tf_keras as keras_api
    else:
        import keras as keras_api
    try:
        clone = keras_api.models.clone_model(keras_model)
    except Exception as exc:  # custom layers without get_config and the like
        raise BadInput(
            f"cannot copy the model for equalization ({type(exc).__name__}: {str(exc)[:200]})",
            "give the model's custom layers a get_config, or quantize without --cle",
        ) from exc
    clone.set_weights(keras_model.get_weights())
    return clone


def _inbound(layer: Any) -> list[Any]:
    """The layers feeding ``layer``'s first call (tf_keras and Keras 3 keep these differently)."""
    if not layer._inbound_nodes:
        return []
    node = layer._inbound_nodes[0]
    if hasattr(node, "inbound_layers"):  # tf_keras
        return _as_list(node.inbound_layers)
    return [p.operation for p in node.parent_nodes]  # Keras 3


def _consumers(keras_model: Any) -> dict[int, list[Any]]:
    out: dict[int, list[Any]] = {id(layer): [] for layer in keras_model.layers}
    for layer in keras_model.layers:
        for src in _inbound(layer):
            out.setdefault(id(src), []).append(layer)
        if len(layer._inbound_nodes) > 1:  # a shared layer: its consumers are ambiguous
            out[id(layer)] = [layer, layer]
    return out


def _activation(layer: Any) -> str:
    act = layer.get_config().get("activation", "linear")
    return act if isinstance(act, str) else str(getattr(act, "__name__", act))


def _kind(layer: Any) -> str:
    name = type(layer).__name__
    if name == "Conv2D" and layer.get_config().get("groups", 1) == 1:
        return "conv"
    if name == "DepthwiseConv2D" and layer.get_config().get("depth_multiplier", 1) == 1:
        return "depthwise"
    if name == "Dense":
        return "dense"
    if name == "BatchNormalization":
        return "bn"
    if name == "Flatten":
        return "flatten"
    if name in _PASS_THROUGH:
        return "pass"
    if name == "ReLU":
        cfg = layer.get_config()
        if cfg.get("max_value") is not None:
            return "relu6"
        if float(cfg.get("threshold") or 0) != 0:
            return "other"
        return "pass"
    if name == "LeakyReLU":
        return "pass"
    if name == "Activation":
        act = _activation(layer)
        return "pass" if act in _HOMOGENEOUS_ACTIVATIONS else ("relu6" if act == "relu6" else "other")
    return "other"


def _bn_params(bn: Any) -> dict[str, np.ndarray]:
    weights = bn.get_weights()
    names = (["gamma"] if bn.scale else []) + (["beta"] if bn.center else []) + ["mean", "var"]
    params = dict(zip(names, weights, strict=True))
    n = params["mean"].shape[0]
    params.setdefault("gamma", np.ones(n, np.float32))
    params.setdefault("beta", np.zeros(n, np.float32))
    return params


def _set_bn(bn: Any, p: dict[str, np.ndarray]) -> None:
    names = (["gamma"] if bn.scale else []) + (["beta"] if bn.center else []) + ["mean", "var"]
    bn.set_weights([p[k].astype(np.float32) for k in names])


def _bn_multiplier(bn: Any) -> np.ndarray:
    p = _bn_params(bn)
    return p["gamma"] / np.sqrt(p["var"] + bn.epsilon)


def _channels_last_bn(bn: Any) -> bool:
    axis = bn.axis if isinstance(bn.axis, (list, tuple)) else [bn.axis]
    rank = len(bn.input.shape) if hasattr(bn, "input") else 4
    return len(axis) == 1 and axis[0] in (-1, rank - 1)


def _fold_batchnorm(layers: list[Any], consumers: dict[int, list[Any]], outputs: set[int]) -> list[str]:
    """Fold each BN that directly follows a linear conv/depthwise/dense into it; the BN becomes an identity."""
    folded = []
    for layer in layers:
        if _kind(layer) not in ("conv", "depthwise", "dense") or _activation(layer) != "linear":
            continue
        users = consumers[id(layer)]
        if len(users) != 1 or _kind(users[0]) != "bn" or id(layer) in outputs or not _channels_last_bn(users[0]):
            continue
        bn = users[0]
        if not layer.use_bias:
            continue  # the folded bias would need a bias variable the layer does not have
        p = _bn_params(bn)
        a = p["gamma"] / np.sqrt(p["var"] + bn.epsilon)
        weights = layer.get_weights()
        kernel = weights[0]
        kernel = kernel * (a.reshape(-1, 1) if _kind(layer) == "depthwise" else a)
        bias = (weights[1] - p["mean"]) * a + p["beta"]
        layer.set_weights([kernel.astype(np.float32), bias.astype(np.float32)])
        n = a.shape[0]
        identity = {
            "gamma": np.ones(n),
            "beta": np.zeros(n),
            "mean": np.zeros(n),
            "var": np.full(n, 1.0 - bn.epsilon),
        }
        _set_bn(bn, identity)
        folded.append(f"{bn.name} into {layer.name}")
    return folded


def _find_pair(first: Any, consumers: dict[int, list[Any]], outputs: set[int]) -> _Pair | str:
    """The pair starting at ``first``, or why there is none."""
    act = _activation(first)
    if act == "relu6":
        return "activation relu6 clips at 6, which a rescaling would move (not equalized)"
    if act not in _HOMOGENEOUS_ACTIVATIONS:
        return f"activation {act} does not commute with rescaling"
    path: list[Any] = []
    flatten_channels = None
    layer = first
    while True:
        if id(layer) in outputs:
            return f"{layer.name} is a model output"
        users = consumers.get(id(layer), [])
        if len(users) != 1:
            names = ", ".join(u.name for u in users) if users else "nothing"
            return f"output of {layer.name} feeds {len(users)} layers ({names}): a fork, e.g. a residual"
        nxt = users[0]
        kind = _kind(nxt)
        if kind in ("conv", "dense"):
            if flatten_channels is not None and kind != "dense":
                return f"Flatten before {nxt.name} ({type(nxt).__name__})"
            return _Pair(first, nxt, path, flatten_channels)
        if kind == "depthwise":
            return f"next weighted layer {nxt.name} is depthwise (conv-depthwise-conv triplets are not handled)"
        if kind == "relu6":
            return f"through {nxt.name} (ReLU6 clips at 6, which a rescaling would move; not equalized)"
        if kind == "bn" and not _channels_last_bn(nxt):
            return f"through {nxt.name} (BatchNormalization not on the channel axis)"
        if kind == "flatten":
            flatten_channels = int(layer.output.shape[-1]) if hasattr(layer, "output") else None
            if flatten_channels is None:
                return f"through {nxt.name} (unknown channel count before Flatten)"
        elif kind not in ("bn", "pass"):
            return f"through {nxt.name} ({type(nxt).__name__} is not a per-channel, scale-commuting layer)"
        path.append(nxt)
        layer = nxt


def _out_channel_range(layer: Any) -> np.ndarray:
    kernel = np.abs(layer.get_weights()[0])
    if _kind(layer) == "depthwise":  # (kh, kw, C, 1)
        return kernel.max(axis=(0, 1, 3))
    return kernel.reshape(-1, kernel.shape[-1]).max(axis=0)


def _in_channel_range(pair: _Pair, channels: int) -> np.ndarray:
    kernel = np.abs(pair.second.get_weights()[0])
    if _kind(pair.second) == "conv":  # (kh, kw, in, out)
        return kernel.max(axis=(0, 1, 3))
    rows = kernel.max(axis=1)  # dense (in, out)
    if pair.flatten_channels is not None:
        return rows.reshape(-1, channels).max(axis=0)
    return rows


def _equalize_pair(pair: _Pair) -> np.ndarray:
    """Rescale one pair in place; returns the per-channel scales applied."""
    r1 = _out_channel_range(pair.first)
    channels = r1.shape[0]
    r2 = _in_channel_range(pair, channels)
    for i, layer in enumerate(pair.path):
        if _kind(layer) == "bn":
            # a BN right after the first layer scales its outputs (the converter folds it into those
            # weights); one after a nonlinearity scales what the second layer sees
            if i == 0:
                r1 = r1 * np.abs(_bn_multiplier(layer))
            else:
                r2 = r2 * np.abs(_bn_multiplier(layer))
    ok = (r1 > 0) & (r2 > 0)
    s = np.ones(channels)
    s[ok] = np.sqrt(r1[ok] / r2[ok])
    w1 = pair.first.get_weights()
    if _kind(pair.first) == "depthwise":
        w1[0] = w1[0] / s.reshape(1, 1, -1, 1)
    else:
        w1[0] = w1[0] / s
    if pair.first.use_bias:
        w1[1] = w1[1] / s
    pair.first.set_weights([w.astype(np.float32) for w in w1])
    for layer in pair.path:
        if _kind(layer) == "bn":
            p = _bn_params(layer)
            p["mean"], p["beta"] = p["mean"] / s, p["beta"] / s
            _set_bn(layer, p)
    w2 = pair.second.get_weights()
    if _kind(pair.second) == "conv":
        w2[0] = w2[0] * s.reshape(1, 1, -1, 1)
    elif pair.flatten_channels is not None:
        w2[0] = w2[0] * np.tile(s, w2[0].shape[0] // channels).reshape(-1, 1)
    else:
        w2[0] = w2[0] * s.reshape(-1, 1)
    pair.second.set_weights([w.astype(np.float32) for w in w2])
    return s
