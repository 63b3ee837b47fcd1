"""A fan-out whose process stops is finished from the store, by a worker's relay.

The fan-out stores its batches in listing-id order with the request's cursor;
the process holds it for ``fan_out_lease_ms`` after each batch. These tests
stop a fan-out after its first batch (the process "dies" there), then check
that the relay's sweep takes it over once the time is up, stores each pair
exactly once and finishes the request — and that the first writer, should it
come back, can store nothing more.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from factories import listing, office, user
from sqlalchemy import Engine, func, select, update
from transfer_helpers import QUEUE_SETTINGS, FakeTransport, Queue, ingest

from syndication.runtime import Runtime
from syndication.store.db import session_scope
from syndication.store.models import TransferEventRow, TransferRequestRow, utcnow
from syndication.transfer import Scope, request_outcome, request_transfer
from syndication.transfer.common import JobRef
from syndication.transfer.request import fan_out, resume_stalled_fan_outs

LISTINGS = [f"O{i}" for i in range(1, 8)]


class ProcessDied(BaseException):
    """The fan-out's process stops here (as with ``kill -9``: nothing after it runs)."""


class Recording:
    """A scheduler that records what a fan-out staged, and dies at batch ``die_at``."""

    def __init__(self, die_at: int | None = None) -> None:
        self.die_at = die_at
        self.batches = 0
        self.jobs: list[JobRef] = []
        self.feeds: list[tuple[str, str, str]] = []

    def transfer(self, session: object, jobs: list[JobRef]) -> None:
        self.batches += 1
        if self.batches == self.die_at:
            raise ProcessDied
        self.jobs.extend(jobs)

    def confirm(self, *args: object) -> None:
        raise AssertionError("a fan-out confirms nothing")

    def publish_feed(self, session: object, office_id: str, marketplace: str,
                     request_id: str) -> None:
        self.feeds.append((office_id, marketplace, request_id))


def records() -> dict[str, list[dict[str, object]]]:
    return {"offices": [office()], "users": [user()],
            "listings": [listing(lid) for lid in LISTINGS]}


def expire(engine: Engine, request_id: str) -> None:
    with session_scope(engine) as session:
        session.execute(update(TransferRequestRow)
                        .where(TransferRequestRow.id == request_id)
                        .values(fan_out_until=utcnow() - timedelta(seconds=1)))


def only_request(engine: Engine) -> TransferRequestRow:
    with session_scope(engine) as session:
        [row] = session.scalars(select(TransferRequestRow)).all()
        return row


def fan_out_events(engine: Engine, request_id: str) -> dict[tuple[str, str], int]:
    with session_scope(engine) as session:
        found = session.execute(
            select(TransferEventRow.listing_id, TransferEventRow.marketplace, func.count())
            .where(TransferEventRow.request_id == request_id, TransferEventRow.state == "queued",
                   TransferEventRow.attempts == 0)
            .group_by(TransferEventRow.listing_id, TransferEventRow.marketplace)
        ).all()
    return {(lid, mp): n for lid, mp, n in found}


def test_a_fan_out_taken_over_is_stored_once_and_its_first_writer_stores_nothing_more(
    engine: Engine,
) -> None:
    ingest(engine, **records())
    runtime = Runtime(settings=QUEUE_SETTINGS, engine=engine,
                      transports={name: FakeTransport(name) for name in ("hemnet",)})
    first = Recording(die_at=2)
    with pytest.raises(ProcessDied):
        request_transfer(runtime, Scope("all"), first, batch_size=3)
    request = only_request(engine)
    assert request.fan_out_after == "O3" and request.fanned_out_at is None
    assert not request_outcome(engine, request.id).finished, (
        "a fan-out not yet stored to its end is not finished, whatever its pairs did")

    second = Recording()
    assert resume_stalled_fan_outs(runtime, second, owner="sweep-a") == 0, (
        "the first writer still holds the fan-out")
    expire(engine, request.id)
    assert resume_stalled_fan_outs(runtime, second, owner="sweep-a") == 1
    assert resume_stalled_fan_outs(runtime, Recording(), owner="sweep-b") == 0

    assert {j.listing_id for j in first.jobs} == {"O1", "O2", "O3"}
    assert {j.listing_id for j in second.jobs} == {"O4", "O5", "O6", "O7"}
    every = [(j.listing_id, j.marketplace) for j in first.jobs + second.jobs]
    assert len(every) == len(set(every)), "no pair was queued twice"
    events = fan_out_events(engine, request.id)
    assert set(events) == set(every) and set(events.values()) == {1}
    done = only_request(engine)
    assert done.fanned_out_at is not None and done.fan_out_owner is None
    assert done.jobs == len(every)

    comeback = fan_out(runtime, request.id, Recording(), owner=request.fan_out_owner or "")
    assert not comeback.finished and comeback.jobs == 0, "the first writer lost the fan-out"
    assert fan_out_events(engine, request.id) == events


