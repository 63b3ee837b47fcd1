"""Migration 0007 on SQLite and PostgreSQL: the outbox table and the fan-out columns
appear, requests stored before it count as fanned out, and a downgrade takes it back."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from syndication.store.db import alembic_config, make_engine

FAN_OUT_COLUMNS = {"fan_out_after", "fanned_out_at", "fan_out_owner", "fan_out_until"}


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return str(request.getfixturevalue("postgres_url"))


def test_migration_0007_up_and_down(store_url: str) -> None:
    from alembic import command

    from syndication.transfer.progress import request_outcome

    engine = make_engine(store_url)
    config = alembic_config(engine)
    command.upgrade(config, "0006")
    with engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO transfer_request (id, scope, jobs, created_at) "
            "VALUES ('OLD', 'all', 3, '2026-11-01 10:00:00')"
        ))
    command.upgrade(config, "0007")
    inspector = inspect(engine)
    assert "outbox" in inspector.get_table_names()
    assert FAN_OUT_COLUMNS <= {c["name"] for c in inspector.get_columns("transfer_request")}
    assert {i["name"] for i in inspector.get_indexes("outbox")} == {"ix_outbox_created_at"}
    with engine.connect() as connection:
        fanned = connection.execute(
            text("SELECT fanned_out_at, fan_out_owner FROM transfer_request WHERE id = 'OLD'")
        ).one()
    assert fanned[0] is not None and fanned[1] is None
    assert not request_outcome(engine, "OLD").fanning_out, "an old request is not waited for"
    command.downgrade(config, "0006")
    inspector = inspect(engine)
    assert "outbox" not in inspector.get_table_names()
    assert not FAN_OUT_COLUMNS & {c["name"] for c in inspector.get_columns("transfer_request")}
    with engine.connect() as connection:
        assert connection.execute(text("SELECT jobs FROM transfer_request")).scalar() == 3
    command.upgrade(config, "head")
    engine.dispose()
