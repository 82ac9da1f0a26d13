"""Loading models: Keras 3 ``.keras``, tf_keras ``.keras``/``.h5``, SavedModel, ``.tflite``.

Formats are recognised from the file's content, not its name. Keras files are checked for
layers that carry Python code (Lambda) before anything is deserialized: that code runs only
when the user says they trust the model (``--custom-objects`` or ``--trust-model``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import importlib
import json
import os
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgeq.artifacts import read_sidecar, sha256_file
from edgeq.config import LoadConfig, pin_shapes
from edgeq.errors import BadInput, UsageError
from edgeq.outputs import require_single
from edgeq.paths import native_path

# TF-op layers (tf_keras's TFOpLambda, SlicingOpLambda) name a TensorFlow API symbol, not code, and tf_keras's
# own safe mode loads them. Symbols that reach outside the graph (files, Python callbacks, printing) are still
# refused in safe mode: a model file should not write files or run Python when it is called.
TF_OP_LAYERS = ("TFOpLambda", "SlicingOpLambda")
SIDE_EFFECT_SYMBOLS = (
    "io.",
    "compat.v1.io.",
    "compat.v1.gfile.",
    "gfile.",
    "py_function",
    "numpy_function",
    "compat.v1.py_func",
    "print",
    "compat.v1.Print",
    "summary.",
    "debugging.",
    "raw_ops.",
    "saved_model.",
    "data.",
    "distribute.",
    "experimental.",
    "autograph.",
    "compat.v1.py_",
)


class Format(enum.StrEnum):
    KERAS3 = "keras3"
    TF_KERAS = "tf_keras"
    H5 = "h5"
    SAVED_MODEL = "saved_model"
    TFLITE = "tflite"
    ONNX = "onnx"  # converted to a SavedModel (edgeq.onnx_import) when loaded

    @property
    def is_keras_file(self) -> bool:
        return self in (Format.KERAS3, Format.TF_KERAS, Format.H5)


@dataclass(frozen=True)
class TensorSpec:
    name: str
    shape: tuple[int | None, ...]
    dtype: str

    def to_dict(self) -> dict:
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype}


@dataclass
class LoadedModel:
    """A float reference model ready to predict and convert."""

    path: str
    format: Format
    sha256: str
    obj: Any  # keras.Model, tf_keras.Model or a loaded SavedModel
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    value_range: tuple[float, float] | None  # the input range the model was trained on, if known

    @property
    def is_keras(self) -> bool:
        return self.format.is_keras_file

    @property
    def output_names(self) -> list[str]:
        return [o.name for o in self.outputs]

    def predict_outputs(self, x: np.ndarray, batch_size: int = 64) -> dict[str, np.ndarray]:
        """Float outputs for ``x`` keyed by output name (Keras output names, SavedModel signature keys),
        in the model's own order. No training-mode layers."""
        names = self.output_names
        outs: dict[str, list] = {n: [] for n in names}
        fixed = None if self.is_keras or not self.inputs[0].shape else self.inputs[0].shape[0]
        batch_size = fixed or batch_size  # a SavedModel with a fixed batch (onnx2tf's) takes only that
        for start in range(0, len(x), batch_size):
            chunk = x[start : start + batch_size]
            n = len(chunk)
            if fixed and n < fixed:  # pad the last chunk to the fixed batch; the padding is dropped below
                chunk = np.concatenate([chunk, np.repeat(chunk[-1:], fixed - n, axis=0)])
            if self.is_keras:
                y = self.obj(chunk, training=False)
            else:
                fn = self.obj.signatures["serving_default"]
                y = fn(**{self.inputs[0].name: chunk})
            if isinstance(y, dict):
                y = [y[name] for name in names]
            elif not isinstance(y, (list, tuple)):
                y = [y]
            for name, v in zip(names, y, strict=True):
                outs[name].append(np.asarray(v)[:n])
        return {name: np.concatenate(v, axis=0) for name, v in outs.items()}

    def predict(self, x: np.ndarray, batch_size: int = 64) -> np.ndarray:
        """Float outputs of a single-output model for ``x``.

        Raises:
            BadInput: the model has several outputs (use :meth:`predict_outputs`, which names them).
        """
        require_single(self.output_names, str(self.path))
        return next(iter(self.predict_outputs(x, batch_size).values()))


