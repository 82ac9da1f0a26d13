"""The static memory plan: every activation tensor gets an offset in one arena, fixed at generation time.

Tensors that RESHAPE only renames share a buffer. A buffer lives from the op that writes it to the last
op that reads it (execution order); buffers are placed largest first, each at the lowest aligned offset
that overlaps no placed buffer whose lifetime intersects its own. The model's input is read where the
caller holds it and its output written straight into the caller's array, so neither takes arena space.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from edgeq.targets.mcu.cgen.graph import Graph
from edgeq.targets.mcu.cgen.lowered import Lowered

ALIGN = 16


@dataclass(frozen=True)
class Buffer:
    tensors: tuple[int, ...]
    size: int
    first: int  # op index that writes it (-1: the model input)
    last: int  # last op index that reads it
    offset: int  # in the arena; -1 for the caller's input/output arrays
    external: str = ""  # "in" | "out" | ""

    def to_dict(self, g: Graph) -> dict:
        return {
            "tensors": [g.tensors[i].name for i in self.tensors],
            "size_bytes": self.size,
            "lifetime_ops": [self.first, self.last],
            "offset": self.offset if not self.external else self.external,
        }


@dataclass(frozen=True)
class Plan:
    buffers: tuple[Buffer, ...]
    arena_bytes: int
    pointer: dict  # tensor index -> C pointer expression
    scratch: dict = field(default_factory=dict)  # op index -> C pointer to the op's planned scratch

    def to_dict(self, g: Graph) -> dict:
        return {"arena_bytes": self.arena_bytes, "buffers": [b.to_dict(g) for b in self.buffers]}

    def describe(self, g: Graph) -> str:
        """The plan as a table: one line per buffer."""
        lines = [f"arena {self.arena_bytes} bytes"]
        for b in sorted(self.buffers, key=lambda b: (b.first, b.offset)):
            where = b.external or f"[{b.offset:>7}, {b.offset + b.size:>7})"
            names = ", ".join(g.tensors[i].name for i in b.tensors)
            lines.append(f"  ops {b.first:>3}..{b.last:<3} {b.size:>8} B  {where:<20} {names}")
        return "\n".join(lines)


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def make(g: Graph, lowered: list[Lowered]) -> Plan:
    """Plan the arena for ``lowered`` (from :func:`edgeq.targets.mcu.cgen.lower.lower`)."""
    (model_in,), (model_out,) = g.inputs, g.outputs
    parent: dict[int, int] = {}  # a reshape's output tensor -> the tensor whose buffer it shares

    def root(t: int) -> int:
        while t in parent:
            t = parent[t]
        return t

    for low in lowered:
        if low.alias is not None:
            src, dst = low.alias
            # the caller's output array cannot stand for an earlier tensor: that reshape copies
            if dst != model_out:
                parent[dst] = root(src)
    first: dict[int, int] = {}
    last: dict[int, int] = {}
    members: dict[int, list[int]] = {}
    # a resource variable is static storage of its own, as is a READ_VARIABLE output read in place (stream.py)
    static = dict(low.notes["static"] for low in lowered if "static" in low.notes)
    activations = [t.index for t in g.tensors if t.data is None and t.dtype != "resource" and t.index not in static]
    for t in activations:
        members.setdefault(root(t), []).append(t)
    first[root(model_in)] = -1
    for low in lowered:
        for t in low.op.outputs:
            r = root(t)
            first.setdefault(r, low.op.index)
            last[r] = max(last.get(r, low.op.index), low.op.index)
        for t in low.op.inputs:
            if t >= 0 and g.tensors[t].data is None:
                r = root(t)
                last[r] = max(last.get(r, -1), low.op.index)
    buffers: list[Buffer] = []
    placed: list[Buffer] = []
    roots = [r for r in members if r in first]
    roots.sort(key=lambda r: (-g.tensors[r].nbytes, first[r]))
    for r in roots:
        size = g.tensors[r].nbytes
        lo, hi = first[r], last.get(r, first[r])
        if r == root(model_in):
            buffers.append(Buffer(tuple(members[r]), size, lo, hi, -1, "in"))
            continue
        if r == root(model_out):
            buffers.append(Buffer(tuple(members[r]), size, lo, hi, -1, "out"))
            continue
        live = sorted((b for b in placed if not (b.last < lo or b.first > hi)), key=lambda b: b.offset)
        offset = 0
        for b in live:
            if offset + size <= b.offset:
                break
            offset = max(offset, _align(b.offset + b.size))
        buf = Buffer(tuple(members[r]), size, lo, hi, offset)
        placed.append(buf)
        buffers.append(buf)
    scratch = _place_scratch(lowered, placed, buffers)
    arena = _align(max((b.offset + b.size for b in placed), default=0))
    pointer = {}
    for b in buffers:
        # the caller's arrays are typed as the model's I/O (int8_t, or float for float I/O); kernels that
        # take them cast back where the type differs
        expr = (
            "(int8_t*)in"
            if b.external == "in"
            else "(int8_t*)out"
            if b.external == "out"
            else f"(eq_arena + {b.offset})"
        )
        for t in b.tensors:
            pointer[t] = expr
    pointer.update(static)
    return Plan(tuple(buffers), arena, pointer, {i: f"(eq_arena + {off})" for i, off in scratch.items()})


def _place_scratch(lowered: list[Lowered], placed: list[Buffer], buffers: list[Buffer]) -> dict[int, int]:
    """A kernel's scratch (``notes["scratch_bytes"]``, e.g. im2col columns) lives during its op only: placed
    like a tensor, first fit around the buffers live then, so ops that run at different times share it."""
    offsets = {}
    for low in sorted(lowered, key=lambda low: -int(low.notes.get("scratch_bytes", 0))):
        size = int(low.notes.get("scratch_bytes", 0))
        if size <= 0:
            continue
        at = low.op.index
        offset = 0
        for b in sorted((b for b in placed if b.first <= at <= b.last), key=lambda b: b.offset):
            if offset + size <= b.offset:
                break
            offset = max(offset, _align(b.offset + b.size))
        buf = Buffer((), size, at, at, offset)
        placed.append(buf)
        buffers.append(buf)
        offsets[at] = offset
    return offsets
