"""A closing consumer gives back what it fetched ahead, through a real Redis: after a
graceful stop no message waits in the stopped worker's ack set for its heartbeat to
expire."""

from __future__ import annotations

import dramatiq
import pytest
import redis

from syndication.broker import RecoveringRedisBroker

pytestmark = pytest.mark.redis


def test_prefetched_messages_go_back_to_their_queue_when_the_consumer_closes(
    redis_url: str,
) -> None:
    broker = RecoveringRedisBroker(url=redis_url, namespace="gives-back")
    client = redis.Redis.from_url(redis_url)
    try:
        broker.declare_queue("ahead")
        sent = [broker.enqueue(dramatiq.Message(queue_name="ahead", actor_name="noop",
                                                args=(n,), kwargs={}, options={}))
                for n in range(5)]
        consumer = broker.consume("ahead", prefetch=5, timeout=100)
        handed = next(consumer)
        assert handed is not None and handed.message_id == sent[0].message_id
        acks = f"gives-back:__acks__.{broker.broker_id}.ahead"
        assert client.scard(acks) == 5, "one fetch took all five into the ack set"
        consumer.close()
        assert client.scard(acks) == 1, "only the message handed to the worker stays"
        waiting = [dramatiq.Message.decode(client.hget("gives-back:ahead.msgs", key)).args[0]
                   for key in client.lrange("gives-back:ahead", 0, -1)]
        assert sorted(waiting) == [1, 2, 3, 4]
    finally:
        for key in client.scan_iter("gives-back:*"):
            client.delete(key)
        client.close()
        broker.close()


def test_a_full_consumer_waits_for_room_and_fetches_at_once(redis_url: str) -> None:
    """A consumer holding ``prefetch`` unacknowledged messages may fetch no more; it waits
    for the ack that makes room and then hands the next message over in the same call
    (dramatiq's would count a miss and sleep ever longer, returning nothing)."""
    import threading

    broker = RecoveringRedisBroker(url=redis_url, namespace="room")
    client = redis.Redis.from_url(redis_url)
    try:
        broker.declare_queue("full")
        sent = [broker.enqueue(dramatiq.Message(queue_name="full", actor_name="noop",
                                                args=(n,), kwargs={}, options={}))
                for n in range(3)]
        consumer = broker.consume("full", prefetch=2, timeout=10_000)
        taken = [next(consumer), next(consumer)]
        assert all(message is not None for message in taken)
        handed: list[object] = []
        waiting = threading.Thread(target=lambda: handed.append(next(consumer)))
        waiting.start()
        waiting.join(0.3)
        assert waiting.is_alive() and handed == [], "full: it waits, neither fetching nor None"
        consumer.ack_many([taken[0]])
        waiting.join(5)
        assert not waiting.is_alive()
        assert [getattr(m, "message_id", None) for m in handed] == [sent[2].message_id]
        consumer.ack(taken[1])
        consumer.ack(handed[0])  # type: ignore[arg-type]
        consumer.close()
    finally:
        for key in client.scan_iter("room:*"):
            client.delete(key)
        client.close()
        broker.close()


def test_the_broker_calls_the_hooks_its_middleware_define_and_follows_changes(
    redis_url: str,
) -> None:
    from dramatiq.middleware import Middleware, MiddlewareError

    calls: list[str] = []

    class Before(Middleware):
        def before_ack(self, broker: dramatiq.Broker, message: object) -> None:
            calls.append("before")

    class After(Middleware):
        def after_ack(self, broker: dramatiq.Broker, message: object) -> None:
            calls.append("after")

    class Refuses(Middleware):
        def before_ack(self, broker: dramatiq.Broker, message: object) -> None:
            raise MiddlewareError("refused")

    broker = RecoveringRedisBroker(url=redis_url, namespace="hooks")
    try:
        message = dramatiq.Message(queue_name="q", actor_name="noop", args=(), kwargs={},
                                   options={})
        first, second = Before(), After()
        broker.add_middleware(first)
        broker.emit_before("ack", message)
        broker.emit_after("ack", message)
        assert calls == ["before"]
        broker.add_middleware(second)
        broker.emit_after("ack", message)
        assert calls == ["before", "after"], "a middleware added later is called"
        broker.middleware[:] = [m for m in broker.middleware if m is not first]
        broker.emit_before("ack", message)
        assert calls == ["before", "after"], "a middleware taken away is not"
        second.before_ack = lambda broker, message: calls.append("instance")  # type: ignore[attr-defined]
        broker.middleware[:] = list(broker.middleware)
        broker.add_middleware(Before())
        broker.emit_before("ack", message)
        assert calls[-2:] == ["instance", "before"], "a hook set on the instance counts too"
        broker.add_middleware(Refuses())
        with pytest.raises(MiddlewareError):
            broker.emit_before("ack", message)
    finally:
        broker.close()
