"""Messages sent through one Redis pipeline are stored exactly as dramatiq's ``enqueue``
stores them: the outbox's bulk send must not change what a worker receives."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import dramatiq
import pytest
import redis
from dramatiq.brokers.redis import RedisBroker
from dramatiq.common import current_millis
from dramatiq.middleware import Middleware

from syndication.broker import RecoveringRedisBroker

pytestmark = pytest.mark.redis


class Recorder(Middleware):
    """Records the enqueue hooks the broker emits."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, int | None]] = []

    def before_enqueue(self, broker: Any, message: Any, delay: int | None) -> None:
        self.seen.append(("before", message.message_id, delay))

    def after_enqueue(self, broker: Any, message: Any, delay: int | None) -> None:
        self.seen.append(("after", message.message_id, delay))


@pytest.fixture
def broker(redis_url: str) -> Iterator[RecoveringRedisBroker]:
    made = RecoveringRedisBroker(url=redis_url)
    made.declare_queue("bulk")
    yield made
    made.close()


def stored(client: redis.Redis, queue: str) -> list[dict[str, Any]]:
    """The messages of ``queue`` in Redis, in queue order."""
    ids = client.lrange(f"dramatiq:{queue}", 0, -1)
    return [json.loads(client.hget(f"dramatiq:{queue}.msgs", i)) for i in ids]  # type: ignore[arg-type]


def message(n: int) -> dramatiq.Message[Any]:
    return dramatiq.Message(queue_name="bulk", actor_name="job", args=(), kwargs={"n": n},
                            options={})


def test_a_pipelined_batch_is_stored_as_enqueue_stores_it(
    broker: RecoveringRedisBroker, redis_url: str,
) -> None:
    recorder = Recorder()
    broker.add_middleware(recorder)
    client = redis.Redis.from_url(redis_url)
    RedisBroker.enqueue(broker, message(0))
    one_by_one = stored(client, "bulk")
    client.delete("dramatiq:bulk", "dramatiq:bulk.msgs")
    recorder.seen.clear()

    batch = [message(1), message(2), message(3)]
    before = current_millis()
    broker.enqueue_many([(batch[0], None), (batch[1], 60_000), (batch[2], None)])

    now = stored(client, "bulk")
    later = stored(client, "bulk.DQ")
    assert [m["kwargs"]["n"] for m in now] == [1, 3], "immediate messages in order"
    assert [m["kwargs"]["n"] for m in later] == [2], "a delayed one in the delay queue"
    assert set(now[0]) == set(one_by_one[0]) and set(now[0]["options"]) == set(
        one_by_one[0]["options"]), "the same fields as enqueue writes"
    assert len({m["options"]["redis_message_id"] for m in now + later}) == 3
    assert later[0]["queue_name"] == "bulk.DQ"
    assert before + 60_000 <= later[0]["options"]["eta"] <= current_millis() + 60_000
    assert [m["message_id"] for m in now + later] == [
        batch[0].message_id, batch[2].message_id, batch[1].message_id]
    assert recorder.seen == [
        ("before", batch[0].message_id, None), ("before", batch[1].message_id, 60_000),
        ("before", batch[2].message_id, None), ("after", batch[0].message_id, None),
        ("after", batch[1].message_id, 60_000), ("after", batch[2].message_id, None),
    ], "every message passes the enqueue hooks, as with enqueue"
    client.close()
