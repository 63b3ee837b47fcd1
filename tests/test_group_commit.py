"""Group commit (:class:`syndication.store.db.Group`) on SQLite and PostgreSQL: the jobs of
a group share one transaction, each keeps its own writes or none, a failed commit is
the outcome of every job it held, work after the commit waits for it, and on SQLite the
writers of one process take turns on a lock of their own."""

from __future__ import annotations

import contextvars
import json
import threading
from typing import Any

import factories
import pytest
from held_lock import held_elsewhere
from sqlalchemy import Engine, event, select
from sqlalchemy.exc import OperationalError

from syndication.ingest import ingest_document
from syndication.store.db import after_commit, begin, grouped, make_engine, writer_lock
from syndication.store.models import utcnow
from syndication.store.statements import STATUS, write_status

LISTINGS = ("G1", "G2", "G3")


def _ingest(engine: Engine) -> None:
    report = ingest_document(engine, json.dumps(factories.document(
        offices=[factories.office()], users=[factories.user()],
        listings=[factories.listing(listing_id, marketplaces=["hemnet"])
                  for listing_id in LISTINGS],
    )).encode())
    assert report.ok, report.errors


def _states(engine: Engine) -> dict[str, str]:
    with engine.connect() as conn:
        rows = conn.execute(select(STATUS.c.listing_id, STATUS.c.state)
                            .where(STATUS.c.marketplace == "hemnet")).all()
    return {row.listing_id: row.state for row in rows}


def _commits(engine: Engine) -> list[int]:
    commits: list[int] = []
    event.listen(engine, "commit", lambda _conn: commits.append(1))
    return commits


def _write(engine: Engine, listing_id: str, state: str) -> None:
    with begin(engine) as conn:
        write_status(conn, listing_id, "hemnet", state, at=utcnow())


def _fails_inside(engine: Engine) -> None:
    """A job whose block writes, then fails."""
    with begin(engine) as conn:
        write_status(conn, "G2", "hemnet", "failed", at=utcnow())
        raise ValueError("G2 fails")


def _break(monkeypatch: pytest.MonkeyPatch, when: Any) -> None:
    """Make the group's savepoint statement ``sql`` fail, as a connection that broke off
    would, whenever ``when(sql, n)`` says so (``n``: statements sent so far)."""
    from syndication.store import db

    execute = db.Group._execute
    sent: list[str] = []

    def breaking(self: db.Group, sql: str) -> None:
        sent.append(sql)
        if when(sql, len(sent)):
            raise OperationalError(sql, {}, Exception("the connection broke off"))
        execute(self, sql)

    monkeypatch.setattr(db.Group, "_execute", breaking)


def test_each_job_of_a_group_keeps_its_own_writes_or_none_in_one_commit(engine: Engine) -> None:
    _ingest(engine)
    before = _states(engine)
    commits = _commits(engine)

    def fails_after() -> None:
        _write(engine, "G3", "sent")
        raise LookupError("G3: raised once its outcome was written")

    with grouped(engine) as group:
        first = group.run(lambda: _write(engine, "G1", "published") or "G1 done")
        second = group.run(lambda: _fails_inside(engine))
        third = group.run(fails_after)
        assert _states(engine) == before, "nothing is visible before the group commits"
        group.commit()
    assert first == ["G1 done", None]
    assert second[0] is None and isinstance(second[1], ValueError)
    assert third[0] is None and isinstance(third[1], LookupError)
    assert _states(engine) == {**before, "G1": "published", "G3": "sent"}, \
        "the job that failed inside its block wrote nothing; the others their own"
    assert len(commits) == 1, "one commit for the three jobs"


def test_a_commit_that_fails_is_the_outcome_of_every_job_it_held(engine: Engine) -> None:
    _ingest(engine)
    before = _states(engine)
    ran: list[str] = []

    def refuse(_conn: Any) -> None:
        raise OSError("the store went away at the commit")

    event.listen(engine, "commit", refuse)
    try:
        with grouped(engine) as group:
            wrote = group.run(lambda: _write(engine, "G1", "sent") or "written")
            registered = group.run(lambda: (_write(engine, "G2", "sent"),
                                            after_commit(engine, lambda: ran.append("G2"))))
            apart = group.run(lambda: "no writes")
            group.commit()
    finally:
        event.remove(engine, "commit", refuse)
    assert wrote[0] is None and isinstance(wrote[1], OSError)
    assert registered[0] is None and isinstance(registered[1], OSError)
    assert apart == ["no writes", None], "a job that wrote nothing keeps its outcome"
    assert ran == [], "what waited for the commit is not run"
    assert _states(engine) == before


