"""The public API: one function per pipeline stage.

Each takes explicit inputs and frozen configs and returns a frozen result; nothing here
prints or exits. Heavy imports (TensorFlow, LiteRT) happen inside the functions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from edgeq import SCHEMA_VERSION, bundled
from edgeq.artifacts import check_output, provenance, sha256_file, write_artifact, write_json_atomic
from edgeq.config import BenchConfig, DataConfig, LoadConfig, Mode, QuantizeConfig
from edgeq.errors import BadInput, OutputExists, Unavailable, UsageError
from edgeq.modelio import Format, LoadedModel, detect_format, keras_summary
from edgeq.modelio import load_model as _load_keras

__all__ = ["load_model", "quantize", "inspect", "evaluate", "bench", "build"]


def load_model(path: str, cfg: LoadConfig = LoadConfig()) -> LoadedModel:
    """Load a Keras (3 or tf_keras), .h5 or SavedModel model as the float reference.

    Raises:
        BadInput: missing, corrupt, or refused in safe mode.
    """
    return _load_keras(path, cfg)


def expected_input_range(model: LoadedModel) -> tuple[float, float] | None:
    """The value range the model was trained on, as far as it can be known.

    From the model's sidecar (edgeq records the training data range), or a leading
    Rescaling layer, which means the model takes raw 0..255 pixels.
    """
    if model.value_range is not None:
        return model.value_range
    if model.is_keras:
        for layer in model.obj.layers:
            name = type(layer).__name__
            if name == "InputLayer":
                continue
            if name == "Rescaling":
                return (0.0, 255.0)
            break
    return None


def _load_data(cfg: DataConfig, input_shape: tuple, expected: tuple[float, float] | None, what: str):
    from edgeq import data

    ds = data.load(cfg, input_shape)
    warnings = data.validate(ds, input_shape, expected, what)
    return ds, warnings


@dataclass(frozen=True)
class QuantizeResult:
    output: str
    sidecar: str
    mode: str
    size_bytes: int
    reference_size_bytes: int
    float_ops: list[str]
    inputs: list[dict]
    outputs: list[dict]
    ops: dict[str, int]
    num_calibration_samples: int
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        d = dict(self.__dict__)
        d["size_ratio"] = round(self.size_bytes / self.reference_size_bytes, 4) if self.reference_size_bytes else None
        return d


def quantize(
    model_path: str,
    output: str,
    cfg: QuantizeConfig,
    data_cfg: DataConfig | None = None,
    load_cfg: LoadConfig = LoadConfig(),
    force: bool = False,
) -> QuantizeResult:
    """Convert a Keras/SavedModel model to .tflite per ``cfg`` and verify what came out.

    Args:
        model_path: the float model.
        output: the .tflite to write (a ``.edgeq.json`` sidecar goes beside it).
        cfg: mode, I/O type, batch, whether float ops are allowed.
        data_cfg: calibration data, required for int8 and int16x8.
        force: overwrite an existing output.

    Returns:
        Sizes, the ops still computing in float, and the I/O tensors with their quantization.

    Raises:
        UsageError: int8/int16x8 without data.
        BadInput: model or data problems; the output already exists.
        ConversionFailed: the converter failed, or its output is not what was asked.
    """
    from edgeq import flatbuffer
    from edgeq.quantize import ptq, verify

    out = check_output(output, force)
    if cfg.mode.needs_data and data_cfg is None:
        raise UsageError(
            f"{cfg.mode.value} quantization needs calibration data",
            "pass --data PATH (e.g. representative_data/mnist_calib.npz)",
        )
    model = load_model(model_path, load_cfg)
    shape = ptq.static_input_shape(model, cfg.batch)
    warnings: list[str] = []
    calib = None
    if data_cfg is not None and cfg.mode.needs_data:
        calib, warnings = _load_data(data_cfg, shape[1:], expected_input_range(model), "calibration data")
        if calib.num_samples < cfg.batch:
            raise BadInput(
                f"calibration data has {calib.num_samples} samples, fewer than --batch {cfg.batch}", "give more samples"
            )
    data, log = ptq.convert(model, cfg, calib)
    info = flatbuffer.read_bytes(data, origin="converted model")
    check = verify.verify(info, cfg)
    verify.require(check, cfg)
    reference_size = (
        len(data)
        if cfg.mode == Mode.FLOAT
        else len(ptq.convert(model, QuantizeConfig(mode=Mode.FLOAT, batch=cfg.batch), None)[0])
    )
    warnings += [p for p in check.problems]
    extra = {
        "calibration": calib.provenance(data_cfg.seed) if calib is not None and data_cfg is not None else None,
        "verification": {"float_ops": list(check.float_ops), "problems": list(check.problems)},
        "converter_log": log[-8000:],
        "warnings": warnings,
        "model_format": model.format.value,
    }
    doc = provenance("quantize", cfg.to_dict(), {"model": model_path}, **extra)
    written, side = write_artifact(out, data, doc)
    return QuantizeResult(
        output=str(written),
        sidecar=str(side),
        mode=cfg.mode.value,
        size_bytes=len(data),
        reference_size_bytes=reference_size,
        float_ops=list(check.float_ops),
        inputs=[t.to_dict() for t in info.inputs],
        outputs=[t.to_dict() for t in info.outputs],
        ops=info.op_histogram(),
        num_calibration_samples=calib.num_samples if calib is not None else 0,
        warnings=warnings,
    )


def inspect(model_path: str, load_cfg: LoadConfig = LoadConfig()) -> dict:
    """Describe a model: I/O, op histogram, float vs integer ops, size, parameters, MACs.

    Raises:
        BadInput: missing, corrupt or unreadable model.
    """
    fmt = detect_format(model_path)
    if fmt == Format.TFLITE:
        from edgeq import flatbuffer

        info = flatbuffer.read_file(model_path)
        return {
            "path": model_path,
            "format": fmt.value,
            "size_bytes": info.size_bytes,
            "num_subgraphs": info.num_subgraphs,
            "inputs": [t.to_dict() for t in info.inputs],
            "outputs": [t.to_dict() for t in info.outputs],
            "num_ops": len(info.ops),
            "ops": info.op_histogram(),
            "compute": info.compute_histogram(),
            "float_ops": sorted(set(info.float_ops)),
            "num_float_ops": len(info.float_ops),
            "custom_ops": info.custom_ops,
            "num_parameters": info.num_parameters,
            "weight_dtypes": info.weight_dtypes,
            "macs": info.macs,
            "description": info.description,
        }
    model = load_model(model_path, load_cfg)
    summary = keras_summary(model)
    return {
        "path": model_path,
        "format": fmt.value,
        "size_bytes": int(sum(f.stat().st_size for f in Path(model_path).rglob("*") if f.is_file()))
        if Path(model_path).is_dir()
        else Path(model_path).stat().st_size,
        "inputs": [s.to_dict() for s in model.inputs],
        "outputs": [s.to_dict() for s in model.outputs],
        "expected_input_range": expected_input_range(model),
        **summary,
    }


def _reference_outputs(reference_path: str, x, load_cfg: LoadConfig):
    if detect_format(reference_path) == Format.TFLITE:
        from edgeq.runtime import open_session

        return open_session(reference_path, batch=1, origin=reference_path).predict(x)
    return load_model(reference_path, load_cfg).predict(x)


def evaluate(model_path: str, reference_path: str, data_cfg: DataConfig, load_cfg: LoadConfig = LoadConfig()) -> dict:
    """Accuracy of a .tflite and its float reference, agreement and output fidelity.

    Returns:
        ``reference.accuracy`` and ``quantized.accuracy`` (None without labels),
        ``agreement``, ``sqnr_db``, ``cosine_similarity``, mean/max absolute error.

    Raises:
        BadInput: bad model or data, labels that do not fit the outputs.
    """
    from edgeq.bench import fidelity
    from edgeq.runtime import open_session

    if detect_format(model_path) != Format.TFLITE:
        raise BadInput(
            f"{model_path} is not a .tflite model", "pass the converted .tflite first and --reference the float model"
        )
    session = open_session(model_path, batch=1, origin=model_path)
    shape = tuple(int(d) for d in session.input["shape"][1:])
    ds, warnings = _load_data(data_cfg, shape, session.input_range(), "evaluation data")
    test = session.predict(ds.x)
    ref = _reference_outputs(reference_path, ds.x, load_cfg)
    if ref.shape != test.shape:
        raise BadInput(
            f"reference outputs {ref.shape[1:]} and model outputs {test.shape[1:]} differ",
            "compare a model with its own float reference",
        )
    if ds.y is not None:
        fidelity.check_labels(ref, ds.y, ds.source)
    result = fidelity.compare(ref, test, ds.y)
    result.update({"model": model_path, "reference_model": reference_path, "data": ds.source, "warnings": warnings})
    return result


def bench(model_path: str, target: str, cfg: BenchConfig, device: str | None = None):
    """Benchmark a .tflite on ``target`` (warm-up excluded, p50/p90/p99).

    Raises:
        UsageError: unknown target.
        Unavailable: the target's runner is not available here.
        BadInput: the model cannot run (custom op, dynamic batch without ``cfg.batch``).
    """
    from edgeq.targets import registry

    if detect_format(model_path) != Format.TFLITE:
        raise BadInput(
            f"{model_path} is not a .tflite model", "quantize it first: edgeq quantize MODEL -o model.tflite"
        )
    runner = registry.get(target).runner(device)
    available = runner.availability()
    if not available.available:
        raise Unavailable(
            f"target {target} is not available: {available.reason}", "attach the device or choose another --target"
        )
    return runner.benchmark(model_path, cfg)


@dataclass(frozen=True)
class BuildResult:
    target: str
    out_dir: str
    variants: list[dict]
    artifacts: list[str]
    warnings: list[str]

    def to_dict(self) -> dict:
        return dict(self.__dict__)


BUILD_MANIFEST = "build.json"


def _prepare_build_dir(out_dir: Path, force: bool) -> None:
    """A build owns its folder: an earlier build's folder is reused, anything else is refused."""
    if out_dir.exists() and not out_dir.is_dir():
        raise BadInput(f"build output {out_dir} is a file", "choose a folder with -o")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not (out_dir / BUILD_MANIFEST).exists() and not force:
        raise OutputExists(f"{out_dir} exists and is not an edgeq build folder", "choose another -o or pass --force")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BadInput(f"cannot create build folder {out_dir} ({exc.strerror})", "choose another -o location") from exc


