"""Concurrent test actors on a real Redis broker, and a worker process to kill.

``declare(broker)`` puts the actors on a broker: ``call`` PUTs to a URL with the
async transport's client (aiohttp), ``hold`` notes its start and end in Redis and waits while
the ``hold`` key is set. Run as a script (``python sleepy_app.py REDIS_URL``) it is a
worker process of the concurrent worker with two threads, for the test that kills it.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import dramatiq
import redis.asyncio
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import Middleware

ROOT = Path(__file__).resolve().parents[2]


class Acks(Middleware):
    """Counts the acks and nacks of every message id, and the settlements (ack or nack)
    of every delivery (a message put back is delivered again under a new Redis id)."""

    def __init__(self) -> None:
        self.acks: Counter[str] = Counter()
        self.nacks: Counter[str] = Counter()
        self.deliveries: Counter[str] = Counter()
        self._lock = threading.Lock()

    def after_ack(self, broker: dramatiq.Broker, message: Any) -> None:
        with self._lock:
            self.acks[message.message_id] += 1
            self.deliveries[message.options.get("redis_message_id")] += 1

    def after_nack(self, broker: dramatiq.Broker, message: Any) -> None:
        with self._lock:
            self.nacks[message.message_id] += 1
            self.deliveries[message.options.get("redis_message_id")] += 1


def declare(broker: dramatiq.Broker, redis_url: str) -> dict[str, Any]:
    """The test actors, declared on ``broker``."""
    clients: dict[str, aiohttp.ClientSession] = {}
    store: dict[str, Any] = {}

    def client() -> aiohttp.ClientSession:
        if "http" not in clients:
            clients["http"] = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=500))
        return clients["http"]

    def marks() -> Any:
        if "redis" not in store:
            store["redis"] = redis.asyncio.Redis.from_url(redis_url)
        return store["redis"]

    from syndication.bulkheads import Bulkhead

    bounded = {"bulkhead": True} if any(isinstance(m, Bulkhead) for m in broker.middleware) else {}

    @dramatiq.actor(broker=broker, actor_name="call", max_retries=0, **bounded)
    async def call(url: str, key: str, marketplace: str = "hemnet") -> None:
        async with client().put(f"{url}/{key}", data=b"<x/>") as answer:
            await answer.read()
        await marks().sadd("called", key)
        assert answer.status < 600

    @dramatiq.actor(broker=broker, actor_name="hold", max_retries=0)
    async def hold(key: str) -> None:
        await marks().sadd("started", key)
        while await marks().exists("hold"):
            await asyncio.sleep(0.05)
        await marks().sadd("done", key)

    @dramatiq.actor(broker=broker, actor_name="fails", max_retries=2, min_backoff=10,
                    max_backoff=20)
    async def fails(key: str) -> None:
        await marks().incr(f"tries:{key}")
        raise RuntimeError(f"{key} fails")

    @dramatiq.actor(broker=broker, actor_name="context", max_retries=0)
    async def context(key: str) -> None:
        import structlog

        before = structlog.contextvars.get_contextvars().get("message_id")
        await asyncio.sleep(0.1)
        after = structlog.contextvars.get_contextvars().get("message_id")
        await marks().hset("contexts", key, f"{before}|{after}")

    return {"call": call, "hold": hold, "fails": fails, "context": context}


def main(redis_url: str) -> int:
    from syndication.concurrent import ConcurrentWorker

    broker = RedisBroker(url=redis_url, heartbeat_timeout=1000)
    declare(broker, redis_url)
    worker = ConcurrentWorker(broker, worker_threads=2, concurrency=64)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    worker.start()
    print("ready", flush=True)
    stop.wait()
    worker.stop()
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main(sys.argv[1]))
