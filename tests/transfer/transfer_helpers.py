"""Helpers of the transfer tests: ingest, a fake transport, an in-process queue.

The input records come from the shared factory (``factories``).

The unit tests run the real orchestration, the real feeds and the real store
through dramatiq's ``StubBroker`` and a ``dramatiq.Worker`` with threads; only
the marketplaces are replaced by :class:`FakeTransport`. The integration tests
(``test_redis_sandbox.py``) replace nothing.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Any

import factories
from sqlalchemy import Engine

from adapters.base import Delivery, Receipt, RemoteListing, Transport
from syndication.broker import metrics, setup_broker
from syndication.errors import Rejected, TransientError
from syndication.ingest import ingest_document
from syndication.records import Contacts
from syndication.runtime import Runtime
from syndication.settings import Settings
from syndication.store.db import session_scope
from syndication.store.repository import get_statuses, history
from syndication.transfer import (
    TRANSFER_LIFECYCLE,
    Prepared,
    RequestOutcome,
    Scope,
    prepare,
    request_outcome,
    request_transfer,
)
from syndication.transfer.lifecycle import job_of

MARKETPLACES = factories.MARKETPLACES


def ingest(engine: Engine, **document: Any) -> None:
    report = ingest_document(engine, json.dumps(document).encode())
    assert report.ok, report.errors


@dataclass
class FakeTransport(Transport):
    """A marketplace in memory: replays an idempotency key, can fail on demand."""

    name: str
    publish_on_lookup: bool = True
    deliveries: list[Delivery] = field(default_factory=list)
    holds: dict[str, str] = field(default_factory=dict)
    replies: dict[str, Receipt] = field(default_factory=dict)
    creations: int = 0
    lookup_error: Exception | None = None
    transient_failures: int = 0
    reject: dict[str, str] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def send(self, delivery: Delivery) -> Receipt:
        with self.lock:
            self.deliveries.append(delivery)
            if self.transient_failures > 0:
                self.transient_failures -= 1
                raise TransientError("503 Service Unavailable", listing_id=delivery.listing_id,
                                     marketplace=self.name)
            if delivery.listing_id in self.reject:
                raise Rejected(self.reject[delivery.listing_id], listing_id=delivery.listing_id,
                               marketplace=self.name)
            if delivery.idempotency_key in self.replies:
                return self.replies[delivery.idempotency_key]
            if delivery.action == "delete":
                self.holds.pop(delivery.listing_id, None)
                receipt = Receipt(message="deleted")
            else:
                ident = self.holds.get(delivery.listing_id)
                if ident is None:
                    self.creations += 1
                    ident = f"{self.name.upper()}-{self.creations}"
                    self.holds[delivery.listing_id] = ident
                receipt = Receipt(marketplace_id=ident, public_url=f"https://{self.name}.test/{ident}")
            self.replies[delivery.idempotency_key] = receipt
            return receipt

    def lookup(self, marketplace: str, listing_id: str) -> RemoteListing | None:
        if self.lookup_error is not None:
            raise self.lookup_error
        ident = self.holds.get(listing_id)
        if ident is None:
            return None
        return RemoteListing(listing_id, ident, published=self.publish_on_lookup,
                             public_url=f"https://{self.name}.test/{ident}")

    def created(self, listing_id: str | None = None) -> list[Delivery]:
        return [d for d in self.deliveries if d.action == "create"
                and listing_id in (None, d.listing_id)]

    def sent(self, listing_id: str | None = None) -> list[Delivery]:
        return [d for d in self.deliveries if listing_id in (None, d.listing_id)]


class Queue:
    """The in-process queue of one test: run transfers and read what they did."""

    def __init__(self, engine: Engine, settings: Settings) -> None:
        self.engine = engine
        self.transports = {name: FakeTransport(name) for name in MARKETPLACES}
        self.runtime = Runtime(
            settings=settings,
            engine=engine,
            transports=self.transports,
            contacts={name: Contacts(name=f"{name} support") for name in MARKETPLACES},
        )
        self.broker = setup_broker(settings, self.runtime)
        import syndication.jobs  # noqa: F401
        from syndication.jobs.transfer import SCHEDULER

        self.scheduler = SCHEDULER

    def join(self) -> None:
        for queue in ("transfers", "feeds", "confirmations"):
            self.broker.join(queue, fail_fast=False, timeout=60_000)  # type: ignore[attr-defined]
        self.broker.join("transfers", fail_fast=False, timeout=60_000)  # type: ignore[attr-defined]

    def transfer(self, kind: str = "all", value: str | None = None) -> RequestOutcome:
        summary = request_transfer(self.runtime, Scope(kind, value), self.scheduler)
        self.join()
        return request_outcome(self.engine, summary.request_id)

    def status(self, listing_id: str, marketplace: str) -> Any:
        with session_scope(self.engine) as session:
            return get_statuses(session, listing_id).get(marketplace)

    def states(self, listing_id: str) -> dict[str, str]:
        with session_scope(self.engine) as session:
            return {m: s.state for m, s in get_statuses(session, listing_id).items()}

    def history(self, listing_id: str, marketplace: str) -> list[str]:
        with session_scope(self.engine) as session:
            return [e.state for e in history(session, listing_id, marketplace)]

    def metric(self, outcome: str, actor: str = "transfer_listing") -> int:
        return metrics(self.broker).total(outcome, actor)


QUEUE_SETTINGS = Settings(
    max_retries=2, min_backoff_ms=10, confirm_delay_ms=10, worker_threads=4, max_worker_deaths=3
)


def start_of_job(broker: Any, message: Any) -> Prepared:
    """One start of ``message``'s job as its worker's first transaction records it (the
    attempt counted, the start recorded), left there as by a worker that died next."""
    from syndication.jobs.transfer import SCHEDULER
    from syndication.runtime import current_runtime

    return prepare(current_runtime(broker), job_of(message), SCHEDULER,
                   start=TRANSFER_LIFECYCLE.start_of(broker, message))


def assert_not_run(prepared: Prepared) -> None:
    """The start ended the job ``failed`` before anything was built or sent."""
    assert prepared.outcome is not None and prepared.outcome.state == "failed"
    assert prepared.delivery is None and prepared.planned is None
