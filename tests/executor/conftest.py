"""The real two-node Ray cluster the executor's Ray tests share (one per test module, stopped at its end)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.executor import cluster


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[str]:
    """A head and a second node on this machine (1 CPU each); the head's HOST:PORT."""
    with cluster.two_nodes() as address:
        yield address
