"""Accuracy and output fidelity of a quantized model against its float reference.

Pure numpy. Fidelity metrics (SQNR, cosine similarity, errors) need no labels.
"""

from __future__ import annotations

from collections.abc import Callable

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


def output_fidelity(reference: np.ndarray, test: np.ndarray) -> dict:
    """SQNR, cosine and absolute errors of one output: what every output gets, whatever it is."""
    err = np.abs(reference.astype(np.float64) - test.astype(np.float64))
    return {
        "sqnr_db": round(sqnr_db(reference, test), 3),
        "cosine_similarity": round(cosine_similarity(reference, test), 6),
        "mean_abs_error": float(err.mean()) if err.size else 0.0,
        "max_abs_error": float(err.max()) if err.size else 0.0,
    }


def compare(
    reference: np.ndarray | dict[str, np.ndarray],
    test: np.ndarray | dict[str, np.ndarray],
    labels: np.ndarray | None,
    task: str | None = None,
    limits: dict[str, tuple[float, float]] | None = None,
    source: str = "the evaluation data",
    scales: dict[str, float] | None = None,
) -> dict:
    """Everything ``eval`` reports, per output and for the model.

    Args:
        reference, test: outputs keyed by name, already paired (:func:`edgeq.outputs.pair`); a bare array
            is one output named ``output``.
        labels: class labels for the class-score output, or None.
        task: classification, regression, detection or embedding; None infers each output's role
            (:mod:`edgeq.bench.tasks`).
        limits: each integer output's float range, to name saturated outputs.
        scales: each int8 output's scale, to name channel groups it cannot hold; None takes every output
            in ``limits`` for int8 (its range over 255 steps).

    Returns:
        ``outputs``: per output its name, shape, role and fidelity (SQNR, cosine, mean/max absolute
        error), top-1 agreement for class scores only, and why it is degenerate if it is. The model-level
        ``sqnr_db``, ``cosine_similarity`` and errors are the worst output's (lowest SQNR, named in
        ``worst_output``); ``agreement`` and accuracies come from the class-score output (None without
        one); ``detection`` holds box IoU and score agreement for a detection head; ``degenerate`` and
        ``warnings`` name int8 outputs that carry no signal, outputs whose float reference is constant
        over the data (``constant_reference`` per output, its value or None: no figure of it carries information), and too
        few samples to judge anything (``judgeable`` False below :data:`edgeq.bench.stats.MIN_SAMPLES`), and
        int8 outputs whose channel groups span ranges one scale cannot hold (``mixed_ranges`` per output,
        :func:`edgeq.bench.tasks.mixed_ranges`: a YOLO head's 0..1 scores under its 0..320 boxes' scale).

    Raises:
        BadInput: ``task`` does not fit the outputs; labels that do not fit the class-score output.
    """
    from edgeq.bench import stats, tasks

    if not isinstance(reference, dict):
        assert not isinstance(test, dict)
        reference, test = {"output": reference}, {"output": test}
    assert isinstance(test, dict)
    roles = tasks.roles(reference, task, labels is not None)
    if scales is None:
        scales = {n: (hi - lo) / 255 for n, (lo, hi) in (limits or {}).items()}
    rows = _output_rows(reference, test, roles, limits or {}, scales)
    worst = min(rows, key=lambda r: r["sqnr_db"])
    result: dict = {
        "num_samples": int(len(next(iter(reference.values())))),
        "task": tasks.model_task(roles),
        "num_outputs": len(rows),
        "worst_output": worst["name"],
    }
    result |= {k: worst[k] for k in ("sqnr_db", "cosine_similarity", "mean_abs_error", "max_abs_error")}
    result["outputs"] = rows
    classes = [r["name"] for r in rows if r["role"] == tasks.CLASS]
    cls_ref = reference[classes[0]] if classes else None
    cls_test = test[classes[0]] if classes else None
    result["class_output"] = classes[0] if classes else None
    result["agreement"] = next((r["agreement"] for r in rows if r["role"] == tasks.CLASS), None)
    result["detection"] = _detection(reference, test, roles) if result["task"] == "detection" else None
    result["degenerate"] = [{"output": r["name"], "why": r["degenerate"]} for r in rows if r["degenerate"]]
    result["warnings"] = _warnings(result["degenerate"], rows)
    small = stats.too_few(result["num_samples"])
    result["judgeable"] = small is None  # enough samples to judge any budget (stats.MIN_SAMPLES)
    if small:
        result["warnings"].append(small)
    result["reference"] = {"accuracy": None}
    result["quantized"] = {"accuracy": None}
    if labels is not None and cls_ref is not None and cls_test is not None:
        result |= _accuracies(cls_ref, cls_test, labels, source)
    # drop and agreement on the class-score output, SQNR on the worst output (the model's figure)
    result["intervals"] = intervals(cls_ref, cls_test, labels, reference[worst["name"]], test[worst["name"]])
    return result


