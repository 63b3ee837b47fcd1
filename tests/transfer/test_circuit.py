"""The circuit breaker per marketplace: its phases as a table, its states in memory and in
Redis, and a transfer that waits for an open circuit with the reason on its row and
resumes by itself once the marketplace answers again."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest
import redis
from factories import listing, office, user
from redis.backoff import NoBackoff
from redis.retry import Retry
from transfer_helpers import QUEUE_SETTINGS, Queue, ingest

from syndication.broker import in_process_worker
from syndication.circuit import (
    CircuitBreaker,
    CircuitOpen,
    CircuitState,
    FallbackCircuits,
    MemoryCircuits,
    RedisCircuits,
    phase,
)
from syndication.errors import Rejected, TransientError
from syndication.status_view import format_table, listing_status
from syndication.store.db import session_scope


@pytest.mark.parametrize(
    ("state", "now", "expected"),
    [
        (CircuitState(), 100.0, "closed"),
        (CircuitState(failures=4), 100.0, "closed"),
        (CircuitState(failures=5, opened_at=90.0), 100.0, "open"),
        (CircuitState(failures=5, opened_at=90.0), 119.9, "open"),
        (CircuitState(failures=5, opened_at=90.0), 120.0, "half_open"),
        (CircuitState(failures=9, opened_at=10.0), 100.0, "half_open"),
    ],
)
def test_the_phase_table(state: CircuitState, now: float, expected: str) -> None:
    assert phase(state, now, cooldown=30.0) == expected


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def timeout() -> TransientError:
    return TransientError("POST http://m/listings/O1 timed out (ReadTimeout)")


def fail(breaker: CircuitBreaker, n: int, error: BaseException | None = None) -> None:
    for _ in range(n):
        with pytest.raises(TransientError), breaker.guard("hittahem"):
            raise error or timeout()


@pytest.fixture(params=["memory", "redis"])
def breaker(request: pytest.FixtureRequest) -> CircuitBreaker:
    clock = Clock()
    if request.param == "memory":
        circuits = MemoryCircuits(clock)
    else:
        client = redis.Redis.from_url(request.getfixturevalue("redis_url"))
        circuits = RedisCircuits(client, namespace=f"test-{time.monotonic_ns()}")
    return CircuitBreaker(circuits, threshold=3, cooldown=30.0, probe_hold=60.0, clock=clock)


def test_consecutive_failures_open_the_circuit_and_calls_stop(breaker: CircuitBreaker) -> None:
    fail(breaker, 2)
    assert breaker.phase("hittahem") == "closed"
    fail(breaker, 1)
    assert breaker.phase("hittahem") == "open"
    with pytest.raises(CircuitOpen) as caught, breaker.guard("hittahem"):
        raise AssertionError("the marketplace must not be called")
    assert "failed 3 times in a row" in str(caught.value) and "timed out" in str(caught.value)
    assert caught.value.waiting_note.startswith("väntar på HittaHem: POST http://m/listings/O1")
    assert caught.value.retry_after == pytest.approx(30.0)
    assert breaker.phase("hemnet") == "closed"


def test_an_answer_resets_the_count_and_a_rejection_is_an_answer(breaker: CircuitBreaker) -> None:
    fail(breaker, 2)
    with breaker.guard("hittahem"):
        pass
    fail(breaker, 2)
    with pytest.raises(Rejected), breaker.guard("hittahem"):
        raise Rejected("422 the address is not in Sweden")
    fail(breaker, 2)
    assert breaker.phase("hittahem") == "closed"


class CountingCircuits(MemoryCircuits):
    """Memory circuits that count the resets a breaker writes."""

    def __init__(self) -> None:
        super().__init__()
        self.resets = 0
        self.reads = 0

    def read(self, marketplace: str) -> CircuitState:
        self.reads += 1
        return super().read(marketplace)

    def answered(self, marketplace: str) -> None:
        self.resets += 1
        super().answered(marketplace)


def test_an_answer_writes_nothing_when_there_was_nothing_to_reset() -> None:
    """The common call (a closed circuit without failures) costs no write, and a read
    only once per ``fresh_for``; a failure of its own is seen at the next call."""
    circuits = CountingCircuits()
    clock = Clock()
    breaker = CircuitBreaker(circuits, threshold=3, cooldown=30.0, fresh_for=1.0, clock=clock)
    for _ in range(5):
        with breaker.guard("hittahem"):
            pass
    assert circuits.resets == 0 and circuits.reads == 1
    clock.now += 1.5
    with breaker.guard("hittahem"):
        pass
    assert circuits.reads == 2, "asked again once the clean state is older than fresh_for"
    fail(breaker, 2)
    with breaker.guard("hittahem"):
        pass
    assert circuits.resets == 1 and circuits.read("hittahem") == CircuitState()


def test_a_circuit_another_process_opened_is_seen_within_fresh_for(redis_url: str) -> None:
    namespace = f"fresh-{time.monotonic_ns()}"
    clock = Clock()
    mine, theirs = (
        CircuitBreaker(RedisCircuits(redis.Redis.from_url(redis_url), namespace), threshold=2,
                       fresh_for=1.0, clock=clock)
        for _ in range(2)
    )
    with mine.guard("hittahem"):
        pass
    fail(theirs, 2)
    clock.now += 1.01
    with pytest.raises(CircuitOpen), mine.guard("hittahem"):
        raise AssertionError("the marketplace must not be called")


def test_half_open_lets_one_probe_through_and_a_failed_probe_opens_again(
    breaker: CircuitBreaker,
) -> None:
    fail(breaker, 3)
    clock = breaker.clock
    assert isinstance(clock, Clock)
    clock.now += 30.0
    assert breaker.phase("hittahem") == "half_open"
    breaker.before_call("hittahem")  # the probe
    with pytest.raises(CircuitOpen):
        breaker.before_call("hittahem")  # everyone else while the probe runs
    breaker.after_call("hittahem", timeout())
    assert breaker.phase("hittahem") == "open"
    clock.now += 29.0
    with pytest.raises(CircuitOpen):
        breaker.before_call("hittahem")
    clock.now += 1.0
    with breaker.guard("hittahem"):
        pass  # the next probe is answered
    assert breaker.phase("hittahem") == "closed"
    with breaker.guard("hittahem"):
        pass


def test_a_probe_whose_worker_vanished_is_given_to_another_after_its_hold() -> None:
    clock = Clock()
    breaker = CircuitBreaker(MemoryCircuits(clock), threshold=1, cooldown=10, probe_hold=5,
                             clock=clock)
    fail(breaker, 1)
    clock.now += 10
    breaker.before_call("hittahem")
    with pytest.raises(CircuitOpen):
        breaker.before_call("hittahem")
    clock.now += 5
    breaker.before_call("hittahem")


def test_the_state_is_shared_by_every_process_through_redis(redis_url: str) -> None:
    namespace = f"shared-{time.monotonic_ns()}"
    one, other = (
        CircuitBreaker(RedisCircuits(redis.Redis.from_url(redis_url), namespace), threshold=2)
        for _ in range(2)
    )
    fail(one, 1)
    fail(other, 1)
    assert one.phase("hittahem") == other.phase("hittahem") == "open"


def test_without_redis_the_breaker_decides_from_its_own_process() -> None:
    unreachable = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2,
                              retry=Retry(NoBackoff(), 0))
    breaker = CircuitBreaker(FallbackCircuits(RedisCircuits(unreachable)), threshold=2)
    began = time.monotonic()
    fail(breaker, 2)
    with pytest.raises(CircuitOpen):
        breaker.before_call("hittahem")
    assert time.monotonic() - began < 2.0, "every call waited for Redis"


def test_a_transfer_waits_for_an_open_circuit_then_resumes_by_itself(sqlite_engine) -> None:
    settings = replace(QUEUE_SETTINGS, max_retries=6, min_backoff_ms=50)
    queue = Queue(sqlite_engine, settings)
    clock = Clock()
    queue.runtime.breaker = CircuitBreaker(MemoryCircuits(clock), threshold=2, cooldown=30,
                                           clock=clock)
    hemnet = queue.transports["hemnet"]
    hemnet.transient_failures = 2
    ingest(sqlite_engine, offices=[office()], users=[user()], listings=[listing()])
    with in_process_worker(queue.broker, threads=2):
        from syndication.transfer import Scope, request_transfer

        request_transfer(queue.runtime, Scope("all"), queue.scheduler)
        deadline = time.monotonic() + 20
        while "väntar på Hemnet" not in (queue.status("O1", "hemnet").error or ""):
            assert time.monotonic() < deadline, queue.status("O1", "hemnet")
            time.sleep(0.02)
        waiting = queue.status("O1", "hemnet")
        assert waiting.state == "queued" and "503 Service Unavailable" in waiting.error
        with session_scope(sqlite_engine) as session:
            shown = listing_status(session, "O1", queue.runtime.contacts)
        entry = next(row for row in shown["marketplaces"] if row["marketplace"] == "hemnet")
        assert entry["state"] == "queued" and entry["error"].startswith("väntar på Hemnet: ")
        assert "väntar på Hemnet" in format_table(shown)
        calls = len(hemnet.deliveries)
        time.sleep(0.3)
        assert len(hemnet.deliveries) == calls == 2, "called while the circuit is open"
        clock.now += 30
        deadline = time.monotonic() + 20
        while queue.status("O1", "hemnet").state not in ("sent", "published"):
            assert time.monotonic() < deadline, queue.status("O1", "hemnet")
            time.sleep(0.02)
    assert hemnet.creations == 1 and len(hemnet.deliveries) == 3
    assert queue.runtime.breaker.phase("hemnet") == "closed"
    assert queue.states("O1")["blocket"] in ("sent", "published")
