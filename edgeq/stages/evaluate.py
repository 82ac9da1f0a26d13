"""``evaluate``: a .tflite against its float reference on the same data, output by output."""

from __future__ import annotations

import numpy as np

from edgeq.config import DataConfig, LoadConfig
from edgeq.errors import BadInput
from edgeq.modelio import Format, detect_format
from edgeq.stages.common import load_data, load_model


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
    result = fidelity.compare_session(ref, session, ds.x, ds.y, (reference_path, model_path), task, ds.source)
    result.update(
        {
            "model": model_path,
            "reference_model": reference_path,
            "data": ds.source,
            "warnings": warnings + result["warnings"],
        }
    )
    return result
