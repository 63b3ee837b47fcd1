"""The transfer actor on the concurrent worker, through a real Redis broker, a real
SQLite store and the sandbox over HTTP at 200 ms of latency: more transfers in flight
than threads, each marketplace's bound held, every pair created once and recorded; the
jobs a dead worker took down with it run again a few at a time."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from factories import listing, office, user
from sqlmodel import select

from adapters.sandbox import Sandbox
from syndication.cli.transfer import queue_request, start_queue
from syndication.concurrent import ConcurrentWorker
from syndication.ingest import ingest_document
from syndication.runtime import Runtime
from syndication.settings import Settings
from syndication.store.db import session_scope
from syndication.store.models import JobStartRow, TransferStatusRow
from syndication.store.repository import record_status
from syndication.transfer import Scope, wait_for_request
from syndication.transfer.concurrent_job import TRANSPORTS
from syndication.workers import WorkerIdentity, this_worker

pytestmark = pytest.mark.redis
LISTINGS = [f"O{i}" for i in range(1, 31)]


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(publish_delay=0.0, latency_ms=200) as running:
        yield running


def test_transfers_in_flight_exceed_the_threads_within_each_marketplaces_bound(
    redis_url: str, tmp_path: Path, sandbox: Sandbox
) -> None:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'store.db'}", broker_url=redis_url,
        marketplaces_file=sandbox.write_marketplaces_file(tmp_path / "marketplaces.toml",
                                                          read_timeout=10.0),
        worker_threads=2, concurrency=64, marketplace_concurrency=8,
        confirm_delay_ms=3_600_000, bulkhead_delay_ms=20,
    )
    runtime = Runtime.from_settings(settings)
    broker = start_queue(settings, runtime)
    document = {"offices": [office()], "users": [user()],
                "listings": [listing(lid) for lid in LISTINGS]}
    assert ingest_document(runtime.engine, json.dumps(document).encode()).ok
    worker = ConcurrentWorker(broker, worker_threads=2, worker_timeout=100)
    worker.start()
    try:
        summary = queue_request(runtime, Scope("all"))
        outcome = wait_for_request(runtime.engine, summary.request_id, timeout=120)
        sessions = TRANSPORTS.open_on(runtime)
    finally:
        worker.stop()
        runtime.close()
    assert outcome.finished and not outcome.failed, outcome.counts_text()
    assert sessions == 2, "Hemnet's and Blocket's async twins had a session while they worked"
    assert TRANSPORTS.open_on(runtime) == 0, "the worker's shutdown closed every session"
    sent = {mp: sandbox[mp] for mp in ("hemnet", "blocket")}
    for market in sent.values():
        assert dict(market.creations) == dict.fromkeys(LISTINGS, 1)
        assert 2 < market.max_in_flight <= 8
    assert worker.concurrency == 64
    assert worker.max_in_flight > 2, "more transfers in flight than the worker's threads"


def test_jobs_whose_worker_died_run_a_few_at_a_time_and_are_counted_once(
    redis_url: str, tmp_path: Path, sandbox: Sandbox
) -> None:
    """Messages back from a worker that died with them (each has a start whose process
    has exited) wait for the after-death lane before their start is recorded: no more
    of them at a marketplace at once than the lane holds, one attempt counted each, and
    every pair created once."""
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'store.db'}", broker_url=redis_url,
        marketplaces_file=sandbox.write_marketplaces_file(tmp_path / "marketplaces.toml",
                                                          read_timeout=10.0),
        worker_threads=2, concurrency=64, marketplace_concurrency=8, after_death_in_flight=2,
        confirm_delay_ms=3_600_000, bulkhead_delay_ms=20,
    )
    runtime = Runtime.from_settings(settings)
    broker = start_queue(settings, runtime)
    from syndication.jobs.transfer import transfer_listing

    listings = LISTINGS[:12]
    document = {"offices": [office()], "users": [user()],
                "listings": [listing(lid) for lid in listings]}
    assert ingest_document(runtime.engine, json.dumps(document).encode()).ok
    gone = subprocess.Popen(["true"])
    gone.wait()
    dead = WorkerIdentity(this_worker().host, gone.pid, "1").key
    messages = []
    with session_scope(runtime.engine) as session:
        for listing_id in listings:
            for marketplace in ("hemnet", "blocket"):
                record_status(session, listing_id, marketplace, "queued", request_id="r-died")
                message = transfer_listing.message(listing_id=listing_id,
                                                   marketplace=marketplace,
                                                   request_id="r-died")
                session.add(JobStartRow(message_id=message.message_id, listing_id=listing_id,
                                        marketplace=marketplace, request_id="r-died",
                                        worker=dead))
                messages.append(message)
    for message in messages:
        broker.enqueue(message)
    worker = ConcurrentWorker(broker, worker_threads=2, worker_timeout=100)
    worker.start()
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with session_scope(runtime.engine) as session:
                rows = session.exec(select(TransferStatusRow)).all()
            if all(row.state not in ("queued", "sending") for row in rows):
                break
            time.sleep(0.2)
        with session_scope(runtime.engine) as session:
            rows = session.exec(select(TransferStatusRow)).all()
            left = session.exec(select(JobStartRow)).all()
    finally:
        worker.stop()
        runtime.close()
    assert {(row.listing_id, row.marketplace): row.state for row in rows} == {
        (lid, mp): "published" for lid in listings for mp in ("hemnet", "blocket")}
    assert {row.attempts for row in rows} == {1}, "the lane's start alone is counted"
    assert left == [], "every start ended, the dead worker's with it"
    for mp in ("hemnet", "blocket"):
        assert dict(sandbox[mp].creations) == dict.fromkeys(listings, 1)
        assert sandbox[mp].max_in_flight <= 2, "no more at once than the after-death lane"


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
def test_outcomes_waiting_for_the_step_thread_are_stored_in_group_commits(
    redis_url: str, tmp_path: Path, store: str, request: pytest.FixtureRequest
) -> None:
    """With the one step thread busier than the marketplaces, the starts and the outcomes
    that wait for it are recorded a group to a transaction: every pair recorded once with
    its history, and far fewer commits than the two a job would take on its own (about
    one for every five jobs)."""
    from sqlalchemy import event, func
    from sqlalchemy import select as core_select

    from syndication.store.statements import EVENT

    url = (request.getfixturevalue("postgres_url") if store == "postgres"
           else f"sqlite:///{tmp_path / 'store.db'}")
    listings = [f"G{i}" for i in range(1, 61)]
    with Sandbox(publish_delay=0.0, latency_ms=20) as sandbox:
        settings = Settings(
            database_url=url, broker_url=redis_url,
            marketplaces_file=sandbox.write_marketplaces_file(tmp_path / "marketplaces.toml",
                                                              read_timeout=10.0),
            worker_threads=2, concurrency=64, step_threads=1, confirm_delay_ms=3_600_000,
        )
        runtime = Runtime.from_settings(settings)
        broker = start_queue(settings, runtime)
        document = {"offices": [office()], "users": [user()],
                    "listings": [listing(lid) for lid in listings]}
        assert ingest_document(runtime.engine, json.dumps(document).encode()).ok
        commits: list[int] = []
        event.listen(runtime.engine, "commit", lambda _conn: commits.append(1))
        worker = ConcurrentWorker(broker, worker_threads=2, worker_timeout=100)
        worker.start()
        try:
            summary = queue_request(runtime, Scope("all"))
            outcome = wait_for_request(runtime.engine, summary.request_id, timeout=120)
        finally:
            worker.stop()
        try:
            assert outcome.finished and not outcome.failed, outcome.counts_text()
            jobs = summary.jobs
            assert jobs == 2 * len(listings)
            for market in ("hemnet", "blocket"):
                assert dict(sandbox[market].creations) == dict.fromkeys(listings, 1)
            with session_scope(runtime.engine) as session:
                states = session.exec(select(TransferStatusRow.state)).all()
                published = session.exec(core_select(func.count()).select_from(EVENT)
                                         .where(EVENT.c.state == "published")).one()[0]
                starts = session.exec(select(JobStartRow)).all()
            assert states.count("published") == jobs, "each pair sent recorded as published"
            assert published == jobs, "one history event of each outcome"
            assert starts == [], "every start ended"
            assert len(commits) < 0.5 * jobs, f"{len(commits)} commits for {jobs} jobs"
        finally:
            runtime.close()
