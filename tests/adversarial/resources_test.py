"""The resource family (:mod:`tests.adversarial.resources`) in CI: declared sizes and option bounds, each
a child ``edgeq --json ...`` under a 4 GiB address-space limit; no exit 1, no run killed or out of memory.

The quick subset runs in about half a minute; the whole family (every file x every command, every
option bound) is marked long (make adversarial), and ``python -m tests.adversarial.resources`` prints its counts.
"""

from __future__ import annotations

import pytest

from tests.adversarial import resources


def _assert_clean(counts: dict) -> None:
    assert counts["bad"] == {}, counts
    assert counts["exit_1"] == counts["killed"] == counts["memory_errors"] == counts["hangs"] == 0


def test_resource_family_quick(tmp_path):
    counts = resources.run_family(
        tmp_path,
        limit_gib=4,
        timeout_s=120,
        files=["input_32768x32768x2_int8", "input_16384x16384x1_int8", "all_three_huge"],
        commands=["inspect", "bench-cpu"],
        options=["bench-runs", "compile-proof-samples", "quantize-resize", "check-timeout-nan"],
    )
    assert counts["commands"] == 10
    _assert_clean(counts)
    assert counts["exit_codes"].get("2") == 4  # every option bound is a usage error


@pytest.mark.long
def test_resource_family_full(tmp_path):
    counts = resources.run_family(tmp_path, limit_gib=4, timeout_s=300)
    _assert_clean(counts)
    assert counts["exit_codes"].get("2", 0) >= len(resources.OPTION_COMMANDS)
