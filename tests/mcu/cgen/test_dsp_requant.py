"""eq_dsp.h's requantization (eq_dsp_mbqm: one SMLAL and a shift for the doubling high multiply) against the
plain kernels' eq_mbqm (TFLM's MultiplyByQuantizedMultiplier), bit for bit: a small C program built with
the host gcc and the runtime's own files runs both on the accumulators and multipliers that matter (the
int32 extremes, every rounding tie of the doubling multiply and of the right shift, seeded random ones)
with every multiplier the generator can emit (quant.quantize_multiplier: 0 or 2^30 .. 2^31 - 1) and every
shift from -31 to 8, and prints the first difference."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

from edgeq.targets.mcu.cgen import emit, quant

PROGRAM = r"""
#include <stdio.h>
#include "eq_dsp.h"
int32_t eq_mbqm(int32_t x, int32_t mult, int32_t shift);
static const int32_t xs[] = {%(xs)s};
static const int32_t ms[] = {%(ms)s};
int main(void) {
  long n = 0;
  for (unsigned i = 0; i < sizeof xs / sizeof xs[0]; ++i)
    for (unsigned j = 0; j < sizeof ms / sizeof ms[0]; ++j)
      for (int32_t s = -31; s <= 8; ++s, ++n) {
        const int32_t want = eq_mbqm(xs[i], ms[j], s), got = eq_dsp_mbqm(xs[i], ms[j], s);
        if (want != got) {
          printf("x=%%ld m=%%ld s=%%ld: %%ld != %%ld\n", (long)xs[i], (long)ms[j], (long)s, (long)got, (long)want);
          return 1;
        }
      }
  printf("ok %%ld\n", n);
  return 0;
}
"""


def _values(rng: np.random.Generator) -> tuple[list[int], list[int]]:
    """Accumulators and multipliers: the extremes, rounding ties and seeded random ones."""
    ms = [0, 1 << 30, (1 << 30) + 1, (1 << 31) - 1, 1518500250, 1431655765]
    ms += [quant.quantize_multiplier(float(v))[0] for v in rng.uniform(1e-6, 4.0, 40)]
    ms += [int(v) for v in rng.integers(1 << 30, 1 << 31, 40)]
    xs = [0, 1, -1, 2, -2, 3, -3, (1 << 31) - 1, -(1 << 31), -(1 << 31) + 1, 1 << 30, -(1 << 30)]
    xs += [s * ((1 << e) + d) for e in range(1, 31) for d in (-1, 0, 1) for s in (1, -1)]
    xs += [int(v) for v in rng.integers(-(1 << 31), 1 << 31, 300)]
    xs += [int(v) for v in rng.integers(-5000, 5000, 300)]
    return [x for x in xs if -(1 << 31) <= x < (1 << 31)], ms


@pytest.mark.skipif(not shutil.which("gcc"), reason="needs gcc")
def test_dsp_requantization_equals_eq_mbqm(tmp_path) -> None:
    xs, ms = _values(np.random.default_rng(22))
    for name in ("eq_dsp.h", "eq_kernels.h", "eq_kernels.c"):
        (tmp_path / name).write_text(emit.runtime_text(name))
    text = PROGRAM % {
        "xs": ", ".join(f"{x}" if x != -(1 << 31) else "INT32_MIN" for x in xs),
        "ms": ", ".join(map(str, ms)),
    }
    (tmp_path / "t.c").write_text(text)
    exe = tmp_path / "t"
    subprocess.run(["gcc", "-O1", "-o", str(exe), "t.c", "eq_kernels.c", "-lm"], cwd=tmp_path, check=True)
    run = subprocess.run([str(exe)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout
    assert run.stdout.startswith("ok ")
