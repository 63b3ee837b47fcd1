"""One transfer job as three steps: the database steps on threads, the send awaited.

The transfer actor is ``async def``, so under
:class:`~syndication.concurrent.ConcurrentWorker` a process keeps hundreds of
jobs in flight while each waits for its marketplace. The job is the same three
steps as :func:`~syndication.transfer.job.run_transfer_job`, arranged so that
nothing blocks the event loop (:class:`TransferSteps`):

1. :meth:`~syndication.transfer.lifecycle.TransferLifecycle.prepared` (count the
   start, read, decide, build) and the circuit breaker's ``before_call`` run on a
   thread; the first steps a step thread finds waiting count their starts and read
   in one store transaction (:meth:`TransferSteps.first_together`), then each
   builds its document;
2. the delivery is awaited on the marketplace's :class:`~adapters.async_http.AsyncHttpTransport`
   (a transport with no async twin, such as the file drop, is sent on a thread);
3. the breaker's ``after_call`` and :func:`~syndication.transfer.job.finish`
   (record the outcome, end the start) run on a thread again; the last steps a step
   thread finds waiting run in one store transaction (:meth:`TransferSteps.last_together`,
   :class:`~syndication.store.db.Group`), each job's writes in a savepoint of it.

The concurrent worker runs the steps itself (the actor option ``steps``): the
first and the last on its step threads, the last right before the same thread
settles the message. Any other worker runs the actor's coroutine,
:func:`run_transfer_message`: the same steps, the store's on the loop's executor.

Exactly what the threaded job records, in the same transactions: a worker
killed at any point leaves its message unacknowledged and the job is run again
(R10: same document, same idempotency key).

A message whose earlier start died with its worker comes back with the hundreds
that died with it. Its first step finds the death and records nothing
(:class:`~syndication.transfer.starts.DiedBefore`); the job then waits for the
process's after-death lane (:class:`AfterDeathLane`, at most
``settings.after_death_in_flight`` such jobs at once) and is run in it from the
start. So a later death takes few of them along, and the death budget counts
deaths of a listing's own, not of the crowd it happened to be in.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol

import dramatiq
from sqlalchemy.exc import SQLAlchemyError

from adapters.async_http import AsyncHttpTransport
from adapters.base import Delivery, Receipt, Transport
from adapters.http import HttpTransport
from syndication.circuit import CircuitState
from syndication.concurrent.worker import on_loop_close, outcome_of
from syndication.logs import get_logger
from syndication.metrics import note_action
from syndication.runtime import Runtime, current_runtime
from syndication.store.db import grouped
from syndication.transfer.common import Scheduler
from syndication.transfer.job import Found, JobOutcome, Prepared, decide, finish
from syndication.transfer.lifecycle import TransferLifecycle
from syndication.transfer.starts import DiedBefore


class AsyncSender(Protocol):
    async def send(self, delivery: Delivery) -> Receipt: ...


class _OnThread:
    """A transport with no async twin, its ``send`` run on a thread."""

    def __init__(self, transport: Transport) -> None:
        self.transport = transport

    async def send(self, delivery: Delivery) -> Receipt:
        return await asyncio.to_thread(self.transport.send, delivery)


class AsyncTransports:
    """The async twin of each configured transport, made once per runtime, transport and
    event loop (an async client belongs to the loop it runs on; a process that starts a
    worker again gets a new loop). A loop's twins are closed on it as the worker shuts
    down (:func:`~syndication.concurrent.worker.on_loop_close`)."""

    def __init__(self) -> None:
        self._twins: dict[tuple[int, str, int], tuple[Transport, AsyncSender]] = {}
        self._lock = threading.Lock()

    async def close_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        """Close the async twins made on ``loop`` (run on it as the worker shuts down)."""
        with self._lock:
            mine = [key for key in self._twins if key[2] == id(loop)]
            twins = [self._twins.pop(key)[1] for key in mine]
        for twin in twins:
            if isinstance(twin, AsyncHttpTransport):
                await twin.aclose()

    def open_on(self, runtime: Runtime) -> int:
        """How many async HTTP twins of ``runtime`` are still open (for the tests)."""
        with self._lock:
            return sum(1 for key, (_, twin) in self._twins.items()
                       if key[0] == id(runtime) and isinstance(twin, AsyncHttpTransport)
                       and twin.is_open)

    def get(self, runtime: Runtime, marketplace: str) -> AsyncSender:
        transport = runtime.transport(marketplace)
        key = (id(runtime), marketplace, id(asyncio.get_running_loop()))
        with self._lock:
            known = self._twins.get(key)
            if known is not None and known[0] is transport:
                return known[1]
            twin = _twin(transport)
            self._twins[key] = (transport, twin)
            return twin


def _twin(transport: Transport) -> AsyncSender:
    if not isinstance(transport, HttpTransport):
        return _OnThread(transport)
    return AsyncHttpTransport.like(transport)


TRANSPORTS = AsyncTransports()
on_loop_close(TRANSPORTS.close_loop)


class AfterDeathLane:
    """The jobs of this process whose earlier start died with its worker, run a few at a
    time: one semaphore per event loop (an asyncio primitive belongs to its loop)."""

    def __init__(self) -> None:
        self._lanes: dict[int, tuple[int, asyncio.Semaphore]] = {}
        self._lock = threading.Lock()

    def get(self, size: int) -> asyncio.Semaphore:
        key = id(asyncio.get_running_loop())
        with self._lock:
            known = self._lanes.get(key)
            if known is None or known[0] != size:
                known = (size, asyncio.Semaphore(size))
                self._lanes[key] = known
            return known[1]


AFTER_DEATH = AfterDeathLane()


@dataclass(slots=True)
class _Job:
    """A transfer job between its steps: what the first found, for the other two."""

    runtime: Runtime
    broker: dramatiq.Broker
    message: dramatiq.Message[Any]
    prepared: Prepared | None = None
    gate: CircuitState | BaseException | None = None
    died: DiedBefore | None = None


class TransferSteps:
    """The transfer job as :class:`~syndication.concurrent.Steps`: prepare on a step
    thread, send on the loop, finish on a step thread (see the module doc). A message
    whose earlier start died runs whole in the awaited step, in the after-death lane."""

    def __init__(
        self,
        lifecycle: TransferLifecycle,
        scheduler: Scheduler,
        transports: AsyncTransports = TRANSPORTS,
    ) -> None:
        self.lifecycle = lifecycle
        self.scheduler = scheduler
        self.transports = transports

    def first(self, broker: dramatiq.Broker, message: dramatiq.Message[Any]) -> _Job:
        try:
            found = self.lifecycle.found(broker, message, self.scheduler, isolated=True)
        except DiedBefore as exc:
            return self._decided(broker, message, None, exc)
        return self._decided(broker, message, found, None)

    def first_together(
        self, broker: dramatiq.Broker, starts: list[tuple[dramatiq.Message[Any], Any]]
    ) -> list[list[Any]]:
        """Several jobs' :meth:`first` steps (``starts``: each message with the function
        that runs a call in its context) with their store's part in one transaction: each
        job's counted start and reads a savepoint of it, taken in the order of the pairs
        (so two groups lock the status rows they share in the same order), committed
        once; then each job's document is built and its breaker asked, with no lock
        held. A job whose part failed, or whose group failed to commit, is put back
        uncounted, as when its own transaction could not count it. Returns ``[job,
        exception]`` each, in the order of ``starts``."""
        runtime = current_runtime(broker)
        order = sorted(range(len(starts)), key=lambda index: _pair_of(starts[index][0]))
        found: dict[int, list[Any]] = {}
        with grouped(runtime.engine) as group:
            for index in order:
                message, run = starts[index]
                found[index] = group.run(partial(run, self._found, broker, message))
            group.commit()
        return [outcome_of(partial(run, self._decided, broker, message, *found[index]))
                for index, (message, run) in enumerate(starts)]

    def _found(self, broker: dramatiq.Broker, message: dramatiq.Message[Any]) -> Found:
        return self.lifecycle.found(broker, message, self.scheduler, isolated=True)

    def _decided(
        self, broker: dramatiq.Broker, message: dramatiq.Message[Any], found: Found | None,
        error: BaseException | None,
    ) -> _Job:
        """The job after its store's part: decided and gated by the breaker, or marked
        to run in the after-death lane; the part's error (a group's failed commit put
        back as an unreachable store) is raised."""
        job = _Job(current_runtime(broker), broker, message)
        if isinstance(error, DiedBefore):
            job.died = error
            return job
        if isinstance(error, SQLAlchemyError):
            raise self.lifecycle.not_counted(message, error) from error
        if error is not None:
            raise error
        assert found is not None
        job.prepared, job.gate = _gated(job.runtime, decide(found))
        return job

    async def awaited(self, job: _Job) -> Receipt | BaseException | JobOutcome | None:
        """The delivery's receipt or the error it raised; ``None`` when nothing is sent;
        the whole job's outcome for one run in the after-death lane."""
        if job.died is not None:
            size = job.runtime.settings.after_death_in_flight
            get_logger().info("transfer.after_death_lane", deaths=job.died.deaths, lane=size)
            async with AFTER_DEATH.get(size):
                again = _Job(job.runtime, job.broker, job.message)
                again.prepared, again.gate = await asyncio.to_thread(
                    self._prepared_again, job.broker, job.message)
                result = await self.awaited(again)
                return await asyncio.to_thread(self.last, again, result)
        assert job.prepared is not None
        delivery = job.prepared.delivery
        if delivery is None or isinstance(job.gate, BaseException):
            return None
        note_action(delivery.action)
        try:
            return await deliver(job.runtime, delivery, self.transports)
        except Exception as exc:  # noqa: BLE001 - the last step records it
            return exc

    def _prepared_again(
        self, broker: dramatiq.Broker, message: dramatiq.Message[Any]
    ) -> tuple[Prepared, CircuitState | BaseException | None]:
        """The first step of a job in the after-death lane: its start recorded whatever
        deaths it finds (they are counted against its budget)."""
        prepared = self.lifecycle.prepared(broker, message, self.scheduler)
        return _gated(current_runtime(broker), prepared)

    def last(self, job: _Job, result: Receipt | BaseException | JobOutcome | None) -> JobOutcome:
        if job.died is not None:
            if isinstance(result, BaseException):
                raise result
            assert isinstance(result, JobOutcome)
            return result
        prepared, gate = job.prepared, job.gate
        assert prepared is not None and not isinstance(result, JobOutcome)
        if prepared.delivery is None:
            return finish(job.runtime, prepared, None)
        if isinstance(gate, BaseException):
            return finish(job.runtime, prepared, gate)
        assert result is not None
        return _finish(job.runtime, prepared, result, gate)

    def last_together(
        self, broker: dramatiq.Broker, lasts: list[tuple[_Job, Callable[[], JobOutcome]]]
    ) -> list[list[Any]]:
        """Several jobs' :meth:`last` steps (``lasts``: each job with its step as a call)
        in one store transaction: one checkout, one ``BEGIN`` and one ``COMMIT`` for them
        all, and on SQLite one write of each page they share. Each job's writes are a
        savepoint of it, taken in the order of the pairs as :meth:`first_together` does;
        what a job sends once its outcome is stored (a publication check) goes after the
        commit; a commit that fails is the outcome of every job it held, so their
        messages are retried as after any error of the store. Returns ``[result,
        exception]`` each, in the order of ``lasts``."""
        if len(lasts) == 1:
            return [outcome_of(lasts[0][1])]
        order = sorted(range(len(lasts)), key=lambda index: _pair_of(lasts[index][0].message))
        outcomes: dict[int, list[Any]] = {}
        with grouped(current_runtime(broker).engine) as group:
            for index in order:
                outcomes[index] = group.run(lasts[index][1])
            group.commit()
        return [outcomes[index] for index in range(len(lasts))]


