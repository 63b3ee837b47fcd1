"""Prometheus metrics: what the processes count, and what the store holds at scrape time.

Two kinds, kept apart on purpose:

* **Counted** by the process that does the work, in :data:`REGISTRY`: messages per
  actor and outcome (:class:`syndication.middleware.Metrics`), job durations per
  marketplace and action, HTTP calls per marketplace and status
  (:mod:`adapters.http`), final-price runs. A worker started by ``syndication worker
  --metrics-port`` runs in prometheus-client's multiprocess mode (the variable
  ``PROMETHEUS_MULTIPROC_DIR`` is set before any process starts), so dramatiq's
  exposition server shows the sum over the worker's processes.
* **Derived** from the store and Redis when scraped, by :class:`StateCollector`:
  pairs per marketplace and state, failed pairs, the age of the oldest queued pair,
  the outbox backlog, the final-price rows per state, the queue depth in Redis and
  each marketplace's circuit. One grouped query per table, never work per request;
  a store or Redis that does not answer is reported as ``…_up 0``, never an error.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric

from syndication.logs import get_logger

if TYPE_CHECKING:
    from sqlalchemy import Engine

REGISTRY = CollectorRegistry(auto_describe=True)
"""The registry of every counted metric of this process."""

MESSAGES = Counter(
    "syndication_messages", "Messages per actor and outcome (started, succeeded, retried, "
    "failed, skipped).", ["actor", "outcome"], registry=REGISTRY,
)
JOB_SECONDS = Histogram(
    "syndication_job_duration_seconds", "Duration of the jobs that name a marketplace, per "
    "marketplace and action (create, update, delete, confirm, feed, none).",
    ["marketplace", "action"], registry=REGISTRY,
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
)
HTTP_CALLS = Counter(
    "syndication_http_calls", "HTTP exchanges with a marketplace per status code "
    "('timeout' or 'error' when no answer came).", ["marketplace", "status"], registry=REGISTRY,
)
FINAL_PRICE_RUNS = Counter(
    "syndication_final_price_runs", "Nightly final-price syncs per outcome (dispatched, "
    "failed).", ["outcome"], registry=REGISTRY,
)
FINAL_PRICE_LISTINGS = Counter(
    "syndication_final_price_listings", "Listings the final-price batches handled, per "
    "resulting state (sent, retracted, failed, …).", ["state"], registry=REGISTRY,
)

_action: contextvars.ContextVar[str | None] = contextvars.ContextVar("job_action", default=None)


def note_action(action: str | None) -> None:
    """Record the action the running job decided on, for its duration's ``action`` label."""
    _action.set(action)


def take_action() -> str | None:
    """The action noted by the running job (and forget it, for the thread's next job)."""
    action = _action.get()
    _action.set(None)
    return action


def observe_http(marketplace: str, status: int | str) -> None:
    HTTP_CALLS.labels(marketplace, str(status)).inc()


