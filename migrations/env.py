"""Alembic environment: runs migrations on the engine handed in by ``migrate``,
or on ``SYNDICATION_DATABASE_URL`` when Alembic is run from the command line."""

from __future__ import annotations

from alembic import context

from syndication.settings import Settings
from syndication.store.db import make_engine
from syndication.store.models import metadata

config = context.config
engine = config.attributes.get("engine") or make_engine(Settings.from_env().database_url)

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
