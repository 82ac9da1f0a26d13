"""The model flavours phones use, made and read back.

- ``float32``: the baseline; CPU (XNNPACK) and the GPU delegate at full precision.
- ``fp16``: float16 weights, float32 I/O; the GPU delegate's flavour (it computes in fp16 where it
  may). On the CPU the weights are upsampled to float32 before the first inference.
- ``int8``: full integer, no float op left; the flavour for NNAPI and the NPU/DSP delegates
  (Qualcomm, MediaTek, Google Tensor), and fast on the CPU with XNNPACK.

Each flavour is converted here with the layers below the stages (the model loaded once by
:mod:`edgeq.modelio`, converted by :mod:`edgeq.quantize.ptq`, its I/O dtypes and float ops checked by
:mod:`edgeq.quantize.verify`, written with a ``quantize`` sidecar as ``edgeq quantize`` writes it; a target
never calls a stage) and then read back against what the flavour promises; its sidecar gets an ``android``
section with the flavour, the delegates it is for, and its inputs and outputs (names, shapes,
dtypes, scales and zero points).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from edgeq.config import DataConfig, IOType, Mode, QuantizeConfig
from edgeq.errors import BadInput, ConversionFailed, OutputExists, UsageError
from edgeq.tflite import FLOAT_TYPES, ModelInfo, TensorInfo

if TYPE_CHECKING:
    from edgeq.data import Dataset
    from edgeq.modelio import LoadedModel

FLAVOURS = ("float32", "fp16", "int8")
MODES = {"float32": Mode.FLOAT, "fp16": Mode.FP16, "int8": Mode.INT8}
# Which delegates each flavour is for, best first (the rules of thumb of the LiteRT delegate docs).
DELEGATES_FOR = {
    "float32": ("gpu", "xnnpack", "cpu"),
    "fp16": ("gpu", "xnnpack"),
    "int8": ("nnapi", "xnnpack", "cpu"),
    "int16x8": ("cpu",),
    "dynamic": ("xnnpack", "cpu"),
    "mixed": ("xnnpack", "cpu"),
}
PURPOSE = {
    "float32": "baseline: CPU (XNNPACK) and the GPU delegate at full precision",
    "fp16": "GPU delegate (float16 weights; on the CPU they are upsampled to float32 before the first run)",
    "int8": "NNAPI and NPU/DSP delegates (full integer, no float op), and XNNPACK's int8 kernels on the CPU",
    "int16x8": "CPU only: NNAPI and the GPU delegate do not run 16-bit activations; reference kernels are slow",
    "dynamic": "CPU only: dynamic-range ops compute in float with int8 weights; no accelerator takes them whole",
    "mixed": "integer model with float ops left: under NNAPI/NPU delegates the float ops run on the CPU",
}
REPORT_SUFFIX = ".android.json"


def parse_flavours(value: str | tuple[str, ...] | list[str] | None) -> tuple[str, ...]:
    """``"float32,fp16,int8"`` to a checked tuple in conversion order (float32 first: it gives the reference size).

    Raises:
        UsageError: an unknown flavour, or none.
    """
    if value is None:
        return FLAVOURS
    items = value.split(",") if isinstance(value, str) else [str(v) for v in value]
    names = {n.strip().lower() for item in items for n in item.split(",") if n.strip()}
    aliases = {"float": "float32", "fp32": "float32", "float16": "fp16"}
    names = {aliases.get(n, n) for n in names}
    unknown = sorted(names - set(FLAVOURS))
    if unknown:
        raise UsageError(f"unknown flavour {unknown[0]!r}", f"choose from {', '.join(FLAVOURS)}")
    if not names:
        raise UsageError("no flavour given", f"choose from {', '.join(FLAVOURS)}")
    return tuple(f for f in FLAVOURS if f in names)


def classify(info: ModelInfo) -> str:
    """The flavour of a converted model, from its ops and constants (not its file name)."""
    compute = info.compute_histogram()
    if compute.get("int16"):
        return "int16x8"
    if compute.get("hybrid"):
        return "dynamic"
    integer_ops = compute.get("int8", 0)
    float_ops = compute.get("float", 0)
    if integer_ops and not float_ops:
        return "int8"
    if integer_ops and float_ops:
        return "mixed"
    if info.weight_dtypes.get("float16"):
        return "fp16"
    return "float32"


def classify_file(path: str) -> str:
    from edgeq import tflite

    return classify(tflite.read_file(path))


def _io(t: TensorInfo) -> dict:
    d = t.to_dict()
    d["quantized_dimension"] = t.quantized_dimension if len(t.scales) > 1 else None
    return d


def io_details(info: ModelInfo) -> dict:
    return {"inputs": [_io(t) for t in info.inputs], "outputs": [_io(t) for t in info.outputs]}


def verify(info: ModelInfo, flavour: str, io: IOType | None = None, allow_float_ops: bool = False) -> list[str]:
    """What is wrong with ``info`` as a model of ``flavour`` (empty when nothing is).

    int8: no op computes in float (unless ``allow_float_ops``) and the I/O is the integer type asked for.
    fp16: float32 I/O and float16 weights. float32: float32 I/O, no float16 weights, no integer arithmetic.
    """
    problems = []
    got = classify(info)
    io_dtypes = {t.dtype for t in info.inputs + info.outputs}
    if flavour == "int8":
        want = {IOType.INT8: "int8", IOType.UINT8: "uint8", IOType.FLOAT: "float32"}.get(io or IOType.INT8, "int8")
        if got != "int8" and not allow_float_ops:
            floats = sorted(set(info.float_ops))
            problems.append(f"not fully integer ({got}): ops computing in float: {', '.join(floats) or 'none'}")
        bad = sorted(f"{t.name} ({t.dtype})" for t in info.inputs + info.outputs if t.dtype != want)
        if bad:
            problems.append(f"I/O is not {want}: {', '.join(bad)}")
    else:
        if io_dtypes - {"float32"}:
            problems.append(f"I/O is not float32: {', '.join(sorted(io_dtypes))}")
        if flavour == "fp16":
            float_consts = {dt: n for dt, n in info.weight_dtypes.items() if dt in FLOAT_TYPES}
            if float_consts and not float_consts.get("float16"):
                problems.append("no float16 weights: the fp16 conversion kept float32 weights")
        if flavour == "float32" and info.weight_dtypes.get("float16"):
            problems.append("float16 weights in a float32 model")
        if got in ("int8", "mixed", "int16x8", "dynamic"):
            problems.append(f"integer arithmetic in a {flavour} model ({got})")
    return problems


@dataclass(frozen=True)
class FlavourArtifact:
    flavour: str
    path: str
    sidecar: str | None
    size_bytes: int
    float_ops: tuple[str, ...]
    io: dict
    problems: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return {
            "flavour": self.flavour,
            "path": self.path,
            "sidecar": self.sidecar,
            "size_bytes": self.size_bytes,
            "delegates": list(DELEGATES_FOR.get(self.flavour, ())),
            "purpose": PURPOSE.get(self.flavour, ""),
            "float_ops": list(self.float_ops),
            "verified": not self.problems,
            "problems": list(self.problems),
            **self.io,
        }


def android_section(flavour: str, info: ModelInfo, problems: list[str]) -> dict:
    return {
        "flavour": flavour,
        "delegates": list(DELEGATES_FOR.get(flavour, ())),
        "purpose": PURPOSE.get(flavour, ""),
        "verification": {"ok": not problems, "problems": list(problems), "float_ops": sorted(set(info.float_ops))},
        **io_details(info),
    }


def _add_to_sidecar(artifact: Path, section: dict) -> str:
    """Add the ``android`` section to the sidecar :func:`_convert` wrote for ``artifact``."""
    from edgeq.artifacts import read_sidecar, sidecar_path, write_json_atomic

    doc = read_sidecar(artifact) or {}
    doc["android"] = section
    side = sidecar_path(artifact)
    write_json_atomic(side, doc)
    return str(side)


def _calibration(model: LoadedModel, cfg: QuantizeConfig, data_cfg: DataConfig) -> tuple[Dataset, list[str]]:
    """The calibration samples for ``model``'s input, checked against it (shape, NaN; range warnings)."""
    from edgeq import data
    from edgeq.quantize import ptq

    shape = ptq.static_input_shape(model, cfg.batch)
    calib = data.load(data_cfg, shape[1:])
    warnings = data.validate(calib, shape[1:], model.value_range, "calibration data")
    if calib.num_samples < cfg.batch:
        raise BadInput(
            f"calibration data has {calib.num_samples} samples, fewer than --batch {cfg.batch}", "give more samples"
        )
    return calib, warnings


