"""The outbox in dramatiq: the relay thread of each worker, and retries that are never lost.

:class:`OutboxRelay` starts a :class:`~syndication.outbox.relay.Relay` when a
dramatiq worker boots (each ``syndication worker`` process, and the
in-process worker of ``syndication transfer`` and the tests) and stops it at
shutdown.

:class:`DurableRetries` is dramatiq's ``Retries`` with one change: the retry
it schedules is acknowledged only once a store accepted it. dramatiq's own
``Retries`` calls ``broker.enqueue`` from ``after_process_message``; when
Redis is away at that moment the hook fails, dramatiq only logs
"Unexpected failure in after_process_message", and the message is
acknowledged — the retry is gone and its row stays ``queued`` for good. Here
the retry goes to Redis; if Redis refuses, into the outbox (the store), whose
relay sends it once Redis is back; if both refuse, both are tried again, with
a growing wait, for as long as the process lives. dramatiq acknowledges a
message only after this hook returned, so a worker that dies while waiting
leaves the message unacknowledged, and Redis gives it to another worker
(heartbeat maintenance). The budget, backoff and ``throws`` stay dramatiq's.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import dramatiq
from dramatiq.middleware import Middleware, Retries

from syndication.logs import get_logger
from syndication.outbox.relay import Relay
from syndication.outbox.rows import stage
from syndication.store.db import session_scope

RETRY_WAIT_CAP_SECONDS = 2.0
"""The longest wait between two tries of placing a retry while Redis and the store refuse."""


class OutboxRelay(Middleware):
    """Runs a relay thread for the runtime's store while a dramatiq worker runs.

    ``sweeps`` are factories called with the broker once the worker boots;
    each returns a sweep for the relay's rounds.
    """

    def __init__(self, sweeps: Sequence[Callable[[dramatiq.Broker], Callable[[], object]]] = ()):
        self.sweeps = list(sweeps)
        self.relay: Relay | None = None

    def after_worker_boot(self, broker: dramatiq.Broker, worker: Any) -> None:
        from syndication.runtime import current_runtime

        runtime = current_runtime(broker)
        self.relay = Relay(runtime.engine, broker, name=f"worker-{id(worker):x}",
                           sweeps=[make(broker) for make in self.sweeps]).start()

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: Any) -> None:
        if self.relay is not None:
            self.relay.stop()
            self.relay = None


class _PlacingBroker:
    """The broker as ``Retries`` sees it: every attribute the real one's, but ``enqueue``
    places the retry durably (:meth:`DurableRetries.place`)."""

    def __init__(self, broker: dramatiq.Broker, retries: DurableRetries) -> None:
        self._broker = broker
        self._retries = retries

    def __getattr__(self, name: str) -> Any:
        return getattr(self._broker, name)

    def enqueue(self, message: Any, *, delay: int | None = None) -> Any:
        self._retries.place(self._broker, message, delay)
        return message


class DurableRetries(Retries):
    """dramatiq's ``Retries`` whose retry is in Redis or in the outbox before the ack."""

    def __init__(self, *, sleep: Callable[[float], None] = time.sleep, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sleep = sleep

    def after_process_message(
        self, broker: dramatiq.Broker, message: Any, *, result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        super().after_process_message(
            _PlacingBroker(broker, self), message, result=result, exception=exception
        )

    def place(self, broker: dramatiq.Broker, message: Any, delay: int | None) -> None:
        """Put the retry in Redis, else in the outbox; keep trying both until one accepts."""
        from syndication.runtime import current_runtime

        wait = 0.1
        while True:
            try:
                broker.enqueue(message, delay=delay)
                return
            except Exception as to_broker:  # noqa: BLE001 - the store is the fallback
                try:
                    with session_scope(current_runtime(broker).engine) as session:
                        stage(session, message, delay_ms=delay or 0)
                    get_logger().info("retry.in_outbox", error=str(to_broker))
                    return
                except Exception as to_store:  # noqa: BLE001 - neither accepted: wait, again
                    get_logger().warning("retry.waiting", broker_error=str(to_broker),
                                         store_error=str(to_store))
            self.sleep(wait)
            wait = min(wait * 2, RETRY_WAIT_CAP_SECONDS)
