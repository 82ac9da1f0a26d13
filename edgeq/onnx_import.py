"""ONNX input: an ``.onnx`` model converted to a TensorFlow SavedModel with onnx2tf, then the usual pipeline.

An optional extra (``pip install edgeq[onnx]``): onnx2tf with onnx, onnx-graphsurgeon, sng4onnx,
sne4onnx and onnxruntime (which it uses to check its conversion op by op).

onnx2tf writes NHWC models: an ONNX image input ``[N, C, H, W]`` becomes ``[N, H, W, C]``, the layout
TFLite and every edge accelerator use. Representative and evaluation data are given in that layout.

The SavedModel is kept in a cache folder named by the ONNX file's content hash and the onnx2tf
version, so a model is converted once; the folder appears whole or not at all. The cache verifies what
it trusts: a marker written last holds the sha256 of every file of the entry (and the ONNX file's
hash); an entry without a valid marker, whose files do not match it, or that is a symbolic link is
removed and converted again, and a converted model that still does not load names the folder to delete.
"""

from __future__ import annotations

import contextlib
import errno
import importlib.metadata
import io
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from edgeq.artifacts import clean_stale, write_json_atomic
from edgeq.config import InputShape
from edgeq.errors import BadInput, ConversionFailed, EdgeqError, Unavailable

INSTALL_HINT = "pip install edgeq[onnx]"
MARKER = "edgeq-onnx.json"  # written last into a converted entry: the ONNX hash and every file's sha256
_FULL = (errno.ENOSPC, errno.EDQUOT)
CONVERT_RECURSION_LIMIT = 20_000  # onnx2tf walks the graph recursively; bounded, unlike the limit it sets itself


def require_onnx2tf() -> str:
    """The installed onnx2tf's version.

    Raises:
        Unavailable: the ``onnx`` extra is not installed.
    """
    limit = sys.getrecursionlimit()
    try:
        import onnx  # noqa: F401
        import onnx2tf  # noqa: F401
    except ImportError as exc:
        raise Unavailable(f"ONNX input needs `{INSTALL_HINT}`", f"run {INSTALL_HINT} (onnx2tf and onnx)") from exc
    finally:
        # importing onnx2tf sets the limit to 2**31 - 1 for the whole process: any deep recursion after it
        # (a hostile nested JSON file, a deep model graph) is then a segmentation fault, not a RecursionError
        sys.setrecursionlimit(limit)
    return importlib.metadata.version("onnx2tf")


@contextlib.contextmanager
def _recursion_limit(at_least: int) -> Iterator[None]:
    """A deeper (but bounded) recursion limit for onnx2tf's graph walk, the process's own one restored after."""
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, at_least))
    try:
        yield
    finally:
        sys.setrecursionlimit(limit)


def cache_root() -> Path:
    """Where converted models are kept: ``$EDGEQ_CACHE_DIR/onnx``, else ``$XDG_CACHE_HOME/edgeq/onnx``,
    else ``~/.cache/edgeq/onnx``."""
    if os.environ.get("EDGEQ_CACHE_DIR"):
        return Path(os.environ["EDGEQ_CACHE_DIR"]) / "onnx"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "edgeq" / "onnx"


