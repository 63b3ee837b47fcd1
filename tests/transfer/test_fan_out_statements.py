"""A fan-out batch costs a fixed number of SQL statements, whatever its number of pairs.

Each batch reads its listings, offices, brokers and statuses set-based, writes its
statuses in one upsert, its history and its outbox rows in one executemany
``INSERT`` each, and its writer settles the sent messages in one statement. Counted
with SQLAlchemy's ``before_cursor_execute`` on SQLite and PostgreSQL: a batch of 5
listings and one of 60 issue the same statements, on a first transfer (no status
rows yet) and on a second one (every pair ``queued``, so each decision reads the
state before it). The default office queues two marketplaces per listing and records
the third at once, so both kinds of write are in each batch.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import pytest
from factories import listing, office, user
from sqlalchemy import Engine, event, func, select
from transfer_helpers import QUEUE_SETTINGS, Queue, ingest

from syndication.store.db import session_scope
from syndication.store.models import OutboxRow, TransferEventRow, TransferStatusRow
from syndication.transfer import Scope, request_transfer
from syndication.transfer.request import batch_size_for


@contextmanager
def counting(engine: Engine, *, whole: bool = False) -> Iterator[list[str]]:
    """The SQL statements ``engine`` executes while in the block (an executemany once):
    their first words, or ``whole`` statements."""
    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement.strip() if whole else statement.split(None, 1)[0].upper())

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", count)


def fan_out_statements(engine: Engine, listings: int) -> tuple[list[str], list[str]]:
    """The statements of a first and of a second ``transfer --all`` of ``listings``
    listings in one batch, through the actors' scheduler (messages to the stub broker,
    no worker running), after checking what each stored."""
    ids = [f"S{n:03d}" for n in range(listings)]
    ingest(engine, offices=[office()], users=[user()], listings=[listing(i) for i in ids])
    q = Queue(engine, replace(QUEUE_SETTINGS, fan_out_lease_ms=600_000))
    runs = []
    for run in (1, 2):
        with counting(engine) as statements:
            summary = request_transfer(q.runtime, Scope("all"), q.scheduler,
                                       batch_size=listings)
        assert (summary.jobs, summary.recorded) == (2 * listings, listings), (
            "the default office queues two marketplaces and records the third at once")
        with session_scope(engine) as session:
            queued = session.execute(select(func.count()).select_from(TransferStatusRow)
                                     .where(TransferStatusRow.state == "queued")).scalar_one()
            events = session.execute(select(func.count()).select_from(TransferEventRow)
                                     .where(TransferEventRow.request_id == summary.request_id)
                                     ).scalar_one()
            waiting = session.execute(select(func.count()).select_from(OutboxRow)).scalar_one()
        assert (queued, events, waiting) == (2 * listings, 3 * listings, 0), (
            f"run {run}: every pair queued with its event, every message sent")
        runs.append(statements)
    return runs[0], runs[1]


def test_a_batch_issues_the_same_statements_for_5_and_for_60_listings(engine: Engine) -> None:
    small_first, small_second = fan_out_statements(engine, 5)
    with session_scope(engine) as session:
        for table in (OutboxRow, TransferEventRow, TransferStatusRow):
            session.execute(table.__table__.delete())  # type: ignore[attr-defined]
    large_first, large_second = fan_out_statements(engine, 60)
    assert large_first == small_first, "a first fan-out: statements grew with the pairs"
    assert large_second == small_second, "a second fan-out: statements grew with the pairs"
    assert len(small_second) <= 30, small_second


def test_a_fan_out_takes_the_stores_batch_size_unless_told(
    engine: Engine, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """500 listings a batch on SQLite, 2,000 on PostgreSQL (fewer commits beside a busy
    worker, and no write lock to hold the workers out); a caller's size wins."""
    from syndication.transfer import request

    assert batch_size_for(engine) == {"sqlite": 500, "postgresql": 2000}[engine.dialect.name]
    ids = [f"B{n:02d}" for n in range(7)]
    ingest(engine, offices=[office()], users=[user()], listings=[listing(i) for i in ids])
    q = Queue(engine, replace(QUEUE_SETTINGS, fan_out_lease_ms=600_000))
    monkeypatch.setitem(request.BATCH_SIZES, engine.dialect.name, 3)

    def batches(**size: int) -> int:
        with counting(engine, whole=True) as statements:
            request_transfer(q.runtime, Scope("all"), q.scheduler, **size)
        return sum(s.startswith("UPDATE transfer_request") for s in statements)

    assert batches() == batches(batch_size=3) == 4, "three batches of 3 and the end"
    assert batches(batch_size=10) == 2