def test_work_after_the_commit_waits_for_it_and_runs_in_the_jobs_context(
    engine: Engine,
) -> None:
    _ingest(engine)
    listing = contextvars.ContextVar[str]("listing")
    seen: list[tuple[str, str | None]] = []

    def job(listing_id: str) -> None:
        listing.set(listing_id)
        _write(engine, listing_id, "sent")
        after_commit(engine, lambda: seen.append((listing.get(),
                                                  _states(engine).get(listing_id))))

    with grouped(engine) as group:
        for listing_id in ("G1", "G2"):
            group.run(lambda listing_id=listing_id: contextvars.copy_context().run(
                job, listing_id))
        assert seen == []
        group.commit()
    assert seen == [("G1", "sent"), ("G2", "sent")], \
        "each callback ran after the commit (its write visible elsewhere), in its job's context"
    outside: list[str] = []
    after_commit(engine, lambda: outside.append("at once"))
    assert outside == ["at once"], "outside a group it runs at once"


def test_a_savepoint_that_cannot_be_rolled_back_gives_the_transaction_up(
    engine: Engine, monkeypatch: pytest.MonkeyPatch,
) -> None:
    _ingest(engine)
    before = _states(engine)
    _break(monkeypatch, lambda sql, _n: sql.startswith("ROLLBACK TO"))

    with grouped(engine) as group:
        held = group.run(lambda: _write(engine, "G1", "sent") or "G1 done")
        failing = group.run(lambda: _fails_inside(engine))
        later = group.run(lambda: _write(engine, "G3", "published") or "G3 done")
        group.commit()
    assert held[0] is None and isinstance(held[1], OperationalError), \
        "the job whose writes the lost transaction held gets its error"
    assert isinstance(failing[1], ValueError)
    assert later == ["G3 done", None], "the next job began a transaction of its own"
    assert _states(engine) == {**before, "G3": "published"}


def test_a_group_left_without_a_commit_rolls_back(engine: Engine) -> None:
    _ingest(engine)
    before = _states(engine)
    with pytest.raises(RuntimeError, match="left"), grouped(engine) as group:
        group.run(lambda: _write(engine, "G1", "sent"))
        raise RuntimeError("left before the commit")
    assert _states(engine) == before
    _write(engine, "G1", "sent")
    assert _states(engine)["G1"] == "sent", "the store is free again (no lock left held)"


def test_writers_of_one_process_take_turns_without_sqlite_busy_handler(
    tmp_path: Any, migrated_sqlite: Any,
) -> None:
    """With SQLite's busy handler off, two threads writing at once would fail with
    "database is locked"; the process's writer lock hands the store over instead."""
    import shutil

    target = tmp_path / "turns.db"
    shutil.copyfile(migrated_sqlite, target)
    engine = make_engine(f"sqlite:///{target}")

    @event.listens_for(engine, "connect")
    def _no_waiting(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute("PRAGMA busy_timeout=0")

    try:
        _ingest(engine)
        errors: list[BaseException] = []

        def writes(listing_id: str) -> None:
            try:
                for n in range(150):
                    if n % 10 == 0:
                        with grouped(engine) as group:
                            group.run(lambda: _write(engine, listing_id, "queued"))
                            group.run(lambda: _write(engine, listing_id, "sent"))
                            group.commit()
                    else:
                        _write(engine, listing_id, "sent")
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=writes, args=(listing_id,))
                   for listing_id in LISTINGS]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert {listing: _states(engine)[listing] for listing in LISTINGS} == \
            dict.fromkeys(LISTINGS, "sent")
        assert writer_lock(engine) is writer_lock(engine)
    finally:
        engine.dispose()


def test_only_sqlite_has_a_writer_lock(postgres_engine: Engine, sqlite_engine: Engine) -> None:
    assert writer_lock(postgres_engine) is None
    assert writer_lock(sqlite_engine) is not None


