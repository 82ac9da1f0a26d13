"""ONNX input: an ``.onnx`` model converted to a TensorFlow SavedModel with onnx2tf, then the usual pipeline.

An optional extra (``pip install edgeq[onnx]``): onnx2tf with onnx, onnx-graphsurgeon, sng4onnx,
sne4onnx and onnxruntime (which it uses to check its conversion op by op).

onnx2tf writes NHWC models: an ONNX image input ``[N, C, H, W]`` becomes ``[N, H, W, C]``, the layout
TFLite and every edge accelerator use. Representative and evaluation data are given in that layout.

The SavedModel is kept in a cache folder named by the ONNX file's content hash and the onnx2tf
version, so a model is converted once; the folder appears whole or not at all.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import io
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from edgeq.errors import BadInput, ConversionFailed, Unavailable

INSTALL_HINT = "pip install edgeq[onnx]"


def require_onnx2tf() -> str:
    """The installed onnx2tf's version.

    Raises:
        Unavailable: the ``onnx`` extra is not installed.
    """
    try:
        import onnx  # noqa: F401
        import onnx2tf  # noqa: F401
    except ImportError as exc:
        raise Unavailable(f"ONNX input needs `{INSTALL_HINT}`", f"run {INSTALL_HINT} (onnx2tf and onnx)") from exc
    return importlib.metadata.version("onnx2tf")


def cache_root() -> Path:
    """Where converted models are kept: ``$EDGEQ_CACHE_DIR/onnx``, else ``$XDG_CACHE_HOME/edgeq/onnx``,
    else ``~/.cache/edgeq/onnx``."""
    if os.environ.get("EDGEQ_CACHE_DIR"):
        return Path(os.environ["EDGEQ_CACHE_DIR"]) / "onnx"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "edgeq" / "onnx"


def saved_model_for(onnx_path: str | os.PathLike, sha256: str) -> Path:
    """The SavedModel directory converted from ``onnx_path`` (cached by content hash).

    Raises:
        Unavailable: the ``onnx`` extra is not installed.
        BadInput: the file is not a valid ONNX model.
        ConversionFailed: onnx2tf could not convert it.
    """
    version = require_onnx2tf()
    target = cache_root() / f"{sha256[:32]}-onnx2tf-{version}"
    if (target / "saved_model.pb").is_file():
        return target
    model = _read(Path(onnx_path))
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".converting-", dir=target.parent))
    try:
        _convert(model, work / "saved_model", _sample_shape(model))
        try:
            os.replace(work / "saved_model", target)
        except OSError:
            if not (target / "saved_model.pb").is_file():  # not another process finishing the same model first
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


def _read(p: Path):
    import onnx

    try:
        model = onnx.load(str(p))
        onnx.checker.check_model(model)
    except Exception as exc:  # onnx raises DecodeError, ValidationError, OSError...
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BadInput(f"{p} is not a valid ONNX model ({msg[:200]})", "re-export it from its framework") from exc
    return model


def _sample_shape(model) -> tuple[int, ...] | None:
    """The NHWC shape of the model's first image input, for onnx2tf's sample data; None if not an image."""
    dims = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    if len(dims) != 4 or not all(dims):
        return None
    n, c, h, w = dims
    return (max(n, 20), h, w, c)


def _convert(model, out: Path, sample_shape: tuple[int, ...] | None) -> None:
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
        ):
            onnx2tf.convert(
                onnx_graph=model,
                output_folder_path=str(out),
                output_signaturedefs=True,
                non_verbose=True,
            )
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
