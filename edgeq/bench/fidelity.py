"""Accuracy and output fidelity of a quantized model against its float reference.

Pure numpy. Fidelity metrics (SQNR, cosine similarity, errors) need no labels.
"""

from __future__ import annotations

import numpy as np

from edgeq.errors import BadInput


def top1_accuracy(outputs: np.ndarray, labels: np.ndarray) -> float:
    return float((outputs.argmax(axis=-1) == labels).mean())


def check_labels(outputs: np.ndarray, labels: np.ndarray, source: str) -> None:
    """Labels must index the model's output classes."""
    num_classes = outputs.shape[-1]
    if outputs.ndim != 2:
        raise BadInput(
            f"model output has shape {outputs.shape[1:]}, not a class vector, but {source} has labels",
            "evaluate without labels (fidelity metrics only) or use a classifier",
        )
    if labels.min() < 0 or labels.max() >= num_classes:
        raise BadInput(
            f"labels in {source} span {int(labels.min())}..{int(labels.max())} but the model has {num_classes} outputs",
            "use labels 0..N-1 matching the model's classes",
        )


def sqnr_db(reference: np.ndarray, test: np.ndarray) -> float:
    """Signal-to-quantization-noise ratio in dB over all outputs (inf when identical)."""
    ref = reference.astype(np.float64).ravel()
    noise = ref - test.astype(np.float64).ravel()
    noise_power = float(np.sum(noise**2))
    if noise_power == 0:
        return float("inf")
    return float(10 * np.log10(max(float(np.sum(ref**2)), 1e-30) / noise_power))


def cosine_similarity(reference: np.ndarray, test: np.ndarray) -> float:
    """Mean over samples of the cosine between reference and test output vectors."""
    a = reference.reshape(len(reference), -1).astype(np.float64)
    b = test.reshape(len(test), -1).astype(np.float64)
    denom = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    cos = np.where(denom > 0, np.sum(a * b, axis=1) / np.where(denom > 0, denom, 1), 1.0)
    return float(cos.mean())


def per_class_accuracy(outputs: np.ndarray, labels: np.ndarray) -> dict[int, float]:
    pred = outputs.argmax(axis=-1)
    return {int(c): float((pred[labels == c] == c).mean()) for c in np.unique(labels)}


def compare(reference: np.ndarray, test: np.ndarray, labels: np.ndarray | None) -> dict:
    """Everything ``eval`` reports: accuracies (None without labels), agreement, fidelity."""
    result: dict = {
        "num_samples": int(len(reference)),
        "sqnr_db": round(sqnr_db(reference, test), 3),
        "cosine_similarity": round(cosine_similarity(reference, test), 6),
        "mean_abs_error": float(np.mean(np.abs(reference - test))),
        "max_abs_error": float(np.max(np.abs(reference - test))),
        "agreement": None,
    }
    if reference.ndim == 2 and reference.shape[-1] > 1:
        result["agreement"] = float((reference.argmax(-1) == test.argmax(-1)).mean())
    result["reference"] = {"accuracy": None}
    result["quantized"] = {"accuracy": None}
    if labels is not None:
        result["reference"] = {"accuracy": top1_accuracy(reference, labels)}
        result["quantized"] = {"accuracy": top1_accuracy(test, labels)}
        result["accuracy_drop_points"] = round(
            100 * (result["reference"]["accuracy"] - result["quantized"]["accuracy"]), 3
        )
        result["per_class"] = per_class_drops(per_class_accuracy(reference, labels), per_class_accuracy(test, labels))
        result["worst_class_drop_points"] = result["per_class"][0]["drop_points"] if result["per_class"] else 0.0
    result["intervals"] = intervals(reference, test, labels)
    return result


def per_class_drops(reference: dict[int, float], quantized: dict[int, float]) -> list[dict]:
    """Per-class accuracy of reference and quantized model, worst drop (in points) first.

    Quantization does not hurt every class alike: a small average drop can hide a large drop
    for one class, usually one the model learned less well.
    """
    rows = [
        {
            "class": c,
            "reference_accuracy": reference[c],
            "quantized_accuracy": quantized.get(c, 0.0),
            "drop_points": round(100 * (reference[c] - quantized.get(c, 0.0)), 3),
        }
        for c in reference
    ]
    return sorted(rows, key=lambda r: -r["drop_points"])


def intervals(reference: np.ndarray, test: np.ndarray, labels: np.ndarray | None) -> dict:
    """95% intervals, paired over the same samples (see edgeq.bench.stats): the accuracy drop where
    there are labels, the agreement where the outputs are class scores, the SQNR unless the outputs
    are identical. Each is an Interval's dict or None."""
    from edgeq.bench import stats

    out: dict = {"accuracy_drop_points": None, "agreement": None, "sqnr_db": None}
    if len(reference) == 0:
        return out
    if labels is not None:
        ref_ok, test_ok = reference.argmax(-1) == labels, test.argmax(-1) == labels
        out["accuracy_drop_points"] = stats.drop_interval(ref_ok, test_ok).to_dict()
    if reference.ndim == 2 and reference.shape[-1] > 1:
        out["agreement"] = stats.agreement_interval(reference.argmax(-1) == test.argmax(-1)).to_dict()
    sqnr = stats.sqnr_interval(reference, test)
    out["sqnr_db"] = sqnr.to_dict() if sqnr else None
    return out
