"""Fixtures of the fault tests: a whole deployment per test (see ``fault_cluster.py``).

Size: ``SYNDICATION_FAULT_LISTINGS`` listings per test (default 200, the CI
run); the long run is ``SYNDICATION_FAULT_LISTINGS=2000 python -m pytest
tests/reliability``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fault_cluster import Cluster, cluster_of  # noqa: E402


@pytest.fixture
def cluster(tmp_path: Path, own_redis: Any) -> Iterator[Cluster]:
    """A deployment with its own Redis server (restartable), store and sandbox marketplaces."""
    yield from cluster_of(tmp_path, own_redis.url, publish_delay=0.5)
