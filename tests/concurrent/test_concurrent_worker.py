"""The concurrent worker on a real Redis broker against the sandbox over real HTTP:
more jobs in flight than threads, the per-marketplace bound, every message acked
once, a graceful stop that drains, and a killed worker process that loses nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from dramatiq.brokers.redis import RedisBroker
from sleepy_app import Acks, declare

from adapters.sandbox import Sandbox
from syndication.broker import RecoveringRedisBroker
from syndication.bulkheads import Bulkhead
from syndication.concurrent import ConcurrentWorker
from syndication.middleware import LogContext

APP = Path(__file__).with_name("sleepy_app.py")
ROOT = Path(__file__).resolve().parents[2]


def wait_for(condition: Callable[[], bool], what: str, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.02)


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(["hemnet"], latency_ms=200) as running:
        yield running


def _broker(redis_url: str, *middleware: Any,
            kind: type[RedisBroker] = RedisBroker) -> tuple[RedisBroker, Acks]:
    broker = kind(url=redis_url, heartbeat_timeout=1000)
    acks = Acks()
    broker.add_middleware(acks)
    for each in middleware:
        broker.add_middleware(each)
    return broker, acks


def _queue_empty(redis_url: str) -> bool:
    client = redis.Redis.from_url(redis_url)
    try:
        leftovers = [key for key in client.keys("dramatiq:*") if b"heartbeats" not in key
                     and client.type(key) != b"hash" and client.exists(key)]
        sizes = {key: client.scard(key) if client.type(key) == b"set" else client.llen(key)
                 for key in leftovers if client.type(key) in (b"set", b"list", b"zset")}
        return all(size == 0 for size in sizes.values())
    finally:
        client.close()


def test_jobs_in_flight_exceed_the_threads_and_each_is_acked_once(redis_url, sandbox):
    broker, acks = _broker(redis_url)
    actors = declare(broker, redis_url)
    url = sandbox.url("hemnet") + "/listings"
    messages = [actors["call"].send(url, f"OBJ-{i}") for i in range(60)]
    worker = ConcurrentWorker(broker, worker_threads=2, concurrency=64)
    worker.start()
    try:
        broker.join(actors["call"].queue_name, timeout=60_000)
        worker.join()
    finally:
        worker.stop()
        broker.close()
    assert sandbox["hemnet"].max_in_flight >= 20
    assert worker.max_in_flight >= 20
    assert sandbox["hemnet"].call_count() == 60
    assert acks.acks == {m.message_id: 1 for m in messages}
    assert set(acks.deliveries.values()) == {1}
    assert not acks.nacks
    assert worker.in_flight == 0
    assert _queue_empty(redis_url)


def test_the_marketplace_bound_counts_messages_in_flight_not_threads(redis_url, sandbox):
    bulkhead = Bulkhead(1, delay_ms=20, concurrent_limit=6)
    broker, acks = _broker(redis_url, bulkhead)
    actors = declare(broker, redis_url)
    url = sandbox.url("hemnet") + "/listings"
    messages = [actors["call"].send(url, f"OBJ-{i}", marketplace="hemnet") for i in range(40)]
    worker = ConcurrentWorker(broker, worker_threads=2, concurrency=64)
    worker.start()
    try:
        assert bulkhead.limit == 6
        wait_for(lambda: sandbox["hemnet"].call_count() == 40, "every call", 90)
        worker.join()
    finally:
        worker.stop()
        broker.close()
    assert sandbox["hemnet"].max_in_flight == 6
    assert bulkhead.in_use("hemnet") == 0
    assert set(acks.acks) == {m.message_id for m in messages}
    assert set(acks.deliveries.values()) == {1}, "each delivery settled once"
    assert sum(acks.deliveries.values()) > 40, "some were put back by the bulkhead"
    assert _queue_empty(redis_url)


def test_a_failing_coroutine_is_retried_then_nacked_once(redis_url):
    broker, acks = _broker(redis_url)
    actors = declare(broker, redis_url)
    message = actors["fails"].send("OBJ-1")
    worker = ConcurrentWorker(broker, worker_threads=1, concurrency=4)
    worker.start()
    try:
        wait_for(lambda: acks.nacks, "the nack")
        worker.join()
    finally:
        worker.stop()
        broker.close()
    assert acks.nacks == {message.message_id: 1}
    assert set(acks.deliveries.values()) == {1}, "each delivery (and delay) settled once"
    tries = redis.Redis.from_url(redis_url)
    assert int(tries.get("tries:OBJ-1") or 0) == 3
    tries.close()


def test_each_coroutine_logs_in_its_own_messages_context(redis_url):
    broker, _ = _broker(redis_url, LogContext())
    actors = declare(broker, redis_url)
    messages = {f"OBJ-{i}": actors["context"].send(f"OBJ-{i}") for i in range(20)}
    worker = ConcurrentWorker(broker, worker_threads=1, concurrency=20)
    worker.start()
    try:
        broker.join(actors["context"].queue_name, timeout=30_000)
        worker.join()
    finally:
        worker.stop()
        broker.close()
    assert worker.max_in_flight > 1
    marks = redis.Redis.from_url(redis_url)
    seen = {k.decode(): v.decode() for k, v in marks.hgetall("contexts").items()}
    marks.close()
    assert seen == {key: f"{m.message_id}|{m.message_id}" for key, m in messages.items()}


def test_a_graceful_stop_drains_what_is_in_flight(redis_url):
    # the service's broker: its consumers give back what they fetched ahead on closing
    broker, acks = _broker(redis_url, kind=RecoveringRedisBroker)
    actors = declare(broker, redis_url)
    marks = redis.Redis.from_url(redis_url)
    marks.set("hold", 1)
    messages = [actors["hold"].send(f"OBJ-{i}") for i in range(30)]
    worker = ConcurrentWorker(broker, worker_threads=2, concurrency=12)
    worker.start()
    try:
        wait_for(lambda: marks.scard("started") == 12, "twelve jobs in flight")
        marks.delete("hold")
        worker.stop(timeout=30_000)
        started = {k.decode() for k in marks.smembers("started")}
        done = {k.decode() for k in marks.smembers("done")}
        assert started == done and len(done) >= 12
        assert worker.in_flight == 0
        acked = set(acks.acks)
        assert all(n == 1 for n in acks.acks.values())
        assert len(acked) == len(done)
        waiting = marks.llen("dramatiq:default")
        assert waiting + len(done) == len(messages), "the rest went back to the queue"
    finally:
        marks.close()
        broker.close()


def test_a_killed_worker_process_loses_nothing(redis_url):
    marks = redis.Redis.from_url(redis_url)
    marks.set("hold", 1)
    broker, acks = _broker(redis_url)
    actors = declare(broker, redis_url)
    keys = [f"OBJ-{i}" for i in range(40)]
    for key in keys:
        actors["hold"].send(key)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen([sys.executable, str(APP), redis_url], cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: marks.scard("started") >= 20, "jobs in flight in the worker process")
        assert process.poll() is None
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        assert marks.scard("done") == 0
        marks.delete("hold")
        rescue = RedisBroker(url=redis_url, heartbeat_timeout=1000, maintenance_chance=1_000_000)
        rescue.add_middleware(acks)
        declare(rescue, redis_url)
        worker = ConcurrentWorker(rescue, worker_threads=2, concurrency=64)
        worker.start()
        try:
            wait_for(lambda: marks.scard("done") == len(keys), "every job done", 60)
            worker.join()
        finally:
            worker.stop()
            rescue.close()
        assert {k.decode() for k in marks.smembers("done")} == set(keys)
        assert sum(acks.acks.values()) == len(keys)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        marks.close()
        broker.close()


def test_a_worker_process_freezes_its_booted_heap(redis_url):
    """``python -m syndication.concurrent`` builds workers that move the booted heap out of
    the collector's reach and collect the youngest generation less often; a worker
    started in a process of other work does neither."""
    import gc

    import dramatiq.cli

    from syndication.concurrent.__main__ import ProcessWorker
    from syndication.concurrent.worker import YOUNG_GC_THRESHOLD

    assert dramatiq.cli.Worker is ProcessWorker
    gc.unfreeze()
    threshold = gc.get_threshold()
    for kind, frozen in ((ConcurrentWorker, False), (ProcessWorker, True)):
        broker, _ = _broker(redis_url)
        declare(broker, redis_url)
        worker = kind(broker, worker_threads=1, concurrency=4)
        worker.start()
        try:
            assert (gc.get_freeze_count() > 0) is frozen, kind
            young = YOUNG_GC_THRESHOLD if frozen else threshold[0]
            assert gc.get_threshold() == (young, *threshold[1:]), kind
        finally:
            worker.stop()
            broker.close()
            gc.unfreeze()
            gc.set_threshold(*threshold)


class _RecordedSteps:
    """Steps that PUT to the sandbox and note the thread each step ran on; ``fail`` names
    the keys whose ``first`` or ``last`` raises. ``last`` keeps the status answered."""

    def __init__(self, url: str, fail: dict[str, str] | None = None) -> None:
        import threading

        self.url = url
        self.fail = fail or {}
        self.threads: dict[str, set[str]] = {"first": set(), "awaited": set(), "last": set()}
        self.tries: Counter[str] = Counter()
        self.results: dict[str, int] = {}
        self._lock = threading.Lock()

    def _note(self, step: str, key: str) -> None:
        import threading

        with self._lock:
            self.threads[step].add(threading.current_thread().name)
            if step == "first":
                self.tries[key] += 1
        if self.fail.get(key) == step:
            raise RuntimeError(f"{key}: {step} fails")

    def first(self, broker: Any, message: Any) -> str:
        key = message.args[0]
        self._note("first", key)
        return key

    async def awaited(self, key: str) -> int:
        import aiohttp

        self._note("awaited", key)
        async with aiohttp.ClientSession() as session, \
                session.put(f"{self.url}/{key}", data=b"<x/>") as answer:
            await answer.read()
            return answer.status

    def last(self, key: str, result: Any) -> int:
        self._note("last", key)
        assert isinstance(result, int), result
        with self._lock:
            self.results[key] = result
        return result


def _stepped(broker: Any, steps: _RecordedSteps, retries: int = 0) -> Any:
    import dramatiq

    @dramatiq.actor(broker=broker, actor_name="stepped", max_retries=retries, min_backoff=10,
                    max_backoff=20, steps=steps)
    async def stepped(key: str) -> None:
        raise AssertionError("the concurrent worker runs the steps, not the coroutine")

    return stepped


def _until_drained(broker: Any, actor: Any, worker: ConcurrentWorker) -> None:
    """Start ``worker``, wait until ``actor``'s queue is done, then stop it and the broker."""
    worker.start()
    try:
        broker.join(actor.queue_name, timeout=60_000)
        worker.join()
    finally:
        worker.stop()
        broker.close()


