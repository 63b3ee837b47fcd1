"""A batch's final prices go to Hemnet several at once, within the process's bound.

Hemnet here is a real HTTP server on loopback that answers as the sandbox Hemnet does
(:class:`SandboxMarketplace`), each answer held back a little, and counts the
requests it has in flight: more than one at a time shows the sends overlap, never
more than ``final_price_concurrency`` shows the bound holds, also for two batches at
once. A delivery that fails among concurrent ones fails alone, with the same
idempotency keys a sequential run would send.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import factories
import pytest
from fp_support import CONTRACT, RecordingHemnet, seed
from sqlalchemy import Engine, select
from tenacity import stop_after_attempt, wait_fixed

from adapters.base import Delivery, Receipt
from adapters.http import HttpTransport
from adapters.retry import RetryPolicy
from adapters.sandbox.marketplace import SandboxMarketplace
from feeds.common import document_hash
from feeds.hemnet_final_price import build_final_price
from syndication.final_prices import process_batch
from syndication.runtime import Runtime
from syndication.store import session_scope
from syndication.store.models import FinalPriceRow, TransferEventRow
from syndication.transfer.keys import idempotency_key

DELAY = 0.05
"""Seconds each answer is held back, so that sends which overlap are seen to."""


class SlowHemnet(ThreadingHTTPServer):
    """The sandbox Hemnet behind a threaded HTTP server that answers after :data:`DELAY`
    and records the most requests it ever had in flight at once."""

    daemon_threads = True

    def __init__(self) -> None:
        self.marketplace = SandboxMarketplace("hemnet")
        self.in_flight = 0
        self.most_in_flight = 0
        self.keys: dict[str, str] = {}
        self._lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: SlowHemnet

    def _serve(self) -> None:
        server = self.server
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {k.lower(): v for k, v in self.headers.items()}
        with server._lock:
            server.in_flight += 1
            server.most_in_flight = max(server.most_in_flight, server.in_flight)
            server.keys[self.path.split("/")[2]] = headers.get("idempotency-key", "")
        try:
            time.sleep(DELAY)
            answer = server.marketplace.handle(self.command, self.path, headers, body)
        finally:
            with server._lock:
                server.in_flight -= 1
        self.send_response(answer.status)
        self.send_header("Content-Type", "application/xml; charset=utf-8")
        self.send_header("Content-Length", str(len(answer.body)))
        self.end_headers()
        self.wfile.write(answer.body)

    do_PUT = do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        """Silent."""


@pytest.fixture
def slow_hemnet() -> Iterator[SlowHemnet]:
    server = SlowHemnet()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def runtime_for(make_runtime: Any, engine: Engine, transport: Any, bound: int) -> Runtime:
    runtime: Runtime = make_runtime(engine, transport)
    runtime.settings = replace(runtime.settings, final_price_concurrency=bound)
    return runtime


def http(server: SlowHemnet) -> HttpTransport:
    policy = RetryPolicy(stop=stop_after_attempt(1), wait=wait_fixed(0))
    return HttpTransport("hemnet", server.url, policy=policy, read_timeout=5, pool_size=16)


def states(engine: Engine) -> dict[str, str]:
    with session_scope(engine) as session:
        return {r.listing_id: r.state for r in session.scalars(select(FinalPriceRow))}


def test_the_sends_of_a_batch_overlap_within_the_bound(
    sqlite_engine: Engine, slow_hemnet: SlowHemnet, make_runtime: Any
) -> None:
    names = [f"C{i:02}" for i in range(16)]
    seed(sqlite_engine, [{"id": name} for name in names])
    runtime = runtime_for(make_runtime, sqlite_engine, http(slow_hemnet), bound=4)
    try:
        outcome = process_batch(runtime, names, "run-overlap")
    finally:
        runtime.close()
    assert outcome.states == {name: "sent" for name in names}
    assert 1 < slow_hemnet.most_in_flight <= 4, slow_hemnet.most_in_flight
    assert len(slow_hemnet.marketplace.documents("final_price")) == 16
    assert set(states(sqlite_engine).values()) == {"sent"}


def test_two_batches_at_once_share_the_bound_of_the_process(
    sqlite_engine: Engine, slow_hemnet: SlowHemnet, make_runtime: Any
) -> None:
    names = [f"D{i:02}" for i in range(24)]
    seed(sqlite_engine, [{"id": name} for name in names])
    runtime = runtime_for(make_runtime, sqlite_engine, http(slow_hemnet), bound=3)
    batches = [names[:12], names[12:]]
    try:
        threads = [threading.Thread(target=process_batch, args=(runtime, batch, "run-two"))
                   for batch in batches]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
    finally:
        runtime.close()
    assert 1 < slow_hemnet.most_in_flight <= 3, slow_hemnet.most_in_flight
    assert states(sqlite_engine) == {name: "sent" for name in names}


def test_a_failure_among_concurrent_sends_fails_that_listing_alone(
    engine: Engine, slow_hemnet: SlowHemnet, make_runtime: Any
) -> None:
    names = [f"E{i:02}" for i in range(10)]
    seed(engine, [{"id": name} for name in names])
    slow_hemnet.marketplace.reject("E04", "price out of range")
    runtime = runtime_for(make_runtime, engine, http(slow_hemnet), bound=4)
    try:
        outcome = process_batch(runtime, names, "run-fail")
    finally:
        runtime.close()
    assert outcome.states == {name: "failed" if name == "E04" else "sent" for name in names}
    assert "price out of range" in outcome.errors["E04"]
    assert slow_hemnet.most_in_flight > 1
    assert states(engine) == outcome.states
    for name in names:
        document = build_final_price(factories.listing_record(
            name, state="sold", final_price=4_250_000, contract_date=CONTRACT))
        assert slow_hemnet.keys[name] == idempotency_key(
            name, "hemnet", "final_price", document_hash(document), 0), name
    with session_scope(engine) as session:
        events = {(e.listing_id, e.state, e.attempts) for e in session.scalars(
            select(TransferEventRow).where(TransferEventRow.action == "final_price"))}
    assert events == {(name, "failed" if name == "E04" else "sent", 1) for name in names}


class Crashing(RecordingHemnet):
    """Accepts every listing but one, for which the transport itself breaks."""

    def send(self, delivery: Delivery) -> Receipt:
        if delivery.listing_id == "B3":
            raise RuntimeError("transport bug")
        return super().send(delivery)


def test_a_delivery_that_raises_among_concurrent_ones_loses_no_other_record(
    sqlite_engine: Engine, make_runtime: Any
) -> None:
    names = [f"B{i}" for i in range(8)]
    seed(sqlite_engine, [{"id": name} for name in names])
    hemnet = Crashing()
    runtime = runtime_for(make_runtime, sqlite_engine, hemnet, bound=4)
    try:
        outcome = process_batch(runtime, names, "run-crash")
    finally:
        runtime.close()
    assert outcome.errors["B3"] == "unexpected error: RuntimeError: transport bug"
    assert states(sqlite_engine) == {name: "failed" if name == "B3" else "sent"
                                     for name in names}
    assert sorted(hemnet.sent()) == [name for name in names if name != "B3"]
