"""The queue's small parts on their own: retry policy, log context, broker choice, progress."""

from __future__ import annotations

import io
from collections import Counter

import dramatiq
import dramatiq.broker
import pytest
import structlog
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import Retries
from sqlalchemy import Engine

from syndication.broker import MAINTENANCE_CHANCE, setup_broker
from syndication.cli.transfer import format_summary, progress_reporter
from syndication.errors import ConfigurationError, DocumentInvalid, Rejected, TransientError
from syndication.middleware import LogContext, message_context
from syndication.runtime import Runtime, current_runtime
from syndication.settings import Settings
from syndication.transfer import Failure, RequestOutcome


@pytest.mark.parametrize(
    ("retries", "exception", "retried"),
    [
        (0, TransientError("timeout"), True),
        (2, TransientError("503"), True),
        (3, TransientError("503"), False),
        (0, Rejected("422 bad address"), False),
        (0, DocumentInvalid("not valid"), False),
        (0, RuntimeError("database went away"), True),
    ],
)
def test_retry_policy(
    sqlite_engine: Engine, retries: int, exception: Exception, retried: bool
) -> None:
    """What the broker's ``Retries`` decides for a failed transfer message."""
    settings = Settings(max_retries=3, min_backoff_ms=10)
    broker = setup_broker(settings, Runtime(settings=settings, engine=sqlite_engine))
    import syndication.jobs  # noqa: F401  (declares the actors on the broker)

    middleware = next(m for m in broker.middleware if isinstance(m, Retries))
    message = dramatiq.broker.MessageProxy(dramatiq.Message(
        queue_name="transfers", actor_name="transfer_listing", args=(),
        kwargs={"listing_id": "O1", "marketplace": "hemnet", "request_id": "r1"},
        options={"retries": retries},
    ))
    middleware.after_process_message(broker, message, exception=exception)
    assert message.failed is not retried


def test_in_process_broker_when_no_url(sqlite_engine: Engine) -> None:
    settings = Settings(max_retries=4)
    broker = setup_broker(settings, Runtime(settings=settings, engine=sqlite_engine))
    assert isinstance(broker, StubBroker) and dramatiq.get_broker() is broker
    retries = next(m for m in broker.middleware if isinstance(m, Retries))
    assert retries.max_retries == 4 and retries.retry_when is None
    assert current_runtime(broker).engine is sqlite_engine


def test_redis_broker_redelivers_within_two_minutes(sqlite_engine: Engine, redis_url: str) -> None:
    settings = Settings(broker_url=redis_url, heartbeat_timeout_ms=60_000)
    broker = setup_broker(settings, Runtime(settings=settings, engine=sqlite_engine))
    assert isinstance(broker, RedisBroker)
    assert broker.heartbeat_timeout == 60_000 and broker.maintenance_chance == MAINTENANCE_CHANCE
    # an idle consumer polls about once a second: maintenance within ~30 polls is near certain
    assert (1 - MAINTENANCE_CHANCE / 1_000_000) ** 30 < 1e-3
    broker.close()


def test_a_broker_url_that_is_not_redis_is_a_configuration_error(sqlite_engine: Engine) -> None:
    settings = Settings(broker_url="amqp://guest@localhost/")
    with pytest.raises(ConfigurationError, match="redis://"):
        setup_broker(settings, Runtime(settings=settings, engine=sqlite_engine))


def test_log_context_carries_message_listing_and_marketplace() -> None:
    message = dramatiq.Message(
        queue_name="transfers", actor_name="transfer_listing", args=(),
        kwargs={"listing_id": "O1", "marketplace": "hemnet", "request_id": "r1"}, options={},
    )
    assert message_context(message) == {
        "message_id": message.message_id, "actor": "transfer_listing", "retries": 0,
        "listing_id": "O1", "marketplace": "hemnet", "request_id": "r1",
    }
    middleware = LogContext()
    middleware.before_process_message(None, message)  # type: ignore[arg-type]
    assert structlog.contextvars.get_contextvars()["listing_id"] == "O1"
    middleware.after_process_message(None, message)  # type: ignore[arg-type]
    assert structlog.contextvars.get_contextvars() == {}


def outcome(done: int, total: int = 4) -> RequestOutcome:
    return RequestOutcome(
        "r1", total, done, Counter({"published": done - 1, "failed": 1, "queued": total - done}),
        unchanged=1, failures=(Failure("O2", "hemnet", "Hemnet: images: at least one image"),),
    )


def test_plain_progress_lines_are_periodic_and_final() -> None:
    stream = io.StringIO()
    now = [0.0]
    report = progress_reporter(stream, clock=lambda: now[0])
    report(outcome(1))
    now[0] = 1.0
    report(outcome(2))  # within five seconds of the last line: quiet
    now[0] = 6.0
    report(outcome(3))
    report(outcome(4))  # finished: always printed
    assert stream.getvalue().splitlines() == [
        "progress: 1/4 done (failed 1, queued 3)",
        "progress: 3/4 done (failed 1, published 2, queued 1)",
        "progress: 4/4 done (failed 1, published 3)",
    ]


def test_summary_lists_counts_unchanged_and_each_failure() -> None:
    text = format_summary(outcome(4))
    assert "request r1: 4/4 done" in text and "  published     3" in text
    assert "(1 unchanged since the last transfer: nothing sent)" in text
    assert text.endswith("failures:\n  O2 on hemnet: Hemnet: images: at least one image")
