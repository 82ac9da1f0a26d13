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
import re
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgeq.artifacts import clean_stale, write_bytes_atomic, write_json_atomic
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
    out_text, err_text = io.StringIO(), io.StringIO()
    try:
        # it prints progress and the model summary: to the descriptors and to sys.stdout, which the CLI
        # may have swapped (stdout is data: one JSON document with --json); kept for a failure's message
        with (
            captured_stderr() as log,
            contextlib.redirect_stdout(out_text),
            contextlib.redirect_stderr(err_text),
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
        failed = _conversion_failed(model, exc, [log.text, out_text.getvalue(), err_text.getvalue()])
        raise failed from failed.__cause__
    except (Exception, SystemExit) as exc:  # onnx2tf exits the process on some failures
        failed = _conversion_failed(model, exc, [log.text, out_text.getvalue(), err_text.getvalue()])
        raise failed from failed.__cause__  # its log, chained to onnx2tf's exception
    finally:
        core.download_test_image_data = fetch
    for extra in out.glob("*.tflite"):  # onnx2tf also writes float .tflite files: edgeq makes its own
        extra.unlink()
    if not (out / "saved_model.pb").is_file():
        raise _conversion_failed(model, None, [log.text, out_text.getvalue(), err_text.getvalue()])


def _conversion_failed(model, exc: BaseException | None, logs: list[str]) -> ConversionFailed:
    """One line naming the failing op and node (as far as the log says, completed from the graph) and why;
    the meaningful tail of onnx2tf's log in the details, and chained as the cause so ``-v`` shows it."""
    if isinstance(exc, SystemExit):
        head = f"onnx2tf exited with {exc.code}"
    elif exc is not None:
        head = f"{type(exc).__name__}: {exc}"
    else:
        head = "onnx2tf wrote no SavedModel"
    failure = parse_log("\n".join([*logs, head]))
    node = failure.node
    if failure.op and not node:  # the log names the op type only: the graph's nodes of that type
        names = [n.name or (n.output[0] if n.output else "?") for n in model.graph.node if n.op_type == failure.op]
        node = ", ".join(names[:3]) + (f" (+{len(names) - 3} more)" if len(names) > 3 else "") if names else None
    node = node[:120] if node else None  # a model's string: bounded (the CLI makes it printable)
    where = f" at {failure.op} node {node!r}" if failure.op and node else f" at op {failure.op}" if failure.op else ""
    if failure.op:
        hint = (
            f"onnx2tf cannot convert this {failure.op} node: replace it or move it out of the model (re-export"
            f" without it, or run it outside), or try another onnx2tf version; rerun with -v for its log"
        )
    else:
        hint = "rerun with -v for onnx2tf's log; check the model with onnx2tf -i MODEL"
    error = ConversionFailed(
        f"onnx2tf could not convert the model{where}: {failure.reason[:300]}",
        hint,
        details={**failure.to_dict(), "node": node},
    )
    error.__cause__ = ConverterLog("onnx2tf's log (meaningful tail):\n" + "\n".join(failure.tail))
    if exc is not None:
        error.__cause__.__cause__ = exc
    return error


SPLIT_DIR = "split"  # under the cache root: ONNX models with a head's Concat cut, named by their content hash


def split_concat_output(
    onnx_path: str | os.PathLike,
    index: int,
    axis: int,
    accept: Callable[[list[int]], str | None],
) -> tuple[Path, list[int]] | str:
    """The ONNX model with the ``Concat`` node that makes graph output ``index`` cut: in its place the graph's
    outputs become the Concat's inputs, in order, through Identity nodes named ``f"{output}_{k}"`` (onnx2tf
    names the converted model's outputs by position: ``output_0``, ``output_1``, ...).

    The edited model is written to the conversion cache (``split/`` under :func:`cache_root`, named by its
    content's sha256) and converted like any ONNX model when loaded. ``accept(sizes)`` says why the parts'
    sizes along ``axis`` do not fit (None when they do). Names from the model are only compared and copied,
    never run.

    Returns:
        The edited file and its parts' sizes along ``axis``, or why the output cannot be cut, in one line.

    Raises:
        Unavailable: the ``onnx`` extra is not installed. BadInput: not a valid ONNX model; the cache
            cannot be written.
    """
    import hashlib

    import onnx

    require_onnx2tf()
    model = onnx.shape_inference.infer_shapes(_read(Path(onnx_path)))
    graph = model.graph
    if not 0 <= index < len(graph.output):
        return f"the ONNX graph has no output {index}"
    output = graph.output[index].name
    found = _concat_making(graph, output, axis)
    if isinstance(found, str):
        return found
    node, sizes = found
    if (why := accept(sizes)) is not None:
        return why
    names = [f"{output}_{k}" for k in range(len(sizes))]
    taken = {t for n in graph.node for t in (*n.input, *n.output)} | {i.name for i in graph.input}
    if clash := [n for n in names if n in taken]:
        return f"the graph already has a tensor named {clash[0]!r}"
    before, after = list(graph.output[:index]), list(graph.output[index + 1 :])
    elem = graph.output[index].type.tensor_type.elem_type
    parts = []
    for name, source in zip(names, node.input, strict=True):
        graph.node.append(onnx.helper.make_node("Identity", [source], [name], name=name))
        parts.append(onnx.helper.make_tensor_value_info(name, elem, _dims_of(graph, source)))
    graph.node.remove(node)
    del graph.output[:]
    graph.output.extend([*before, *parts, *after])
    onnx.checker.check_model(model)
    data = model.SerializeToString()
    path = cache_root() / SPLIT_DIR / f"{hashlib.sha256(data).hexdigest()[:32]}.onnx"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(path, data)  # always: a file found there is not trusted
    except OSError as exc:
        raise _cache_error(exc, path) from exc
    return path, sizes


def _dims_of(graph, name: str) -> list[int | str | None] | None:
    """Tensor ``name``'s shape as inference gave it: a size, a symbolic name (``"batch"``) or None (unknown)
    per axis; None where its rank is unknown."""
    for v in (*graph.value_info, *graph.output, *graph.input):
        if v.name == name and v.type.tensor_type.HasField("shape"):
            return [
                d.dim_value if d.HasField("dim_value") else d.dim_param if d.HasField("dim_param") else None
                for d in v.type.tensor_type.shape.dim
            ]
    return None


def _concat_making(graph, output: str, axis: int) -> tuple[Any, list[int]] | str:
    """The Concat node that makes graph output ``output`` along ``axis`` and its inputs' sizes, or why not."""
    node = next((n for n in graph.node if output in n.output), None)
    if node is None:
        return f"no node of the ONNX graph makes output {output!r}"
    if node.op_type != "Concat":
        return f"it is made by a {node.op_type} node, not a Concat"
    if any(output in n.input for n in graph.node):
        return "the concatenation is used inside the graph too"
    shapes = [_dims_of(graph, i) for i in node.input]
    if any(not s for s in shapes):
        return "its Concat's inputs have no known shape"
    rank = len(shapes[0])  # type: ignore[arg-type]
    cat = next((a.i for a in node.attribute if a.name == "axis"), 0) % rank
    if cat != axis:
        return f"its Concat joins axis {cat}, not the grouped axis {axis}"
    sizes = [s[cat] for s in shapes]  # type: ignore[index]
    if not all(isinstance(n, int) and n > 0 for n in sizes):
        return f"its Concat's inputs have no static size along axis {cat}"
    return node, [int(n) for n in sizes]  # type: ignore[arg-type]


def graph_summary(onnx_path: str | os.PathLike) -> dict:
    """The ONNX graph as the user wrote it (for ``inspect``): one row per node (its name, op type and the
    number of values of the initializers it reads), the op histogram, and the parameter count (every
    initializer's values; onnx2tf folds them into graph constants, so the SavedModel holds no variables).

    Raises:
        Unavailable: the ``onnx`` package is not installed.
        BadInput: the file is not a valid ONNX model.
    """
    try:
        import onnx  # noqa: F401
    except ImportError as exc:
        raise Unavailable(f"ONNX input needs `{INSTALL_HINT}`", f"run {INSTALL_HINT} (onnx2tf and onnx)") from exc
    model = _read(Path(onnx_path))
    graph = model.graph
    sizes = {t.name: int(np.prod(t.dims, dtype=np.int64)) for t in graph.initializer}
    layers: list[dict] = []
    ops: dict[str, int] = {}
    for i, node in enumerate(graph.node):
        name = node.name or (node.output[0] if node.output else f"{node.op_type}_{i}")
        layers.append({"name": name, "type": node.op_type, "parameters": sum(sizes.get(x, 0) for x in node.input)})
        ops[node.op_type] = ops.get(node.op_type, 0) + 1
    return {
        "layers": layers,
        "num_layers": len(layers),
        "ops": dict(sorted(ops.items(), key=lambda kv: (-kv[1], kv[0]))),
        "num_parameters": int(sum(sizes.values())),
        "opset": {o.domain or "ai.onnx": int(o.version) for o in model.opset_import},
    }


# --- converter logs --------------------------------------------------------------------------------------
# What a converter's failure says, read from its exception and its log (onnx2tf here, the TFLite converter in
# edgeq.quantize.ptq). Their errors are long and their first line is often useless: TensorFlow's graph-mode
# errors open with ``in user code:``, onnx2tf prints a traceback, boilerplate advice and colour codes.
# :func:`parse_log` keeps what a person needs: the reason (the last exception line, else the last error line
# that is not boilerplate), the op type and node the log names, and the meaningful tail (colour codes,
# native logging and the frames of TensorFlow's and Keras's own code removed).

TAIL_LINES = 40  # the meaningful tail kept for the error's details and -v
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_NOISE = re.compile(
    r"^[IWE]\d{4} \d\d:\d\d:\d\d|^WARNING: All log messages before absl|oneDNN custom operations|cudart_stub"
    r"|Could not find cuda|^\s*[~^]+\s*$|^\s*$"
)
_FRAME = re.compile(r'^(\s*)File "([^"]+)", line \d+, in (\S+)')
_EXCEPTION = re.compile(r"^\s*((?:[A-Za-z_]\w*\.)*[A-Z]\w*(?:Error|Exception|Exit))(?::\s*(.*))?$")
_ERROR = re.compile(r"^\s*ERROR:\s*(.*)$")
_BOILERPLATE = re.compile(
    r"^(The trace log is below|input_onnx_file_path:|onnx_op_name:|Read this and deal with it|Alternatively, if"
    r"|If the input OP of ONNX|Also, for models that include)"
)
_OP_PATTERNS = (
    re.compile(r"onnx2tf/ops/(\w+)\.py"),  # a frame of onnx2tf's converter for that ONNX op
    re.compile(r"No module named 'onnx2tf\.ops\.(\w+)'"),
    re.compile(r"^(\w+) OP is not yet implemented"),
    re.compile(r"'tfl?\.(\w+)' op"),  # the TFLite converter's MLIR diagnostics
    re.compile(r"\{\{node [^}]+\}\} = (\w+)\["),  # TensorFlow's graph errors: {{node NAME}} = OpType[...]
)
_NODE = re.compile(r"onnx_op_name:\s*(\S+)|\{\{node ([^}]+)\}\}")


@dataclass(frozen=True)
class Failure:
    """A converter failure as a person needs it."""

    reason: str  # one line
    op: str | None = None  # the op type the log names (an ONNX op type for onnx2tf)
    node: str | None = None  # the node the log names
    tail: list[str] = field(default_factory=list)  # the meaningful last lines of the exception and log

    def to_dict(self) -> dict:
        return {"reason": self.reason, "op": self.op, "node": self.node, "log": self.tail}


def clean_lines(text: str) -> list[str]:
    """The lines of ``text`` without colour codes, native logging, blank lines, and without the traceback
    frames (and their source lines) of installed libraries other than onnx2tf's op converters."""
    out: list[str] = []
    skip_indent: int | None = None
    for raw in _ANSI.sub("", text).splitlines():
        line = raw.rstrip()
        if _NOISE.search(line):
            continue
        frame = _FRAME.match(line)
        if frame:
            indent, path = len(frame.group(1)), frame.group(2).replace("\\", "/")
            library = "site-packages/" in path or "dist-packages/" in path
            skip_indent = indent if library and "onnx2tf/ops/" not in path else None
            if skip_indent is None:
                out.append(line)
            continue
        if skip_indent is not None and len(line) - len(line.lstrip()) > skip_indent:
            continue  # the source line under a dropped frame
        skip_indent = None
        out.append(line)
    return out


def parse_log(text: str, tail_lines: int = TAIL_LINES) -> Failure:
    """The reason, op, node and meaningful tail of a converter's exception text and log (``text``)."""
    lines = clean_lines(text)
    exceptions = [ln.strip() for ln in lines if _EXCEPTION.match(ln) and not ln.strip().startswith("File ")]
    errors = [m.group(1).strip() for ln in lines if (m := _ERROR.match(ln)) and m.group(1).strip()]
    errors = [e for e in errors if not _BOILERPLATE.match(e)]
    unimplemented = [e for e in errors if "OP is not yet implemented" in e]  # onnx2tf has no converter for it
    if unimplemented:
        reason = unimplemented[-1]
    elif exceptions:
        reason = exceptions[-1]
    elif errors:
        reason = errors[-1]
    else:
        useful = [
            ln.strip() for ln in lines if ln.strip() not in ("in user code:", "Traceback (most recent call last):")
        ]
        reason = useful[-1] if useful else "no message"
    op = None
    for pattern in _OP_PATTERNS:
        found = [m.group(1) for ln in lines if (m := pattern.search(ln.strip()))]
        if found:
            op = found[-1]
            break
    nodes = [m.group(1) or m.group(2) for ln in lines if (m := _NODE.search(ln))]
    return Failure(
        reason=_ANSI.sub("", reason)[:400], op=op, node=nodes[-1] if nodes else None, tail=lines[-tail_lines:]
    )


class ConverterLog(Exception):
    """The meaningful tail of a converter's log, chained under the error edgeq raises so that ``-v`` (which
    prints the traceback with its causes) shows it."""
