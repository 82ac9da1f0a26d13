"""Pairing a model's outputs with its reference's, by name.

A converted .tflite lists its output tensors in another order than the model it came from, so
position says nothing about which output is which. Names do: Keras output names and SavedModel
signature keys become the .tflite's signature keys (edgeq's converter keys them so), and a .tflite
quantized from another .tflite keeps its tensor names.
"""

from __future__ import annotations

import re

import numpy as np

from edgeq.errors import BadInput


def require_single(names: list[str], what: str) -> None:
    """Refuse a model with several outputs where one array is expected (positions say nothing).

    Raises:
        BadInput: ``names`` has more than one output.
    """
    if len(names) != 1:
        raise BadInput(
            f"{what} has {len(names)} outputs ({', '.join(names)}) where one is needed",
            "use a single-output model here; eval, debug and build compare every output by name",
        )


def _key(name: str) -> str:
    """A name as both sides may spell it: no ``:0`` tensor suffix, no case."""
    return re.sub(r":0$", "", name).lower()


def pair(
    reference: dict[str, np.ndarray], test: dict[str, np.ndarray], reference_origin: str, test_origin: str
) -> dict[str, str]:
    """``{reference output name: test output name}`` in the reference's order, matched by name.

    A single output on each side pairs whatever its name (nothing to confuse it with). Otherwise
    every reference output must find the test output of the same name (exactly, or up to a
    ``:0`` suffix and case) with the same shape.

    Raises:
        BadInput: a different number of outputs, a name without a match (both sides' names are
            given), or a pair whose shapes differ.
    """
    if len(reference) != len(test):
        raise BadInput(
            f"{reference_origin} has {len(reference)} output(s) ({_names(reference)}) but {test_origin} has "
            f"{len(test)} ({_names(test)})",
            "compare a model with its own float reference",
        )
    if len(reference) == 1:
        (rn, r), (tn, t) = next(iter(reference.items())), next(iter(test.items()))
        _same_shape(rn, r, t, reference_origin, test_origin)
        return {rn: tn}
    by_key: dict[str, list[str]] = {}
    for name in test:
        by_key.setdefault(_key(name), []).append(name)
    pairs = {}
    missing = []
    for name, r in reference.items():
        hits = [name] if name in test else by_key.get(_key(name), [])
        if len(hits) != 1:
            missing.append(name)
            continue
        _same_shape(name, r, test[hits[0]], reference_origin, test_origin)
        pairs[name] = hits[0]
    if missing:
        raise BadInput(
            f"outputs are paired by name, and {reference_origin}'s {', '.join(repr(m) for m in missing)} has no "
            f"match in {test_origin} (reference outputs: {_names(reference)}; model outputs: {_names(test)})",
            "convert the model with edgeq (it keeps the output names), or compare it with the model it came from",
        )
    return pairs


def _names(outputs: dict) -> str:
    return ", ".join(outputs) or "none"


def _same_shape(name: str, r: np.ndarray, t: np.ndarray, reference_origin: str, test_origin: str) -> None:
    if r.shape != t.shape:
        raise BadInput(
            f"output {name!r} has shape {r.shape[1:]} in {reference_origin} but {t.shape[1:]} in {test_origin}",
            "compare a model with its own float reference",
        )


def paired(
    reference: dict[str, np.ndarray], test: dict[str, np.ndarray], reference_origin: str, test_origin: str
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, str]]:
    """Both sides keyed by the reference's names (see :func:`pair`), and the name map used."""
    names = pair(reference, test, reference_origin, test_origin)
    return {n: reference[n] for n in names}, {n: test[t] for n, t in names.items()}, names
