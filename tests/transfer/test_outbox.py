"""The outbox: written in the status's transaction, relayed until the broker accepts,
claimed so that two relays never send one row, and retries placed before the ack.

Real store (SQLite and PostgreSQL); the broker is dramatiq's ``StubBroker``
with its ``enqueue`` wrapped to refuse on demand, or a real Redis server.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import dramatiq
import pytest
import redis
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker
from factories import listing, office, user
from sqlalchemy import Engine, select, update
from transfer_helpers import Queue, ingest

from syndication.outbox import DurableRetries, Relay, claim, pending, send_claimed, stage
from syndication.runtime import Runtime, attach_runtime
from syndication.settings import Settings
from syndication.store.db import session_scope
from syndication.store.models import OutboxRow, TransferStatusRow, utcnow
from syndication.store.repository import record_status


class CountingBroker(StubBroker):
    """A stub broker that counts what it accepted and refuses while ``refusing`` > 0."""

    def __init__(self) -> None:
        super().__init__()
        self.accepted: Counter[str] = Counter()
        self.delays: list[int | None] = []
        self.refusing = 0
        self.lock = threading.Lock()
        self.declare_queue("q")

    def enqueue(self, message: Any, *, delay: int | None = None) -> Any:
        with self.lock:
            if self.refusing > 0:
                self.refusing -= 1
                raise redis.ConnectionError("Connection refused (test)")
            self.accepted[message.kwargs["n"]] += 1
            self.delays.append(delay)
        return message


def message(n: str) -> dramatiq.Message[Any]:
    return dramatiq.Message(queue_name="q", actor_name="a", args=(), kwargs={"n": n}, options={})


@pytest.fixture
def broker() -> Iterator[CountingBroker]:
    yield CountingBroker()


def rows(engine: Engine) -> list[OutboxRow]:
    with session_scope(engine) as session:
        return list(session.scalars(select(OutboxRow).order_by(OutboxRow.id)))


def test_a_message_is_stored_and_sent_only_with_its_transaction(
    engine: Engine, broker: CountingBroker
) -> None:
    with pytest.raises(RuntimeError), session_scope(engine) as session:
        record_status(session, "O1", "hemnet", "sent", at=utcnow())
        stage(session, message("rolled-back"), broker=broker)
        raise RuntimeError("the status write fails")
    with session_scope(engine) as session:
        assert session.get(TransferStatusRow, ("O1", "hemnet")) is None
    assert rows(engine) == [] and broker.accepted == Counter()

    with session_scope(engine) as session:
        record_status(session, "O1", "hemnet", "sent", at=utcnow())
        stage(session, message("committed"), broker=broker)
        assert broker.accepted == Counter(), "nothing leaves before the commit"
    assert broker.accepted == Counter({"committed": 1})
    assert rows(engine) == [], "a row the broker accepted is deleted"


def test_a_refused_send_stays_in_the_outbox_until_the_relay_gets_it_through(
    engine: Engine, broker: CountingBroker
) -> None:
    broker.refusing = 1
    with session_scope(engine) as session:
        stage(session, message("m1"), delay_ms=60_000, broker=broker)
        stage(session, message("m2"), broker=broker)
    left = rows(engine)
    assert [r.kwargs["n"] for r in left] == ["m1", "m2"], "both wait after the refusal"
    assert all(r.claimed_by is None and "refused" in (r.last_error or "") for r in left)

    broker.refusing = 3
    naps: list[float] = []
    assert Relay(engine, broker).drain(30.0, sleep=naps.append) == 0
    assert broker.accepted == Counter({"m1": 1, "m2": 1})
    assert len(naps) >= 3 and naps == sorted(naps), "the relay backs off between refusals"
    assert broker.delays[0] is not None and 55_000 < broker.delays[0] <= 60_000, (
        "a delayed message keeps what is left of its delay")
    assert pending(engine) == 0


def test_two_relays_never_send_one_row(engine: Engine, broker: CountingBroker) -> None:
    with session_scope(engine) as session:
        for n in range(300):
            stage(session, message(f"m{n}"))
    relays = [Relay(engine, broker, name=f"r{i}", grace=0) for i in range(4)]
    errors: list[BaseException] = []

    def work(relay: Relay) -> None:
        try:
            while relay.flush(limit=7):
                pass
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(r,)) for r in relays]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    assert len(broker.accepted) == 300 and set(broker.accepted.values()) == {1}
    assert pending(engine) == 0


def test_a_claim_holds_until_its_time_is_up(engine: Engine, broker: CountingBroker) -> None:
    with session_scope(engine) as session:
        stage(session, message("m1"))
    first = claim(engine, owner="a")
    assert len(first) == 1
    assert claim(engine, owner="b") == [], "a claimed row is skipped"
    with session_scope(engine) as session:
        session.execute(update(OutboxRow).values(claimed_until=utcnow() - timedelta(seconds=1)))
    again = claim(engine, owner="b")
    assert [r.id for r in again] == [first[0].id], "a dead relay's claim is taken again"
    assert again[0].relay_attempts == 2
    assert send_claimed(engine, broker, again) == 1
    assert pending(engine) == 0


def test_the_relay_thread_delivers_to_redis_once_it_is_back(
    engine: Engine, own_redis: Any
) -> None:
    redis_broker = RedisBroker(url=own_redis.url)
    redis_broker.declare_queue("q")
    own_redis.stop()
    with session_scope(engine) as session:
        stage(session, message("m1"), broker=redis_broker)
    assert pending(engine) == 1, "Redis is down: the row waits"
    relay = Relay(engine, redis_broker, grace=0, idle=0.1).start()
    try:
        own_redis.start()
        client = redis.Redis.from_url(own_redis.url)
        deadline = utcnow() + timedelta(seconds=20)
        # the relay sends, then deletes the rows it sent: wait for both
        while ((client.llen("dramatiq:q") == 0 or pending(engine) != 0)
               and utcnow() < deadline):
            threading.Event().wait(0.05)
        assert client.llen("dramatiq:q") == 1
        assert pending(engine) == 0
    finally:
        relay.stop()
        redis_broker.close()


class _Proxy:
    """A message proxy as dramatiq's worker hands it to middleware."""

    def __init__(self, msg: dramatiq.Message[Any]) -> None:
        self._message = msg
        self.failed = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._message, name)

    def fail(self) -> None:
        self.failed = True


