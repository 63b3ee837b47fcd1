"""Stores in each schema state for the migration tests, and a way to see they did not change.

:func:`store_behind` builds a real store (SQLite file or PostgreSQL database)
at the revision before the newest and seeds it with the bundled example;
:func:`snapshot` reads, without writing, everything a stray migration or
write would change; :func:`run_cli` runs ``syndication`` as a fresh process.
"""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
from pathlib import Path

from sqlalchemy import inspect

from syndication.demo import example_records
from syndication.ingest import ingest_document
from syndication.store.db import alembic_config, make_engine
from syndication.store.schema import make_read_only_engine, newest_revision, schema_state

ROOT = Path(__file__).resolve().parents[1]


def previous_revision() -> str:
    """The revision just before the newest one."""
    from alembic.script import ScriptDirectory

    newest, _ = newest_revision()
    script = ScriptDirectory.from_config(alembic_config(None))
    down = script.get_revision(newest).down_revision
    assert isinstance(down, str), "the newest migration has one parent"
    return down


def store_behind(url: str) -> None:
    """A filled store at ``url`` one revision behind the newest: the example ingested at
    the newest schema, then the newest migration taken back (ingest writes the newest
    schema's columns, so it cannot fill an older one)."""
    from alembic import command

    engine = make_engine(url)
    try:
        command.upgrade(alembic_config(engine), "head")
        report = ingest_document(engine, example_records())
        assert report.ok, report.errors
        command.downgrade(alembic_config(engine), previous_revision())
    finally:
        engine.dispose()


def snapshot(url: str) -> dict[str, object]:
    """Revision, tables, indexes, row counts and (SQLite) the file's digest, read-only."""
    engine = make_read_only_engine(url)
    try:
        state = schema_state(engine)
        inspector = inspect(engine)
        tables = sorted(inspector.get_table_names())
        indexes = {t: sorted(str(i["name"]) for i in inspector.get_indexes(t)) for t in tables}
        with engine.connect() as conn:
            counts = {
                t: conn.exec_driver_sql(f'SELECT count(*) FROM "{t}"').scalar_one()
                for t in tables
            }
    finally:
        engine.dispose()
    result: dict[str, object] = {
        "revision": state.current, "tables": tables, "indexes": indexes, "counts": counts,
    }
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        result["digest"] = hashlib.sha256(path.read_bytes()).hexdigest()
    return result


def cli_env(url: str, **extra: str) -> dict[str, str]:
    """The environment of a fresh ``syndication`` process on the store at ``url``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNDICATION_")}
    env.update(SYNDICATION_DATABASE_URL=url, SYNDICATION_LOG_LEVEL="WARNING", **extra)
    return env


def run_cli(
    argv: list[str], url: str, cwd: Path, timeout: float = 120, **extra: str
) -> subprocess.CompletedProcess[str]:
    """``python -m syndication ARGV`` in ``cwd`` as its own process."""
    return subprocess.run(
        [sys.executable, "-m", "syndication", *argv], cwd=cwd, env=cli_env(url, **extra),
        capture_output=True, text=True, timeout=timeout, check=False,
    )


def free_port() -> int:
    """A loopback port nothing listens on (the refused ``serve`` must never bind it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
