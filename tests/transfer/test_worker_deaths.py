"""Only real worker deaths count against ``SYNDICATION_MAX_WORKER_DEATHS``.

Each start records its worker process; an earlier start of the same message that never
ended counts only when its process is gone: exited (a real process of this host that
exited), not paused (a real process stopped with SIGSTOP), not this live worker running
the message again; on another host, by its broker's Redis heartbeat. A start that cannot
reach the store does not run and is counted once the store answers.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from types import SimpleNamespace

import pytest
import redis
from factories import listing, office, user
from sqlalchemy.exc import OperationalError
from sqlmodel import select
from transfer_helpers import QUEUE_SETTINGS, Queue, assert_not_run, ingest, start_of_job

import syndication.transfer.job as job_steps
from syndication.broker import in_process_worker
from syndication.store.db import session_scope
from syndication.store.models import JobStartRow
from syndication.store.repository import record_status
from syndication.transfer import TRANSFER_LIFECYCLE, Scope, request_outcome, request_transfer
from syndication.workers import Liveness, WorkerIdentity, process_start, this_worker

REQUEST = "r-deaths"


@contextmanager
def pretending_to_be(worker: WorkerIdentity) -> Iterator[None]:
    TRANSFER_LIFECYCLE.identity = lambda: worker
    try:
        yield
    finally:
        TRANSFER_LIFECYCLE.identity = this_worker


def exited() -> WorkerIdentity:
    process = subprocess.Popen(["true"])
    process.wait()
    return WorkerIdentity(this_worker().host, process.pid, "1")


@pytest.fixture
def stopped() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Processes of this host, paused with SIGSTOP (killed at the end)."""
    made: list[subprocess.Popen[bytes]] = []
    yield made
    for process in made:
        process.kill()
        process.wait()


def paused(made: list[subprocess.Popen[bytes]]) -> WorkerIdentity:
    process = subprocess.Popen(["sleep", "60"])
    os.kill(process.pid, signal.SIGSTOP)
    made.append(process)
    started = process_start(process.pid)
    assert started is not None
    return WorkerIdentity(this_worker().host, process.pid, started)


def one_message(queue: Queue, listing_id: str = "O1"):
    from syndication.jobs.transfer import transfer_listing

    with session_scope(queue.engine) as session:
        record_status(session, listing_id, "hemnet", "queued", request_id=REQUEST)
    return transfer_listing.message(listing_id=listing_id, marketplace="hemnet",
                                    request_id=REQUEST)


@pytest.fixture
def one_listing(queue: Queue) -> Queue:
    ingest(queue.engine, offices=[office()], users=[user()],
           listings=[listing("O1"), listing("O2")])
    return queue


def test_starts_of_this_live_worker_are_no_deaths(one_listing: Queue) -> None:
    message = one_message(one_listing)
    for _ in range(5):  # e.g. re-runs after Redis reconnects, the earlier runs not ended
        start_of_job(one_listing.broker, message)
    assert one_listing.status("O1", "hemnet").state == "queued"
    assert one_listing.status("O1", "hemnet").attempts == 5


def test_a_paused_worker_is_no_death_until_it_is_gone(one_listing: Queue, stopped) -> None:
    message = one_message(one_listing)
    workers = [paused(stopped) for _ in range(3)]
    for worker in workers:
        with pretending_to_be(worker):
            start_of_job(one_listing.broker, message)
    start_of_job(one_listing.broker, message)  # redelivered while they sleep
    assert one_listing.status("O1", "hemnet").state == "queued"
    for process in stopped:
        process.kill()
        process.wait()
    assert_not_run(start_of_job(one_listing.broker, message))
    failed = one_listing.status("O1", "hemnet")
    assert failed.state == "failed" and "the worker died 3 times" in failed.error
    for worker in workers:
        assert f"pid {worker.pid}" in failed.error
    assert "none of these processes is running" in failed.error


def test_the_listing_is_blamed_only_when_it_was_alone_in_flight(one_listing: Queue) -> None:
    message = one_message(one_listing)
    for _ in range(3):
        with pretending_to_be(exited()):
            start_of_job(one_listing.broker, message)
    assert_not_run(start_of_job(one_listing.broker, message))
    alone = one_listing.status("O1", "hemnet").error
    assert "the only job in flight" in alone and "the listing itself may be" in alone

    other = one_message(one_listing, "O2")
    crowded = one_message(one_listing, "O1")
    for _ in range(3):
        with pretending_to_be(exited()):
            start_of_job(one_listing.broker, crowded)
            start_of_job(one_listing.broker, other)
    assert_not_run(start_of_job(one_listing.broker, crowded))
    blamed = one_listing.status("O1", "hemnet").error
    assert "other jobs died with them" in blamed and "O2 on Hemnet" in blamed
    assert "the listing itself" not in blamed


def test_a_start_that_ends_leaves_no_row(one_listing: Queue) -> None:
    one_listing.transfer()
    with session_scope(one_listing.engine) as session:
        assert session.exec(select(JobStartRow)).all() == []


def test_on_another_host_the_heartbeat_decides(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    broker = SimpleNamespace(client=client, namespace="deaths-test", heartbeat_timeout=5_000,
                             broker_id="mine")
    liveness = Liveness(broker)
    beats = "deaths-test:__heartbeats__"
    now_ms = time.time() * 1000
    client.zadd(beats, {"fresh": now_ms - 1_000, "stale": now_ms - 60_000})
    elsewhere = "other-host:4242:777"
    assert liveness.alive(elsewhere, "fresh")
    assert not liveness.alive(elsewhere, "stale")
    assert not liveness.alive(elsewhere, "never-seen")
    assert liveness.alive(elsewhere, "mine")


def test_a_start_that_cannot_reach_the_store_does_not_run_and_is_counted_later(
    sqlite_engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    queue = Queue(sqlite_engine, replace(QUEUE_SETTINGS, max_retries=0))
    ingest(sqlite_engine, offices=[office()], users=[user()],
           listings=[listing("O1", marketplaces=["hemnet"])])
    real = job_steps.begin
    outages = {"left": 2}

    def flaky(engine):  # type: ignore[no-untyped-def]
        if outages["left"] > 0:
            outages["left"] -= 1
            raise OperationalError("SELECT 1", {}, Exception("could not connect to server"))
        return real(engine)

    monkeypatch.setattr(job_steps, "begin", flaky)
    with in_process_worker(queue.broker, threads=2):
        summary = request_transfer(queue.runtime, Scope("all"), queue.scheduler)
        queue.join()
    assert outages["left"] == 0
    outcome = request_outcome(sqlite_engine, summary.request_id)
    assert outcome.finished and outcome.failed == 0, outcome
    hemnet = queue.status("O1", "hemnet")
    assert hemnet.state in ("sent", "published") and hemnet.attempts == 1
    assert len(queue.transports["hemnet"].deliveries) == 1
