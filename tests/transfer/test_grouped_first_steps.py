"""The first steps of several transfer jobs in one store transaction
(:meth:`TransferSteps.first_together`), on SQLite and PostgreSQL: each job's start
counted and its reads done in a savepoint of one transaction, in the order of the pairs;
a job whose part fails, or whose earlier start died, leaves the others theirs; a group
that cannot commit puts every message back uncounted. On SQLite a fan-out takes the
store's writer lock in turn with the worker's groups."""

from __future__ import annotations

import contextvars
import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import structlog
from factories import listing, office, user
from held_lock import held_elsewhere
from sqlalchemy import Engine, event
from sqlalchemy.exc import OperationalError
from sqlmodel import select
from transfer_helpers import QUEUE_SETTINGS, Queue, ingest

import syndication.transfer.job as job_steps
from syndication.middleware import Deferred
from syndication.store.db import session_scope
from syndication.store.models import JobStartRow, TransferStatusRow
from syndication.store.repository import record_status
from syndication.transfer.concurrent_job import TransferSteps
from syndication.transfer.lifecycle import TransferLifecycle
from syndication.workers import WorkerIdentity, this_worker

REQUEST = "r-grouped"
LISTINGS = ["G3", "G1", "G2"]


class _Noting(TransferLifecycle):
    """The lifecycle, noting the pair of each store part it runs and the log context the
    part runs in."""

    def __init__(self) -> None:
        super().__init__()
        self.order: list[tuple[str, str]] = []
        self.contexts: list[Any] = []

    def found(self, broker: Any, message: Any, scheduler: Any, *, isolated: bool = False) -> Any:
        self.order.append((message.kwargs["listing_id"], message.kwargs["marketplace"]))
        self.contexts.append(structlog.contextvars.get_contextvars().get("listing_id"))
        return super().found(broker, message, scheduler, isolated=isolated)


def _queue(engine: Engine) -> Queue:
    queue = Queue(engine, replace(QUEUE_SETTINGS))
    ingest(engine, offices=[office()], users=[user()],
           listings=[listing(lid) for lid in LISTINGS])
    return queue


def _messages(queue: Queue) -> list[Any]:
    from syndication.jobs.transfer import transfer_listing

    messages = []
    with session_scope(queue.engine) as session:
        for listing_id in LISTINGS:
            for marketplace in ("hemnet", "blocket"):
                record_status(session, listing_id, marketplace, "queued", request_id=REQUEST)
                messages.append(transfer_listing.message(
                    listing_id=listing_id, marketplace=marketplace, request_id=REQUEST))
    return messages


def _starts(messages: list[Any]) -> list[tuple[Any, Any]]:
    """Each message with a context of its own, its listing bound in it as the worker's
    log hook binds it."""
    starts = []
    for message in messages:
        context = contextvars.copy_context()
        context.run(structlog.contextvars.bind_contextvars,
                    listing_id=message.kwargs["listing_id"])
        starts.append((message, context.run))
    return starts


def _rows(engine: Engine) -> tuple[dict[tuple[str, str], int], list[str]]:
    with session_scope(engine) as session:
        attempts = {(row.listing_id, row.marketplace): row.attempts
                    for row in session.exec(select(TransferStatusRow)).all()}
        starts = sorted(row.message_id for row in session.exec(select(JobStartRow)).all())
    return attempts, starts


def _steps() -> tuple[TransferSteps, _Noting]:
    from syndication.jobs.transfer import SCHEDULER

    lifecycle = _Noting()
    return TransferSteps(lifecycle, SCHEDULER), lifecycle


def test_first_steps_together_count_each_start_in_one_commit_in_the_order_of_the_pairs(
    engine: Engine,
) -> None:
    queue = _queue(engine)
    messages = _messages(queue)
    steps, lifecycle = _steps()
    commits: list[int] = []
    event.listen(engine, "commit", lambda _conn: commits.append(1))
    ran = steps.first_together(queue.broker, _starts(messages))
    assert len(commits) == 1, "one transaction for the group"
    assert lifecycle.order == sorted(lifecycle.order), "the rows are taken in pair order"
    assert lifecycle.contexts == [pair[0] for pair in lifecycle.order], \
        "each job's part ran in its own message's context"
    for message, (job, error) in zip(messages, ran, strict=True):
        assert error is None
        assert job.message is message, "the outcomes come back in the order given"
        delivery = job.prepared.delivery
        assert delivery is not None and delivery.listing_id == message.kwargs["listing_id"]
        assert delivery.marketplace == message.kwargs["marketplace"]
    attempts, starts = _rows(engine)
    assert set(attempts.values()) == {1}, "every job's start counted once"
    assert starts == sorted(m.message_id for m in messages), "and recorded"


def test_a_job_whose_part_fails_is_put_back_and_the_others_keep_theirs(
    engine: Engine, monkeypatch: pytest.MonkeyPatch,
) -> None:
    queue = _queue(engine)
    messages = _messages(queue)
    steps, _ = _steps()
    read = job_steps.read_pair_and_listing

    def failing(conn: Any, listing_id: str, *args: Any) -> Any:
        if listing_id == "G2":
            raise OperationalError("SELECT listing", {}, Exception("statement timeout"))
        return read(conn, listing_id, *args)

    monkeypatch.setattr(job_steps, "read_pair_and_listing", failing)
    ran = steps.first_together(queue.broker, _starts(messages))
    for message, (job, error) in zip(messages, ran, strict=True):
        if message.kwargs["listing_id"] == "G2":
            assert job is None and isinstance(error, Deferred), error
            assert message.options["start_waits"] == 1, "put back, not counted as a try"
        else:
            assert error is None and job.prepared.delivery is not None
    attempts, starts = _rows(engine)
    assert attempts == {(lid, mp): 0 if lid == "G2" else 1
                        for lid in LISTINGS for mp in ("hemnet", "blocket")}, \
        "the failed job's count was rolled back with its savepoint, the others' kept"
    assert starts == sorted(m.message_id for m in messages
                            if m.kwargs["listing_id"] != "G2")


