"""Spies that see a call wherever it is made from, so a test cannot miss it through a from-import."""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest


def patch_everywhere(monkeypatch: pytest.MonkeyPatch, module: ModuleType, name: str, replacement: object) -> list[str]:
    """Replace ``module.name`` and every other name bound to the same object in a loaded edgeq module.

    ``from edgeq.modelio import load_model as _load_keras`` makes a second binding that patching
    ``edgeq.modelio`` alone would miss; modules imported later take the replacement from ``module``.
    Returns the bindings replaced, as ``"module.name"``.
    """
    original = getattr(module, name)
    replaced = []
    for mod_name, mod in list(sys.modules.items()):
        if mod is None or not (mod_name == "edgeq" or mod_name.startswith("edgeq.")):
            continue
        for attr, value in list(vars(mod).items()):
            if value is original:
                monkeypatch.setattr(mod, attr, replacement)
                replaced.append(f"{mod_name}.{attr}")
    return replaced


class _SpiedHash:
    """A sha256 object that tells ``on_digest`` its hex digest once, when first asked for it."""

    def __init__(self, real: Any, on_digest: Callable[[str], None]) -> None:
        self._real, self._on_digest, self._told = real, on_digest, False

    def _tell(self) -> None:
        if not self._told:
            self._told = True
            self._on_digest(self._real.hexdigest())

    def digest(self) -> bytes:
        self._tell()
        return self._real.digest()

    def hexdigest(self) -> str:
        self._tell()
        return self._real.hexdigest()

    def copy(self) -> _SpiedHash:
        return _SpiedHash(self._real.copy(), self._on_digest)

    def __getattr__(self, name: str) -> Any:  # update, name, digest_size, block_size
        return getattr(self._real, name)


def count_sha256_of(monkeypatch: pytest.MonkeyPatch, expected_hexdigest: str) -> list[str]:
    """Every sha256 computed through hashlib from now on whose result is ``expected_hexdigest``.

    Counts hashes of the content, however they are reached (``artifacts.sha256_file`` imported by
    any name, ``sha256_bytes``, ``hashlib`` directly), not calls of one function in one namespace.
    Returns the list that grows by one entry per such hash.
    """
    seen: list[str] = []

    def on_digest(hexdigest: str) -> None:
        if hexdigest == expected_hexdigest:
            seen.append(hexdigest)

    real_sha256, real_new = hashlib.sha256, hashlib.new

    def sha256(*args: Any, **kwargs: Any) -> _SpiedHash:
        return _SpiedHash(real_sha256(*args, **kwargs), on_digest)

    def new(name: str, *args: Any, **kwargs: Any) -> Any:
        real = real_new(name, *args, **kwargs)
        return _SpiedHash(real, on_digest) if real.name == "sha256" else real

    monkeypatch.setattr(hashlib, "sha256", sha256)
    monkeypatch.setattr(hashlib, "new", new)
    for mod_name, mod in list(sys.modules.items()):  # `from hashlib import sha256` in edgeq
        if mod is not None and mod_name.startswith("edgeq") and getattr(mod, "sha256", None) is real_sha256:
            monkeypatch.setattr(mod, "sha256", sha256)
    return seen