def _warnings(degenerate: list[dict], rows: list[dict]) -> list[str]:
    """Dead int8 outputs, constant float references and channel groups one int8 scale cannot hold."""
    from edgeq.bench import tasks

    dead = [
        f"int8 output {d['output']!r} is {d['why']}: it carries no signal, whatever its other figures say"
        for d in degenerate
    ]
    constant = [
        tasks.constant_warning(r["name"], r["constant_reference"]) for r in rows if r["constant_reference"] is not None
    ]
    return dead + constant + [r["mixed_ranges_warning"] for r in rows if r["mixed_ranges_warning"]]


def _output_rows(
    reference: dict[str, np.ndarray],
    test: dict[str, np.ndarray],
    roles: dict[str, str],
    limits: dict[str, tuple[float, float]],
    scales: dict[str, float],
) -> list[dict]:
    """Per output: name, shape, role, fidelity, top-1 agreement (class scores), degenerate, constant reference."""
    from edgeq.bench import tasks

    rows = []
    for name, ref in reference.items():
        out = test[name]
        row = {"name": name, "shape": list(ref.shape[1:]), "role": roles[name]} | output_fidelity(ref, out)
        if roles[name] == tasks.CLASS:
            row["agreement"] = float((ref.argmax(-1) == out.argmax(-1)).mean())
        row["degenerate"] = tasks.degenerate(ref, out, limits.get(name))
        row["constant_reference"] = tasks.constant(ref)
        # class scores are one quantity per channel: a quiet class is not a part needing another scale
        mixed = tasks.mixed_ranges(ref, scales[name]) if name in scales and roles[name] != tasks.CLASS else None
        row["mixed_ranges"] = mixed
        row["mixed_ranges_warning"] = tasks.mixed_warning(name, mixed) if mixed else None
        rows.append(row)
    return rows


def _detection(reference: dict[str, np.ndarray], test: dict[str, np.ndarray], roles: dict[str, str]) -> dict:
    """Box IoU and score agreement of a detection head; for a YOLO head also class agreement."""
    from edgeq.bench import tasks

    yolo = next((n for n, r in roles.items() if r == tasks.YOLO), None)
    if yolo is not None:
        layout = tasks.yolo_layout(reference[yolo], by_values=False)
        assert layout is not None
        return {"boxes": yolo, "scores": yolo} | tasks.yolo_metrics(reference[yolo], test[yolo], layout)
    b = next(n for n, r in roles.items() if r == tasks.BOXES)
    s = next(n for n, r in roles.items() if r == tasks.SCORES)
    fmt = "corners" if tasks.POSTPROCESS.search(b) else "center_size"
    return {"boxes": b, "scores": s} | tasks.detection_metrics((reference[b], test[b]), (reference[s], test[s]), fmt)


