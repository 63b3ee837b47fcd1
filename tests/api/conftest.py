"""Fixtures of the API tests: the seeded API on SQLite and PostgreSQL (see :mod:`api_service`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from api_data import seed
from api_service import Api, served_api, service_context
from sqlalchemy import Engine


@pytest.fixture
def api(engine: Engine, tmp_path: Path) -> Iterator[Api]:
    """The seeded API on SQLite and on PostgreSQL, every user logged in."""
    tenants = seed(engine)
    with served_api(service_context(engine, tmp_path), tenants) as served:
        yield served


@pytest.fixture
def sqlite_api(sqlite_engine: Engine, tmp_path: Path) -> Iterator[Api]:
    """The seeded API on SQLite only, for tests about HTTP rather than the store."""
    tenants = seed(sqlite_engine)
    with served_api(service_context(sqlite_engine, tmp_path), tenants) as served:
        yield served
