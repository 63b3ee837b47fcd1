"""Messages rendered from a template (:mod:`syndication.outbox.bulk`) are the messages
dramatiq and the outbox would have written: the same bytes in Redis, the same outbox
rows, the same relay send when Redis refused them, and the enqueue hooks kept for a
broker whose middleware has some."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import dramatiq
import pytest
import redis
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import Middleware
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, event, select, update

from syndication.broker import RecoveringRedisBroker
from syndication.outbox import claim, message_of, stage_many
from syndication.outbox.bulk import Uniform, sends_encoded, stage_uniform, uuid4_texts
from syndication.store.db import session_scope
from syndication.store.models import OutboxRow, utcnow

UNIFORM = Uniform("bulk", "job", ("listing_id", "marketplace", "request_id"))
KEYS = UNIFORM.keys
text = st.text(max_size=40)


def expected(values: tuple[str, ...], message_id: str, timestamp: int) -> dramatiq.Message[Any]:
    return dramatiq.Message(queue_name="bulk", actor_name="job", args=(),
                            kwargs=dict(zip(KEYS, values, strict=True)), options={},
                            message_id=message_id, message_timestamp=timestamp)


@settings(max_examples=200, deadline=None)
@given(values=st.tuples(text, text, text), message_id=text, redis_id=text,
       timestamp=st.integers(0, 2**45))
def test_the_body_is_dramatiqs_encoding_of_the_message(
    values: tuple[str, str, str], message_id: str, redis_id: str, timestamp: int,
) -> None:
    message = expected(values, message_id, timestamp)
    sent = message.copy(options={"redis_message_id": redis_id})
    assert UNIFORM.body(values, message_id, timestamp, redis_id) == sent.encode()
    assert UNIFORM.message(values, message_id, timestamp) == message
    assert UNIFORM.kwargs_column(values) == json.dumps(message.kwargs)


def test_ids_are_uuid4_texts() -> None:
    import uuid

    ids = uuid4_texts(2000) + uuid4_texts(1)
    parsed = [uuid.UUID(text) for text in ids]
    assert [str(u) for u in parsed] == ids, "printed as str(uuid4()) prints them"
    assert {u.version for u in parsed} == {4} and {u.variant for u in parsed} == {uuid.RFC_4122}
    assert len(set(ids)) == len(ids)
    assert uuid4_texts(0) == []


def test_an_actors_template_names_its_queue_and_actor() -> None:
    broker = StubBroker()

    @dramatiq.actor(queue_name="elsewhere", broker=broker)
    def work(listing_id: str) -> None:
        """Nothing."""

    made = Uniform.of(work, ["listing_id"])
    assert made == Uniform("elsewhere", "work", ("listing_id",))
    assert made.message(("L1",), "m", 1) == work.message_with_options(
        kwargs={"listing_id": "L1"}).copy(message_id="m", message_timestamp=1)


def stored_rows(engine: Engine) -> list[tuple[Any, ...]]:
    """The outbox's rows as the driver reads them back (the JSON as its text)."""
    cast = "::text" if engine.dialect.name == "postgresql" else ""
    with engine.connect() as conn:
        return [tuple(row) for row in conn.exec_driver_sql(
            f"SELECT queue_name, actor_name, message_id, kwargs{cast}, options{cast}, "
            "not_before = created_at, claimed_by, claimed_until, relay_attempts, last_error "
            "FROM outbox ORDER BY id")]


VALUES = [("L1", "hemnet", "r1"), ("Lå \"2\"\\", "blocket", "r1"), ("L3", "hittahem", "r1")]