def test_a_job_in_steps_runs_its_store_steps_on_the_step_threads(redis_url, sandbox):
    """First and last step on the worker's two step threads (never a thread that took a
    message), the awaited step on the loop, many in flight, each message acked once."""
    from syndication.concurrent.worker import DaemonLoopAsyncIO

    broker, acks = _broker(redis_url, DaemonLoopAsyncIO())
    steps = _RecordedSteps(sandbox.url("hemnet") + "/listings")
    actor = _stepped(broker, steps)
    messages = [actor.send(f"OBJ-{i}") for i in range(40)]
    worker = ConcurrentWorker(broker, worker_threads=2, concurrency=64, step_threads=2)
    _until_drained(broker, actor, worker)
    assert steps.threads["first"] | steps.threads["last"] <= {"step_0", "step_1"}
    assert len(steps.threads["awaited"]) == 1
    assert steps.threads["awaited"].isdisjoint(steps.threads["first"] | steps.threads["last"])
    assert sandbox["hemnet"].max_in_flight >= 20, "the steps do not hold a thread while sending"
    assert sandbox["hemnet"].call_count() == 40
    assert set(steps.results) == {f"OBJ-{i}" for i in range(40)}, "last got each answer"
    assert acks.acks == {m.message_id: 1 for m in messages}
    assert set(acks.deliveries.values()) == {1}
    assert not acks.nacks
    assert worker.in_flight == 0
    assert _queue_empty(redis_url)


