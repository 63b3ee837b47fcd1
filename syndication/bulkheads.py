"""The concurrency limit per marketplace: a hung marketplace holds only its share of threads.

dramatiq's worker threads are shared by every queue of a process: each
queue's consumer feeds one work queue and any free thread takes the next
message, whatever its queue. A queue per marketplace therefore bounds
nothing — a hundred messages for a hung marketplace, prefetched ahead of the
others, would still take every thread in turn and hold each for its whole
deadline. So the bound is a limiter on the threads themselves:
:class:`Bulkhead` lets at most ``settings.marketplace_threads`` of a process's
threads work for one marketplace at once (default: half of them, so two
marketplaces in trouble still leave the third some). A message for a
marketplace whose share is taken does not wait on a thread either: it is put
back for about ``bulkhead_delay_ms`` (:func:`syndication.middleware.deferred`)
without counting as a try and without counting an attempt on its row, since
the hook runs before :class:`~syndication.middleware.JobLifecycle`.

Under :class:`~syndication.concurrent.ConcurrentWorker` a message's before and
after hooks run on different threads and a process keeps far more messages in
flight than it has threads, so the slot a message holds is kept by message id,
and the limit (``concurrent_limit``, from ``settings.marketplace_in_flight``)
counts a marketplace's messages in flight in the process, not its threads.

The limit is per process, which is what threads are; across processes the
circuit breaker (:mod:`syndication.circuit`) is what stops a failing
marketplace from being called at all. Actors opt in with ``bulkhead=True``
and name their marketplace in the message's ``marketplace`` argument.
"""

from __future__ import annotations

import random
import threading
from typing import Any

import dramatiq
from dramatiq.middleware import Middleware

from syndication.logs import get_logger
from syndication.middleware import Broker, Message, deferred


class Bulkhead(Middleware):
    """At most ``limit`` threads of this process per marketplace; the rest put back."""

    def __init__(
        self, limit: int, delay_ms: int = 500, concurrent_limit: int | None = None
    ) -> None:
        self.limit = max(1, limit)
        self.delay_ms = delay_ms
        self.concurrent_limit = concurrent_limit
        self._slots: dict[str, threading.BoundedSemaphore] = {}
        self._lock = threading.Lock()
        self._held: dict[str, str] = {}

    @property
    def actor_options(self) -> set[str]:
        return {"bulkhead"}

    def slots(self, marketplace: str) -> threading.BoundedSemaphore:
        with self._lock:
            if marketplace not in self._slots:
                self._slots[marketplace] = threading.BoundedSemaphore(self.limit)
            return self._slots[marketplace]

    def in_use(self, marketplace: str) -> int:
        """How many threads of this process work for ``marketplace`` now."""
        return self.limit - self.slots(marketplace)._value  # noqa: SLF001 - read-only peek

    def before_worker_boot(self, broker: Broker, worker: Any) -> None:
        """A worker with a ``concurrency`` of its own is bounded by ``concurrent_limit``."""
        if getattr(worker, "concurrency", None) and self.concurrent_limit:
            with self._lock:
                self.limit = max(1, self.concurrent_limit)
                self._slots.clear()

    def before_process_message(self, broker: Broker, message: Message) -> None:
        marketplace = self._marketplace(broker, message)
        if marketplace is None:
            return
        if not self.slots(marketplace).acquire(blocking=False):
            delay = int(self.delay_ms * random.uniform(0.5, 1.5))
            get_logger().debug("bulkhead.full", limit=self.limit, delay_ms=delay)
            raise deferred(message, f"{marketplace}: all {self.limit} threads busy", delay)
        with self._lock:
            self._held[message.message_id] = marketplace

    def after_process_message(
        self,
        broker: Broker,
        message: Message,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        self._release(message)

    def after_skip_message(self, broker: Broker, message: Message) -> None:
        self._release(message)

    def _release(self, message: Message) -> None:
        with self._lock:
            marketplace = self._held.pop(message.message_id, None)
        if marketplace is not None:
            self.slots(marketplace).release()

    @staticmethod
    def _marketplace(broker: Broker, message: Message) -> str | None:
        try:
            actor = broker.get_actor(message.actor_name)
        except dramatiq.errors.ActorNotFound:
            return None
        if not actor.options.get("bulkhead"):
            return None
        marketplace = message.kwargs.get("marketplace")
        return marketplace if isinstance(marketplace, str) else None
