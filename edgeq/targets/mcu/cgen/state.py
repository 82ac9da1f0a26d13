"""A streaming model's state in model.c: each resource variable as static storage of its own (``eq_var<k>``,
never in the arena the plan reuses between ops), kept across invokes, and ``model_reset()``, which sets each
to the value CALL_ONCE's init subgraph assigns it (the lowering of CALL_ONCE calls it on the first invoke).
A model without variables gets a ``model_reset()`` that does nothing."""

from __future__ import annotations

import numpy as np

from edgeq.targets.mcu.cgen.graph import Graph


def _ints(values: np.ndarray) -> str:
    return ", ".join(str(int(v)) for v in values)


def state_c(g: Graph) -> list[str]:
    """model.c's variables: their storage, their initial values and ``model_reset()``."""
    lines = ["static int eq_state_ready;"]
    body = []
    for v in g.variables:
        if v.init is None or v.init.dtype != np.int8:
            continue
        n = int(v.init.size)
        lines.append(f"static int8_t eq_var{v.index}[{max(n, 1)}];")
        values = v.init.astype(np.int8)
        if n and np.all(values == values[0]):
            body.append(f"  eq_fill(eq_var{v.index}, {int(values[0])}, {n});")
        else:
            lines.append(f"static const int8_t eq_var{v.index}_init[{max(n, 1)}] = {{{_ints(values) or '0'}}};")
            body.append(f"  eq_copy(eq_var{v.index}_init, eq_var{v.index}, {n});")
    lines += ["", "void model_reset(void) {", *body, "  eq_state_ready = 1;", "}", ""]
    return lines
