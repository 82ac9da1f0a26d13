"""``evaluate``: a .tflite against its float reference on the same data, output by output."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from edgeq.config import DataConfig, LoadConfig
from edgeq.errors import BadInput
from edgeq.modelio import Format, detect_format
from edgeq.stages.common import load_data, load_model

if TYPE_CHECKING:
    from edgeq.quantize.split_head import Split


def reference_outputs(reference_path: str, x, load_cfg: LoadConfig) -> dict[str, np.ndarray]:
    """The float reference's outputs for ``x``, keyed by output name."""
    if detect_format(reference_path) == Format.TFLITE:
        from edgeq.runtime import open_session

        return open_session(reference_path, batch=1, origin=reference_path).predict_outputs(x)
    return load_model(reference_path, load_cfg).predict_outputs(x)


def evaluate(
    model_path: str,
    reference_path: str,
    data_cfg: DataConfig,
    load_cfg: LoadConfig = LoadConfig(),
    task: str | None = None,
) -> dict:
    """Accuracy of a .tflite and its float reference, agreement and output fidelity, per output.

    Outputs are paired by name (:mod:`edgeq.outputs`), never by position; each gets the metrics
    that fit it (:mod:`edgeq.bench.tasks`; ``task`` overrides the inferred one).

    Returns:
        :func:`edgeq.bench.fidelity.compare`'s result: ``outputs`` (one row per output), the worst
        output's SQNR/cosine/errors as the model's, ``agreement`` and accuracies of the class-score
        output (None without one or without labels), ``detection`` for a detection head.

    Raises:
        BadInput: bad model or data, outputs whose names do not match, a task or labels that do
            not fit the outputs.
    """
    from edgeq.bench import fidelity
    from edgeq.runtime import open_session

    if detect_format(model_path) != Format.TFLITE:
        raise BadInput(
            f"{model_path} is not a .tflite model", "pass the converted .tflite first and --reference the float model"
        )
    session = open_session(model_path, batch=1, origin=model_path)
    shape = tuple(int(d) for d in session.input["shape"][1:])
    ds, warnings = load_data(data_cfg, shape, session.input_range(), "evaluation data")
    ref = reference_outputs(reference_path, ds.x, load_cfg)
    split = split_interface(model_path)
    merge = split.merge if split is not None else None
    origins = (reference_path, model_path)
    result = fidelity.compare_session(ref, session, ds.x, ds.y, origins, task, ds.source, merge=merge)
    result.update(
        {
            "model": model_path,
            "reference_model": reference_path,
            "data": ds.source,
            "warnings": warnings + result["warnings"],
            # the .tflite's outputs differ from the reference's: merged before the comparison, and said
            "interface": {"split": split.to_dict(), "text": split.text()} if split is not None else None,
        }
    )
    return result


def split_interface(model_path: str) -> Split | None:
    """The split head a .tflite's sidecar records (its outputs are the parts of the reference's), or None.

    Raises:
        BadInput: the sidecar's record is malformed.
    """
    from edgeq.artifacts import read_sidecar
    from edgeq.quantize.split_head import Split

    interface = (read_sidecar(model_path) or {}).get("interface")
    if not isinstance(interface, dict) or interface.get("split") is None:
        return None
    return Split.from_dict(interface["split"])