def detect_format(path: str | os.PathLike) -> Format:
    """Tell the model format from the content at ``path``.

    Raises:
        BadInput: missing path, a directory that is not a SavedModel, or unknown content.
    """
    p = Path(path)
    if not p.exists():
        raise BadInput(f"model file not found: {p}", "check the path")
    if p.is_dir():
        if (p / "saved_model.pb").is_file() or (p / "saved_model.pbtxt").is_file():
            return Format.SAVED_MODEL
        raise BadInput(
            f"{p} is a directory but not a SavedModel (no saved_model.pb)",
            "pass a SavedModel directory, a .keras, .h5 or .tflite file",
        )
    with open(p, "rb") as fh:
        head = fh.read(8)
    if head[4:8] == b"TFL3":
        return Format.TFLITE
    if head.startswith(b"\x89HDF\r\n\x1a\n"):
        return Format.H5
    if head.startswith(b"PK"):
        return _keras_zip_format(p)
    suffix = p.suffix.lower()
    if suffix == ".onnx" and head[:1] == b"\x08":  # a protobuf ModelProto opens with ir_version (field 1)
        return Format.ONNX
    if suffix in (".keras", ".h5", ".hdf5", ".tflite", ".onnx"):
        raise BadInput(f"{p} is truncated or corrupt (not a valid {suffix} file)", f"re-save the model as {suffix}")
    raise BadInput(f"{p} is not a model edgeq can read", "pass a .keras, .h5 or .tflite file or a SavedModel directory")


def _keras_zip_format(p: Path) -> Format:
    try:
        with zipfile.ZipFile(p) as zf:
            meta = json.loads(zf.read("metadata.json"))
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise BadInput(f"{p} is truncated or corrupt (not a valid .keras archive)", "re-save the model") from exc
    version = str(meta.get("keras_version", ""))
    return Format.KERAS3 if version.startswith("3") else Format.TF_KERAS


def _keras_config(p: Path, fmt: Format) -> dict:
    try:
        if fmt == Format.H5:
            import h5py

            with h5py.File(p, "r") as fh:
                raw = fh.attrs.get("model_config")
            if raw is None:
                raise BadInput(f"{p} holds weights only, not a model", "save the whole model (model.save)")
            return json.loads(raw.decode() if isinstance(raw, bytes) else raw)
        with zipfile.ZipFile(p) as zf:
            return json.loads(zf.read("config.json"))
    except BadInput:
        raise
    except Exception as exc:
        raise BadInput(f"{p} is truncated or corrupt ({type(exc).__name__})", "re-save the model") from exc


def _code_in(class_name: str, cfg: dict) -> str | None:
    """What Python code a layer config carries that deserializing or calling it would run, if any."""
    if class_name == "Lambda":
        fn = cfg.get("function")
        if isinstance(fn, dict) and fn.get("class_name") == "function":
            return None  # Keras 3: a function named, looked up in the custom objects
        if cfg.get("function_type", "lambda") == "function":
            return None  # tf_keras: a function named, too
        return "Lambda layer"
    if class_name in TF_OP_LAYERS:
        symbol = str(cfg.get("function", ""))
        if any(symbol.startswith(prefix) for prefix in SIDE_EFFECT_SYMBOLS):
            return f"TF-op layer calling tf.{symbol} (side effects outside the graph)"
    return None