def _accuracies(cls_ref: np.ndarray, cls_test: np.ndarray, labels: np.ndarray, source: str) -> dict:
    """Top-1 accuracy of reference and quantized class scores, the drop in points, overall and per class."""
    check_labels(cls_ref, labels, source)
    reference = top1_accuracy(cls_ref, labels)
    quantized = top1_accuracy(cls_test, labels)
    per_class = per_class_drops(per_class_accuracy(cls_ref, labels), per_class_accuracy(cls_test, labels))
    return {
        "reference": {"accuracy": reference},
        "quantized": {"accuracy": quantized},
        "accuracy_drop_points": round(100 * (reference - quantized), 3),
        "per_class": per_class,
        "worst_class_drop_points": per_class[0]["drop_points"] if per_class else 0.0,
    }


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


def intervals(
    cls_ref: np.ndarray | None,
    cls_test: np.ndarray | None,
    labels: np.ndarray | None,
    reference: np.ndarray,
    test: np.ndarray,
) -> dict:
    """95% intervals, paired over the same samples (see edgeq.bench.stats): the accuracy drop where
    there are labels and the agreement, both on the class-score output (``cls_*``, None without one),
    and the SQNR of ``reference`` against ``test`` unless they are identical. Each is an Interval's
    dict or None."""
    from edgeq.bench import stats

    out: dict = {"accuracy_drop_points": None, "agreement": None, "sqnr_db": None}
    if len(reference) == 0:
        return out
    if labels is not None and cls_ref is not None and cls_test is not None:
        ref_ok, test_ok = cls_ref.argmax(-1) == labels, cls_test.argmax(-1) == labels
        out["accuracy_drop_points"] = stats.drop_interval(ref_ok, test_ok).to_dict()
    if cls_ref is not None and cls_test is not None:
        # per-position class scores (one class vector per anchor) count every position
        same = (cls_ref.argmax(-1) == cls_test.argmax(-1)).ravel()
        out["agreement"] = stats.agreement_interval(same).to_dict()
    sqnr = stats.sqnr_interval(reference, test)
    out["sqnr_db"] = sqnr.to_dict() if sqnr else None
    return out


def compare_session(
    reference: dict[str, np.ndarray] | np.ndarray,
    session,
    x: np.ndarray,
    labels: np.ndarray | None,
    origins: tuple[str, str] = ("the float model", "the int8 model"),
    task: str | None = None,
    source: str = "the evaluation data",
    merge: Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]] | None = None,
) -> dict:
    """:func:`compare` for a LiteRT session (:class:`edgeq.runtime.Session`) run on ``x`` against the
    reference outputs, paired by name, with the session's integer output limits to name saturation.

    ``merge`` turns the session's outputs into the reference's interface first (a head split into parts,
    :meth:`edgeq.quantize.split_head.Split.merge`); a merged output has no one scale or limits of its own.

    Raises:
        BadInput: output names that do not match (:func:`edgeq.outputs.pair`), or see :func:`compare`.
    """
    from edgeq import outputs

    if not isinstance(reference, dict):  # a single-output model's bare array
        reference = {"output": reference}
    got = session.predict_outputs(x)
    merged = merge(got) if merge is not None else got
    ref, test, names = outputs.paired(reference, merged, *origins)
    # an output made by merging has no one scale or limits, even where it took a part's name (onnx2tf's output_0)
    made = {n for n, v in merged.items() if got.get(n) is not v}
    ranges = {t: r for t, r in session.output_ranges().items() if t not in made}
    limits = {n: ranges[t] for n, t in names.items() if t in ranges}
    # 8-bit outputs only: an int16 output's scale is 256 times finer than its range over 255 steps
    int8 = {
        d["name"]: float(d["quantization"][0])
        for d in session.outputs
        if np.dtype(d["dtype"]).itemsize == 1 and d["name"] not in made
    }
    scales = {n: int8[t] for n, t in names.items() if int8.get(t)}
    return compare(ref, test, labels, task, limits=limits, source=source, scales=scales)