def build(
    target: str,
    model_path: str | None = None,
    data_path: str | None = None,
    eval_data_path: str | None = None,
    out_dir: str = "edgeq-out",
    bench_cfg: BenchConfig = BenchConfig(),
    force: bool = False,
) -> BuildResult:
    """Keras model to a deployable model for ``target``: quantize, verify, evaluate, benchmark.

    With no model and data, builds the bundled MNIST CNN on the bundled data.

    Raises:
        UsageError: unknown target.
        BadInput, ConversionFailed: as the stages raise.
    """
    from edgeq.targets import registry

    tgt = registry.get(target)
    model_path = model_path or bundled.require(bundled.MODEL)
    data_path = data_path or bundled.require(bundled.CALIB)
    eval_data_path = eval_data_path or (
        bundled.require(bundled.EVAL) if model_path == str(bundled.MODEL) else data_path
    )
    root = Path(out_dir) / target
    _prepare_build_dir(root, force)
    stem = Path(model_path).stem
    variants = [
        ("float", QuantizeConfig(mode=Mode.FLOAT)),
        (tgt.build_mode.value, QuantizeConfig(mode=tgt.build_mode, io=tgt.build_io)),
    ]
    rows, artifacts, warnings = [], [], []
    for label, qcfg in variants:
        out = root / f"{stem}_{label}.tflite"
        q = quantize(model_path, str(out), qcfg, DataConfig(path=data_path), force=True)
        warnings += q.warnings
        ev = evaluate(q.output, model_path, DataConfig(path=eval_data_path))
        report = tgt.check(q.output)
        compiled = tgt.compile(q.output, str(root))
        row = {
            "variant": label,
            "output": q.output,
            "size_bytes": q.size_bytes,
            "accuracy": ev["quantized"]["accuracy"],
            "reference_accuracy": ev["reference"]["accuracy"],
            "agreement": ev["agreement"],
            "sqnr_db": ev["sqnr_db"],
            "num_eval_samples": ev["num_samples"],
            "float_ops": len(q.float_ops),
            "inputs": q.inputs,
            "check": report.to_dict(),
            "compile": {"output": compiled.output, "skipped": compiled.skipped, "reason": compiled.reason},
            "latency_ms": None,
        }
        runner = tgt.runner()
        if runner.availability().available:
            b = runner.benchmark(compiled.output, bench_cfg)
            row["latency_ms"] = b.stats.to_dict()["latency_ms"]
            row["first_invoke_ms"] = b.stats.first_invoke_ms
            row["bench_environment"] = b.environment
        rows.append(row)
        artifacts += [q.output, q.sidecar]
    manifest = {
        "schema_version": SCHEMA_VERSION,
        "target": target,
        "model": {"path": model_path, "sha256": sha256_file(model_path)},
        "data": data_path,
        "eval_data": eval_data_path,
        "bench": bench_cfg.to_dict(),
        "variants": rows,
        "warnings": warnings,
    }
    write_json_atomic(root / BUILD_MANIFEST, manifest)
    artifacts.append(str(root / BUILD_MANIFEST))
    return BuildResult(target=target, out_dir=str(root), variants=rows, artifacts=artifacts, warnings=warnings)
