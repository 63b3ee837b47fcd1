"""Migration 0009 on SQLite and PostgreSQL: the ``callback_seen`` table appears with its
key and index, and a downgrade takes it back."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError

from syndication.store.db import alembic_config, make_engine


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return str(request.getfixturevalue("postgres_url"))


def test_migration_0009_up_and_down(store_url: str) -> None:
    from alembic import command

    engine = make_engine(store_url)
    config = alembic_config(engine)
    command.upgrade(config, "0008")
    assert "callback_seen" not in inspect(engine).get_table_names()
    command.upgrade(config, "0009")
    inspector = inspect(engine)
    assert inspector.get_pk_constraint("callback_seen")["constrained_columns"] == [
        "marketplace", "callback_id"]
    assert {i["name"] for i in inspector.get_indexes("callback_seen")} == {
        "ix_callback_seen_received_at"}
    insert = text("INSERT INTO callback_seen (marketplace, callback_id, received_at) "
                  "VALUES ('hemnet', 'cb-1', '2026-12-01 09:00:00')")
    with engine.begin() as connection:
        connection.execute(insert)
    with pytest.raises(IntegrityError), engine.begin() as connection:
        connection.execute(insert)
    command.downgrade(config, "0008")
    assert "callback_seen" not in inspect(engine).get_table_names()
    command.upgrade(config, "head")
    engine.dispose()
