"""What a lowering returns (:class:`Lowered`, with its :class:`Const` arrays) and the checks every lowering
shares: :mod:`lower` and :mod:`stream` both build on this module, so neither imports the other's helpers."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from edgeq.errors import BadInput
from edgeq.targets.mcu.cgen.graph import Graph, Op


@dataclass(frozen=True)
class Const:
    name: str
    ctype: str  # int8_t | int32_t
    values: np.ndarray


@dataclass(frozen=True)
class Lowered:
    op: Op
    statement: str  # C, with {tN} for tensor N's pointer
    consts: tuple[Const, ...] = ()
    params: str = ""  # a static const parameter struct definition, if any
    alias: tuple[int, int] | None = None  # (input tensor, output tensor) that may share one buffer
    notes: dict = field(default_factory=dict)


def _bad(g: Graph, op: Op, what: str) -> BadInput:
    return BadInput(
        f"op #{op.index} {op.name}: {what} is not supported by the generated C runtime",
        "compile with --runtime tflm",
    )


def _int8(g: Graph, op: Op, *tensors: int) -> None:
    for i in tensors:
        t = g.tensors[i]
        if t.dtype != "int8":
            raise _bad(g, op, f"tensor {t.name!r} of type {t.dtype}")
        if not t.scales:
            raise _bad(g, op, f"unquantized int8 tensor {t.name!r}")


def _ints(values) -> str:
    return ", ".join(str(int(v)) for v in values)


def _const_ints(g: Graph, op: Op, idx: int, what: str) -> list[int]:
    t = g.tensors[idx]
    if t.data is None:
        raise _bad(g, op, f"a non-constant {what}")
    return [int(v) for v in np.asarray(t.data).reshape(-1)]