@pytest.mark.parametrize("step", ["first", "last"])
def test_an_error_in_a_store_step_is_the_messages_and_is_retried(redis_url, sandbox, step):
    from syndication.concurrent.worker import DaemonLoopAsyncIO

    broker, acks = _broker(redis_url, DaemonLoopAsyncIO())
    steps = _RecordedSteps(sandbox.url("hemnet") + "/listings", fail={"OBJ-bad": step})
    actor = _stepped(broker, steps, retries=2)
    bad, good = actor.send("OBJ-bad"), actor.send("OBJ-good")
    worker = ConcurrentWorker(broker, worker_threads=1, concurrency=4, step_threads=1)
    worker.start()
    try:
        wait_for(lambda: acks.nacks and acks.acks, "the nack and the ack")
        worker.join()
    finally:
        worker.stop()
        broker.close()
    assert steps.tries == {"OBJ-bad": 3, "OBJ-good": 1}
    assert acks.nacks == {bad.message_id: 1}
    assert acks.acks[good.message_id] == 1  # (each retry of the bad one acks its delivery)
    assert set(acks.deliveries.values()) == {1}, "each delivery (and delay) settled once"
    assert steps.threads["first"] | steps.threads["last"] == {"step_0"}
    assert worker.in_flight == 0


class _GroupedSteps(_RecordedSteps):
    """Recorded steps whose ``last_together`` notes each group's size and the context
    each call ran in; the first group's first outcome is replaced by an error, as a
    failed group commit would replace it, so that message is retried."""

    def __init__(self, url: str) -> None:
        import contextvars

        super().__init__(url)
        self.groups: list[int] = []
        self.first_groups: list[int] = []
        self.key = contextvars.ContextVar[str]("key")
        self.contexts: dict[str, str] = {}
        self.replaced: str | None = None

    def first(self, broker: Any, message: Any) -> str:
        time.sleep(0.01)  # a store step long enough for endings to wait for a step thread
        self.key.set(message.args[0])
        return super().first(broker, message)

    def last(self, key: str, result: Any) -> int:
        self.contexts[key] = self.key.get()
        return super().last(key, result)

    def first_together(self, broker: Any, starts: list[tuple[Any, Callable[..., Any]]]
                       ) -> list[list[Any]]:
        self.first_groups.append(len(starts))
        outcomes: list[list[Any]] = []
        for message, run in starts:
            try:
                outcomes.append([run(self.first, broker, message), None])
            except BaseException as exc:  # noqa: BLE001 - the message's outcome
                outcomes.append([None, exc])
        return outcomes

    def last_together(self, broker: Any, lasts: list[tuple[str, Callable[[], Any]]]
                      ) -> list[list[Any]]:
        self.groups.append(len(lasts))
        outcomes: list[list[Any]] = []
        for _, call in lasts:
            try:
                outcomes.append([call(), None])
            except BaseException as exc:  # noqa: BLE001 - the message's outcome
                outcomes.append([None, exc])
        if self.replaced is None:
            self.replaced = next(iter(self.contexts))
            outcomes[0] = [None, RuntimeError("the group's commit failed")]
        return outcomes


