"""Fixtures of the fault tests: a whole deployment per test (see ``fault_cluster.py``).

Size: ``SYNDICATION_FAULT_LISTINGS`` listings per test (default 200, the CI
run); the long run is ``SYNDICATION_FAULT_LISTINGS=2000 python -m pytest
tests/reliability``.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


def _load_bench_common() -> None:
    """Make ``bench/_common.py`` importable as ``bench_common``; ``bench/`` itself stays off
    the path, where its ``feeds.py`` would shadow the ``feeds`` package."""
    if "bench_common" in sys.modules:
        return
    path = Path(__file__).resolve().parents[2] / "bench" / "_common.py"
    spec = importlib.util.spec_from_file_location("bench_common", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_common"] = module
    spec.loader.exec_module(module)


_load_bench_common()

from fault_cluster import Cluster, cluster_of  # noqa: E402


@pytest.fixture
def cluster(tmp_path: Path, own_redis: Any) -> Iterator[Cluster]:
    """A deployment with its own Redis server (restartable), store and sandbox marketplaces."""
    yield from cluster_of(tmp_path, own_redis.url, publish_delay=0.5)
