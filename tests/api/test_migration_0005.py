"""Migration 0005 on SQLite and PostgreSQL: the Idempotency-Key table appears with its
two-column key, and a downgrade removes it without touching what 0004 made."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import inspect

from syndication.store.db import alembic_config, make_engine


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return str(request.getfixturevalue("postgres_url"))


def test_migration_0005_up_and_down(store_url: str) -> None:
    from alembic import command

    engine = make_engine(store_url)
    config = alembic_config(engine)
    command.upgrade(config, "0004")
    assert "api_idempotency" not in inspect(engine).get_table_names()
    command.upgrade(config, "0005")
    inspector = inspect(engine)
    assert inspector.get_pk_constraint("api_idempotency")["constrained_columns"] == [
        "principal", "key"]
    assert {c["name"] for c in inspector.get_columns("api_idempotency")} == {
        "principal", "key", "request", "status_code", "body", "created_at"}
    command.downgrade(config, "0004")
    tables = set(inspect(engine).get_table_names())
    assert "api_idempotency" not in tables and {"api_key", "session_token"} <= tables
    command.upgrade(config, "head")
    engine.dispose()
