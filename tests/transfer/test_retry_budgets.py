"""Every actor is retried exactly as often as it declares, on the stub broker and on Redis.

:data:`BUDGETS` names every actor the worker declares, with its retry budget
and the arguments of one message. The tests first check that the table covers
exactly the actors registered on the broker (a new actor without a row fails),
then make each actor's job raise a transient error on every run and count the
runs: ``1 + budget``, no more, no less. The job's body is replaced by that
failing function; the actor's options, the broker's middleware and, for the
transfer actor, the lifecycle hooks and the store are the real ones.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import dramatiq
import factories
import pytest
from sqlalchemy import Engine
from transfer_helpers import QUEUE_SETTINGS, Queue, ingest

import syndication.transfer.concurrent_job as concurrent_steps
import syndication.transfer.job as job_steps
from syndication.broker import in_process_worker, metrics
from syndication.errors import PermanentError, Rejected, TransientError
from syndication.settings import Settings

REQUEST = "r-budget"
JOB = {"listing_id": "O1", "marketplace": "hemnet", "request_id": REQUEST}

BUDGETS: dict[str, tuple[Callable[[Settings], int], dict[str, Any]]] = {
    "transfer_listing": (lambda s: s.max_retries, JOB),
    "confirm_publication": (lambda s: s.max_retries, {**JOB, "document_hash": "h1", "poll": 0}),
    "send_final_prices": (lambda s: 5, {"listing_ids": ["O1"], "run_id": "run-1"}),
    "sync_final_prices": (lambda s: 0, {"run_id": "run-1"}),
    "pull_photos": (lambda s: 0, {}),
    "reconcile_offices": (lambda s: 0, {"run_id": "recon-1"}),
    "publish_feed": (
        lambda s: s.max_retries, {"office_id": "K1", "marketplace": "kyero", "request_id": REQUEST}
    ),
}
"""Actor name → (its retry budget under the given settings, the kwargs of one message)."""

def transient() -> Exception:
    return TransientError("503 Service Unavailable")


def rejected() -> Exception:
    return Rejected("422 the address is not in Sweden")


FAST_BACKOFF = {"min_backoff": 5, "max_backoff": 40}
"""Per-message backoff, so a budget of five retries runs in well under a second."""


class AlwaysFails:
    """An actor body that counts its runs and raises a new ``error()`` on each."""

    def __init__(self, error: Callable[[], Exception]) -> None:
        self.error = error
        self.runs = 0
        self._lock = threading.Lock()

    def __call__(self, *_args: Any, **_kwargs: Any) -> None:
        with self._lock:
            self.runs += 1
        raise self.error()


def eventually(check: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def failing_actors(
    broker: dramatiq.Broker, monkeypatch: pytest.MonkeyPatch, error: Callable[[], Exception],
    *, transfer_sends: bool = False,
) -> dict[str, AlwaysFails]:
    """Replace every actor's body with an :class:`AlwaysFails` raising ``error``.

    With ``transfer_sends`` the transfer actor keeps its body, which counts each
    start in its first transaction, and its send step fails instead.
    """
    bodies = {name: AlwaysFails(error) for name in broker.actors}
    for name, body in bodies.items():
        if transfer_sends and name == "transfer_listing":
            monkeypatch.setattr(job_steps, "deliver", body)
            monkeypatch.setattr(concurrent_steps, "deliver", _awaiting(body))
        else:
            monkeypatch.setattr(broker.get_actor(name), "fn", body)
    return bodies


def _awaiting(body: AlwaysFails) -> Callable[..., Any]:
    """``body`` as the async transfer job's send step."""

    async def send(*args: Any, **kwargs: Any) -> Any:
        return body(*args, **kwargs)

    return send


def send_all(broker: dramatiq.Broker) -> None:
    for name, (_, kwargs) in BUDGETS.items():
        broker.get_actor(name).send_with_options(kwargs=kwargs, **FAST_BACKOFF)


