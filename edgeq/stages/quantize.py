"""``quantize``: a Keras/SavedModel model to a verified .tflite (PTQ, selective), with its sidecar."""

from __future__ import annotations

from pathlib import Path

from edgeq.artifacts import check_output, provenance, sha256_file, write_artifact
from edgeq.config import DataConfig, LoadConfig, Mode, QuantizeConfig
from edgeq.modelio import Format, LoadedModel, detect_format
from edgeq.stages.common import calibration, input_paths, load_model, require_data
from edgeq.stages.quantize_result import QuantizeResult


def quantize(
    model_path: str,
    output: str,
    cfg: QuantizeConfig,
    data_cfg: DataConfig | None = None,
    load_cfg: LoadConfig = LoadConfig(),
    force: bool = False,
    reference_size_bytes: int | None = None,
    size_ratio: bool = False,
) -> QuantizeResult:
    """Convert a Keras/SavedModel model to .tflite per ``cfg`` and verify what came out.

    A float .tflite goes to :mod:`edgeq.stages.quantize_tflite` (litert-quantizer) instead.

    Args:
        model_path: the float model.
        output: the .tflite to write (a ``.edgeq.json`` sidecar goes beside it).
        cfg: mode, I/O type, batch, whether float ops are allowed.
        data_cfg: calibration data, required for int8 and int16x8.
        force: overwrite an existing output.
        reference_size_bytes: the float .tflite's size when the caller already has it.
        size_ratio: without ``reference_size_bytes``, make one more (float) conversion to measure
            the float size. Off by default: the ratio then is None and no extra conversion is made.

    Returns:
        Sizes, the ops still computing in float, and the I/O tensors with their quantization.

    Raises:
        UsageError: int8/int16x8 without data.
        BadInput: model or data problems; the output already exists.
        ConversionFailed: the converter failed, or its output is not what was asked.
    """
    if detect_format(model_path) == Format.TFLITE:  # a downloaded float .tflite: no Keras model to convert
        from edgeq.stages.quantize_tflite import quantize_tflite

        return quantize_tflite(model_path, output, cfg, data_cfg, force, load_cfg)
    if cfg.techniques.cle:
        from edgeq.quantize import cle

        cle.refuse_unless_keras(model_path)
    out = check_output(output, force, input_paths(model_path, data_cfg))
    require_data(cfg, data_cfg)
    model = load_model(model_path, load_cfg)
    calib, warnings = calibration(model, cfg, data_cfg)
    data, log, extra = convert(model, cfg, calib, {})
    if reference_size_bytes is None and size_ratio and cfg.mode != Mode.FLOAT:
        reference_size_bytes = float_size(model, cfg.batch)
    result, doc = verified(
        model, out, cfg, data, log, calib, data_cfg, warnings, reference_size_bytes, "quantize", extra
    )
    write_artifact(out, data, doc)
    return result


def float_size(model: LoadedModel, batch: int) -> int:
    """The size of ``model`` converted to a float .tflite (a full converter run: ask for it only when needed)."""
    from edgeq.quantize import ptq

    return len(ptq.convert(model, QuantizeConfig(mode=Mode.FLOAT, batch=batch), None)[0])


def convert(model: LoadedModel, cfg: QuantizeConfig, calib, extra: dict) -> tuple[bytes, str, dict]:
    """The converted bytes, the converter's log, and provenance extras (selective adds its denylist)."""
    from edgeq.quantize import ptq

    if cfg.selective:
        return selective(model, cfg, calib, extra)
    if cfg.mode == Mode.INT8 and not cfg.techniques.plain:
        from edgeq.quantize import techniques

        result = techniques.int8(model, calib, cfg)
        return result.model, "", extra | {"techniques": result.to_dict()}
    data, log = ptq.convert(model, cfg, calib)
    return data, log, extra


def selective(model: LoadedModel, cfg: QuantizeConfig, calib, extra: dict) -> tuple[bytes, str, dict]:
    """int8 with the denylisted tensors and op types kept in float (via the quantization debugger)."""
    from edgeq.debug import debugger

    session = debugger.calibrate(model, calib)
    nodes = session.resolve(list(cfg.denylist))
    data = session.quantized_model(nodes, list(cfg.denylist_ops), cfg.io_type)
    return (
        data,
        session.log,
        extra | {"selective": {"denylisted_nodes": nodes, "denylisted_ops": list(cfg.denylist_ops)}},
    )


def chosen_float(cfg: QuantizeConfig, extra: dict) -> bool:
    """Whether float ops were chosen on purpose (selective quantization, directly or by the planner)."""
    return cfg.selective or "selective" in extra or (extra.get("plan") or {}).get("chosen", "").startswith("selective")


def verified(
    model: LoadedModel,
    out: Path,
    cfg: QuantizeConfig,
    data: bytes,
    log: str,
    calib,
    data_cfg: DataConfig | None,
    warnings: list[str],
    reference_size_bytes: int | None,
    command: str,
    extra: dict,
) -> tuple[QuantizeResult, dict]:
    """The result and the sidecar document of verified converted bytes; nothing is written yet.

    ``reference_size_bytes`` is reported as given (None: unknown); no conversion is made here.
    """
    from edgeq import tflite
    from edgeq.quantize import verify

    info = tflite.read_bytes(data, origin="converted model")
    check = verify.verify(info, cfg)
    verify.require(check, cfg)
    reference_size = len(data) if cfg.mode == Mode.FLOAT else reference_size_bytes
    # float ops that selective quantization asked for are the point, not a warning
    warnings = warnings + [p for p in check.problems if not chosen_float(cfg, extra) or "compute in float" not in p]
    doc = provenance(
        command,
        cfg.to_dict(),
        {},
        calibration=calib.provenance(data_cfg.seed) if calib is not None and data_cfg is not None else None,
        verification={"float_ops": list(check.float_ops), "problems": list(check.problems)},
        converter_log=log[-8000:],
        warnings=warnings,
        model_format=model.format.value,
        **extra,
    )
    # the model was hashed when it was loaded: the hash of what was converted, and no second read
    doc["inputs"] = {"model": {"path": model.path, "sha256": model.sha256 or sha256_file(model.path)}}
    samples = calib.num_samples if calib is not None else 0
    result = QuantizeResult.of(
        out, cfg, data, info, list(check.float_ops), reference_size, samples, warnings, extra.get("techniques")
    )
    return result, doc