def test_the_outbox_rows_are_those_stage_many_writes(engine: Engine) -> None:
    with session_scope(engine) as session:
        mark = stage_uniform(session, UNIFORM, VALUES)
    uniform_rows = stored_rows(engine)
    with session_scope(engine) as session:
        session.execute(OutboxRow.__table__.delete())  # type: ignore[attr-defined]
    messages = [expected(values, row[2], 0) for values, row in zip(VALUES, uniform_rows,
                                                                    strict=True)]
    with session_scope(engine) as session:
        other = stage_many(session, messages)
    many_rows = stored_rows(engine)
    assert mark and other
    assert [row[:6] + row[7:] for row in uniform_rows] == [
        row[:6] + row[7:] for row in many_rows], "the same rows but for the batch's mark"
    assert {row[6] for row in uniform_rows} == {mark}
    assert stage_uniform(session, UNIFORM, []) is None


class Recorder(Middleware):
    """Records the enqueue hooks the broker emits."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    def before_enqueue(self, broker: Any, message: Any, delay: int | None) -> None:
        self.seen.append(("before", message.message_id))

    def after_enqueue(self, broker: Any, message: Any, delay: int | None) -> None:
        self.seen.append(("after", message.message_id))


@pytest.fixture
def redis_broker(redis_url: str) -> Iterator[RecoveringRedisBroker]:
    made = RecoveringRedisBroker(url=redis_url)
    made.declare_queue("bulk")
    yield made
    made.close()


def in_redis(client: redis.Redis, queue: str = "bulk") -> list[bytes]:
    ids = client.lrange(f"dramatiq:{queue}", 0, -1)
    return [client.hget(f"dramatiq:{queue}.msgs", i) for i in ids]  # type: ignore[misc]


def outbox_count(engine: Engine) -> int:
    with session_scope(engine) as session:
        return len(list(session.execute(select(OutboxRow.id))))


@pytest.mark.redis
def test_redis_stores_the_bytes_enqueue_stores(
    sqlite_engine: Engine, redis_broker: RecoveringRedisBroker, redis_url: str,
) -> None:
    assert sends_encoded(redis_broker)
    client = redis.Redis.from_url(redis_url)
    with session_scope(sqlite_engine) as session:
        stage_uniform(session, UNIFORM, VALUES, broker=redis_broker)
    raw = in_redis(client)
    assert outbox_count(sqlite_engine) == 0, "sent and settled after the commit"
    decoded = [dramatiq.Message.decode(body) for body in raw]
    assert [m.kwargs for m in decoded] == [dict(zip(KEYS, v, strict=True)) for v in VALUES]
    for body, message in zip(raw, decoded, strict=True):
        assert body == message.encode(), "dramatiq's own encoding, byte for byte"
        assert set(message.options) == {"redis_message_id"}
        assert client.hget("dramatiq:bulk.msgs", message.options["redis_message_id"]) == body
    client.delete("dramatiq:bulk", "dramatiq:bulk.msgs")
    redis_broker.enqueue_many([(decoded[0].copy(options={}), None)])
    again = json.loads(in_redis(client)[0])
    assert set(again) == set(json.loads(raw[0])), "the fields enqueue_many writes"
    client.close()


@pytest.mark.redis
def test_a_redis_that_lost_its_scripts_is_given_them_again(
    redis_broker: RecoveringRedisBroker, redis_url: str,
) -> None:
    client = redis.Redis.from_url(redis_url)
    redis_broker.enqueue_encoded("bulk", [("r0", UNIFORM.body(VALUES[0], "m0", 1, "r0"))])
    client.script_flush()
    bodies = [(f"r{n}", UNIFORM.body(v, f"m{n}", 1, f"r{n}")) for n, v in enumerate(VALUES)]
    redis_broker.enqueue_encoded("bulk", bodies)
    assert in_redis(client) == [bodies[0][1]] + [body for _, body in bodies]
    assert client.hget("dramatiq:bulk.msgs", "r2") == bodies[2][1]
    client.close()


@pytest.mark.redis
def test_encoded_messages_go_in_one_call_and_dramatiqs_consumer_takes_them_in_order(
    redis_broker: RecoveringRedisBroker, redis_url: str,
) -> None:
    """A batch is one script call in Redis, and dramatiq's own fetch and ack handle its
    messages as those of ``enqueue``: in order, with their bodies, and gone once
    acknowledged."""
    import time

    client = redis.Redis.from_url(redis_url)

    def calls() -> int:
        stats: dict[str, Any] = client.info("commandstats")  # type: ignore[assignment]
        return int(stats.get("cmdstat_evalsha", {}).get("calls", 0))

    bodies = [(f"r{n}", UNIFORM.body(v, f"m{n}", 1, f"r{n}")) for n, v in enumerate(VALUES)]
    redis_broker.enqueue_encoded("bulk", bodies[:1])  # the script is loaded, if need be
    before = calls()
    redis_broker.enqueue_encoded("bulk", bodies[1:])
    assert calls() - before == 1
    consumer = redis_broker.consume("bulk", prefetch=len(bodies), timeout=200)
    taken: list[Any] = []
    deadline = time.monotonic() + 10
    while len(taken) < len(bodies) and time.monotonic() < deadline:
        proxy = next(consumer)
        if proxy is not None:
            taken.append(proxy)
    assert [proxy.message_id for proxy in taken] == [f"m{n}" for n in range(len(bodies))]
    assert [proxy.options["redis_message_id"] for proxy in taken] == [r for r, _ in bodies]
    assert [proxy.kwargs for proxy in taken] == [dict(zip(KEYS, v, strict=True))
                                                for v in VALUES]
    for proxy in taken:
        consumer.ack(proxy)
    consumer.close()
    assert client.llen("dramatiq:bulk") == 0 and client.hlen("dramatiq:bulk.msgs") == 0
    client.close()


def test_a_redis_that_is_away_is_connection_closed() -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    away = RecoveringRedisBroker(url=f"redis://127.0.0.1:{port}/0")
    try:
        with pytest.raises(dramatiq.errors.ConnectionClosed):
            away.enqueue_encoded("bulk", [("r0", UNIFORM.body(VALUES[0], "m0", 1, "r0"))])
    finally:
        away.close()


@pytest.mark.redis
def test_a_broker_with_enqueue_hooks_gets_messages_through_them(
    sqlite_engine: Engine, redis_broker: RecoveringRedisBroker, redis_url: str,
) -> None:
    recorder = Recorder()
    redis_broker.add_middleware(recorder)
    assert not sends_encoded(redis_broker)
    with session_scope(sqlite_engine) as session:
        stage_uniform(session, UNIFORM, VALUES, broker=redis_broker)
    client = redis.Redis.from_url(redis_url)
    decoded = [dramatiq.Message.decode(body) for body in in_redis(client)]
    ids = [m.message_id for m in decoded]
    assert recorder.seen == [("before", i) for i in ids] + [("after", i) for i in ids]
    assert [m.kwargs["listing_id"] for m in decoded] == [v[0] for v in VALUES]
    assert outbox_count(sqlite_engine) == 0
    client.close()


class Refusing(RecoveringRedisBroker):
    """A Redis broker whose Redis refuses every message."""

    def enqueue_encoded(self, queue_name: str, messages: Any) -> None:
        raise dramatiq.errors.ConnectionClosed(OSError("redis is away"))


def test_rows_redis_refused_stay_for_the_relay(engine: Engine, redis_url: str) -> None:
    refusing = Refusing(url=redis_url)
    stub = StubBroker()
    stub.declare_queue("bulk")
    try:
        with session_scope(engine) as session:
            stage_uniform(session, UNIFORM, VALUES, broker=refusing)
        with session_scope(engine) as session:
            rows = list(session.scalars(select(OutboxRow).order_by(OutboxRow.id)))
        assert [(r.claimed_by, r.claimed_until) for r in rows] == [(None, None)] * 3
        assert all("redis is away" in (r.last_error or "") for r in rows)
        assert [r.relay_attempts for r in rows] == [1, 1, 1]
        claimed = claim(engine)
        assert [message_of(r).kwargs for r in claimed] == [
            dict(zip(KEYS, v, strict=True)) for v in VALUES], "the relay re-sends them as staged"
        assert [message_of(r).message_id for r in claimed] == [r.message_id for r in rows]
    finally:
        refusing.close()


def test_a_rolled_back_batch_sends_nothing(sqlite_engine: Engine) -> None:
    stub = StubBroker()
    stub.declare_queue("bulk")
    with pytest.raises(RuntimeError), session_scope(sqlite_engine) as session:
        stage_uniform(session, UNIFORM, VALUES, broker=stub)
        raise RuntimeError("rolled back")
    assert stub.queues["bulk"].qsize() == 0
    assert outbox_count(sqlite_engine) == 0
    with session_scope(sqlite_engine) as session:
        stage_uniform(session, UNIFORM, VALUES, broker=stub)
    sent = [dramatiq.Message.decode(stub.queues["bulk"].get()) for _ in VALUES]
    assert [m.kwargs["marketplace"] for m in sent] == [v[1] for v in VALUES]
    assert outbox_count(sqlite_engine) == 0


class RelayMeanwhile(StubBroker):
    """A stub broker that lets a relay try to claim the outbox as each message is sent."""

    def __init__(self, engine: Engine) -> None:
        super().__init__()
        self.engine = engine
        self.relay_got: list[OutboxRow] = []
        self.declare_queue("bulk")

    def enqueue(self, message: Any, *, delay: int | None = None) -> Any:
        self.relay_got += claim(self.engine)
        return super().enqueue(message, delay=delay)


def test_the_writer_holds_its_rows_from_the_insert_until_they_are_sent(engine: Engine) -> None:
    """With a broker the rows are inserted claimed by their writer (as the transfer
    job's own row is): a relay running while the writer sends finds nothing to take,
    and the writer needs no claiming statement between the commit and the send."""
    broker = RelayMeanwhile(engine)
    with session_scope(engine) as session:
        stage_uniform(session, UNIFORM, VALUES, broker=broker)
    assert broker.relay_got == []
    assert [dramatiq.Message.decode(broker.queues["bulk"].get()).kwargs["listing_id"]
            for _ in VALUES] == [v[0] for v in VALUES]
    assert outbox_count(engine) == 0

    quiet = StubBroker()
    quiet.declare_queue("bulk")
    statements: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement.lstrip().split(None, 1)[0].upper())

    with session_scope(engine) as session:
        stage_uniform(session, UNIFORM, VALUES, broker=quiet)
        event.listen(engine, "before_cursor_execute", seen)
    event.remove(engine, "before_cursor_execute", seen)
    assert statements == ["DELETE"], "after the commit: the sent rows deleted, nothing else"
    assert quiet.queues["bulk"].qsize() == len(VALUES)


def test_a_writer_that_dies_before_sending_leaves_its_rows_to_a_relay_once_its_claim_ran_out(
    engine: Engine,
) -> None:
    from syndication.outbox.bulk import _PENDING

    broker = StubBroker()
    broker.declare_queue("bulk")
    with session_scope(engine) as session:
        stage_uniform(session, UNIFORM, VALUES, broker=broker)
        session.info.pop(_PENDING)  # committed, and the writer gone before its send
    assert broker.queues["bulk"].qsize() == 0
    with session_scope(engine) as session:
        rows = list(session.scalars(select(OutboxRow).order_by(OutboxRow.id)))
    assert len(rows) == 3 and {r.claimed_by for r in rows} == {rows[0].claimed_by}
    assert (rows[0].claimed_by or "").startswith("writer:") and rows[0].claimed_until
    assert claim(engine) == [], "the writer's claim still holds"
    with session_scope(engine) as session:
        session.execute(update(OutboxRow).values(
            claimed_until=utcnow() - timedelta(seconds=1)))
    claimed = claim(engine)
    assert [message_of(r).kwargs for r in claimed] == [
        dict(zip(KEYS, v, strict=True)) for v in VALUES]
    assert [r.message_id for r in claimed] == [r.message_id for r in rows]
    assert [r.relay_attempts for r in claimed] == [2, 2, 2]