def wait_given_up(broker: dramatiq.Broker) -> None:
    """Until every actor's message has been given up (after which it never runs again)."""
    counts = metrics(broker)
    eventually(
        lambda: all(counts.total("failed", name) == 1 for name in BUDGETS),
        "every actor to give its message up",
    )


@pytest.fixture
def stub_queue(sqlite_engine: Engine) -> Iterator[Queue]:
    q = Queue(sqlite_engine, replace(QUEUE_SETTINGS))
    ingest(q.engine, offices=[factories.office()], users=[factories.user()],
           listings=[factories.listing()])
    with in_process_worker(q.broker, threads=4):
        yield q


def test_the_table_names_every_actor_of_the_broker(stub_queue: Queue) -> None:
    assert set(stub_queue.broker.actors) == set(BUDGETS)


def test_the_settings_budget_differs_from_every_declared_one() -> None:
    """Otherwise the broker-wide budget could pass for an actor's own."""
    assert QUEUE_SETTINGS.max_retries not in {0, 5}


def test_each_actor_runs_one_plus_its_budget_on_the_stub_broker(
    stub_queue: Queue, monkeypatch: pytest.MonkeyPatch
) -> None:
    broker = stub_queue.broker
    bodies = failing_actors(broker, monkeypatch, transient, transfer_sends=True)
    send_all(broker)
    wait_given_up(broker)
    runs = {name: body.runs for name, body in bodies.items()}
    assert runs == {name: 1 + budget(QUEUE_SETTINGS) for name, (budget, _) in BUDGETS.items()}
    hemnet = stub_queue.status("O1", "hemnet")
    budget = QUEUE_SETTINGS.max_retries
    assert hemnet.state == "failed" and hemnet.attempts == 1 + budget
    assert hemnet.error == f"Hemnet: 503 Service Unavailable (gave up after {1 + budget} attempts)"


def test_a_permanent_error_is_never_retried_by_any_actor(
    stub_queue: Queue, monkeypatch: pytest.MonkeyPatch
) -> None:
    broker = stub_queue.broker
    bodies = failing_actors(broker, monkeypatch, rejected)
    send_all(broker)
    wait_given_up(broker)
    assert {name: body.runs for name, body in bodies.items()} == dict.fromkeys(BUDGETS, 1)
    assert metrics(broker).total("retried") == 0
    assert stub_queue.status("O1", "hemnet").error == "Hemnet: 422 the address is not in Sweden"


@pytest.mark.parametrize("name", sorted(BUDGETS))
def test_each_retried_actor_declares_permanent_errors_final(stub_queue: Queue, name: str) -> None:
    """The option the permanent-error rule rests on, per actor that is retried at all."""
    actor = stub_queue.broker.get_actor(name)
    budget, _ = BUDGETS[name]
    if budget(QUEUE_SETTINGS) > 0:
        assert issubclass(PermanentError, actor.options["throws"])
    assert "retry_when" not in actor.options


@pytest.mark.redis
def test_each_actor_runs_one_plus_its_budget_on_redis(
    sqlite_engine: Engine, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = replace(QUEUE_SETTINGS, broker_url=redis_url)
    q = Queue(sqlite_engine, settings)
    ingest(q.engine, offices=[factories.office()], users=[factories.user()],
           listings=[factories.listing()])
    bodies = failing_actors(q.broker, monkeypatch, transient, transfer_sends=True)
    try:
        assert set(q.broker.actors) == set(BUDGETS)
        with in_process_worker(q.broker, threads=4):
            send_all(q.broker)
            wait_given_up(q.broker)
        runs = {name: body.runs for name, body in bodies.items()}
        assert runs == {name: 1 + budget(settings) for name, (budget, _) in BUDGETS.items()}
        assert q.status("O1", "hemnet").attempts == 1 + settings.max_retries
    finally:
        q.broker.close()
