"""``quantize`` for a float .tflite (what people download): full int8 by litert-quantizer
(:mod:`edgeq.quantize.from_tflite`), verified and written with its sidecar like every conversion."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from edgeq.config import IOType, LoadConfig, Mode, QuantizeConfig
from edgeq.errors import BadInput, UsageError
from edgeq.stages.quantize_result import QuantizeResult

if TYPE_CHECKING:
    from edgeq.quantize.from_tflite import Quantized


def quantize_tflite(
    model_path: str,
    output: str,
    cfg: QuantizeConfig,
    data_cfg,
    force: bool = False,
    load_cfg: LoadConfig = LoadConfig(),
):
    """``quantize`` for a float .tflite: calibrate, quantize, verify like any conversion, write with a sidecar.

    Args:
        model_path: the float .tflite.
        output: the int8 .tflite to write (a ``.edgeq.json`` sidecar goes beside it, naming the route).
        cfg: int8 mode with int8 I/O, int16x8 with int16 I/O (what the quantizer makes), either with
            float I/O (QUANTIZE and DEQUANTIZE ops added around that integer body); float mode writes the model unchanged
            (the float reference of a build), fp16 mode with float16 weights (Android's GPU flavour).
        data_cfg: the representative data (required).
        force: overwrite an existing output.
        load_cfg: its ``input_shapes`` (``--input-shape``) pin dynamic input dimensions; without them a
            dynamic batch alone takes ``cfg.batch``. The written model is static either way.

    Returns:
        A ``QuantizeResult`` like the Keras route's.

    Raises:
        UsageError: a mode or I/O type this route cannot make; no data.
        BadInput: not a float single-input .tflite; data that does not fit its input.
        ConversionFailed: the quantizer failed, or its output is not all int8 with the I/O asked for.
        Unavailable: litert-quantizer (formerly ai-edge-quantizer) is not installed.
    """
    from edgeq import tflite
    from edgeq.artifacts import check_output, provenance, sha256_file, write_artifact
    from edgeq.quantize import from_tflite, verify
    from edgeq.stages.common import input_paths, load_data, require_data
    from edgeq.tflite import edit as tflite_edit

    out = check_output(output, force, input_paths(model_path, data_cfg))
    from_tflite.check_config(cfg)
    require_data(cfg, data_cfg)
    original = tflite.read_model_bytes(model_path)
    model = from_tflite.prepare(original, model_path, load_cfg.input_shapes, cfg.batch)
    pinned = {"pinned_input_shape": list(model.input_shape)} if model.pinned_input_shape else {}
    if cfg.mode in (Mode.FLOAT, Mode.FP16):
        return _float_flavour(model_path, original, model, out, cfg, pinned)
    version = from_tflite.require_quantizer()
    batch = model.input_shape[0] if model.input_shape else 1
    if cfg.batch != batch:
        raise UsageError(
            f"{model_path} has its batch fixed at {batch}; --batch {cfg.batch} cannot change it",
            f"drop --batch (or pass --batch {batch}); a dynamic batch is pinned with --batch or --input-shape",
        )
    calib, warnings = load_data(data_cfg, model.input_shape[1:], None, "calibration data")
    if calib.num_samples < batch:
        raise BadInput(f"calibration data has {calib.num_samples} samples, fewer than the batch {batch}", "give more")
    q = from_tflite.quantize_measured(model, calib.x.astype(np.float32), cfg.mode)
    data, log = q.data, q.log
    if cfg.io_type == IOType.FLOAT:  # the quantizer makes integer I/O; float I/O wraps that body
        data = tflite_edit.io_conversion(data, "float32")
    info = tflite.read_bytes(data, origin="quantized model")
    check = verify.verify(info, cfg)
    verify.require(check, cfg)
    warnings = warnings + list(check.problems)
    route = _route(model, cfg, version, pinned) | _calibration_kept(q)
    doc = provenance(
        "quantize",
        cfg.to_dict(),
        {},
        calibration=calib.provenance(data_cfg.seed),
        verification={"float_ops": list(check.float_ops), "problems": list(check.problems)},
        converter_log=log[-8000:],
        warnings=warnings,
        model_format="tflite",
        route=route,
    )
    doc["inputs"] = {"model": {"path": model_path, "sha256": sha256_file(model_path)}}
    write_artifact(out, data, doc)
    return QuantizeResult.of(out, cfg, data, info, list(check.float_ops), len(original), calib.num_samples, warnings)


def _float_flavour(model_path: str, original: bytes, model, out, cfg: QuantizeConfig, pinned: dict):
    """Float mode: the model itself (pinned, if it was: its float reference then has the static shape its
    quantized ones have); fp16 mode: with float16 weights."""
    from edgeq.quantize import from_tflite

    if cfg.mode == Mode.FP16:
        data, count = from_tflite.to_fp16(model.data)
        return _as_is(model_path, data, out, cfg, {"tool": "edgeq", "fp16_constants": count, **pinned}, len(original))
    if pinned:
        return _as_is(model_path, model.data, out, cfg, {"tool": "edgeq", **pinned}, len(original))
    copied = {"tool": None, "copied": "a float .tflite is its own float model"}
    return _as_is(model_path, original, out, cfg, copied, len(original))


def _as_is(model_path: str, data: bytes, out, cfg: QuantizeConfig, route: dict, reference_size: int):
    """A float flavour of a float .tflite (itself, or with fp16 weights), verified and with its sidecar."""
    from edgeq import tflite
    from edgeq.artifacts import provenance, sha256_file, write_artifact
    from edgeq.quantize import verify

    info = tflite.read_bytes(data, origin=model_path)
    check = verify.verify(info, cfg)
    verify.require(check, cfg)
    doc = provenance(
        "quantize",
        cfg.to_dict(),
        {},
        verification={"float_ops": list(check.float_ops), "problems": list(check.problems)},
        warnings=list(check.problems),
        model_format="tflite",
        route=route,
    )
    doc["inputs"] = {"model": {"path": model_path, "sha256": sha256_file(model_path)}}
    write_artifact(out, data, doc)
    return QuantizeResult.of(out, cfg, data, info, list(check.float_ops), reference_size, 0, list(check.problems))


def _route(model, cfg: QuantizeConfig, version: str, pinned: dict) -> dict:
    """The sidecar's record of how litert-quantizer made the model, and what edgeq did around it."""
    from edgeq.quantize import from_tflite

    return {
        "tool": from_tflite.PACKAGE,
        "version": version,
        "recipe": from_tflite.RECIPES[cfg.mode],
        "calibration": from_tflite.CALIBRATION,
        "folded_fp16_constants": model.folded_fp16_constants,
        "added_signature": from_tflite.SIGNATURE if model.added_signature else None,
        "io": "float32 (QUANTIZE/DEQUANTIZE added by edgeq at the I/O)"
        if cfg.io_type == IOType.FLOAT
        else cfg.io_type.value,
        **pinned,
    }


def _calibration_kept(q: Quantized) -> dict:
    """Which calibration the route kept and each candidate's worst-output SQNR on the calibration data."""
    return {"calibration_chosen": q.calibration, "calibration_worst_sqnr_db": dict(q.worst_sqnr_db)}