def test_a_retry_is_placed_in_the_outbox_when_redis_refuses_and_waits_while_both_do(
    engine: Engine, broker: CountingBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    attach_runtime(broker, Runtime(settings=Settings(), engine=engine))

    @dramatiq.actor(broker=broker, queue_name="q", max_retries=3)
    def a(n: str) -> None:
        """A placeholder: only the retry of its message is under test."""

    naps: list[float] = []
    retries = DurableRetries(max_retries=3, min_backoff=10, sleep=naps.append)
    proxy = _Proxy(message("again"))
    broker.refusing = 10**6
    refusals = {"left": 3}
    real_stage = stage

    def flaky_stage(*args: Any, **kwargs: Any) -> Any:
        if refusals["left"] > 0:
            refusals["left"] -= 1
            raise OSError("the store is restarting")
        return real_stage(*args, **kwargs)

    monkeypatch.setattr("syndication.outbox.middleware.stage", flaky_stage)
    retries.after_process_message(broker, proxy, exception=RuntimeError("boom"))
    assert len(naps) == 3, "it waited while both refused, then the store took the retry"
    assert not proxy.failed
    [row] = rows(engine)
    assert row.kwargs == {"n": "again"} and row.options["retries"] == 1
    assert row.not_before > row.created_at, "the retry keeps its backoff"

    broker.refusing = 0
    proxy2 = _Proxy(message("direct"))
    retries.after_process_message(broker, proxy2, exception=RuntimeError("boom"))
    assert broker.accepted == Counter({"direct": 1}), "with Redis up the retry goes straight there"


def test_a_message_relayed_twice_creates_one_listing_and_one_publication(queue: Queue) -> None:
    """The relay sends at least once; a row sent twice (its claim ran out) changes nothing."""
    ingest(queue.engine, offices=[office()], users=[user()], listings=[listing()])
    outcome = queue.transfer("object", "O1")
    assert outcome.finished and outcome.counts["published"] == 2
    from syndication.jobs.transfer import confirm_publication, transfer_listing

    hemnet = queue.status("O1", "hemnet")
    job = {"listing_id": "O1", "marketplace": "hemnet", "request_id": outcome.request_id}
    before = queue.history("O1", "hemnet")
    with session_scope(queue.engine) as session:
        for _ in range(2):
            stage(session, transfer_listing.message_with_options(kwargs=job))
            stage(session, confirm_publication.message_with_options(
                kwargs={**job, "document_hash": hemnet.document_hash, "poll": 0}))
    assert Relay(queue.engine, queue.broker).drain(10.0) == 0
    queue.join()
    assert len(queue.transports["hemnet"].created("O1")) == 1
    assert queue.transports["hemnet"].creations == 1
    after = queue.history("O1", "hemnet")
    assert after[len(before):].count("published") == 2, "the settled state is recorded again"
    assert after.count("sent") == before.count("sent"), "nothing was delivered again"
    assert queue.status("O1", "hemnet").state == "published"


def test_a_batch_staged_at_once_commits_with_its_transaction_and_waits_when_refused(
    engine: Engine, broker: CountingBroker
) -> None:
    from syndication.outbox import stage_many

    with pytest.raises(RuntimeError), session_scope(engine) as session:
        stage_many(session, [message(f"r{n}") for n in range(3)], broker=broker)
        raise RuntimeError("the batch's other writes fail")
    assert rows(engine) == [] and broker.accepted == Counter()

    with session_scope(engine) as session:
        stage_many(session, [message(f"a{n}") for n in range(250)], broker=broker)
        assert broker.accepted == Counter(), "nothing leaves before the commit"
    assert broker.accepted == Counter({f"a{n}": 1 for n in range(250)})
    assert rows(engine) == [], "the rows the broker accepted are deleted"

    broker.refusing = 1
    with session_scope(engine) as session:
        stage_many(session, [message(f"b{n}") for n in range(4)], broker=broker)
    left = rows(engine)
    assert [r.kwargs["n"] for r in left] == [f"b{n}" for n in range(4)]
    assert all(r.claimed_by is None and r.claimed_until is None
               and "refused" in (r.last_error or "") for r in left), (
        "released for the relay with the refusal")
    assert Relay(engine, broker).drain(30.0, sleep=lambda _: None) == 0
    assert all(broker.accepted[f"b{n}"] == 1 for n in range(4))

def stage_own(engine: Engine, broker: CountingBroker, n: str) -> Any:
    """A row staged as the transfer job stages its own, in a Core transaction."""
    from syndication.outbox import Staging, stage_claimed

    with engine.begin() as conn:
        return stage_claimed(conn, Staging(broker, message(n)))


def test_a_writer_sends_its_own_row_and_its_relay_deletes_it_later(
    engine: Engine, broker: CountingBroker
) -> None:
    from syndication.outbox import send_staged, settle_sent

    staged = stage_own(engine, broker, "own")
    assert claim(engine, owner="relay") == [], "no relay takes a row its writer holds"
    assert pending(engine) == 0, "a row its writer is sending is not waiting"
    send_staged(engine, [staged])
    assert broker.accepted == Counter({"own": 1})
    assert [r.id for r in rows(engine)] == [staged.row_id], "deleted later, in a batch"
    assert Relay(engine, broker, grace=0).flush() == 0
    assert rows(engine) == [] and broker.accepted == Counter({"own": 1})
    assert settle_sent(engine) == 0


def test_a_writer_that_died_before_sending_leaves_its_row_to_a_relay(
    engine: Engine, broker: CountingBroker
) -> None:
    stage_own(engine, broker, "orphan")
    assert Relay(engine, broker, grace=0).flush() == 0, "the writer's claim still holds"
    with session_scope(engine) as session:
        session.execute(update(OutboxRow).values(claimed_until=utcnow() - timedelta(seconds=1)))
    assert pending(engine) == 1
    assert Relay(engine, broker, grace=0).flush() == 1
    assert broker.accepted == Counter({"orphan": 1}) and rows(engine) == []


def test_a_row_the_broker_refused_its_writer_is_released_for_the_relays_at_once(
    engine: Engine, broker: CountingBroker
) -> None:
    from syndication.outbox import send_staged

    staged = stage_own(engine, broker, "refused")
    broker.refusing = 1
    send_staged(engine, [staged])
    [row] = rows(engine)
    assert row.claimed_by is None and "refused" in (row.last_error or "")
    assert pending(engine) == 1
    assert Relay(engine, broker).drain(10.0) == 0
    assert broker.accepted == Counter({"refused": 1}) and rows(engine) == []
