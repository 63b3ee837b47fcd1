"""The gauges read at scrape time, on SQLite and PostgreSQL: one row of each kind in,
the exact samples out; a store that does not answer is ``syndication_store_up 0``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ops_helpers import Samples
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine

from syndication.circuit import CircuitBreaker
from syndication.metrics import StateCollector, exposition
from syndication.store.db import make_engine, session_scope
from syndication.store.models import FinalPriceRow, OutboxRow, TransferStatusRow

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def samples_of(collector: StateCollector) -> Samples:
    text = exposition(collector).decode()
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_the_store_gauges(engine: Engine) -> None:
    with session_scope(engine) as session:
        session.add_all([
            TransferStatusRow(listing_id="O1", marketplace="hemnet", state="queued",
                              updated_at=NOW - timedelta(minutes=10)),
            TransferStatusRow(listing_id="O2", marketplace="hemnet", state="queued",
                              updated_at=NOW - timedelta(minutes=3)),
            TransferStatusRow(listing_id="O3", marketplace="blocket", state="queued",
                              updated_at=NOW - timedelta(minutes=1)),
            TransferStatusRow(listing_id="O1", marketplace="blocket", state="failed"),
            TransferStatusRow(listing_id="O2", marketplace="blocket", state="published"),
            OutboxRow(queue_name="transfers", actor_name="transfer_listing", message_id="m1",
                      created_at=NOW - timedelta(seconds=90)),
            FinalPriceRow(listing_id="O1", state="sent"),
        ])
    breaker = CircuitBreaker(threshold=2, cooldown=60, clock=lambda: NOW.timestamp())
    for _ in range(2):
        breaker.after_call("blocket", transient())
    collector = StateCollector(engine, breaker=breaker, marketplaces=("hemnet", "blocket"),
                               clock=lambda: NOW)
    samples = samples_of(collector)

    def get(name: str, **labels: str) -> float:
        return samples[(name, frozenset(labels.items()))]

    assert get("syndication_store_up") == 1
    assert get("syndication_pairs", marketplace="hemnet", state="queued") == 2
    assert get("syndication_pairs", marketplace="blocket", state="failed") == 1
    assert get("syndication_failed_pairs", marketplace="blocket") == 1
    assert get("syndication_failed_pairs", marketplace="hemnet") == 0
    assert get("syndication_oldest_queued_pair_age_seconds") == 600
    assert get("syndication_outbox_backlog") == 1
    assert get("syndication_outbox_oldest_age_seconds") == 90
    assert get("syndication_final_prices", state="sent") == 1
    assert get("syndication_circuit_state", marketplace="blocket", state="open") == 1
    assert get("syndication_circuit_state", marketplace="hemnet", state="closed") == 1
    assert get("syndication_circuit_failures", marketplace="blocket") == 2
    assert not any(name == "syndication_redis_up" for name, _ in samples)


def test_a_store_that_does_not_answer_is_reported_not_raised() -> None:
    engine = make_engine("postgresql+psycopg://nobody:x@127.0.0.1:1/none",
                         connect_args={"connect_timeout": 2})
    try:
        samples = samples_of(StateCollector(engine))
    finally:
        engine.dispose()
    assert samples[("syndication_store_up", frozenset())] == 0
    assert not any(name == "syndication_pairs" for name, _ in samples)


def transient() -> Exception:
    from syndication.errors import TransientError

    return TransientError("blocket did not answer within 10 s")