def test_last_steps_that_wait_for_a_step_thread_are_settled_together(redis_url, sandbox):
    """Endings queue while the one step thread runs first steps; each drain takes those
    waiting as one group, every last step in its own message's context, and an outcome
    the group replaced with an error is retried like any other. The first steps that
    wait are run together too, each in its message's context (the one its last step
    then finds)."""
    from syndication.concurrent.worker import FIRST_GROUP, LAST_GROUP, DaemonLoopAsyncIO

    broker, acks = _broker(redis_url, DaemonLoopAsyncIO())
    steps = _GroupedSteps(sandbox.url("hemnet") + "/listings")
    actor = _stepped(broker, steps, retries=2)
    messages = [actor.send(f"OBJ-{i}") for i in range(80)]
    worker = ConcurrentWorker(broker, worker_threads=2, concurrency=80, step_threads=1)
    _until_drained(broker, actor, worker)
    assert sum(steps.groups) == 81, "each message's last step once, the retried one twice"
    assert max(steps.groups) > 1 and len(steps.groups) < 81, steps.groups
    assert max(steps.groups) <= LAST_GROUP
    assert sum(steps.tries.values()) == 81, "each first step once, the retried one twice"
    assert 1 < max(steps.first_groups) <= FIRST_GROUP, steps.first_groups
    assert sum(steps.first_groups) <= 81
    assert steps.contexts == {key: key for key in steps.contexts}, "each in its own context"
    assert steps.tries[steps.replaced] == 2, "the replaced outcome's message ran again"
    assert set(acks.acks) == {m.message_id for m in messages}
    assert set(acks.deliveries.values()) == {1}, "each delivery (and delay) settled once"
    assert worker.in_flight == 0
    assert _queue_empty(redis_url)


