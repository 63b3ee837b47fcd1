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

import contextvars
import fcntl
import os
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from importlib import resources
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, any_, bindparam, create_engine, event, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import DBAPIError
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


def among(column: Any, values: Iterable[Any], dialect: str) -> Any:
    """``column IN values``, in the form that suits ``dialect``.

    On PostgreSQL it is ``column = ANY(:values)`` with the values as one array
    parameter: the statement's text is then the same short one whatever their
    number, where an ``IN`` list of hundreds of parameters is a new, long text
    each time, which the driver parses again (most of a fan-out batch's time on
    PostgreSQL). Elsewhere it is the ``IN`` list.
    """
    listed = list(values)
    if dialect == "postgresql":
        return column == any_(bindparam(None, listed, type_=postgresql.ARRAY(column.type)))
    return column.in_(listed)


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
    error: the hot path's one checkout and one transaction, without a session.

    Inside :meth:`Group.run` on ``engine`` it is a savepoint of the group's one
    transaction instead (see :class:`Group`)."""
    group: Group | None = getattr(_GROUPS, "current", None)
    if group is not None and group.engine is engine and group.running:
        return group.savepoint()
    lock = writer_lock(engine)
    if lock is None:
        return engine.begin()
    return _locked_begin(engine, lock)


@contextmanager
def _locked_begin(engine: Engine, lock: WriterLock) -> Iterator[Connection]:
    with lock, engine.begin() as conn:
        yield conn


_WRITER_LOCKS: weakref.WeakKeyDictionary[Engine, Any] = weakref.WeakKeyDictionary()
_WRITER_LOCKS_LOCK = threading.Lock()


def writer_lock(engine: Engine) -> WriterLock | None:
    """The lock the :func:`begin` transactions and groups on a SQLite ``engine`` take in
    turn, with the fan-out's batches (``None`` on any other store).

    SQLite lets one connection write at a time, and a connection that finds the write
    lock taken sleeps in its busy handler, 1, 2, 5, 10 ms and up to 100 ms a try, however
    soon the lock is free again. Between the threads of one process, and between the
    processes that take this lock (a worker's store steps and the fan-out of a
    transfer), the next writer is woken the moment the last one commits instead
    (:class:`WriterLock`). Other writers still meet at SQLite's own lock."""
    if engine.dialect.name != "sqlite":
        return None
    lock = _WRITER_LOCKS.get(engine)
    if lock is None:
        with _WRITER_LOCKS_LOCK:
            lock = _WRITER_LOCKS.setdefault(engine, WriterLock(_sidecar(engine)))
    return lock


def _sidecar(engine: Engine) -> str | None:
    """The file beside a SQLite store whose lock its writers take in turn (as SQLite's
    own ``-wal`` and ``-shm`` files sit beside it); ``None`` for a store in memory."""
    database = engine.url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return f"{database}-writer"


