"""``inspect``: what a model is (I/O, ops, float vs integer compute, size, parameters, MACs)."""

from __future__ import annotations

from pathlib import Path

from edgeq.config import LoadConfig
from edgeq.errors import UsageError
from edgeq.modelio import Format, detect_format, model_summary
from edgeq.stages.common import expected_input_range, load_model


def inspect(model_path: str, load_cfg: LoadConfig = LoadConfig()) -> dict:
    """Describe a model: I/O, op histogram, float vs integer ops, size, parameters, MACs.

    A model that is not a .tflite also says what it was loaded as (``loaded_as``: an ONNX file is the
    SavedModel onnx2tf converts it to, kept at ``converted_to``) and carries that format's summary. An
    ONNX file's layers, op histogram and parameters are its own graph's (nodes and initializers), the
    SavedModel's signatures beside them (``saved_model_parameters`` counts its variables: onnx2tf makes
    none, it folds the weights into constants).

    Raises:
        BadInput: missing, corrupt or unreadable model.
        UsageError: ``--input-shape`` on a .tflite (inspect reads the file as it is).
    """
    fmt = detect_format(model_path)
    if fmt == Format.TFLITE:
        from edgeq import tflite

        if load_cfg.input_shapes:
            raise UsageError(
                "--input-shape does not apply to inspecting a .tflite: it is read as it is",
                f"drop --input-shape; to make a static model: edgeq quantize {Path(model_path).name} --input-shape ...",
            )

        info = tflite.read_file(model_path)
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
    summary = model_summary(model)
    if fmt == Format.ONNX:  # the graph the user gave (nodes, initializers), beside the SavedModel it runs as
        from edgeq.onnx_import import graph_summary

        summary = {**summary, **graph_summary(model_path), "saved_model_parameters": summary["num_parameters"]}
    return {
        "path": model_path,
        "format": fmt.value,
        "size_bytes": int(sum(f.stat().st_size for f in Path(model_path).rglob("*") if f.is_file()))
        if Path(model_path).is_dir()
        else Path(model_path).stat().st_size,
        # an ONNX model is read as the SavedModel onnx2tf makes of it: its summary is that SavedModel's
        "loaded_as": model.format.value,
        "converted_to": model.path if fmt == Format.ONNX else None,
        "inputs": [s.to_dict() for s in model.inputs],
        "outputs": [s.to_dict() for s in model.outputs],
        "expected_input_range": expected_input_range(model),
        **summary,
    }