def saved_model_for(onnx_path: str | os.PathLike, sha256: str, shapes: tuple[InputShape, ...] = ()) -> Path:
    """The SavedModel directory converted from ``onnx_path`` (cached by content hash, verified by its marker).

    Raises:
        Unavailable: the ``onnx`` extra is not installed.
        BadInput: the file is not a valid ONNX model; the cache folder cannot be written (a full disk,
            no permission, a file in its place): the message names it.
        ConversionFailed: onnx2tf could not convert it.
    """
    from edgeq import cache

    version = require_onnx2tf()
    target = cache_root() / f"{sha256[:32]}-onnx2tf-{version}{_shape_key(shapes)}"
    if _verified(target, sha256):
        return target
    model = _read(Path(onnx_path))
    overwrite = _overwrite(model, shapes, str(onnx_path))
    try:
        if os.path.lexists(target):  # damaged, planted or a symbolic link: never used, converted again
            cache.remove_entry(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        clean_stale(target.parent)  # conversions of killed processes
        work = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp{os.getpid()}-", dir=target.parent))
    except OSError as exc:
        raise _cache_error(exc, target) from exc
    try:
        _convert(model, work / "saved_model", _sample_shape(model))
        doc = {"onnx_sha256": sha256, "onnx2tf": version, "files": cache.files_of(work / "saved_model", MARKER)}
        write_json_atomic(work / "saved_model" / MARKER, doc)  # last: an entry without it was never finished
        try:
            os.replace(work / "saved_model", target)
        except OSError:
            if not _verified(target, sha256):  # not another process finishing the same model first
                raise
    except OSError as exc:
        raise _cache_error(exc, target) from exc
    except ConversionFailed as exc:
        full = _disk_full(exc)
        if full is not None:
            raise _cache_error(full, target) from exc
        dynamic = [(n, d) for n, d in _graph_inputs(model) if None in d]
        if dynamic and not overwrite:  # the likely cause, and the option that removes it
            name, dims = dynamic[0]
            example = "x".join(str(v) if v else ("1" if i == 0 else "N") for i, v in enumerate(dims))
            exc.hint = f"input {name!r} has dynamic dimensions: pin them with --input-shape {example}; {exc.hint}"
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


def load_converted(onnx_path: str | os.PathLike, sha256: str, load, shapes: tuple[InputShape, ...] = ()):
    """``load(folder)`` of the SavedModel converted from ``onnx_path``; a cached one that fails to load is
    converted again once, and if that fails too the error names the cache folder to delete.

    Raises:
        BadInput: the converted model does not load (the message names its cache folder), or see
            :func:`saved_model_for`.
    """
    from edgeq import cache

    folder = saved_model_for(onnx_path, sha256, shapes)
    try:
        return load(folder)
    except (BadInput, OSError, ValueError):
        cache.remove_entry(folder)  # the marker matched, but what it vouches for does not load: convert again
    folder = saved_model_for(onnx_path, sha256, shapes)
    try:
        return load(folder)
    except (BadInput, OSError, ValueError) as exc:
        why = exc.one_line() if isinstance(exc, BadInput) else str(exc)
        raise BadInput(
            f"the SavedModel converted from {onnx_path} in the ONNX conversion cache {folder} does not load"
            f" ({why[:300]})",
            f"delete the cache folder {folder} and rerun; if it fails again, check the model with onnx2tf -i MODEL",
        ) from exc


def _verified(entry: Path, sha256: str) -> bool:
    """Whether ``entry`` is a whole conversion of the ONNX file with this hash (:func:`edgeq.cache.damage`)."""
    from edgeq import cache

    if not os.path.lexists(entry):
        return False
    doc, _ = cache.damage(entry, MARKER, required=("onnx_sha256",))
    return doc is not None and doc["onnx_sha256"] == sha256 and (entry / "saved_model.pb").is_file()


def _disk_full(exc: BaseException) -> OSError | None:
    """The full-disk OSError in ``exc``'s chain (onnx2tf and TensorFlow wrap it), or None."""
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, OSError) and e.errno in _FULL:
            return e
        if "No space left on device" in str(e) or "Disk quota exceeded" in str(e):
            return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        e = e.__cause__ or e.__context__
    return None


def _cache_error(exc: OSError, target: Path) -> EdgeqError:
    """The exit-3 error for the ONNX conversion cache folder that cannot be written (the environment)."""
    where = target.parent
    if exc.errno in _FULL:
        return BadInput(
            f"no space left for the ONNX conversion cache {where} ({exc.strerror or 'disk full'})",
            f"free some disk space, delete old entries of {where}, or point EDGEQ_CACHE_DIR at another disk",
        )
    return BadInput(
        f"the ONNX conversion cache {where} cannot be written ({exc.strerror or exc})",
        "point EDGEQ_CACHE_DIR (or XDG_CACHE_HOME) at a writable folder",
    )


def _read(p: Path):
    import onnx

    try:
        model = onnx.load(str(p))
        onnx.checker.check_model(model)
    except Exception as exc:  # onnx raises DecodeError, ValidationError, OSError...
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BadInput(f"{p} is not a valid ONNX model ({msg[:200]})", "re-export it from its framework") from exc
    return model


def _shape_key(shapes: tuple[InputShape, ...]) -> str:
    """The cache entry's suffix for pinned input shapes: a conversion with other shapes is another model."""
    import hashlib

    if not shapes:
        return ""
    text = ";".join(sorted(f"{s.name or ''}:{'x'.join(map(str, s.dims))}" for s in shapes))
    return "-shape" + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:12]


