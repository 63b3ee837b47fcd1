"""Cross-cutting work of every job, as dramatiq middleware.

Actors stay thin: what every job needs around it lives here, once.

* :class:`LogContext` binds the message id, the actor and the listing,
  marketplace and request a message names into structlog's context, so every
  log line a job writes carries them.
* :class:`Metrics` counts messages per actor and outcome (started, succeeded,
  retried, failed, skipped), for logs, the benchmark and Prometheus, and times
  the jobs that name a marketplace (:mod:`syndication.metrics`).
* :class:`JobLifecycle` calls the hooks an actor declares with the
  ``lifecycle=`` option when one of its messages starts and when it is given
  up; the transfer jobs count their attempts and record ``failed``
  this way (:class:`syndication.transfer.TransferLifecycle`).

A ``before_*`` hook that must keep a message from running without losing it
raises :func:`deferred`'s error: dramatiq's ``Retries`` puts the message back
after the given delay, and the try is not counted against its budget.

dramatiq runs ``after_*`` hooks in reverse order of the middleware list, so
:func:`syndication.broker.setup_broker` puts :class:`JobLifecycle` before
``Retries``: its ``after_process_message`` then sees whether ``Retries`` gave
the message up.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any, Protocol

import dramatiq
import dramatiq.broker
import structlog
from dramatiq.errors import Retry
from dramatiq.middleware import Middleware, MiddlewareError

from syndication import metrics as prometheus
from syndication.logs import get_logger

Broker = dramatiq.Broker
Message = dramatiq.broker.MessageProxy

CONTEXT_KEYS: tuple[str, ...] = ("listing_id", "marketplace", "request_id")
"""Message arguments copied into the log context when a message names them."""


def message_context(message: Message) -> dict[str, Any]:
    """The log context of ``message``: its id, actor, retries and the keys it names."""
    context: dict[str, Any] = {
        "message_id": message.message_id,
        "actor": message.actor_name,
        "retries": message.options.get("retries", 0),
    }
    context.update({key: message.kwargs[key] for key in CONTEXT_KEYS if key in message.kwargs})
    return context


class Deferred(MiddlewareError, Retry):
    """A message put back before it ran, not counted as a try.

    A ``MiddlewareError``, so dramatiq's ``emit_before`` lets it through (it logs
    and swallows every other error of a ``before_*`` hook, and the job would
    run regardless); a ``Retry`` with a ``delay``, so ``Retries`` puts the
    message back after that delay instead of its backoff.
    """


def deferred(message: Message | dramatiq.Message[Any], why: str, delay_ms: int) -> Deferred:
    """The error that puts ``message`` back after ``delay_ms`` without spending a try.

    ``Retries`` adds one to the message's ``retries`` for every error it sees; one
    is taken off here first, so the two cancel out and the budget is untouched.
    """
    message.options["retries"] = int(message.options.get("retries", 0)) - 1
    return Deferred(why, delay=max(1, int(delay_ms)))


class LogContext(Middleware):
    """Binds :func:`message_context` to structlog for the duration of each message."""

    def before_process_message(self, broker: Broker, message: Message) -> None:
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(**message_context(message))

    def after_process_message(
        self,
        broker: Broker,
        message: Message,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        structlog.contextvars.clear_contextvars()

    def after_skip_message(self, broker: Broker, message: Message) -> None:
        structlog.contextvars.clear_contextvars()


class Metrics(Middleware):
    """Counts messages per ``(actor, outcome)`` and logs each job's outcome and duration.

    Outcomes: ``started``, ``succeeded``, ``retried`` (failed, will run again),
    ``failed`` (given up), ``skipped``. :meth:`snapshot` returns a copy. A message
    naming a ``marketplace`` also has its duration observed per marketplace and
    action: the action its job noted (:func:`syndication.metrics.note_action`),
    else :data:`ACTIONS` of its actor, else ``none`` (nothing was sent).
    """

    ACTIONS = {"confirm_publication": "confirm", "publish_feed": "feed"}

    def __init__(self) -> None:
        self._counts: Counter[tuple[str, str]] = Counter()
        self._lock = threading.Lock()
        self._started: dict[str, float] = {}
        self.log = get_logger()

    def _count(self, actor: str, outcome: str) -> None:
        with self._lock:
            self._counts[(actor, outcome)] += 1
        prometheus.MESSAGES.labels(actor, outcome).inc()

    def snapshot(self) -> dict[tuple[str, str], int]:
        with self._lock:
            return dict(self._counts)

    def total(self, outcome: str, actor: str | None = None) -> int:
        """How many messages (of ``actor``, or of any) ended with ``outcome``."""
        counts = self.snapshot().items()
        return sum(n for (a, o), n in counts if o == outcome and actor in (None, a))

    def before_process_message(self, broker: Broker, message: Message) -> None:
        self._count(message.actor_name, "started")
        prometheus.note_action(None)
        with self._lock:
            self._started[message.message_id] = time.monotonic()

    def after_process_message(
        self,
        broker: Broker,
        message: Message,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        with self._lock:
            began = self._started.pop(message.message_id, None)
        seconds = round(time.monotonic() - began, 3) if began is not None else None
        self._observe(message, began)
        if exception is None:
            self._count(message.actor_name, "succeeded")
            self.log.debug("job.done", seconds=seconds)
        elif getattr(message, "failed", False):
            self._count(message.actor_name, "failed")
            self.log.warning("job.failed", seconds=seconds, error=str(exception))
        else:
            self._count(message.actor_name, "retried")
            self.log.info("job.retrying", seconds=seconds, error=str(exception))

    def _observe(self, message: Message, began: float | None) -> None:
        action = prometheus.take_action() or self.ACTIONS.get(message.actor_name, "none")
        marketplace = message.kwargs.get("marketplace")
        if began is not None and isinstance(marketplace, str):
            prometheus.JOB_SECONDS.labels(marketplace, action).observe(time.monotonic() - began)

    def after_skip_message(self, broker: Broker, message: Message) -> None:
        with self._lock:
            self._started.pop(message.message_id, None)
        self._count(message.actor_name, "skipped")

    def before_worker_shutdown(self, broker: Broker, worker: Any) -> None:
        snapshot = sorted(self.snapshot().items())
        counts = {f"{actor}.{outcome}": n for (actor, outcome), n in snapshot}
        self.log.info("worker.metrics", **counts)


class Lifecycle(Protocol):
    """Hooks an actor declares with ``@dramatiq.actor(lifecycle=…)``.

    A lifecycle may also define ``started(broker, message)``: a message starts
    (again); it may raise ``SkipMessage`` to not run it.
    """

    def gave_up(
        self, broker: Broker, message: Message, exception: BaseException
    ) -> None:
        """The message failed and will not be tried again.

        A lifecycle may also define ``finished(broker, message, *, done)``: called
        after every run and skip, ``done`` when nothing will run the message again.
        """


class JobLifecycle(Middleware):
    """Calls the ``lifecycle`` hooks of the actor a message is for."""

    @property
    def actor_options(self) -> set[str]:
        return {"lifecycle"}

    @staticmethod
    def _hooks(broker: Broker, message: Message) -> Lifecycle | None:
        try:
            actor = broker.get_actor(message.actor_name)
        except dramatiq.errors.ActorNotFound:
            return None
        return actor.options.get("lifecycle")  # type: ignore[no-any-return]

    def before_process_message(self, broker: Broker, message: Message) -> None:
        started = getattr(self._hooks(broker, message), "started", None)
        if started is not None:
            started(broker, message)

    def after_process_message(
        self,
        broker: Broker,
        message: Message,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        hooks = self._hooks(broker, message)
        if hooks is None:
            return
        failed = bool(getattr(message, "failed", False))
        finished = getattr(hooks, "finished", None)
        if finished is not None:
            finished(broker, message, done=exception is None or failed)
        if exception is not None and failed:
            hooks.gave_up(broker, message, exception)

    def after_skip_message(self, broker: Broker, message: Message) -> None:
        hooks = self._hooks(broker, message)
        finished = getattr(hooks, "finished", None)
        if finished is not None:
            finished(broker, message, done=True)
