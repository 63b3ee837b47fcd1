"""Fixtures of the support-access tests: the seeded store and log capture."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest
import structlog
from sqlalchemy import Engine
from support_data import seed

from syndication.logs import configure


@pytest.fixture
def seeded(sqlite_engine: Engine) -> Engine:
    seed(sqlite_engine)
    return sqlite_engine


@pytest.fixture
def seeded_any(engine: Engine) -> Engine:
    """The seeded store on SQLite and on PostgreSQL."""
    seed(engine)
    return engine


@pytest.fixture
def captured_logs() -> Iterator[io.StringIO]:
    """Every structlog line written during the test, rendered as JSON, in a buffer."""
    buffer = io.StringIO()
    configure("DEBUG", "json", stream=buffer)
    yield buffer
    structlog.reset_defaults()