def code_layers(config: Any) -> list[tuple[str, str]]:
    """(layer name, what) of every layer whose config carries code safe mode will not run.

    That is a Lambda with serialized Python bytecode, or a TF-op layer calling a TensorFlow symbol with
    side effects (files, Python callbacks). TF-op layers such as ``tf.__operators__.add`` are graph ops,
    which tf_keras's own safe mode loads too.
    """
    found: list[tuple[str, str]] = []
    if isinstance(config, dict):
        class_name, cfg = config.get("class_name"), config.get("config")
        if isinstance(class_name, str) and isinstance(cfg, dict):
            what = _code_in(class_name, cfg)
            if what:
                found.append((str(cfg.get("name", class_name)), what))
        for value in config.values():
            found.extend(code_layers(value))
    elif isinstance(config, list):
        for value in config:
            found.extend(code_layers(value))
    return found


_KERAS_MODULES = ("keras", "tf_keras", "tensorflow", "tensorflow_model_optimization")


def custom_classes(config: Any) -> list[tuple[str, str]]:
    """(module, class name) of every object in a saved Keras config that Keras itself does not define."""
    found: list[tuple[str, str]] = []
    if isinstance(config, dict):
        module, name = config.get("module"), config.get("class_name")
        if name == "function" and isinstance(config.get("config"), str):
            name = config["config"]  # Keras 3 serializes a named function (e.g. a Lambda's) as its name
        if isinstance(module, str) and isinstance(name, str) and module.split(".")[0] not in _KERAS_MODULES:
            found.append((module, name))
        for v in config.values():
            found += [c for c in custom_classes(v) if c not in found]
    elif isinstance(config, list):
        for v in config:
            found += [c for c in custom_classes(v) if c not in found]
    return found


@contextlib.contextmanager
def _stdout_to_stderr() -> Iterator[None]:
    """Send what imported user code writes to stdout (print, or C code on file descriptor 1) to stderr."""
    sys.stdout.flush()
    kept = os.dup(1)
    os.dup2(2, 1)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        sys.stdout.flush()
        os.dup2(kept, 1)
        os.close(kept)


def resolve_custom_objects(specs: tuple[str, ...]) -> dict[str, Any]:
    """Import ``module:attr`` specs. A dict attr is merged; anything else is keyed by its name.

    Raises:
        UsageError: a spec without a colon.
        BadInput: the module or attribute cannot be imported.
    """
    objects: dict[str, Any] = {}
    for spec in specs:
        module_name, sep, attr = spec.partition(":")
        if not sep or not module_name or not attr:
            raise UsageError(f"bad --custom-objects {spec!r}", "use module:attr, e.g. mylayers:CUSTOM_OBJECTS")
        try:
            with _stdout_to_stderr():  # stdout is data (one JSON document with --json): user code prints elsewhere
                obj = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise BadInput(
                f"cannot import custom objects {spec!r} ({exc})", "check the module is on PYTHONPATH"
            ) from exc
        except (Exception, SystemExit) as exc:  # the module's own code failed while importing
            raise BadInput(
                f"importing custom objects {spec!r} failed ({type(exc).__name__}: {exc})", "fix that module"
            ) from exc
        if isinstance(obj, dict):
            objects.update(obj)
        else:
            objects[getattr(obj, "__name__", attr)] = obj
    return objects


def check_safe(path: str | os.PathLike, cfg: LoadConfig, fmt: Format | None = None) -> None:
    """Refuse, in safe mode, a Keras file holding code, from its config alone (nothing is deserialized).

    Raises:
        BadInput: a Lambda with Python bytecode, or a side-effecting TF-op layer, and no trust given.
    """
    fmt = fmt or detect_format(path)
    if not cfg.safe_mode or not fmt.is_keras_file:  # a SavedModel, .tflite or .onnx holds graphs, not Python
        return
    found = code_layers(_keras_config(Path(path), fmt))
    if found:
        name, what = found[0]
        raise BadInput(
            f"model has {what} {name!r} with code that safe mode will not run",
            "if you trust the model, pass --trust-model (or --custom-objects module:attr, which implies it; "
            "in edgeq.toml: trust-model = true)",
        )


