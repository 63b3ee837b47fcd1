"""Fixtures for hostile input: a store holding a known-good office, broker and listings.

The generated records come from ``bench/_common.py`` (valid per the input
schema), so the hostile tests, the fault tests and the benchmarks start from
the same kind of record and differ only in what they break.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine


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

from syndication.store.db import make_engine, migrate  # noqa: E402


@pytest.fixture(scope="module")
def module_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """One migrated SQLite store per module, for property tests that ingest many examples."""
    engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('hostile') / 'store.db'}")
    migrate(engine)
    yield engine
    engine.dispose()