def _graph_inputs(model) -> list[tuple[str, tuple[int | None, ...]]]:
    """The ONNX graph's real inputs (not initializers), each dimension None where it is symbolic."""
    constants = {t.name for t in model.graph.initializer}
    return [
        (i.name, tuple(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None
                       for d in i.type.tensor_type.shape.dim))
        for i in model.graph.input
        if i.name not in constants
    ]  # fmt: skip


def _overwrite(model, shapes: tuple[InputShape, ...], origin: str) -> dict[str, tuple[int, ...]]:
    """Pin the inputs of ``model`` (in place) to ``shapes`` (``--input-shape``, in the ONNX model's own layout,
    checked) and infer every other shape from them; the shapes pinned.

    Done here rather than with onnx2tf's ``overwrite_input_shape``, which reaches only its onnxsim pass: a
    symbolic batch left in the graph's other shapes still failed its conversion ("partially known TensorShape").
    """
    import onnx

    from edgeq.config import pin_shapes

    pinned = pin_shapes(shapes, _graph_inputs(model), origin) if shapes else {}
    if not pinned:
        return pinned
    for i in model.graph.input:
        for d, size in zip(i.type.tensor_type.shape.dim, pinned.get(i.name, ()), strict=False):
            d.dim_value = size  # clears dim_param (a oneof)
    for o in model.graph.output:
        o.type.tensor_type.ClearField("shape")  # inferred again from the pinned inputs
    del model.graph.value_info[:]
    try:
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    except Exception as exc:  # onnx raises InferenceError, ValidationError...
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BadInput(f"{origin} does not take --input-shape {pinned} ({msg[:200]})", "check the sizes") from exc
    model.CopyFrom(inferred)
    return pinned


def _sample_shape(model) -> tuple[int, ...] | None:
    """The NHWC shape of the model's first image input, for onnx2tf's sample data; None if not an image."""
    dims = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    if len(dims) != 4 or not all(dims):
        return None
    n, c, h, w = dims
    return (max(n, 20), h, w, c)


def _convert(model, out: Path, sample_shape: tuple[int, ...] | None) -> None:
    require_onnx2tf()  # imported with the process's recursion limit kept
    import onnx2tf
    import onnx2tf.onnx2tf as core

    from edgeq.tfimport import captured_stderr, tensorflow

    tensorflow()
    # For image inputs onnx2tf checks its conversion on sample images it downloads from GitHub; edgeq
    # runs without network, so it gets seeded uniform values of the same shape (only its self-check
    # uses them: calibration is edgeq's, on the representative data).
    fetch = core.download_test_image_data
    if sample_shape is not None:
        core.download_test_image_data = lambda: np.random.default_rng(0).uniform(0, 1, sample_shape).astype("float32")
    try:
        # it prints progress and the model summary: to the descriptors and to sys.stdout, which the CLI
        # may have swapped (stdout is data: one JSON document with --json)
        with (
            captured_stderr() as log,
            contextlib.redirect_stdout(io.StringIO()),
            contextlib.redirect_stderr(io.StringIO()),
            _recursion_limit(CONVERT_RECURSION_LIMIT),
        ):
            onnx2tf.convert(
                onnx_graph=model,
                output_folder_path=str(out),
                output_signaturedefs=True,
                non_verbose=True,
            )
    except OSError as exc:
        if exc.errno in _FULL:
            raise  # the environment, not the model: saved_model_for names the cache folder
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConversionFailed(
            f"onnx2tf could not convert the model: {msg[:300]}", "check its ops with onnx2tf -i MODEL"
        ) from exc
    except SystemExit as exc:  # onnx2tf exits the process on some failures
        raise ConversionFailed(
            f"onnx2tf could not convert the model (it exited with {exc.code})", "check its ops with onnx2tf -i MODEL"
        ) from exc
    except Exception as exc:
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConversionFailed(
            f"onnx2tf could not convert the model: {msg[:300]}", "check its ops with onnx2tf -i MODEL"
        ) from exc
    finally:
        core.download_test_image_data = fetch
    for extra in out.glob("*.tflite"):  # onnx2tf also writes float .tflite files: edgeq makes its own
        extra.unlink()
    if not (out / "saved_model.pb").is_file():
        tail = log.text.strip().splitlines()[-1:] if log.text.strip() else ["no output"]
        raise ConversionFailed(f"onnx2tf wrote no SavedModel ({tail[0][:200]})", "check its ops with onnx2tf -i MODEL")