class _FailingTogether(_GroupedSteps):
    """Grouped steps whose first ``last_together`` raises before running anything."""

    def last_together(self, broker: Any, lasts: list[tuple[str, Callable[[], Any]]]
                      ) -> list[list[Any]]:
        if not self.groups:
            self.groups.append(0)
            raise RuntimeError("the store's group could not be opened")
        return super().last_together(broker, lasts)


def test_a_group_of_last_steps_that_fails_as_a_whole_fails_each_of_its_messages(
    redis_url, sandbox,
):
    """An error of ``last_together`` itself is the outcome of every message in the group:
    they are retried, none is left in flight."""
    from syndication.concurrent.worker import DaemonLoopAsyncIO

    broker, acks = _broker(redis_url, DaemonLoopAsyncIO())
    steps = _FailingTogether(sandbox.url("hemnet") + "/listings")
    steps.replaced = "none"  # no outcome replaced: only the first group fails
    actor = _stepped(broker, steps, retries=2)
    messages = [actor.send(f"OBJ-{i}") for i in range(20)]
    worker = ConcurrentWorker(broker, worker_threads=2, concurrency=20, step_threads=1)
    _until_drained(broker, actor, worker)
    assert steps.groups[0] == 0, "the first group failed as a whole"
    assert set(steps.results) == {f"OBJ-{i}" for i in range(20)}, "each ran its last step"
    assert set(acks.acks) == {m.message_id for m in messages}
    assert set(acks.deliveries.values()) == {1}
    assert worker.in_flight == 0
    assert _queue_empty(redis_url)


class _FailingFirstTogether(_GroupedSteps):
    """Grouped steps whose first ``first_together`` of more than one message raises
    before running anything."""

    def first_together(self, broker: Any, starts: list[tuple[Any, Callable[..., Any]]]
                       ) -> list[list[Any]]:
        if not self.first_groups:
            self.first_groups.append(-len(starts))
            raise RuntimeError("the store's group could not be opened")
        return super().first_together(broker, starts)


def test_a_group_of_first_steps_that_fails_as_a_whole_fails_each_of_its_messages(
    redis_url, sandbox,
):
    """An error of ``first_together`` itself is the outcome of every message in the group:
    each is retried and then runs, none is left in flight, nothing is sent for it twice."""
    from syndication.concurrent.worker import DaemonLoopAsyncIO

    broker, acks = _broker(redis_url, DaemonLoopAsyncIO())
    steps = _FailingFirstTogether(sandbox.url("hemnet") + "/listings")
    steps.replaced = "none"
    actor = _stepped(broker, steps, retries=2)
    messages = [actor.send(f"OBJ-{i}") for i in range(20)]
    worker = ConcurrentWorker(broker, worker_threads=2, concurrency=20, step_threads=1)
    _until_drained(broker, actor, worker)
    failed = -steps.first_groups[0]
    assert failed > 1, "the first group failed as a whole"
    assert sum(steps.tries.values()) == 20, "a failed group ran no first step"
    assert set(steps.results) == {f"OBJ-{i}" for i in range(20)}, "each ran in the end"
    assert set(acks.acks) == {m.message_id for m in messages}
    assert set(acks.deliveries.values()) == {1}
    assert len(acks.nacks) == 0
    assert worker.in_flight == 0
    assert _queue_empty(redis_url)