def _convert(model: LoadedModel, out: Path, cfg: QuantizeConfig, data_cfg: DataConfig | None) -> ModelInfo:
    """Convert ``model`` to ``out`` per ``cfg``, check what came out (I/O dtypes, float ops), and write it with
    the sidecar ``edgeq quantize`` writes (config, calibration, verification, the converter's log).

    Raises:
        BadInput: the calibration data does not fit the model.
        ConversionFailed: the converter failed, or its output is not what ``cfg`` asks.
    """
    from edgeq import tflite
    from edgeq.artifacts import provenance, sha256_file, write_artifact
    from edgeq.quantize import ptq, verify

    calib, warnings = _calibration(model, cfg, data_cfg) if data_cfg is not None else (None, [])
    data, log = ptq.convert(model, cfg, calib)
    info = tflite.read_bytes(data, origin="converted model")
    check = verify.verify(info, cfg)
    verify.require(check, cfg)
    doc = provenance(
        "quantize",
        cfg.to_dict(),
        {},
        calibration=calib.provenance(data_cfg.seed) if calib is not None and data_cfg is not None else None,
        verification={"float_ops": list(check.float_ops), "problems": list(check.problems)},
        converter_log=log[-8000:],
        warnings=warnings + list(check.problems),
        model_format=model.format.value,
    )
    doc["inputs"] = {"model": {"path": model.path, "sha256": model.sha256 or sha256_file(model.path)}}
    write_artifact(out, data, doc)
    return info


