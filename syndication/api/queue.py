"""The transfer queue of the service: the broker transfers go on, and who runs them.

The service queues through the broker it was set up with
(``ServiceContext.broker``, made by :func:`syndication.broker.setup_broker`);
without one, :meth:`TransferQueue.start` sets up the configured broker itself,
with a :class:`~syndication.runtime.Runtime` over the service's store.

With ``SYNDICATION_BROKER_URL`` set (Redis), the API only queues: the
``syndication worker`` processes do the jobs, on any machine. Without it the
broker is dramatiq's in-process one, whose messages live in this process
alone, so the service runs the jobs itself: :meth:`TransferQueue.start` starts
``SYNDICATION_WORKER_THREADS`` worker threads beside the server's, and
:meth:`TransferQueue.stop` stops them at shutdown. That is what
``syndication transfer`` does without Redis, and it keeps a single machine free
of Redis; the price is the in-process broker's: a job not yet run when the
service stops is lost with it (its listing stays ``queued``, and the next
transfer queues it again), and each server process runs only what it queued.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import dramatiq
import dramatiq.errors
import redis.exceptions
from sqlmodel import Session

from syndication.broker import in_process_worker, is_in_process, setup_broker
from syndication.errors import InputError
from syndication.logs import get_logger
from syndication.runtime import Runtime, first_checks_ms
from syndication.service import ServiceContext
from syndication.transfer import RequestSummary, Scope, request_transfer

UNAVAILABLE_MESSAGE = "the transfer queue cannot be set up; try again"
"""What the API and the view say when the broker cannot be set up."""


class QueueUnavailable(Exception):
    """The broker cannot be reached; listings already marked ``queued`` are queued again
    by the next transfer."""


class TransferQueue:
    """Queues transfer requests on the service's broker (see the module's docstring)."""

    def __init__(self, context: ServiceContext) -> None:
        self.context = context
        self.broker: dramatiq.Broker | None = context.broker
        self._worker: AbstractContextManager[Any] | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        """Set up the broker when the context has none; start in-process workers if needed."""
        with self._lock:
            if self.broker is None:
                self.broker = setup_broker(self.context.settings, self._runtime())
            if is_in_process(self.broker) and self._worker is None:
                threads = self.context.settings.worker_threads
                self._worker = in_process_worker(self.broker, threads)
                self._worker.__enter__()
                get_logger(component="api").info("in_process_worker_started", threads=threads)

    def stop(self) -> None:
        with self._lock:
            if self._worker is not None:
                self._worker.__exit__(None, None, None)
                self._worker = None

    def _runtime(self) -> Runtime:
        from adapters.config import load_marketplaces

        marketplaces = load_marketplaces(self.context.settings)
        return Runtime(
            settings=self.context.settings, engine=self.context.engine,
            transports={name: mp.transport for name, mp in marketplaces.items()},
            contacts=dict(self.context.contacts), clock=self.context.clock,
            first_checks_ms=first_checks_ms(marketplaces),
        )

    def request(
        self, scope: Scope, noted: Callable[[Session, str], None] | None = None
    ) -> RequestSummary:
        """Store a request for ``scope`` and queue its jobs; :class:`InputError` for an
        unknown listing or office, :class:`QueueUnavailable` when the broker is down.
        ``noted`` writes with the request, before its jobs are queued
        (:func:`~syndication.transfer.request.request_transfer`)."""
        from syndication.jobs.transfer import SCHEDULER

        if self.broker is None:
            self.start()
        try:
            return request_transfer(self._runtime_view(), scope, SCHEDULER, noted=noted)
        except InputError:
            raise
        except (redis.exceptions.ConnectionError, dramatiq.errors.BrokerConnectionError) as exc:
            get_logger(component="api").warning("queue_unreachable", error=type(exc).__name__)
            raise QueueUnavailable(UNAVAILABLE_MESSAGE) from None

    def _runtime_view(self) -> Runtime:
        """What :func:`request_transfer` reads: the store and the clock (no transports)."""
        return Runtime(settings=self.context.settings, engine=self.context.engine,
                       clock=self.context.clock)