def test_a_group_that_cannot_commit_puts_every_message_back_uncounted(engine: Engine) -> None:
    queue = _queue(engine)
    messages = _messages(queue)
    steps, _ = _steps()

    def broken(_conn: Any) -> None:
        raise OperationalError("COMMIT", {}, Exception("server closed the connection"))

    event.listen(engine, "commit", broken)
    try:
        ran = steps.first_together(queue.broker, _starts(messages))
    finally:
        event.remove(engine, "commit", broken)
    assert all(job is None and isinstance(error, Deferred) for job, error in ran), ran
    assert {m.options["start_waits"] for m in messages} == {1}
    assert {m.options["retries"] for m in messages} == {-1}, \
        "the retry the error will take is given back: the budget is untouched"
    attempts, starts = _rows(engine)
    assert set(attempts.values()) == {0} and starts == [], "nothing of the group was stored"
    again = steps.first_together(queue.broker, _starts(messages))
    assert all(error is None for _, error in again), "the store answers again: they run"
    assert set(_rows(engine)[0].values()) == {1}


def test_a_job_whose_earlier_start_died_goes_to_the_lane_and_the_others_run(
    engine: Engine,
) -> None:
    queue = _queue(engine)
    messages = _messages(queue)
    steps, _ = _steps()
    process = subprocess.Popen(["true"])
    process.wait()
    dead = WorkerIdentity(this_worker().host, process.pid, "1").key
    victim = messages[2]
    with session_scope(engine) as session:
        session.add(JobStartRow(message_id=victim.message_id,
                                listing_id=victim.kwargs["listing_id"],
                                marketplace=victim.kwargs["marketplace"], request_id=REQUEST,
                                worker=dead))
    ran = steps.first_together(queue.broker, _starts(messages))
    for message, (job, error) in zip(messages, ran, strict=True):
        assert error is None
        if message is victim:
            assert job.died is not None and job.died.deaths == 1 and job.prepared is None
        else:
            assert job.died is None and job.prepared.delivery is not None
    attempts, starts = _rows(engine)
    pair = (victim.kwargs["listing_id"], victim.kwargs["marketplace"])
    assert attempts[pair] == 0, "nothing of the lane's job was recorded"
    assert {count for key, count in attempts.items() if key != pair} == {1}
    assert starts.count(victim.message_id) == 1, "only the dead worker's start"
    assert len(starts) == len(messages)


def test_a_job_whose_workers_died_too_often_ends_failed_and_its_starts_go(
    engine: Engine,
) -> None:
    """Its start is counted with the others' (on PostgreSQL in the counting statement),
    then judged: ``failed`` with the death report, every start of its message removed,
    its own included; the group's other jobs run."""
    queue = _queue(engine)
    messages = _messages(queue)
    steps, _ = _steps()
    victim = messages[1]
    deaths = queue.runtime.settings.max_worker_deaths
    with session_scope(engine) as session:
        for _ in range(deaths):
            process = subprocess.Popen(["true"])
            process.wait()
            session.add(JobStartRow(
                message_id=victim.message_id, listing_id=victim.kwargs["listing_id"],
                marketplace=victim.kwargs["marketplace"], request_id=REQUEST,
                worker=WorkerIdentity(this_worker().host, process.pid, "1").key))
    ran = steps.first_together(queue.broker, _starts(messages))
    for message, (job, error) in zip(messages, ran, strict=True):
        assert error is None
        if message is victim:
            outcome = job.prepared.outcome
            assert outcome is not None and outcome.state == "failed", job.prepared
            assert f"the worker died {deaths} times" in outcome.note
        else:
            assert job.prepared.delivery is not None
    _, starts = _rows(engine)
    assert victim.message_id not in starts, "every start of the message removed"
    assert len(starts) == len(messages) - 1
    assert queue.status(victim.kwargs["listing_id"], victim.kwargs["marketplace"]).state \
        == "failed"


def test_a_fan_out_takes_the_writer_lock_in_turn_with_the_worker(
    tmp_path: Path, sqlite_engine: Engine,
) -> None:
    """The fan-out's batches wait for a worker process that holds the writer lock rather
    than for SQLite's busy handler: here its request is stored, and its pairs queued only
    once the other process let go."""
    from syndication.transfer import Scope, request_transfer

    queue = _queue(sqlite_engine)
    from syndication.jobs.transfer import SCHEDULER

    marker = tmp_path / "released"
    holder = held_elsewhere(str(sqlite_engine.url), marker)
    try:
        summary = request_transfer(queue.runtime, Scope("all"), SCHEDULER)
        assert marker.exists(), "the batch waited for the other process"
    finally:
        assert holder.wait(timeout=30) == 0
    assert summary.jobs == 2 * len(LISTINGS), summary
    with session_scope(sqlite_engine) as session:
        states = session.exec(select(TransferStatusRow.state)).all()
    assert states.count("queued") == summary.jobs