def build(
    model_path: str,
    out_dir: Path,
    flavours: tuple[str, ...],
    data_path: str | None,
    data_samples: int | None,
    int8_io: IOType,
    force: bool,
    allow_float_ops: bool,
) -> list[FlavourArtifact]:
    """Convert a Keras/SavedModel model to each flavour, verify it, and annotate its sidecar.

    Raises:
        UsageError: int8 without calibration data.
        OutputExists: an output exists and ``force`` is false (checked before converting anything).
        BadInput, ConversionFailed: the model or data cannot be read or converted; a flavour that reads back wrong.
    """
    from edgeq.artifacts import check_output
    from edgeq.modelio import load_model

    if "int8" in flavours and not data_path:
        raise UsageError(
            "the int8 flavour needs calibration data",
            "pass --data PATH (e.g. representative_data/digits_calib.npz), or --flavours float32,fp16",
        )
    stem = Path(model_path).stem
    outs = {f: out_dir / f"{stem}_{f}.tflite" for f in flavours}
    for out in outs.values():  # fail before the first conversion, not after it
        check_output(out, force, [model_path, data_path])
    model = load_model(model_path)  # once for every flavour
    artifacts = []
    for f in flavours:
        cfg = QuantizeConfig(
            mode=MODES[f],
            io=int8_io if f == "int8" else None,
            allow_float_ops=allow_float_ops if f == "int8" else False,
        )
        data_cfg = DataConfig(path=data_path, samples=data_samples) if f == "int8" and data_path else None
        info = _convert(model, outs[f], cfg, data_cfg)
        problems = verify(info, f, int8_io if f == "int8" else None, allow_float_ops and f == "int8")
        if problems:
            raise ConversionFailed(
                f"the {f} flavour of {model_path} is not what it should be: {'; '.join(problems)}",
                "check the model's ops with edgeq inspect",
                details={"flavour": f, "output": str(outs[f]), "problems": problems},
            )
        side = _add_to_sidecar(outs[f], android_section(f, info, problems))
        artifacts.append(
            FlavourArtifact(
                f, str(outs[f]), side, info.size_bytes, tuple(sorted(set(info.float_ops))), io_details(info)
            )
        )
    return artifacts


def describe(model_path: str) -> FlavourArtifact:
    """Read back a .tflite someone else converted: its flavour, I/O and what is off for that flavour.

    Raises:
        BadInput: not a valid .tflite file.
    """
    from edgeq import tflite

    info = tflite.read_file(model_path)
    flavour = classify(info)
    io = None
    if flavour == "int8" and info.inputs:
        io = {"int8": IOType.INT8, "uint8": IOType.UINT8, "float32": IOType.FLOAT}.get(info.inputs[0].dtype)
    problems = verify(info, flavour, io) if flavour in FLAVOURS else [PURPOSE[flavour]]
    return FlavourArtifact(
        flavour,
        model_path,
        None,
        info.size_bytes,
        tuple(sorted(set(info.float_ops))),
        io_details(info),
        tuple(problems),
    )


def refuse_existing(path: Path, force: bool) -> None:
    if path.exists() and not force:
        raise OutputExists(f"output already exists: {path}", "pass --force to overwrite it")
