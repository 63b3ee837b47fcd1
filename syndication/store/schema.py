"""Which schema a store is at, read-only engines, and the refusal of a store that is behind.

Only writing commands migrate (see :func:`syndication.store.db.migrate`); a
command that only reads opens the store with :func:`open_read_only`, which
never creates, migrates or writes anything and refuses a store that is not at
the newest schema with :class:`StoreNotMigrated`, naming ``syndication
migrate``. The long-running worker and scheduler refuse the same way unless
told to migrate on start.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.request import pathname2url

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

from syndication.errors import ConfigurationError
from syndication.store.db import alembic_config, make_engine, migrate

MIGRATE_HINT = "run `syndication migrate` first"


class StoreNotMigrated(ConfigurationError):
    """The store is missing, empty or not at the schema this version needs.

    A command that cannot start on it raises this; the CLI prints the message
    and exits 2, its status for "cannot start: fix the configuration".
    """


@dataclass(frozen=True)
class SchemaState:
    """The revision a store is at (``None``: no schema yet) and the newest one known."""

    current: str | None
    newest: str
    known: frozenset[str]

    @property
    def is_current(self) -> bool:
        return self.current == self.newest

    @property
    def is_known(self) -> bool:
        """False when the store is at a revision this version does not have (a newer one)."""
        return self.current is None or self.current in self.known

    def describe(self) -> str:
        return self.current or "none (no schema yet)"


def newest_revision() -> tuple[str, frozenset[str]]:
    """The head of the bundled migrations and every revision they hold."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config(None))
    heads = script.get_heads()
    if len(heads) != 1:
        raise ConfigurationError(f"the bundled migrations have {len(heads)} heads, not one")
    return heads[0], frozenset(rev.revision for rev in script.walk_revisions())


def schema_state(engine: Engine) -> SchemaState:
    """Read the store's revision from ``alembic_version`` (a missing table is ``None``)."""
    from alembic.migration import MigrationContext

    with engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_revision()
    newest, known = newest_revision()
    return SchemaState(current, newest, known)


def safe_url(url: str) -> str:
    """``url`` as it may appear in a message or a log: the password hidden."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - an unparsable URL is shown by its scheme alone
        return url.split(":", 1)[0] + ":…"


def require_current(engine: Engine, url: str) -> SchemaState:
    """The store's state when it is at the newest schema; :class:`StoreNotMigrated` otherwise."""
    state = schema_state(engine)
    if state.is_current:
        return state
    where = safe_url(url)
    if not state.is_known:
        raise StoreNotMigrated(
            f"the store {where} is at revision {state.current}, which this version does not "
            f"know (newest here: {state.newest}); run the newer version, or this one's "
            "`syndication migrate` cannot help"
        )
    raise StoreNotMigrated(
        f"the store {where} is at revision {state.describe()}, this version needs "
        f"{state.newest}: {MIGRATE_HINT}"
    )


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL (``None`` for other backends and in-memory stores)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def make_read_only_engine(url: str) -> Engine:
    """An engine on ``url`` that cannot write, enforced by the database itself.

    SQLite: the file is opened with the URI ``mode=ro`` (so it is never
    created) and ``PRAGMA query_only``; the journal mode is left as the store
    has it, since changing it is a write. PostgreSQL: the session starts with
    ``default_transaction_read_only=on`` as a startup option. That is chosen
    over ``SET TRANSACTION READ ONLY`` per transaction or an event hook after
    connecting because the server applies it before the first statement on
    every connection the pool ever opens, so no code path (ORM autobegin, a
    reconnect after the pool was invalidated) can run a transaction without it.
    """
    path = sqlite_path(url)
    if path is not None:
        target = f"file:{pathname2url(str(path.resolve()))}?mode=ro"

        def connect() -> sqlite3.Connection:
            return sqlite3.connect(target, uri=True, timeout=30, check_same_thread=False)

        engine = create_engine("sqlite://", creator=connect)

        @event.listens_for(engine, "connect")
        def _read_only_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA query_only=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql":
        options = " ".join(
            part for part in (parsed.query.get("options"), "-c default_transaction_read_only=on")
            if isinstance(part, str) and part
        )
        return make_engine(url, connect_args={"options": options}, pool_size=5)
    raise ConfigurationError(
        f"cannot open {safe_url(url)} read-only: only SQLite and PostgreSQL stores are supported"
    )


def open_read_only(url: str) -> Engine:
    """A read-only engine on a store at the newest schema, or :class:`StoreNotMigrated`.

    A SQLite file that does not exist is refused before anything is opened,
    so looking never creates it.
    """
    path = sqlite_path(url)
    if path is not None and not path.is_file():
        raise StoreNotMigrated(f"there is no store at {path}: {MIGRATE_HINT}")
    engine = make_read_only_engine(url)
    try:
        require_current(engine, url)
    except BaseException:
        engine.dispose()
        raise
    return engine


def open_for_writing(url: str, *, migrate_store: bool) -> Engine:
    """A writable engine on ``url``: migrated first, or refused unless already current.

    Commands that write and run once (ingest, transfer, …) migrate; the worker
    and the scheduler do so only when told to (``--migrate`` or
    ``SYNDICATION_MIGRATE_ON_START``). Refusing checks the schema before the
    writable engine connects, so a refused SQLite store is never created.
    """
    if not migrate_store:
        open_read_only(url).dispose()
    engine = make_engine(url)
    if migrate_store:
        try:
            migrate(engine)
        except BaseException:
            engine.dispose()
            raise
    return engine


def upgrade(url: str) -> tuple[str | None, str]:
    """Migrate the store at ``url`` to the newest schema; ``(revision before, after)``.

    A store at a revision this version does not know is refused before Alembic
    is asked, with the same message a reading command gives.
    """
    engine = make_engine(url)
    try:
        state = schema_state(engine)
        if not state.is_known:
            require_current(engine, url)
        if not state.is_current:
            migrate(engine)
        return state.current, state.newest
    finally:
        engine.dispose()