def load_model(path: str | os.PathLike, cfg: LoadConfig = LoadConfig()) -> LoadedModel:
    """Load a Keras or SavedModel model as a float reference.

    Args:
        path: a ``.keras`` (Keras 3 or tf_keras), ``.h5`` file, SavedModel directory, or ``.onnx``
            file (converted to a SavedModel with onnx2tf: the ``onnx`` extra).
        cfg: safe-mode and custom-object settings.

    Returns:
        The loaded model with its input/output specs and, when its sidecar records one,
        the value range of its training data.

    Raises:
        BadInput: missing, corrupt, a .tflite where a Keras model is needed, or a Lambda
            layer in safe mode.
    """
    p = Path(path)
    fmt = detect_format(p)
    if fmt == Format.TFLITE:
        raise BadInput(f"{p} is already a .tflite model", "pass the Keras or SavedModel model it came from")
    if fmt == Format.ONNX:
        return _load_onnx(p, cfg)
    custom = resolve_custom_objects(cfg.custom_objects)
    check_safe(p, cfg, fmt)

    from edgeq.tfimport import tensorflow

    tf = tensorflow()
    try:
        # TensorFlow's file system takes UTF-8 names only: reach other names through a UTF-8 alias.
        with native_path(p) as tf_p:
            if fmt == Format.KERAS3:
                import keras

                obj = keras.saving.load_model(tf_p, custom_objects=custom, compile=False, safe_mode=cfg.safe_mode)
            elif fmt in (Format.TF_KERAS, Format.H5):
                import tf_keras

                kwargs = {"safe_mode": cfg.safe_mode} if fmt == Format.TF_KERAS else {}
                with _qat_scope(p, fmt):
                    obj = tf_keras.models.load_model(tf_p, custom_objects=custom, compile=False, **kwargs)
            else:
                obj = tf.saved_model.load(str(tf_p))
    except BadInput:
        raise
    except Exception as exc:
        missing = (
            [c for c in custom_classes(_keras_config(p, fmt)) if c[1] not in custom]
            if fmt != Format.SAVED_MODEL
            else []
        )
        if missing:
            module, name = missing[0]
            raise BadInput(
                f"cannot load {p}: it uses the custom class {name!r} from {module}, which was not given",
                f"pass --custom-objects {module}:{name} (or module:attr naming a dict of custom objects)",
            ) from exc
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BadInput(
            f"cannot load {p}: {msg[:300]}", "check the file, or pass --custom-objects for custom layers"
        ) from exc

    if fmt == Format.SAVED_MODEL:
        inputs, outputs = _saved_model_specs(obj, p)
    else:
        inputs, outputs = _keras_specs(obj)
    inputs = pinned(inputs, cfg, str(p))
    side = read_sidecar(p) or {}
    vr = (side.get("data") or {}).get("value_range")
    return LoadedModel(
        path=str(p),
        format=fmt,
        sha256=sha256_file(p),
        obj=obj,
        inputs=inputs,
        outputs=outputs,
        value_range=(float(vr[0]), float(vr[1])) if vr else None,
    )


def pinned(inputs: tuple[TensorSpec, ...], cfg: LoadConfig, origin: str) -> tuple[TensorSpec, ...]:
    """``inputs`` with the shapes ``--input-shape`` pins (the converter's concrete function takes them).

    Raises:
        UsageError: a pinned shape that names no input, has another rank or contradicts a static dimension.
    """
    if not cfg.input_shapes:
        return inputs
    shapes = pin_shapes(cfg.input_shapes, [(t.name, t.shape) for t in inputs], origin)
    return tuple(TensorSpec(t.name, shapes.get(t.name, t.shape), t.dtype) for t in inputs)


def _load_onnx(p: Path, cfg: LoadConfig) -> LoadedModel:
    """An ONNX model as the SavedModel onnx2tf makes of it (cached). The path stays the SavedModel's (the
    converter and the debugger read it from there); the hash is the .onnx file's, which the cache
    folder's name begins with."""
    from edgeq.onnx_import import load_converted

    sha = sha256_file(p)
    # the shapes are the ONNX model's (its own layout): onnx2tf converts with them, the SavedModel keeps them
    plain = dataclasses.replace(cfg, input_shapes=())
    loaded = load_converted(p, sha, lambda folder: load_model(folder, plain), cfg.input_shapes)
    loaded.sha256 = sha
    side = read_sidecar(p) or {}
    vr = (side.get("data") or {}).get("value_range")
    loaded.value_range = (float(vr[0]), float(vr[1])) if vr else None
    return loaded


