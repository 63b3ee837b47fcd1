"""Migration 0004 on SQLite and PostgreSQL: existing users become agents, the key and
token tables appear, and a downgrade takes all three changes back."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from syndication.store.db import alembic_config, make_engine


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return str(request.getfixturevalue("postgres_url"))


def test_migration_0004_up_and_down(store_url: str) -> None:
    from alembic import command

    engine = make_engine(store_url)
    config = alembic_config(engine)
    command.upgrade(config, "0003")
    with engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO app_user (id, office_id, name, show_on_internet, images, companies, "
            "statistics_all_companies, password_legacy, updated_at) VALUES ('OLD', 'K1', "
            "'Olle', false, '[]', '[]', false, false, '2026-11-01 10:00:00')"
        ))
    command.upgrade(config, "0004")
    with engine.connect() as connection:
        assert connection.execute(text("SELECT role FROM app_user WHERE id = 'OLD'")).scalar() \
            == "agent"
    tables = set(inspect(engine).get_table_names())
    assert {"api_key", "session_token"} <= tables
    assert {i["name"] for i in inspect(engine).get_indexes("api_key")} == {
        "ix_api_key_office_id"
    }
    command.downgrade(config, "0003")
    inspector = inspect(engine)
    assert not {"api_key", "session_token"} & set(inspector.get_table_names())
    assert "role" not in {c["name"] for c in inspector.get_columns("app_user")}
    with engine.connect() as connection:
        assert connection.execute(text("SELECT name FROM app_user")).scalar() == "Olle"
    command.upgrade(config, "head")
    engine.dispose()
