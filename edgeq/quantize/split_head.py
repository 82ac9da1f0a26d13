"""Split an output whose channel groups need different int8 scales into one output per part.

A YOLOv5/v8 head ends in one output ``[1, 4+C, N]``: box rows in pixels (0..320) and class-score rows
(0..1) concatenated. One int8 scale over both leaves the scores 0 or 1 step
(:func:`edgeq.bench.tasks.mixed_ranges` finds it). The remedy keeps every op int8 on the accelerator: the
model's outputs become the concatenation's inputs, each with its own scale, and whoever needs the original
output concatenates them again (:meth:`Split.merge`; recorded in the sidecar as the model's interface).

The parts are named ``f"{output}_{k}"`` (``output0_0`` for the boxes, ``output0_1`` for the scores), in
the order of the concatenation. Keras models are cut at the ``Concatenate`` the output comes from through
shape-only layers (``Reshape``, ``Permute``), which are applied again to each part; ONNX models at the
``Concat`` node that makes the graph output (:func:`edgeq.onnx_import.split_concat_output`). Each split is
checked on data: the parts merged must equal the original output, else it is refused.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgeq.config import LoadConfig
from edgeq.errors import BadInput
from edgeq.modelio import Format, LoadedModel, detect_format

SHAPE_ONLY = ("Reshape", "Permute")  # layers that move values without changing them
MAX_CHAINS = 16  # ways of re-applying the reshapes tried, at most
TOLERANCE = 1e-5  # merged parts against the original output, relative to its largest value
CHECK_SAMPLES = 8


@dataclass(frozen=True)
class Split:
    """An output replaced by its parts along ``axis`` (counted with the batch axis), in order."""

    output: str
    axis: int
    parts: tuple[tuple[str, int], ...]  # (name, size along axis)
    shape: tuple[int | None, ...] = ()  # the original output's shape, batch first (for the text)
    # other outputs whose names moved with the split (new, original): onnx2tf names a SavedModel's outputs by
    # position (output_0, output_1, ...), so the outputs after a split one shift
    renamed: tuple[tuple[str, str], ...] = ()

    @property
    def names(self) -> list[str]:
        return [n for n, _ in self.parts]

    def merge(self, outputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """``outputs`` with the parts concatenated back into the original output (at the first part's
        place); other outputs untouched.

        Raises:
            BadInput: a part is missing, or its size along the axis is not the recorded one.
        """
        missing = [n for n in self.names if n not in outputs]
        if missing:
            raise BadInput(
                f"the model's output {self.output!r} was split, but its part {missing[0]!r} is not among the"
                f" outputs ({', '.join(map(repr, list(outputs)[:8]))})",
                "evaluate the model the split was made for (its sidecar records the interface)",
            )
        for name, size in self.parts:
            if outputs[name].ndim <= self.axis or outputs[name].shape[self.axis] != size:
                raise BadInput(
                    f"part {name!r} of the split output {self.output!r} has shape {outputs[name].shape[1:]}, not"
                    f" {size} along axis {self.axis}",
                    "evaluate the model the split was made for (its sidecar records the interface)",
                )
        merged: dict[str, np.ndarray] = {}
        original = dict(self.renamed)
        for name, value in outputs.items():
            if name == self.names[0]:
                merged[self.output] = np.concatenate([outputs[n] for n in self.names], axis=self.axis)
            elif name not in self.names:
                merged[original.get(name, name)] = value
        return merged

    def text(self) -> str:
        """The changed interface in plain words."""

        def shape(size: int) -> str:
            dims = [str(d) if d else "N" for d in self.shape] if self.shape else []
            if len(dims) > self.axis:
                dims[self.axis] = str(size)
                return f" [{','.join(dims)}]"
            return ""

        parts = [f"{name}{shape(size)}" for name, size in self.parts]
        listed = ", ".join(parts[:-1]) + f" and {parts[-1]}" if len(parts) > 1 else parts[0]
        return f"{self.output} is now {listed} (one scale each); concatenate along axis {self.axis} to restore it"

    def to_dict(self) -> dict[str, Any]:
        return {
            "output": self.output,
            "axis": self.axis,
            "parts": [{"name": n, "size": s} for n, s in self.parts],
            "shape": list(self.shape),
            "renamed": [list(r) for r in self.renamed],
            "text": self.text(),
        }

    @classmethod
    def from_dict(cls, doc: Any) -> Split:
        """A split read back from a sidecar (untrusted: every field checked).

        Raises:
            BadInput: a field is missing or of the wrong type.
        """
        bad = BadInput("the sidecar's split interface is malformed", "rebuild the model (edgeq build or quantize)")
        if not isinstance(doc, dict) or not isinstance(doc.get("output"), str) or type(doc.get("axis")) is not int:
            raise bad
        parts = doc.get("parts")
        if not isinstance(parts, list) or not 2 <= len(parts) <= 1024 or doc["axis"] < 1:
            raise bad
        out: list[tuple[str, int]] = []
        for p in parts:
            if not isinstance(p, dict) or not isinstance(p.get("name"), str) or type(p.get("size")) is not int:
                raise bad
            if p["size"] < 1:
                raise bad
            out.append((p["name"], p["size"]))
        shape = doc.get("shape") or []
        if not isinstance(shape, list) or not all(d is None or type(d) is int for d in shape):
            raise bad
        renamed = doc.get("renamed") or []
        if not isinstance(renamed, list) or not all(
            isinstance(r, list) and len(r) == 2 and all(isinstance(n, str) for n in r) for r in renamed
        ):
            raise bad
        return cls(doc["output"], doc["axis"], tuple(out), tuple(shape), tuple((a, b) for a, b in renamed))


def boundaries(mixed: dict) -> set[int]:
    """Where the groups of :func:`edgeq.bench.tasks.mixed_ranges` begin, but the first."""
    return {int(g["first"]) for g in ((mixed or {}).get("groups") or [])[1:]}


def fits(sizes: list[int], total: int, mixed: dict) -> str | None:
    """Why parts of ``sizes`` cannot carry the groups one scale each (None when they can): every group
    boundary must be a boundary between parts."""
    if sum(sizes) != total:
        return f"the concatenation's parts ({'+'.join(map(str, sizes))}) do not make the output's {total}"
    cuts = set(itertools.accumulate(sizes[:-1]))
    if not boundaries(mixed) <= cuts:
        return (
            f"the concatenation's parts ({'+'.join(map(str, sizes))}) do not separate the groups"
            f" (starting at {sorted(boundaries(mixed))})"
        )
    return None


def split_model(
    model: LoadedModel,
    source_path: str,
    output: str,
    mixed: dict,
    x: np.ndarray,
    load_cfg: LoadConfig = LoadConfig(),
) -> tuple[LoadedModel, Split] | str:
    """``model`` with ``output`` replaced by its parts at the concatenation that makes it, checked on ``x``
    (the merged parts equal the output); or why it cannot be split, in one line (a skip).

    Args:
        source_path: the file the user gave (an ``.onnx`` file is split in its ONNX graph).
        mixed: :func:`edgeq.bench.tasks.mixed_ranges` of the output (its groups must fall in separate parts).
        x: input samples for the check.
    """
    from edgeq.bench import tasks

    if output not in model.output_names:
        return f"the model has no output {output!r}"
    spec = next(o for o in model.outputs if o.name == output)
    axis = tasks.group_axis(tuple(spec.shape))
    if axis is None or spec.shape[axis] is None:
        return f"output {output!r} of shape {spec.shape} has no static axis to split"
    if model.is_keras:
        made = _split_keras(model, output, axis, mixed, x)
    elif source_path and detect_format(source_path) == Format.ONNX:
        made = _split_onnx(model, source_path, output, axis, mixed, load_cfg)
    else:
        return f"output {output!r} cannot be cut in a SavedModel (a graph without layers to rewire): export the head's parts as separate outputs"
    if isinstance(made, str):
        return made
    split_loaded, split = made
    return (split_loaded, split) if (why := _check(model, split_loaded, split, x)) is None else why


def _check(model: LoadedModel, split_loaded: LoadedModel, split: Split, x: np.ndarray) -> str | None:
    """Why the split model is not the same model (None when the merged parts equal every original output)."""
    sample = x[:CHECK_SAMPLES]
    want = model.predict_outputs(sample)
    try:
        got = split.merge(split_loaded.predict_outputs(sample))
    except BadInput as exc:
        return f"the split model's outputs do not merge: {exc.one_line()}"
    for name, ref in want.items():
        if name not in got or got[name].shape != ref.shape:
            return f"the split model's output {name!r} does not match the original's shape"
        err = float(np.max(np.abs(got[name].astype(np.float64) - ref))) if ref.size else 0.0
        if err > TOLERANCE * max(1.0, float(np.max(np.abs(ref)))):
            return f"the split parts merged differ from output {name!r} by {err:.3g}: not the same values"
    return None


def _inputs_of(tensor: Any) -> tuple[Any, list[Any]]:
    """The layer that made a Keras tensor (tf_keras or Keras 3) and its input tensors."""
    history = tensor._keras_history
    layer = history[0]
    node = layer._inbound_nodes[history[1]]
    inputs = node.input_tensors
    return layer, list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]


def _keras_chain(obj: Any, index: int) -> tuple[Any, list[Any], list[Any]] | str:
    """(the Concatenate layer, its input tensors, the shape-only layers after it in order) for output ``index``."""
    chain: list[Any] = []
    tensor = obj.outputs[index]
    for _ in range(64):
        layer, inputs = _inputs_of(tensor)
        kind = type(layer).__name__
        if kind == "Concatenate":
            return layer, inputs, chain[::-1]
        if kind not in SHAPE_ONLY or len(inputs) != 1:
            return f"it comes from a {kind} layer ({layer.name!r}), not a concatenation through reshapes"
        chain.append(layer)
        tensor = inputs[0]
    return "no concatenation within 64 layers of the output"


def _keras_module(model: LoadedModel) -> Any:
    """The Keras the model is made with (tf_keras or Keras 3), for new layers in its graph."""
    if type(model.obj).__module__.startswith("tf_keras"):
        import tf_keras

        return tf_keras
    import keras

    return keras


def _reshape_choices(chain: list[Any], total: int) -> list[tuple[int | None, ...]]:
    """Per Reshape of ``chain`` the dimension of its target that is the concatenated axis (a dimension of
    the full size, or None where a -1 lets it be inferred): every combination, at most :data:`MAX_CHAINS`."""
    options: list[list[int | None]] = []
    for layer in chain:
        if type(layer).__name__ != "Reshape":
            options.append([None])
            continue
        target = list(layer.target_shape)
        found: list[int | None] = [i for i, d in enumerate(target) if d == total]
        options.append(found + ([None] if -1 in target else []))
    return list(itertools.islice(itertools.product(*options), MAX_CHAINS))


def _rewire(
    model: LoadedModel,
    index: int,
    inputs: list[Any],
    chain: list[Any],
    choice: tuple[int | None, ...],
    split: Split,
) -> LoadedModel:
    """The Keras model with output ``index`` replaced by each concatenated input passed through ``chain``
    again (each Reshape's concatenated dimension, ``choice``, set to the part's size)."""
    from edgeq.modelio import from_keras

    k = _keras_module(model)
    parts = []
    for (name, size), t in zip(split.parts, inputs, strict=True):
        for j, layer in enumerate(chain):
            last = name if j == len(chain) - 1 else None
            if type(layer).__name__ == "Permute":
                t = k.layers.Permute(tuple(layer.dims), name=last)(t)
            else:
                target = list(layer.target_shape)
                if choice[j] is not None:
                    target[choice[j]] = size  # type: ignore[index]
                t = k.layers.Reshape(tuple(target), name=last)(t)
        if not chain:  # the concatenation is the output: a no-op reshape gives the part its name
            t = k.layers.Reshape(tuple(t.shape[1:]), name=name)(t)
        parts.append(t)
    outputs = list(model.obj.outputs)
    outputs[index : index + 1] = parts
    inputs_ = list(model.obj.inputs)
    obj = k.Model(inputs=inputs_[0] if len(inputs_) == 1 else inputs_, outputs=outputs)
    return from_keras(obj, model.path, model.format, model.value_range)


def _split_keras(
    model: LoadedModel, output: str, axis: int, mixed: dict, x: np.ndarray
) -> tuple[LoadedModel, Split] | str:
    """The Keras model split at the Concatenate ``output`` comes from, checked on ``x``; or why not."""
    index = model.output_names.index(output)
    found = _keras_chain(model.obj, index)
    if isinstance(found, str):
        return f"output {output!r} cannot be split: {found}"
    concat, inputs, chain = found
    rank = len(inputs[0].shape)
    sizes = [t.shape[int(concat.axis) % rank] for t in inputs]
    if any(s is None for s in sizes):
        return f"output {output!r} cannot be split: its concatenation has parts of unknown size"
    spec = model.outputs[index]
    total = int(spec.shape[axis])  # type: ignore[arg-type]
    if (why := fits([int(s) for s in sizes], total, mixed)) is not None:
        return f"output {output!r} cannot be split: {why}"
    names = [f"{output}_{k}" for k in range(len(sizes))]
    taken = {layer.name for layer in model.obj.layers} | set(model.output_names)
    if clash := [n for n in names if n in taken]:
        return f"output {output!r} cannot be split: the model already has a layer named {clash[0]!r}"
    split = Split(output, axis, tuple(zip(names, (int(s) for s in sizes), strict=True)), (1, *spec.shape[1:]))
    for choice in _reshape_choices(chain, total):
        try:
            loaded = _rewire(model, index, inputs, chain, choice, split)
        except (ValueError, TypeError):  # a reshape the part's size does not fit: the next choice
            continue
        if _check(model, loaded, split, x) is None:
            return loaded, split
    return f"output {output!r} cannot be split: its reshapes applied to the parts do not give slices of it"


def _split_onnx(
    model: LoadedModel, source_path: str, output: str, axis: int, mixed: dict, load_cfg: LoadConfig
) -> tuple[LoadedModel, Split] | str:
    """The ONNX model with the Concat node that makes ``output`` cut (its inputs the graph's outputs),
    converted like any ONNX model; or why not."""
    from edgeq.modelio import load_model
    from edgeq.onnx_import import split_concat_output

    names = [f"output_{j}" for j in range(len(model.outputs))]
    if sorted(model.output_names) != sorted(names):  # onnx2tf's names: by position in the ONNX graph
        return f"output {output!r} cannot be split: the converted model's outputs are not named by position"
    index = names.index(output)
    spec = next(o for o in model.outputs if o.name == output)
    total = int(spec.shape[axis])  # type: ignore[arg-type]
    made = split_concat_output(source_path, index, axis, lambda sizes: fits(sizes, total, mixed))
    if isinstance(made, str):
        return f"output {output!r} cannot be split: {made}"
    path, sizes = made
    loaded = load_model(str(path), load_cfg)
    extra = len(sizes) - 1  # the outputs after the split one move down by this many places
    parts = tuple((f"output_{index + k}", size) for k, size in enumerate(sizes))
    renamed = tuple((f"output_{j + extra}", f"output_{j}") for j in range(index + 1, len(names)))
    return loaded, Split(output, axis, parts, (1, *spec.shape[1:]), renamed)