class WriterLock:
    """A re-entrant lock for the threads of this process that also holds an exclusive
    ``flock`` on ``path`` (when given) while held, so the writers of other processes
    that take it wait for it in the kernel, woken when it is released.

    The file is opened once per process (an open file shared across a fork would share
    its lock); a file that cannot be opened or locked leaves the lock to this process's
    threads, with a warning."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self._threads = threading.RLock()
        self._depth = 0
        self._fd: int | None = None
        self._pid = 0

    def acquire(self) -> None:
        self._threads.acquire()
        self._depth += 1
        if self._depth == 1 and self.path is not None:
            try:
                fcntl.flock(self._file(), fcntl.LOCK_EX)
            except OSError as exc:
                self._without_file(exc)

    def release(self) -> None:
        try:
            if self._depth == 1 and self.path is not None and self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._depth -= 1
            self._threads.release()

    def __enter__(self) -> WriterLock:
        self.acquire()
        return self

    def __exit__(self, *_: object) -> None:
        self.release()

    def _file(self) -> int:
        if self._fd is None or self._pid != os.getpid():
            self._fd = os.open(self.path or "", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            self._pid = os.getpid()
        return self._fd

    def _without_file(self, exc: OSError) -> None:
        from syndication.logs import get_logger

        get_logger().warning("store.writer_lock_unshared", path=self.path, error=str(exc))
        self.path = None


def after_commit(engine: Engine, callback: Callable[[], object]) -> None:
    """Call ``callback`` once what this thread wrote through :func:`begin` on ``engine``
    is committed: at once, or inside a :class:`Group` when the group commits (in the
    caller's context, so its log lines keep their fields); never when it rolls back."""
    group: Group | None = getattr(_GROUPS, "current", None)
    if group is not None and group.engine is engine and group.holds_current:
        group.later.append((contextvars.copy_context(), callback))
        return
    callback()


T = TypeVar("T")

_GROUPS = threading.local()
"""The :class:`Group` open on this thread, if any."""

_SAVEPOINT = "grouped"


class Group:
    """Several jobs' :func:`begin` blocks in one transaction, one job after another on
    one thread: group commit.

    Each job (:meth:`run`) gets a savepoint of the group's transaction, so its writes
    stay all or nothing as in a transaction of its own (an error in its block rolls
    back to the savepoint and is the job's), while the group pays for one checkout,
    one ``BEGIN`` and one ``COMMIT`` (on SQLite, one write lock and one write of each
    page the jobs share, such as the history's last page and its indexes). A savepoint
    is never released: the next job's nests in it, ``ROLLBACK TO`` goes back to the
    newest of the name (the failing job's own), and the commit ends them all; so a
    job's block costs one statement more than its own, where a release would be a
    second round trip to PostgreSQL. (A group is at most a few dozen jobs, within the
    subtransactions PostgreSQL keeps in shared memory per transaction, 64.)

    What a job's writes are worth is known only once :meth:`commit` succeeded: its
    outcome (what :meth:`run` returned) is replaced by the commit's error otherwise.
    Work that must follow the commit (a message sent for a staged outbox row) is
    registered with :func:`after_commit` and run by :meth:`commit`. A job must not
    write on ``engine`` except through :func:`begin`: on SQLite the group holds the
    write lock. When a savepoint cannot be rolled back, the transaction is given up
    at once (the jobs it held get that error) and the next job begins a new one.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.running = False
        self.later: list[tuple[contextvars.Context, Callable[[], object]]] = []
        self._conn: Connection | None = None
        self._cursor: Any = None
        self._held: list[list[Any]] = []
        self._current: list[Any] | None = None
        self._lock = writer_lock(engine)
        self.holds_current = False
        """Whether the job now running has written in the group's transaction."""

    def run(self, call: Callable[[], T]) -> list[Any]:
        """Run ``call`` as one of the group's jobs; its outcome cell: ``[result, error]``."""
        cell: list[Any] = [None, None]
        self._current, self.running, self.holds_current = cell, True, False
        try:
            cell[0] = call()
        except BaseException as exc:  # noqa: BLE001 - the job's own error, kept as its outcome
            cell[1] = exc
        finally:
            self._current, self.running, self.holds_current = None, False, False
        return cell

    @contextmanager
    def savepoint(self) -> Iterator[Connection]:
        """The running job's block: a savepoint of the group's transaction (begun by the
        first job that writes). A savepoint that cannot be set or rolled back means the
        transaction is lost: it is given up, and the error is the job's."""
        conn = self._open()
        self._step(f"SAVEPOINT {_SAVEPOINT}")
        if self._current is not None and not self.holds_current:
            self._held.append(self._current)
            self.holds_current = True
        try:
            yield conn
        except BaseException:
            try:
                self._execute(f"ROLLBACK TO SAVEPOINT {_SAVEPOINT}")
            except Exception as exc:  # noqa: BLE001 - the transaction is lost: give it up
                self._give_up(exc)
            raise

    def _step(self, sql: str) -> None:
        try:
            self._execute(sql)
        except Exception as exc:
            self._give_up(exc)
            raise

    def commit(self) -> None:
        """Commit the group's transaction, then run what waited for it; when the commit
        fails, every job whose writes it held gets its error as outcome."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            conn.commit()
        except Exception as exc:  # noqa: BLE001 - the jobs' error, not the group's
            self._lost(exc)
            self.later.clear()
            self._discarded(conn)
            return
        self._closed(conn)
        self._held.clear()
        later, self.later = self.later, []
        for context, callback in later:
            context.run(callback)

    def close(self) -> None:
        """Roll back what was not committed (a group left by an error)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            self._closed(conn)

    def _discarded(self, conn: Connection) -> None:
        """Close ``conn`` with what its driver connection may still hold rolled back (a
        failed commit can leave the driver in its transaction), or invalidated."""
        try:
            dbapi = conn.connection.dbapi_connection
            if dbapi is not None:
                dbapi.rollback()
        except Exception:  # noqa: BLE001 - not to be trusted again: a new one next time
            conn.invalidate()
        self._closed(conn)

    def _closed(self, conn: Connection) -> None:
        try:
            conn.close()
        finally:
            if self._lock is not None:
                self._lock.release()

    def _open(self) -> Connection:
        if self._conn is None:
            if self._lock is not None:
                self._lock.acquire()
            try:
                conn = self.engine.connect()
            except BaseException:
                if self._lock is not None:
                    self._lock.release()
                raise
            try:
                conn.begin()
                if conn.dialect.name == "sqlite":
                    # the write lock now, as a job's first write would take it; pysqlite
                    # would otherwise let the first SAVEPOINT begin the transaction
                    conn.exec_driver_sql("BEGIN IMMEDIATE")
                dbapi = conn.connection.dbapi_connection
                assert dbapi is not None
                self._cursor = dbapi.cursor()
            except BaseException:
                self._closed(conn)
                raise
            self._conn = conn
        return self._conn

    def _execute(self, sql: str) -> None:
        """Run ``sql`` on the group's driver cursor; a driver error is raised as
        SQLAlchemy's (:class:`~sqlalchemy.exc.DBAPIError`), as any statement's is."""
        dialect = self.engine.dialect
        try:
            self._cursor.execute(sql)
        except dialect.loaded_dbapi.Error as exc:
            raise DBAPIError.instance(sql, None, exc, dialect.loaded_dbapi.Error,
                                      dialect=dialect) from exc

    def _give_up(self, exc: BaseException) -> None:
        conn, self._conn = self._conn, None
        self._lost(exc)
        self.later.clear()
        if conn is not None:
            self._discarded(conn)

    def _lost(self, exc: BaseException) -> None:
        for cell in self._held:
            cell[0], cell[1] = None, exc
        self._held.clear()
        self.holds_current = False


@contextmanager
def grouped(engine: Engine) -> Iterator[Group]:
    """A :class:`Group` on ``engine`` for this thread: jobs run with :meth:`Group.run`,
    then :meth:`Group.commit`; left without a commit, it rolls back."""
    if getattr(_GROUPS, "current", None) is not None:
        raise RuntimeError("a group transaction is already open on this thread")
    group = Group(engine)
    _GROUPS.current = group
    try:
        yield group
    finally:
        _GROUPS.current = None
        group.close()