async def run_transfer_message(
    lifecycle: TransferLifecycle,
    broker: dramatiq.Broker,
    message: dramatiq.Message[Any],
    scheduler: Scheduler,
    transports: AsyncTransports = TRANSPORTS,
) -> JobOutcome:
    """Run ``message``'s transfer job as one coroutine: :class:`TransferSteps` with the
    store steps on threads (what a worker that does not run the steps itself runs)."""
    steps = TransferSteps(lifecycle, scheduler, transports)
    job = await asyncio.to_thread(steps.first, broker, message)
    result = await steps.awaited(job)
    return await asyncio.to_thread(steps.last, job, result)


async def deliver(runtime: Runtime, delivery: Delivery, transports: AsyncTransports) -> Receipt:
    """Send ``delivery`` on its marketplace's async transport: the second step, the only
    one that leaves the process (the breaker is asked before and told after, on threads)."""
    return await transports.get(runtime, delivery.marketplace).send(delivery)


def _gated(
    runtime: Runtime, prepared: Prepared
) -> tuple[Prepared, CircuitState | BaseException | None]:
    """``prepared`` and, when it has something to send, the breaker's permission: the
    state the call is let through on, or the breaker's refusal (an open circuit) for
    :func:`finish` to record."""
    if prepared.delivery is None:
        return prepared, None
    try:
        return prepared, runtime.breaker.before_call(prepared.delivery.marketplace)
    except Exception as exc:  # noqa: BLE001 - the circuit's refusal, recorded by finish
        return prepared, exc


def _pair_of(message: dramatiq.Message[Any]) -> tuple[str, str]:
    """The status row a transfer message's job writes first: the order a group takes them."""
    return message.kwargs["listing_id"], message.kwargs["marketplace"]


def _finish(
    runtime: Runtime,
    prepared: Prepared,
    result: Receipt | BaseException,
    seen: CircuitState | None,
) -> JobOutcome:
    """The breaker learns from the call, then the outcome is recorded."""
    assert prepared.delivery is not None
    error = result if isinstance(result, BaseException) else None
    runtime.breaker.after_call(prepared.delivery.marketplace, error, seen)
    return finish(runtime, prepared, result)