def _qat_scope(p: Path, fmt: Format) -> contextlib.AbstractContextManager:
    """TF-MOT's deserialization scope when the file holds a QAT model, else nothing."""
    if "QuantizeWrapper" not in json.dumps(_keras_config(p, fmt)):
        return contextlib.nullcontext()
    from edgeq.keras_objects import qat_scope

    return qat_scope()


def from_keras(
    obj: Any, path: str, fmt: Format = Format.TF_KERAS, value_range: tuple[float, float] | None = None
) -> LoadedModel:
    """Wrap an in-memory Keras model (a freshly trained or QAT model) as a LoadedModel."""
    inputs, outputs = _keras_specs(obj)
    return LoadedModel(
        path=path,
        format=fmt,
        sha256=sha256_file(path) if Path(path).exists() else "",
        obj=obj,
        inputs=inputs,
        outputs=outputs,
        value_range=value_range,
    )


def is_qat_model(model: LoadedModel) -> bool:
    return model.is_keras and any(type(layer).__name__.startswith("Quantize") for layer in model.obj.layers)


def _dtype_name(dtype: Any) -> str:
    return getattr(dtype, "name", str(dtype)).replace("tf.", "")


def _keras_specs(model: Any) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
    def specs(tensors: Any, names: list[str]) -> tuple[TensorSpec, ...]:
        return tuple(
            TensorSpec(name=n, shape=tuple(t.shape), dtype=_dtype_name(t.dtype))
            for n, t in zip(names, tensors, strict=False)
        )

    try:
        ins, outs = list(model.inputs), list(model.outputs)
    except (AttributeError, ValueError) as exc:
        raise BadInput(
            "model has no defined inputs (a subclassed model that was never built)",
            "save a Functional or Sequential model",
        ) from exc
    in_names = list(
        getattr(model, "input_names", None) or [getattr(t, "name", f"input_{i}") for i, t in enumerate(ins)]
    )
    out_names = list(getattr(model, "output_names", None) or [f"output_{i}" for i in range(len(outs))])
    return specs(ins, in_names), specs(outs, out_names)


def _saved_model_specs(obj: Any, p: Path) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
    sig = getattr(obj, "signatures", {}).get("serving_default")
    if sig is None:
        raise BadInput(f"SavedModel {p} has no serving_default signature", "export it with a serving signature")
    _, kwargs = sig.structured_input_signature
    inputs = tuple(
        TensorSpec(name=name, shape=tuple(spec.shape.as_list()), dtype=_dtype_name(spec.dtype))
        for name, spec in sorted(kwargs.items())
    )
    outputs = tuple(
        TensorSpec(name=name, shape=tuple(spec.shape.as_list()), dtype=_dtype_name(spec.dtype))
        for name, spec in sorted(sig.structured_outputs.items())
    )
    return inputs, outputs


def model_summary(model: LoadedModel) -> dict:
    """Layers and parameter counts of a Keras model; signatures and variables of a SavedModel (for ``inspect``)."""
    if model.format == Format.SAVED_MODEL:
        variables = list(getattr(model.obj, "variables", None) or [])
        return {
            "signatures": sorted(getattr(model.obj, "signatures", {}).keys()),
            "num_variables": len(variables),
            "num_parameters": int(sum(int(np.prod(v.shape)) for v in variables)),
        }
    layers = [
        {"name": layer.name, "type": type(layer).__name__, "parameters": int(layer.count_params())}
        for layer in model.obj.layers
    ]
    return {
        "layers": layers,
        "num_parameters": int(model.obj.count_params()),
        "num_layers": len(layers),
    }