class StateCollector:
    """Gauges read from the store (and Redis) at scrape time; see the module doc."""

    def __init__(self, engine: Engine, *, redis_client: Any = None,
                 breaker: Any = None, marketplaces: Iterable[str] = (),
                 queues: Iterable[str] = (), clock: Any = None) -> None:
        self.engine = engine
        self.redis = redis_client
        self.breaker = breaker
        self.marketplaces = tuple(marketplaces)
        self.queues = tuple(queues)
        self.clock = clock or (lambda: datetime.now(UTC))

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        yield from self._store()
        yield from self._redis()

    def _store(self) -> Iterator[Metric]:
        from sqlalchemy import func, select
        from sqlmodel import col

        from syndication.store.models import FinalPriceRow, OutboxRow, TransferStatusRow

        up = GaugeMetricFamily("syndication_store_up", "1 when the store answered the scrape.")
        try:
            with self.engine.connect() as connection:
                pairs = connection.execute(
                    select(col(TransferStatusRow.marketplace), col(TransferStatusRow.state),
                           func.count(), func.min(col(TransferStatusRow.updated_at)))
                    .group_by(col(TransferStatusRow.marketplace), col(TransferStatusRow.state))
                ).all()
                backlog, oldest_outbox = connection.execute(
                    select(func.count(), func.min(col(OutboxRow.created_at)))
                ).one()
                prices = connection.execute(
                    select(col(FinalPriceRow.state), func.count())
                    .group_by(col(FinalPriceRow.state))
                ).all()
        except Exception as exc:  # noqa: BLE001 - a scrape reports, never fails
            get_logger().warning("metrics.store_unavailable", error=type(exc).__name__)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        now = self.clock()
        by_state = GaugeMetricFamily("syndication_pairs", "Listing–marketplace pairs per state.",
                                     labels=["marketplace", "state"])
        failed = GaugeMetricFamily("syndication_failed_pairs", "Pairs in state failed, "
                                   "per marketplace.", labels=["marketplace"])
        failed_by: dict[str, int] = dict.fromkeys(self.marketplaces, 0)
        oldest_queued: datetime | None = None
        for marketplace, state, count, oldest in pairs:
            by_state.add_metric([marketplace, state], count)
            if state == "failed":
                failed_by[marketplace] = count
            if state == "queued" and oldest is not None:
                oldest_queued = oldest if oldest_queued is None else min(oldest_queued, oldest)
        for marketplace, count in sorted(failed_by.items()):
            failed.add_metric([marketplace], count)
        yield by_state
        yield failed
        yield _gauge("syndication_oldest_queued_pair_age_seconds",
                     "Age of the oldest pair in state queued (0 when none).",
                     _age(now, oldest_queued))
        yield _gauge("syndication_outbox_backlog", "Outbox rows waiting for the relay.", backlog)
        yield _gauge("syndication_outbox_oldest_age_seconds",
                     "Age of the oldest outbox row (0 when none).", _age(now, oldest_outbox))
        final = GaugeMetricFamily("syndication_final_prices",
                                  "Listings per state of their last final-price sync.",
                                  labels=["state"])
        for state, count in prices:
            final.add_metric([state], count)
        yield final

    def _redis(self) -> Iterator[Metric]:
        if self.redis is not None:
            up = GaugeMetricFamily("syndication_redis_up", "1 when Redis answered the scrape.")
            depth = GaugeMetricFamily(
                "syndication_queue_depth",
                "Messages waiting in a Redis queue (delayed ones in queue '<name>.DQ').",
                labels=["queue"])
            try:
                pipe = self.redis.pipeline()
                names = [q for queue in self.queues for q in (queue, f"{queue}.DQ")]
                for name in names:
                    pipe.llen(f"dramatiq:{name}")
                lengths = pipe.execute()
            except Exception as exc:  # noqa: BLE001 - a scrape reports, never fails
                get_logger().warning("metrics.redis_unavailable", error=type(exc).__name__)
                up.add_metric([], 0)
                yield up
                return
            up.add_metric([], 1)
            yield up
            for name, length in zip(names, lengths, strict=True):
                depth.add_metric([name], length)
            yield depth
        if self.breaker is not None:
            yield from self._circuits()

    def _circuits(self) -> Iterator[Metric]:
        state = GaugeMetricFamily("syndication_circuit_state", "1 for the phase each "
                                  "marketplace's circuit is in (closed, open, half_open).",
                                  labels=["marketplace", "state"])
        failures = GaugeMetricFamily("syndication_circuit_failures",
                                     "Consecutive failed calls counted by the circuit breaker.",
                                     labels=["marketplace"])
        for marketplace in self.marketplaces:
            try:
                current = self.breaker.phase(marketplace)
                count = self.breaker.circuits.read(marketplace).failures
            except Exception:  # noqa: BLE001 - a scrape reports, never fails
                continue
            for phase in ("closed", "open", "half_open"):
                state.add_metric([marketplace, phase], 1 if phase == current else 0)
            failures.add_metric([marketplace], count)
        yield state
        yield failures


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


def _age(now: datetime, then: datetime | None) -> float:
    if then is None:
        return 0.0
    if then.tzinfo is None:
        then = then.replace(tzinfo=UTC)
    return max(0.0, (now - then).total_seconds())


def exposition(*collectors: Any) -> bytes:
    """The text exposition of :data:`REGISTRY` and ``collectors``, in that order."""
    registry = CollectorRegistry(auto_describe=False)
    for collector in (_Forward(REGISTRY), *collectors):
        registry.register(collector)
    return generate_latest(registry)


class _Forward:
    """A collector that yields another registry's metrics (so one scrape joins both)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def collect(self) -> Iterator[Metric]:
        yield from self.registry.collect()


def state_collector(settings: Any, engine: Engine) -> StateCollector:
    """The :class:`StateCollector` of a configured process: Redis and the shared circuits
    when the broker is Redis, else the store alone."""
    import redis

    from syndication import registry
    from syndication.circuit import breaker_from_settings

    client = None
    url = settings.broker_url or ""
    if url.startswith(("redis://", "rediss://", "unix://")):
        client = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
    return StateCollector(
        engine, redis_client=client, breaker=breaker_from_settings(settings) if client else None,
        marketplaces=registry.names(), queues=QUEUES,
    )


QUEUES: tuple[str, ...] = (
    "transfers", "confirmations", "feeds", "final_prices", "reconcile", "default",
)
"""The dramatiq queues of :mod:`syndication.jobs` (pinned by a test against the actors)."""

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

