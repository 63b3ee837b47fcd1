"""The thread limit per marketplace: a marketplace that hangs holds only its share of a
worker's threads, the others keep going, and the jobs put back are not counted as tries."""

from __future__ import annotations

import threading
import time
from dataclasses import replace

from factories import listing, office, user
from transfer_helpers import QUEUE_SETTINGS, FakeTransport, Queue, ingest

from adapters.base import Delivery, Receipt
from syndication.broker import in_process_worker
from syndication.bulkheads import Bulkhead
from syndication.transfer import Scope, request_outcome, request_transfer


class Hanging(FakeTransport):
    """A marketplace whose calls hang until :attr:`gate` opens; counts calls at once."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.gate = threading.Event()
        self.inside = 0
        self.most_inside = 0
        self._count = threading.Lock()

    def send(self, delivery: Delivery) -> Receipt:
        with self._count:
            self.inside += 1
            self.most_inside = max(self.most_inside, self.inside)
        try:
            self.gate.wait(30)
            return super().send(delivery)
        finally:
            with self._count:
                self.inside -= 1


def test_a_hung_marketplace_holds_only_its_share_of_threads(sqlite_engine) -> None:
    settings = replace(QUEUE_SETTINGS, worker_threads=4, marketplace_concurrency=1,
                       bulkhead_delay_ms=20)
    queue = Queue(sqlite_engine, settings)
    hemnet = Hanging("hemnet")
    queue.transports["hemnet"] = hemnet
    ids = [f"O{i}" for i in range(6)]
    ingest(sqlite_engine, offices=[office()], users=[user()],
           listings=[listing(i, marketplaces=["hemnet", "blocket"]) for i in ids])
    bulkhead = next(m for m in queue.broker.middleware if isinstance(m, Bulkhead))
    assert bulkhead.limit == 1
    with in_process_worker(queue.broker, threads=4):
        summary = request_transfer(queue.runtime, Scope("all"), queue.scheduler)
        deadline = time.monotonic() + 20
        while any(queue.states(i)["blocket"] not in ("sent", "published") for i in ids):
            assert time.monotonic() < deadline, {i: queue.states(i) for i in ids}
            time.sleep(0.02)
        assert all(queue.states(i)["hemnet"] == "queued" for i in ids)
        assert hemnet.most_inside == 1 and bulkhead.in_use("hemnet") == 1
        hemnet.gate.set()
        queue.join()
    outcome = request_outcome(sqlite_engine, summary.request_id)
    assert outcome.finished, outcome
    assert hemnet.most_inside == 1
    assert hemnet.creations == len(ids) and len(hemnet.deliveries) == len(ids)
    assert {queue.status(i, "hemnet").attempts for i in ids} == {1}, "a put-back counted"
    assert bulkhead.in_use("hemnet") == 0


def test_the_default_share_is_half_the_threads() -> None:
    assert replace(QUEUE_SETTINGS, worker_threads=8).marketplace_threads == 4
    assert replace(QUEUE_SETTINGS, worker_threads=1).marketplace_threads == 1
    assert replace(QUEUE_SETTINGS, marketplace_concurrency=3).marketplace_threads == 3


def test_the_bulkhead_settings_are_read_from_the_environment() -> None:
    from syndication.settings import Settings

    settings = Settings.from_env({
        "SYNDICATION_MARKETPLACE_CONCURRENCY": "2", "SYNDICATION_BULKHEAD_DELAY_MS": "250",
        "SYNDICATION_CIRCUIT_THRESHOLD": "7", "SYNDICATION_CIRCUIT_COOLDOWN_MS": "9000",
    })
    assert (settings.marketplace_threads, settings.bulkhead_delay_ms) == (2, 250)
    assert (settings.circuit_threshold, settings.circuit_cooldown_ms) == (7, 9000)
    defaults = Settings.from_env({})
    assert (defaults.circuit_threshold, defaults.circuit_cooldown_ms) == (5, 30_000)
