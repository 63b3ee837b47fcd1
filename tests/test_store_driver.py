"""Statements on the driver's cursor (:mod:`syndication.store.driver`), on SQLite and
PostgreSQL: the same rows and values as through SQLAlchemy, in the same transaction,
SQLAlchemy's errors, the engine's cursor events, and refusals named."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import factories
import pytest
from sqlalchemy import Engine, Text, bindparam, cast, event, exc, func, insert, select, text, update

from syndication.ingest import ingest_document
from syndication.store import session_scope
from syndication.store.driver import DriverStatement
from syndication.store.models import utcnow
from syndication.store.repository import load_feed_input
from syndication.store.statements import (
    EVENT,
    FEED_INPUT,
    IMAGES_OF,
    SETTLED_VIEW,
    START,
    STATUS,
    USER,
    count_attempt,
    pair,
    read_feed_input,
    read_pair_and_listing,
    read_settled,
    write_status,
)


@contextmanager
def executed(engine: Engine) -> Iterator[list[str]]:
    """The statements the engine sends to its driver while in the block."""
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", count)


def _ingest(engine: Engine) -> None:
    report = ingest_document(engine, json.dumps(factories.document(
        offices=[factories.office()], users=[factories.user()],
        listings=[factories.listing("O1", marketplaces=["hemnet", "blocket"])],
    )).encode())
    assert report.ok, report.errors


def test_rows_are_sqlalchemys_own(engine: Engine) -> None:
    """Every column of the job's reads, processed as SQLAlchemy does (times aware, JSON
    decoded, booleans), for a row with a history."""
    _ingest(engine)
    now = utcnow()
    with engine.begin() as conn:
        count_attempt(conn, "O1", "hemnet", "r1", now)
        write_status(conn, "O1", "hemnet", "sent", at=now + timedelta(seconds=1),
                     fields={"action": "create", "marketplace_id": "HN-1",
                             "document_hash": "abc", "request_id": "r1"})
        count_attempt(conn, "O1", "hemnet", "r2", now + timedelta(seconds=2))
    cases: list[tuple[Any, dict[str, Any]]] = [
        (FEED_INPUT, {"p_listing": "O1"}),
        (IMAGES_OF, {"p_listing": "O1"}),
        (SETTLED_VIEW, {**pair("O1", "hemnet"), "p_message": None}),
    ]
    with engine.begin() as conn:
        for statement, params in cases:
            expected = [dict(row._mapping) for row in conn.execute(statement, params)]
            got = [row._asdict() for row in DriverStatement(statement).execute(conn, params).rows]
            assert got == expected, statement
            assert expected, statement
    with engine.begin() as conn:
        status, generation, earlier = read_settled(conn, "O1", "hemnet")
        driven = read_feed_input(conn, "O1")
    with session_scope(engine) as session:
        assert driven == load_feed_input(session, "O1")
    assert status is not None and status.state == "sent" and status.attempts == 2
    assert status.at == now + timedelta(seconds=1) and status.at.tzinfo is not None
    assert (generation, earlier) == (1, 0)


def test_the_pair_and_its_listing_are_read_together_as_apart(engine: Engine) -> None:
    """:func:`read_pair_and_listing` gives what :func:`read_settled` and
    :func:`read_feed_input` give, on PostgreSQL in one statement: for a pair with a settled history
    now queued again, a message with recorded starts, a pair without a row, and a
    listing that is not stored (with and without a row of its pair)."""
    _ingest(engine)
    now = utcnow()
    with engine.begin() as conn:
        count_attempt(conn, "O1", "hemnet", "r1", now)
        write_status(conn, "O1", "hemnet", "published", at=now + timedelta(seconds=1),
                     fields={"action": "create", "marketplace_id": "HN-1", "request_id": "r1"})
        count_attempt(conn, "O1", "hemnet", "r2", now + timedelta(seconds=2))
        count_attempt(conn, "gone", "hemnet", "r2", now)
        conn.execute(insert(START), [
            {"message_id": "m1", "listing_id": "O1", "marketplace": "hemnet",
             "request_id": "r2", "worker": "w", "broker_id": None, "started_at": now}] * 2)
    cases = [("O1", "hemnet", "m1"), ("O1", "hemnet", None), ("O1", "blocket", None),
             ("gone", "hemnet", None), ("gone", "blocket", "m1")]
    for listing_id, marketplace, message_id in cases:
        with engine.begin() as conn:
            apart = (*read_settled(conn, listing_id, marketplace, message_id),
                     read_feed_input(conn, listing_id))
        with executed(engine) as statements, engine.begin() as conn:
            together = read_pair_and_listing(conn, listing_id, marketplace, message_id)
        assert together == apart, (listing_id, marketplace, message_id)
        assert len(statements) == (1 if engine.dialect.name == "postgresql" else 2)
    with engine.begin() as conn:
        current, generation, earlier, feed_input = read_pair_and_listing(
            conn, "O1", "hemnet", "m1")
    assert current is not None and current.state == "published" and current.attempts == 2
    assert (generation, earlier) == (1, 2)
    assert feed_input is not None and feed_input.listing.id == "O1"
    with engine.begin() as conn:
        assert read_pair_and_listing(conn, "gone", "blocket", None) == (None, 0, 0, None)


def test_writes_share_the_callers_transaction(engine: Engine) -> None:
    _ingest(engine)
    with engine.begin() as conn:
        write_status(conn, "O1", "hemnet", "sent", at=utcnow())
    with pytest.raises(RuntimeError), engine.begin() as conn:
        count_attempt(conn, "O1", "hemnet", "r1", utcnow())
        raise RuntimeError("rolled back")
    with engine.connect() as conn:
        row = conn.execute(select(STATUS.c.state, STATUS.c.attempts).where(
            STATUS.c.listing_id == "O1", STATUS.c.marketplace == "hemnet")).one()
        events = conn.execute(select(func.count()).select_from(EVENT)).scalar()
    assert tuple(row) == ("sent", 0) and events == 1


def test_an_insert_returns_its_id_and_a_delete_its_count(engine: Engine) -> None:
    new = DriverStatement(insert(START).returning(START.c.id))
    gone = DriverStatement(START.delete().where(START.c.message_id == bindparam("p_message")))
    row = {"message_id": "m1", "listing_id": "O1", "marketplace": "hemnet",
           "request_id": "r1", "worker": "w", "broker_id": None, "started_at": utcnow()}
    with engine.begin() as conn:
        first = new.execute(conn, row).scalar()
        second = new.execute(conn, row).scalar()
        assert isinstance(first, int) and second == first + 1
        assert gone.execute(conn, {"p_message": "m1"}).rowcount == 2


def test_a_driver_error_is_sqlalchemys(engine: Engine) -> None:
    _ingest(engine)
    duplicate = DriverStatement(insert(STATUS))
    row = {"listing_id": "O1", "marketplace": "hemnet", "state": "queued", "at": utcnow(),
           "updated_at": utcnow(), "attempts": 0}
    with pytest.raises(exc.IntegrityError), engine.begin() as conn:
        duplicate.execute(conn, row)
        duplicate.execute(conn, row)


def test_a_lost_connection_invalidates_it_as_sqlalchemy_does(
    postgres_engine: Engine, postgres_admin_url: str
) -> None:
    """The server ends the connection under a job: the error says the connection was
    invalidated, and the next checkout gets a live one (no pre-ping)."""
    statement = DriverStatement(select(STATUS.c.state).where(
        STATUS.c.listing_id == bindparam("p_listing")))
    with postgres_engine.connect() as conn:
        pid = conn.execute(text("select pg_backend_pid()")).scalar()
    from syndication.store import make_engine

    admin = make_engine(postgres_admin_url)
    with admin.connect() as other:
        other.execute(text("select pg_terminate_backend(:pid)"), {"pid": pid})
    admin.dispose()
    with pytest.raises(exc.DBAPIError) as raised, postgres_engine.begin() as conn:
        statement.execute(conn, {"p_listing": "O1"})
    assert raised.value.connection_invalidated
    with postgres_engine.begin() as conn:
        assert statement.execute(conn, {"p_listing": "O1"}).rows == []


def test_cursor_events_see_each_statement(engine: Engine) -> None:
    seen: list[str] = []

    def before(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append("before " + statement.split()[0])

    def after(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append("after " + statement.split()[0])

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    try:
        with engine.begin() as conn:
            DriverStatement(IMAGES_OF).execute(conn, {"p_listing": "O1"})
    finally:
        event.remove(engine, "before_cursor_execute", before)
        event.remove(engine, "after_cursor_execute", after)
    assert seen == ["before SELECT", "after SELECT"]


def test_statements_that_need_python_at_run_time_are_refused(engine: Engine) -> None:
    expanding = DriverStatement(select(STATUS.c.state).where(STATUS.c.state.in_(["a", "b"])))
    defaulted = DriverStatement(insert(START))
    with engine.begin() as conn:
        with pytest.raises(ValueError, match="expanding IN"):
            expanding.execute(conn, {})
        with pytest.raises(ValueError, match="started_at"):
            defaulted.execute(conn, {"message_id": "m", "listing_id": "O1",
                                     "marketplace": "hemnet", "request_id": "r",
                                     "worker": "w", "broker_id": None})


def test_each_change_appends_its_event_in_as_few_statements_as_the_store_allows(
    engine: Engine,
) -> None:
    """A start and a status write each append the row's new values to the history: in one
    statement on PostgreSQL (a data-modifying ``WITH``), in two on SQLite; a pair without
    a row gets one, and its event, either way."""
    _ingest(engine)
    now = utcnow()
    with executed(engine) as statements:
        with engine.begin() as conn:
            count_attempt(conn, "O1", "hemnet", "r1", now)
        created = len(statements)
        with engine.begin() as conn:
            write_status(conn, "O1", "hemnet", "sent", at=now + timedelta(seconds=1),
                         fields={"action": "create", "marketplace_id": "HN-1"})
            count_attempt(conn, "O1", "hemnet", "r2", now + timedelta(seconds=2))
            write_status(conn, "O1", "hemnet", "failed", at=now + timedelta(seconds=3),
                         error="refused")
    per_change = 1 if engine.dialect.name == "postgresql" else 2
    assert created == 3 and len(statements) - created == 3 * per_change
    with engine.connect() as conn:
        events = conn.execute(select(*(EVENT.c[name] for name in (
            "state", "action", "marketplace_id", "error", "attempts", "request_id", "at")))
            .where(EVENT.c.listing_id == "O1").order_by(EVENT.c.id)).all()
    assert [tuple(e) for e in events] == [
        ("queued", None, None, None, 1, "r1", now),
        ("sent", "create", "HN-1", None, 1, "r1", now + timedelta(seconds=1)),
        ("queued", "create", "HN-1", None, 2, "r2", now + timedelta(seconds=2)),
        ("failed", "create", "HN-1", "refused", 2, "r2", now + timedelta(seconds=3)),
    ]


def test_a_status_write_ends_its_start_in_the_same_statement_where_the_store_allows(
    engine: Engine,
) -> None:
    """The outcome's write ends the job's start: on PostgreSQL in the statement that
    changes the row and appends its event, on SQLite in one more; by the start's row, or
    with ``done`` every start of the message. A pair without a row gets one and the
    start still ends."""
    from syndication.store.statements import StartEnd

    _ingest(engine)
    now = utcnow()
    with engine.begin() as conn:
        for message_id, listing_id, marketplace in (("m1", "O1", "hemnet"),
                                                    ("m2", "O1", "hemnet"),
                                                    ("m2", "O1", "hemnet"),
                                                    ("m3", "O1", "blocket")):
            conn.execute(insert(START).values(
                message_id=message_id, listing_id=listing_id, marketplace=marketplace,
                request_id="r1", worker="w", started_at=now))
        count_attempt(conn, "O1", "hemnet", "r1", now)
        first = conn.execute(select(START.c.id).where(START.c.message_id == "m1")).scalar()

    def starts() -> list[str]:
        with engine.connect() as conn:
            return sorted(conn.execute(select(START.c.message_id)).scalars())

    with executed(engine) as statements, engine.begin() as conn:
        write_status(conn, "O1", "hemnet", "queued", at=now, error="attempt failed",
                     ending=StartEnd("m1", first, done=False))
    one_trip = engine.dialect.name == "postgresql"
    assert len(statements) == (1 if one_trip else 3), statements
    assert starts() == ["m2", "m2", "m3"], "only that start's row"
    with executed(engine) as statements, engine.begin() as conn:
        write_status(conn, "O1", "hemnet", "sent", at=now + timedelta(seconds=1),
                     fields={"action": "create"}, ending=StartEnd("m2", None, done=True))
    assert len(statements) == (1 if one_trip else 3), statements
    assert starts() == ["m3"], "every start of the message"
    with engine.begin() as conn:
        write_status(conn, "O1", "blocket", "failed", at=now, error="gone",
                     ending=StartEnd("m3", None, done=True))
    assert starts() == [], "a pair without a row: created, and its start ended"
    with engine.connect() as conn:
        states = dict(conn.execute(select(STATUS.c.marketplace, STATUS.c.state)
                                   .where(STATUS.c.listing_id == "O1")).all())
        events = conn.execute(select(EVENT.c.state).where(EVENT.c.listing_id == "O1")
                              .order_by(EVENT.c.id)).scalars().all()
    assert states == {"hemnet": "sent", "blocket": "failed"}
    assert events == ["queued", "queued", "sent", "failed"]


def test_a_start_is_counted_and_recorded_in_one_statement_where_the_store_allows(
    engine: Engine,
) -> None:
    """On PostgreSQL the count, its event and the start's row are one statement, which
    returns the row's id; on SQLite the count returns none and the caller inserts the row.
    A pair without a status row gets one (and its event) either way."""
    _ingest(engine)
    now = utcnow()
    with engine.begin() as conn:
        conn.execute(insert(STATUS).values(listing_id="O1", marketplace="hemnet",
                                           state="queued", at=now, updated_at=now,
                                           attempts=0))
    one_trip = engine.dialect.name == "postgresql"
    ids = []
    for marketplace in ("hemnet", "blocket"):
        row = {"message_id": f"m-{marketplace}", "listing_id": "O1",
               "marketplace": marketplace, "request_id": "r1", "worker": "w",
               "broker_id": None, "started_at": now}
        with executed(engine) as statements, engine.begin() as conn:
            ids.append(count_attempt(conn, "O1", marketplace, "r1", now, start=row))
        if marketplace == "hemnet":
            assert len(statements) == (1 if one_trip else 2), statements
    with engine.connect() as conn:
        starts = dict(conn.execute(select(START.c.message_id, START.c.id)).all())
        attempts = dict(conn.execute(select(STATUS.c.marketplace, STATUS.c.attempts)).all())
        events = conn.execute(select(EVENT.c.marketplace).order_by(EVENT.c.id)).scalars().all()
    if one_trip:
        assert ids == [starts["m-hemnet"], starts["m-blocket"]], "the rows' ids"
    else:
        assert ids == [None, None] and starts == {}, "the caller records the start"
    assert attempts == {"hemnet": 1, "blocket": 1}
    assert events == ["hemnet", "blocket"]


def test_a_none_is_bound_as_sqlalchemy_binds_it(engine: Engine) -> None:
    """A JSON column given ``None`` stores JSON ``null`` through SQLAlchemy; the driver's
    parameters go through the same processors, ``None`` included."""
    _ingest(engine)
    clear = update(USER).where(USER.c.id == bindparam("p_user")).values(
        images=bindparam("p_images"))
    user_id = factories.user()["id"]
    with engine.begin() as conn:
        conn.execute(clear, {"p_user": user_id, "p_images": None})
        through_sqlalchemy = conn.execute(select(cast(USER.c.images, Text)).where(
            USER.c.id == user_id)).scalar()
        DriverStatement(clear).execute(conn, {"p_user": user_id, "p_images": None})
        on_the_driver = conn.execute(select(cast(USER.c.images, Text)).where(
            USER.c.id == user_id)).scalar()
    assert on_the_driver == through_sqlalchemy == "null"


@pytest.mark.parametrize("images", [
    [],
    [{"url": "https://img.example/3.jpg", "order": 3, "caption": "Kök", "tag": "kok"},
     {"url": "https://img.example/1.jpg", "order": 1},
     {"url": "https://img.example/2.jpg", "order": 1, "caption": "Två med samma ordning"}],
])
def test_the_listing_and_its_images_are_read_in_one_statement(
    engine: Engine, images: list[dict[str, Any]]
) -> None:
    report = ingest_document(engine, json.dumps(factories.document(
        offices=[factories.office()], users=[factories.user()],
        listings=[factories.listing("O2", images=images)],
    )).encode())
    assert report.ok, report.errors
    with executed(engine) as statements, engine.begin() as conn:
        driven = read_feed_input(conn, "O2")
    with session_scope(engine) as session:
        loaded = load_feed_input(session, "O2")
    assert driven == loaded
    assert driven is not None and len(driven.listing.images) == len(images)
    assert len(statements) == 1


def test_every_job_statement_is_short_enough_for_psycopg_to_convert_once() -> None:
    """psycopg converts a statement's text to PostgreSQL's placeholders once and keeps
    it only while the text is under its limit (``MAX_CACHED_STATEMENT_LENGTH``);
    a longer one is converted again on every call, which cost a job more than the
    statement it saved. Each statement the job runs on the driver, in the form that
    is longest (named placeholders), stays under it."""
    import gc

    from psycopg import _queries
    from sqlalchemy.dialects import postgresql

    from syndication.store import statements

    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    for given in (frozenset(), frozenset(statements.STATUS_FIELDS)):
        for ends in (None, "message", "start"):
            statements._set_status(given, event=True, ends=ends)
    found = [item for item in gc.get_objects() if isinstance(item, DriverStatement)]
    assert statements.ON_DRIVER_PAIR_AND_LISTING["postgresql"] in found
    assert len(found) >= 15
    for statement in found:
        text = str(statement.statement.compile(dialect=dialect)).encode()
        assert len(text) <= _queries.MAX_CACHED_STATEMENT_LENGTH, (len(text), statement)
