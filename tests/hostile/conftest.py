"""Fixtures for hostile input: a store holding a known-good office, broker and listings.

The generated records come from ``bench/_common.py`` (valid per the input
schema), so the hostile tests, the fault tests and the benchmarks start from
the same kind of record and differ only in what they break.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from syndication.store.db import make_engine, migrate  # noqa: E402


@pytest.fixture(scope="module")
def module_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """One migrated SQLite store per module, for property tests that ingest many examples."""
    engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('hostile') / 'store.db'}")
    migrate(engine)
    yield engine
    engine.dispose()