def test_the_writer_lock_is_taken_in_turn_by_processes(
    tmp_path: Any, sqlite_engine: Engine,
) -> None:
    """Another process holding the store's writer lock keeps this one's writer waiting
    (in the kernel, on the lock beside the store) until it lets go."""
    marker = tmp_path / "released"
    holder = held_elsewhere(str(sqlite_engine.url), marker)
    try:
        with writer_lock(sqlite_engine):  # type: ignore[union-attr]
            assert marker.exists(), "taken only once the other process let go"
    finally:
        assert holder.wait(timeout=30) == 0
    lock = writer_lock(sqlite_engine)
    assert lock is not None and lock.path == f"{sqlite_engine.url.database}-writer"


def test_a_writer_lock_whose_file_cannot_be_opened_still_serves_the_process(
    tmp_path: Any,
) -> None:
    from syndication.store.db import WriterLock

    lock = WriterLock(str(tmp_path / "missing" / "store.db-writer"))
    with lock, lock:
        pass
    assert lock.path is None, "left to this process's threads"
    with lock:
        pass
    assert WriterLock(None).path is None


def test_a_savepoint_that_cannot_be_set_is_the_jobs_error_and_gives_the_transaction_up(
    engine: Engine, monkeypatch: pytest.MonkeyPatch,
) -> None:
    _ingest(engine)
    before = _states(engine)
    savepoints: list[str] = []

    def second_savepoint(sql: str, _n: int) -> bool:
        if sql.startswith("SAVEPOINT"):
            savepoints.append(sql)
        return sql.startswith("SAVEPOINT") and len(savepoints) == 2

    _break(monkeypatch, second_savepoint)
    with grouped(engine) as group:
        held = group.run(lambda: _write(engine, "G1", "sent") or "G1 done")
        broken = group.run(lambda: _write(engine, "G2", "sent") or "G2 done")
        later = group.run(lambda: _write(engine, "G3", "published") or "G3 done")
        group.commit()
    assert held[0] is None and isinstance(held[1], OperationalError)
    assert broken[0] is None and isinstance(broken[1], OperationalError), \
        "the job whose block could not begin gets the error"
    assert later == ["G3 done", None]
    assert _states(engine) == {**before, "G3": "published"}


def test_savepoints_are_never_released_and_a_failing_job_rolls_back_to_its_own(
    engine: Engine, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One statement a job: its ``SAVEPOINT``. The savepoints nest, and a job that fails
    after others rolls back its own writes only."""
    _ingest(engine)
    before = _states(engine)
    from syndication.store import db

    sent: list[str] = []
    execute = db.Group._execute
    monkeypatch.setattr(db.Group, "_execute",
                        lambda self, sql: sent.append(sql) or execute(self, sql))

    with grouped(engine) as group:
        first = group.run(lambda: _write(engine, "G1", "sent") or "G1 done")
        failing = group.run(lambda: _fails_inside(engine))
        last = group.run(lambda: _write(engine, "G3", "published") or "G3 done")
        group.commit()
    assert sent == ["SAVEPOINT grouped", "SAVEPOINT grouped", "ROLLBACK TO SAVEPOINT grouped",
                    "SAVEPOINT grouped"]
    assert first == ["G1 done", None] and last == ["G3 done", None]
    assert isinstance(failing[1], ValueError)
    assert _states(engine) == {**before, "G1": "sent", "G3": "published"}


def test_a_driver_error_of_a_savepoint_is_raised_as_the_stores_error(engine: Engine) -> None:
    """The group's own savepoint statements fail as any statement does, with SQLAlchemy's
    error (which the transfer job reads as an unreachable store): here a job releases the
    group's savepoints itself and fails, so the group's ``ROLLBACK TO`` finds none."""
    from sqlalchemy.exc import DBAPIError

    _ingest(engine)
    before = _states(engine)

    def releases_them() -> None:
        with begin(engine) as conn:
            write_status(conn, "G2", "hemnet", "sent", at=utcnow())
            conn.exec_driver_sql("RELEASE SAVEPOINT grouped")
            conn.exec_driver_sql("RELEASE SAVEPOINT grouped")
            raise ValueError("G2 fails")

    with grouped(engine) as group:
        held = group.run(lambda: _write(engine, "G1", "sent") or "G1 done")
        broken = group.run(releases_them)
        later = group.run(lambda: _write(engine, "G3", "published") or "G3 done")
        group.commit()
    assert held[0] is None and isinstance(held[1], DBAPIError), held
    assert not isinstance(held[1].orig, DBAPIError), "the driver's error, wrapped once"
    assert isinstance(broken[1], ValueError), "the failing job keeps its own error"
    assert later == ["G3 done", None], "the next job began a transaction of its own"
    assert _states(engine) == {**before, "G3": "published"}
