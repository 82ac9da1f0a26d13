"""``evaluate``: a .tflite against its float reference on the same data (accuracy, agreement, SQNR)."""

from __future__ import annotations

from edgeq.config import DataConfig, LoadConfig
from edgeq.errors import BadInput
from edgeq.modelio import Format, detect_format
from edgeq.stages.common import load_data, load_model


def reference_outputs(reference_path: str, x, load_cfg: LoadConfig):
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
    ds, warnings = load_data(data_cfg, shape, session.input_range(), "evaluation data")
    test = session.predict(ds.x)
    ref = reference_outputs(reference_path, ds.x, load_cfg)
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