def test_a_resumed_fan_out_stages_the_pull_marketplaces_feed_jobs(engine: Engine) -> None:
    ingest(engine, offices=[office(licence=["hemnet", "kyero"])], users=[user()],
           listings=[listing(lid, marketplaces=["hemnet", "kyero"]) for lid in LISTINGS])
    runtime = Runtime(settings=QUEUE_SETTINGS, engine=engine)
    with pytest.raises(ProcessDied):
        request_transfer(runtime, Scope("all"), Recording(die_at=2), batch_size=3)
    request = only_request(engine)
    expire(engine, request.id)
    second = Recording()
    assert resume_stalled_fan_outs(runtime, second, owner="sweep") == 1
    assert second.feeds == [("K1", "kyero", request.id)], (
        "one feed job for the office, though its first batch was stored by the first writer")


class DyingAfterOneBatch:
    """The actors' scheduler, in a process that dies while storing its second batch."""

    def __init__(self) -> None:
        from syndication.jobs.transfer import SCHEDULER

        self.real = SCHEDULER
        self.batches = 0

    def transfer(self, session: object, jobs: list[JobRef]) -> None:
        self.batches += 1
        if self.batches == 2:
            raise ProcessDied
        self.real.transfer(session, jobs)  # type: ignore[arg-type]


def test_an_interrupted_fan_out_is_finished_by_the_workers_relay(sqlite_engine: Engine) -> None:
    from syndication.broker import in_process_worker

    q = Queue(sqlite_engine, replace(QUEUE_SETTINGS, fan_out_lease_ms=500))
    ingest(q.engine, **records())
    with pytest.raises(ProcessDied):
        request_transfer(q.runtime, Scope("all"), DyingAfterOneBatch(),  # type: ignore[arg-type]
                         batch_size=3)
    request = only_request(q.engine)
    assert request.fan_out_after == "O3"
    with in_process_worker(q.broker, threads=4):
        deadline = utcnow() + timedelta(seconds=60)
        while not request_outcome(q.engine, request.id).finished and utcnow() < deadline:
            q.join()
        q.join()
    outcome = request_outcome(q.engine, request.id)
    assert outcome.finished and outcome.failed == 0, outcome
    assert outcome.counts["published"] == 2 * len(LISTINGS)
    for name in ("hemnet", "blocket"):
        assert sorted(d.listing_id for d in q.transports[name].created()) == LISTINGS
    assert only_request(q.engine).fanned_out_at is not None


def test_a_batch_slower_than_the_lease_keeps_its_fan_out(
    engine: Engine, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A living holder whose batches each outlast the lease (a slow link to the store) is
    not taken over by the relay's sweep: its lease is renewed while it works, so the
    fan-out moves and finishes, each pair stored once."""
    import threading
    import time

    from syndication.transfer import request as request_module

    ingest(engine, **records())
    runtime = Runtime(settings=replace(QUEUE_SETTINGS, fan_out_lease_ms=300), engine=engine,
                      transports={name: FakeTransport(name) for name in ("hemnet",)})
    slow_batch = request_module._fan_out_batch

    def batch_taking_a_second(*args: object, **kwargs: object) -> object:
        time.sleep(1.0)
        return slow_batch(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(request_module, "_fan_out_batch", batch_taking_a_second)
    taken: list[int] = []
    stop = threading.Event()

    def sweep() -> None:
        while not stop.is_set():
            taken.append(resume_stalled_fan_outs(runtime, Recording(), owner="sweep"))
            time.sleep(0.05)

    sweeper = threading.Thread(target=sweep)
    holder = Recording()
    sweeper.start()
    try:
        summary = request_transfer(runtime, Scope("all"), holder, batch_size=3)
    finally:
        stop.set()
        sweeper.join()
    assert sum(taken) == 0, "the sweep took over a fan-out whose holder was alive"
    assert {j.listing_id for j in holder.jobs} == set(LISTINGS)
    done = only_request(engine)
    assert done.fanned_out_at is not None and done.jobs == summary.jobs == len(holder.jobs)


def test_a_note_written_with_the_request_comes_before_its_jobs(engine: Engine) -> None:
    """``noted`` writes in the request's own transaction, before any job is staged: its
    event precedes every event of the fan-out, and a note that fails stores no request
    and queues nothing (the web's "try again" press is recorded so)."""
    from syndication.store.repository import append_event

    ingest(engine, **records())
    runtime = Runtime(settings=QUEUE_SETTINGS, engine=engine)
    staged = Recording()
    seen_jobs: list[int] = []

    def note(session: object, request_id: str) -> None:
        seen_jobs.append(len(staged.jobs))
        append_event(session, "O1", "hemnet", "queued", action="retry",  # type: ignore[arg-type]
                     at=utcnow(), request_id=request_id, actor="anna")

    summary = request_transfer(runtime, Scope("object", "O1", "hemnet"), staged, noted=note)
    assert seen_jobs == [0], "the note was written before any job was staged"
    with session_scope(engine) as session:
        events = session.execute(
            select(TransferEventRow.id, TransferEventRow.action)
            .where(TransferEventRow.request_id == summary.request_id)
            .order_by(TransferEventRow.id)).all()
    assert [action for _, action in events][0] == "retry" and len(events) == 2, events

    def refuses(session: object, request_id: str) -> None:
        raise RuntimeError("the note could not be written")

    again = Recording()
    with pytest.raises(RuntimeError, match="note"):
        request_transfer(runtime, Scope("object", "O2", "hemnet"), again, noted=refuses)
    assert again.jobs == []
    with session_scope(engine) as session:
        assert session.scalar(select(func.count()).select_from(TransferRequestRow)) == 1
