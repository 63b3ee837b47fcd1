"""Engines, sessions and migrations.

:func:`make_engine` builds an engine for a URL with the settings each backend
needs (SQLite: WAL, a busy timeout and one connection per thread, so worker
threads can write). PostgreSQL gets no ``pool_pre_ping``: a ping is one more
round trip on every checkout, and a transfer job checks out twice. A
connection that died with a server restart fails its first statement with a
disconnect error instead; SQLAlchemy then invalidates the whole pool (every
connection older than the error reconnects at its next checkout), and the
caller's error handling does the rest: a job's start is put back, a job's
outcome is retried by dramatiq under the same idempotency key, the relay
tries again in its next round (``tests/reliability/test_postgres_restart.py``).
Callers that must not fail once, such as the health checks, pass
``pool_pre_ping=True``. :func:`migrate` brings a database to the newest schema
with Alembic; ``syndication migrate`` and the commands that write call it,
the commands that only read never do (see :mod:`syndication.store.schema`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from importlib import resources
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlmodel import Session


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for ``url``; SQLite gets WAL and a 30 s busy timeout."""
    kwargs.setdefault("hide_parameters", True)
    if url.startswith("sqlite"):
        engine = create_engine(
            url, connect_args={"timeout": 30, "check_same_thread": False}, **kwargs
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    kwargs.setdefault("pool_size", 10)
    return create_engine(url, **kwargs)


def alembic_config(engine: Engine | None) -> Any:
    """An Alembic configuration pointing at the bundled ``migrations`` folder."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(resources.files("migrations")))
    config.attributes["engine"] = engine
    return config


MIGRATION_LOCK_KEY = 0x53594E44
"""PostgreSQL advisory lock held while migrating ("SYND" in ASCII)."""


def migrate(engine: Engine) -> None:
    """Upgrade the database behind ``engine`` to the newest schema (idempotent).

    On PostgreSQL the upgrade runs under a session advisory lock, so several
    workers started at once with ``--migrate`` take turns: the first upgrades,
    the others then find the store current and change nothing. (A SQLite store
    serves one machine, whose writers already queue on the file lock.)
    """
    from alembic import command

    with _migration_lock(engine):
        command.upgrade(alembic_config(engine), "head")


@contextmanager
def _migration_lock(engine: Engine) -> Iterator[None]:
    if engine.dialect.name != "postgresql":
        yield
        return
    with engine.connect() as conn:
        conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        conn.commit()
        try:
            yield
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK_KEY})
            conn.commit()


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def begin(engine: Engine) -> AbstractContextManager[Connection]:
    """A Core connection in a transaction that commits on success and rolls back on
    error: the hot path's one checkout and one transaction, without a session."""
    return engine.begin()