def test_the_step_threads_follow_the_store_unless_set(redis_url, tmp_path):
    """Two step threads on SQLite, six on PostgreSQL, ``SYNDICATION_STEP_THREADS`` over
    both; a negative count is refused naming the variable."""
    from syndication.errors import ConfigurationError
    from syndication.runtime import Runtime, RuntimeMiddleware
    from syndication.settings import Settings

    sqlite_url = f"sqlite:///{tmp_path / 'store.db'}"
    assert Settings.from_env({"SYNDICATION_DATABASE_URL": sqlite_url}).steps_in_force == 2
    assert Settings.from_env({"SYNDICATION_DATABASE_URL": "postgresql://db/x"}
                             ).steps_in_force == 6
    assert Settings.from_env({"SYNDICATION_DATABASE_URL": "postgresql://db/x",
                              "SYNDICATION_STEP_THREADS": "3"}).steps_in_force == 3
    with pytest.raises(ConfigurationError, match="SYNDICATION_STEP_THREADS must be zero or"):
        Settings.from_env({"SYNDICATION_STEP_THREADS": "-1"})

    runtime = Runtime.from_settings(Settings(database_url=sqlite_url))
    broker, _ = _broker(redis_url, RuntimeMiddleware(runtime))
    try:
        assert ConcurrentWorker(broker, worker_threads=1).step_threads == 2
        assert ConcurrentWorker(broker, worker_threads=1, step_threads=5).step_threads == 5
    finally:
        broker.close()
        runtime.close()


class _CountedAcks:
    """Wraps a consumer's ``ack_many``: the batch sizes, and a first call that fails."""

    def __init__(self, fail_first: bool = False) -> None:
        self.batches: list[int] = []
        self.fail_first = fail_first

    def wrap(self, consumer: Any) -> None:
        send = consumer.ack_many

        def ack_many(messages: Any) -> None:
            if self.fail_first:
                self.fail_first = False
                from dramatiq.errors import ConnectionClosed

                raise ConnectionClosed(OSError("the connection broke off"))
            self.batches.append(len(messages))
            send(messages)

        consumer.ack_many = ack_many


def _counting(worker: ConcurrentWorker, counted: _CountedAcks, queue: str) -> None:
    wait_for(lambda: worker.consumers[queue].consumer is not None, "the consumer")
    counted.wrap(worker.consumers[queue].consumer)


def test_settled_messages_are_acknowledged_in_batches_each_once(redis_url, sandbox):
    broker, acks = _broker(redis_url, kind=RecoveringRedisBroker)
    actors = declare(broker, redis_url)
    url = sandbox.url("hemnet") + "/listings"
    counted = _CountedAcks()
    worker = ConcurrentWorker(broker, worker_threads=2, concurrency=64)
    worker.start()
    try:
        _counting(worker, counted, actors["call"].queue_name)
        messages = [actors["call"].send(url, f"OBJ-{i}") for i in range(60)]
        broker.join(actors["call"].queue_name, timeout=60_000)
        worker.join()
    finally:
        worker.stop()
        broker.close()
    assert acks.acks == {m.message_id: 1 for m in messages}, "each acked once, hooks and all"
    assert sum(counted.batches) == 60
    assert len(counted.batches) < 60 and max(counted.batches) > 1, counted.batches
    assert worker.in_flight == 0
    assert _queue_empty(redis_url), "nothing left in the worker's ack set"


def test_a_batch_of_acks_whose_connection_broke_is_sent_again(redis_url, monkeypatch):
    import syndication.concurrent.worker as module

    monkeypatch.setattr(module, "ACK_RETRY_SECONDS", 0.05)
    broker, acks = _broker(redis_url, kind=RecoveringRedisBroker)
    actors = declare(broker, redis_url)
    counted = _CountedAcks(fail_first=True)
    worker = ConcurrentWorker(broker, worker_threads=1, concurrency=8)
    worker.start()
    try:
        _counting(worker, counted, actors["context"].queue_name)
        messages = [actors["context"].send(f"OBJ-{i}") for i in range(5)]
        broker.join(actors["context"].queue_name, timeout=30_000)
        worker.join()
    finally:
        worker.stop()
        broker.close()
    assert not counted.fail_first, "the first batch failed once"
    assert acks.acks == {m.message_id: 1 for m in messages}
    assert _queue_empty(redis_url)
