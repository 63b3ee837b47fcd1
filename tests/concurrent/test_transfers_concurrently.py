"""The transfer actor on the concurrent worker, through a real Redis broker, a real
SQLite store and the sandbox over HTTP at 200 ms of latency: more transfers in flight
than threads, each marketplace's bound held, every pair created once and recorded."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from factories import listing, office, user

from adapters.sandbox import Sandbox
from syndication.cli.transfer import queue_request, start_queue
from syndication.concurrent import ConcurrentWorker
from syndication.ingest import ingest_document
from syndication.runtime import Runtime
from syndication.settings import Settings
from syndication.transfer import Scope, wait_for_request

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
    finally:
        worker.stop()
        runtime.close()
    assert outcome.finished and not outcome.failed, outcome.counts_text()
    sent = {mp: sandbox[mp] for mp in ("hemnet", "blocket")}
    for market in sent.values():
        assert dict(market.creations) == dict.fromkeys(LISTINGS, 1)
        assert 2 < market.max_in_flight <= 8
    assert worker.concurrency == 64
    assert worker.max_in_flight > 2, "more transfers in flight than the worker's threads"
