"""A dramatiq worker whose concurrency is not its thread count.

dramatiq runs an ``async def`` actor on its event loop thread but waits for
it on the worker thread (``EventLoopThread.run_coroutine``), so a process of 8
threads still has at most 8 jobs in flight: at 100 ms of marketplace latency, 80
transfers a second whatever its CPU. :class:`ConcurrentWorker` hands a
*concurrent* actor's message off instead (an actor whose function is ``async
def``; every other actor runs exactly as on dramatiq's own worker):

1. the worker thread takes one of ``concurrency`` in-flight slots (it blocks
   while none is free: that is the backpressure, and with the queue prefetch
   raised to ``concurrency`` plus two per thread the consumer keeps that many
   messages at hand), runs the ``before_process_message`` hooks in a context
   copied for the message, starts the coroutine on the process's one event
   loop in that same context (structlog's context and every other context
   variable stay the message's own) and goes back to the work queue at once;
2. when the coroutine ends, one of the worker's few *step threads* (off the
   loop, so the hooks' database and Redis calls never block it) runs the
   ``after_*`` hooks in the message's context, exactly as dramatiq's
   ``WorkerThread.process_message`` would (skip, retry, failure), then nacks
   the message (``post_process_message``) or hands its ack to the acknowledging
   thread, which sends the acks of a few milliseconds in one round trip when the
   consumer takes them so (``ack_many``); the slot is freed once that is done.

A concurrent actor may also name its job's *steps* (the actor option ``steps``, a
:class:`Steps`): a store step before the coroutine and one after it. The worker
then runs the first step on a step thread, the awaited step on the loop, and the
last step on a step thread again, right before that thread settles the message:
three hand-offs a message instead of the six of a coroutine that goes to a thread
and back twice. (In a process bound by the interpreter's lock, every hand-off
wakes a thread for a few microseconds of Python at a cost larger than that;
measured in ``bench/transfer.py``.) The first steps waiting when a step thread
comes to them are run together (up to :data:`FIRST_GROUP`;
``Steps.first_together`` lets the job share one store transaction among them),
and so are the last steps (up to :data:`LAST_GROUP`, ``Steps.last_together``),
which are settled only then. A step thread with nothing else to do takes one
message at a time, exactly as alone. The actor's own coroutine stays the job for
every other worker.

So a message is acknowledged only after its coroutine and its hooks are done:
a worker killed meanwhile has its messages still unacknowledged in Redis, which
gives them to another worker once this one's heartbeat is gone. ``stop`` first
stops taking messages, then waits (up to its timeout) for every message in
flight to be settled, and only then stops the consumers, as dramatiq does.

dramatiq's ``TimeLimit`` interrupts the *thread* a message started on, which
here has gone on to other messages; the worker takes that deadline off the
thread and enforces the same limit on the coroutine (``asyncio.timeout``,
raising ``TimeLimitExceeded``). Middleware that keeps per-message state must key
it by message id, not by thread: the before and after hooks of one message run
on different threads.
"""

from __future__ import annotations

import asyncio
import contextvars
import gc
import inspect
import threading
import time
from collections import deque
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any, Generic, Protocol, TypeVar

import dramatiq
from dramatiq.asyncio import EventLoopThread, get_event_loop_thread, set_event_loop_thread
from dramatiq.broker import MessageProxy
from dramatiq.errors import ConnectionClosed, RateLimitExceeded, Retry
from dramatiq.middleware import AsyncIO, SkipMessage, TimeLimit
from dramatiq.middleware.time_limit import TimeLimitExceeded
from dramatiq.worker import WorkerThread

W = TypeVar("W")

DEFAULT_CONCURRENCY = 256
"""Messages of concurrent actors one process keeps in flight, unless told otherwise."""

YOUNG_GC_THRESHOLD = 50_000
"""Allocations between two collections of the youngest generation in a worker process
(:func:`settle_heap`); Python's default is 700."""

ACK_WINDOW = 0.005
"""Seconds the acknowledging thread gathers settled messages before it sends them."""

ACK_RETRY_SECONDS = 1.0
"""Seconds between two tries of a batch of acks whose connection was lost."""

LAST_GROUP = 32
"""The most last steps a step thread runs together (``Steps.last_together``)."""

FIRST_GROUP = 32
"""The most first steps a step thread runs together (``Steps.first_together``)."""

DEFAULT_STEP_THREADS = 2
"""Threads that run concurrent jobs' store steps and settle their messages, unless told
otherwise or the broker's runtime says (``settings.steps_in_force``: by its store)."""


class Steps(Protocol):
    """A concurrent actor's job in three steps (the actor option ``steps``).

    ``first`` runs on a step thread with the message (in its context, after the
    ``before`` hooks) and returns the job's state; ``awaited`` is the coroutine of
    that state, run on the loop under the message's time limit; ``last`` runs on a
    step thread with the state and what ``awaited`` returned (or the exception it
    raised) and returns the message's result. An exception of ``first`` or ``last``
    is the message's, as an actor's would be.

    A job may also define ``last_together(broker, lasts)``: ``lasts`` is a list of
    ``(state, call)``, each message's job state and its ``last`` as a zero-argument
    call (in the message's context); run the calls one after another, in any order,
    and return each one's outcome, ``[result, exception]``, in the order of ``lasts``
    (the transfer job runs them in one store transaction). Without it each runs on
    its own.

    Likewise ``first_together(broker, starts)``: the first steps of several
    messages, ``starts`` a list of ``(message, run)`` where ``run(function, *args)``
    calls ``function`` in that message's context; it returns each message's
    ``[state, exception]``, in order (the transfer job runs their store reads and
    writes in one transaction, then builds each one's document). Without it each
    message's ``first`` runs on its own.
    """

    def first(self, broker: dramatiq.Broker, message: MessageProxy) -> Any: ...

    def awaited(self, state: Any) -> Coroutine[Any, Any, Any]: ...

    def last(self, state: Any, result: Any) -> Any: ...


class DaemonLoopAsyncIO(AsyncIO):
    """dramatiq's ``AsyncIO`` middleware whose event loop thread is a daemon.

    dramatiq's loop thread is not, and only ``after_worker_shutdown`` stops it. A
    worker process whose stop is cut short (dramatiq's second SIGTERM, as a
    process-group kill sends, exits from the signal handler in the middle of
    ``Worker.stop``) would then wait at interpreter exit for a loop no one stops,
    and never end. As a daemon it ends with the process; the messages it held are
    unacknowledged, so Redis gives them to another worker.
    """

    @property
    def actor_options(self) -> set[str]:
        """``steps``: a concurrent actor's :class:`Steps`, for :class:`ConcurrentWorker`."""
        return {*super().actor_options, "steps"}

    def before_worker_boot(self, broker: dramatiq.Broker, worker: Any) -> None:
        thread = EventLoopThread(self.logger)
        thread.daemon = True
        thread.start(timeout=1.0)
        set_event_loop_thread(thread)

    def after_worker_shutdown(self, broker: dramatiq.Broker, worker: Any) -> None:
        """Close what lives on the loop (:func:`on_loop_close`), then stop it as dramatiq
        does; a closer that fails or takes longer than 5 s is logged and left."""
        thread = get_event_loop_thread()
        if thread is not None:
            for closer in list(LOOP_CLOSERS):
                try:
                    asyncio.run_coroutine_threadsafe(closer(thread.loop),
                                                     thread.loop).result(timeout=5)
                except Exception:  # noqa: BLE001 - shutting down: log it and go on
                    self.logger.warning("Could not close %r on the event loop.", closer,
                                        exc_info=True)
        super().after_worker_shutdown(broker, worker)


LOOP_CLOSERS: list[Callable[[asyncio.AbstractEventLoop], Coroutine[Any, Any, None]]] = []
"""Coroutines run on the worker's event loop before it stops (:func:`on_loop_close`)."""


def on_loop_close(
    closer: Callable[[asyncio.AbstractEventLoop], Coroutine[Any, Any, None]],
) -> Callable[[asyncio.AbstractEventLoop], Coroutine[Any, Any, None]]:
    """Run ``closer(loop)`` on the worker's event loop when the worker shuts down: for
    clients bound to the loop (an aiohttp session must be closed on its own loop)."""
    if closer not in LOOP_CLOSERS:
        LOOP_CLOSERS.append(closer)
    return closer


def concurrent_function(actor: dramatiq.Actor[Any, Any]) -> Callable[..., Any] | None:
    """The coroutine function of a concurrent (``async def``) actor, else ``None``.

    dramatiq wraps an ``async def`` actor's function to wait for it on the calling
    thread; the function itself is kept as the wrapper's ``__wrapped__``."""
    original = getattr(actor.fn, "__wrapped__", None)
    return original if inspect.iscoroutinefunction(original) else None


class ConcurrentWorker(dramatiq.Worker):
    """dramatiq's worker, with concurrent actors' messages in flight on one event loop.

    ``concurrency`` bounds the messages of concurrent actors in flight at once
    (default: the runtime's ``settings.concurrency`` when the broker carries one,
    else :data:`DEFAULT_CONCURRENCY`); ``step_threads`` (default: the runtime's
    ``settings.steps_in_force``, else :data:`DEFAULT_STEP_THREADS`) run their
    :class:`Steps` and settle them. :attr:`max_in_flight` is the most seen at once.
    """

    def __init__(
        self,
        broker: dramatiq.Broker,
        *,
        queues: set[str] | None = None,
        worker_timeout: int = 1000,
        worker_threads: int = 8,
        concurrency: int | None = None,
        step_threads: int | None = None,
    ) -> None:
        super().__init__(broker, queues=queues, worker_timeout=worker_timeout,
                         worker_threads=worker_threads)
        self.concurrency = max(1, concurrency or _configured(broker, "concurrency",
                                                             DEFAULT_CONCURRENCY))
        self.queue_prefetch = min(self.concurrency + worker_threads * 2, 65535)
        self._slots = threading.BoundedSemaphore(self.concurrency)
        self._settled = threading.Condition()
        self.in_flight = 0
        self.max_in_flight = 0
        self.step_threads = max(1, step_threads or _configured(broker, "steps_in_force",
                                                               DEFAULT_STEP_THREADS))
        self._step_pool = ThreadPoolExecutor(self.step_threads, thread_name_prefix="step")
        self._acks = _Acks(self)
        self._ending: _Waiting[_Ending] = _Waiting()
        self._starting: _Waiting[_Starting] = _Waiting()
        self._loop: asyncio.AbstractEventLoop | None = None

    freeze_heap = False
    """Whether :meth:`start` moves the booted heap out of the garbage collector's reach:
    set by a worker that is its process's whole life (``python -m syndication.concurrent``)."""

    def start(self) -> None:
        """Boot as dramatiq does, with dramatiq's event loop thread as this process's loop.

        With :attr:`freeze_heap`, every object the booted process holds (modules,
        the store's and the broker's clients, compiled schemas) is then collected
        once and frozen (``gc.freeze``): they live as long as the process, and each
        full collection would otherwise walk them all again while hundreds of jobs
        are in flight. The youngest generation is then collected every
        :data:`YOUNG_GC_THRESHOLD` allocations instead of Python's 700
        (:func:`settle_heap`). (A test process that starts many workers keeps its
        garbage collector as it is.)"""
        if not any(isinstance(m, AsyncIO) for m in self.broker.middleware):
            self.broker.add_middleware(DaemonLoopAsyncIO())
        super().start()
        if self.freeze_heap:
            settle_heap()

    def stop(self, timeout: int = 600000) -> None:
        """Stop taking messages, wait up to ``timeout`` ms for those in flight to be
        settled, then stop as dramatiq's worker does. A message still in flight after
        the timeout is left unacknowledged, for Redis to give to another worker."""
        began = time.monotonic()
        for thread in self.workers:
            thread.stop()
        for thread in self.workers:
            thread.join(timeout / 1000)
        left = max(0.0, timeout / 1000 - (time.monotonic() - began))
        if not self.drain(left):
            self.logger.warning("Stopping with %d messages still in flight; they stay "
                                "unacknowledged and are delivered again.", self.in_flight)
        self._step_pool.shutdown(wait=self.in_flight == 0)
        self._acks.stop()
        super().stop(timeout)

    def drain(self, timeout: float | None = None) -> bool:
        """Wait until no message is in flight; ``False`` when ``timeout`` s passed first."""
        with self._settled:
            return self._settled.wait_for(lambda: self.in_flight == 0, timeout)

    def _add_worker(self) -> None:
        """Add a worker thread; the first one takes the event loop dramatiq's
        ``AsyncIO`` middleware has started in ``before_worker_boot``."""
        if self._loop is None:
            loop_thread = get_event_loop_thread()
            if loop_thread is None:
                raise RuntimeError("dramatiq's AsyncIO middleware did not start its event loop")
            self._loop = loop_thread.loop
        worker = _HandingThread(
            owner=self, broker=self.broker, consumers=self.consumers,
            work_queue=self.work_queue, worker_timeout=self.worker_timeout,
        )
        worker.start()
        self.workers.append(worker)

    # --- one message ---------------------------------------------------------------

    def hand_off(
        self,
        message: MessageProxy,
        actor: dramatiq.Actor[Any, Any],
        function: Callable[..., Any],
        steps: Steps | None = None,
    ) -> None:
        """On a worker thread: take a slot, run the before hooks and start the coroutine
        (with ``steps``: hand the first step to a step thread)."""
        self._slots.acquire()
        with self._settled:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        context = contextvars.copy_context()
        coroutine = None
        failure: BaseException | None = None
        try:
            context.run(self.broker.emit_before, "process_message", message)
            if not message.failed and steps is None:
                coroutine = function(*message.args, **message.kwargs)
        except BaseException as exc:
            failure = exc
        self._forget_thread_deadline()
        if steps is not None and failure is None and not message.failed:
            self._started(_Starting(steps, message, actor, context))
            return
        if coroutine is None:
            self._settle(message, actor, context, None, failure)
            return
        assert self._loop is not None
        limit = self._time_limit(message, actor)
        self._loop.call_soon_threadsafe(
            self._start, _limited(coroutine, limit), message, actor, context, context=context
        )

    def _start(
        self,
        coroutine: Coroutine[Any, Any, Any],
        message: MessageProxy,
        actor: dramatiq.Actor[Any, Any],
        context: contextvars.Context,
        steps: Steps | None = None,
        state: Any = None,
    ) -> None:
        assert self._loop is not None
        task = self._loop.create_task(coroutine, context=context)
        ending = _Ending(task, message, actor, context, steps, state)
        task.add_done_callback(lambda _: self._ended(ending))

    def _ended(self, ending: _Ending) -> None:
        """On the loop: a coroutine ended; a step thread settles it with those waiting.
        One drain of the waiting is queued for the step threads at a time, so those that
        end while it waits its turn behind first steps are settled together with it."""
        if self._ending.add(ending):
            self._step_pool.submit(self._finish_waiting)

    def _started(self, starting: _Starting) -> None:
        """A message whose first step waits for a step thread; as with endings
        (:meth:`_ended`), one drain of the waiting is queued at a time, so the first
        steps that come while it waits its turn run together with it."""
        if self._starting.add(starting):
            self._step_pool.submit(self._first_waiting)

    def _first_waiting(self) -> None:
        """On a step thread: the first steps waiting (up to :data:`FIRST_GROUP`), those
        of one job's steps together (``Steps.first_together``); then each message's
        awaited step onto the loop, or its settling when its first step raised."""
        startings, more = self._starting.take(FIRST_GROUP)
        if more:
            self._step_pool.submit(self._first_waiting)
        jobs: dict[int, tuple[Steps, list[_Starting]]] = {}
        for starting in startings:
            jobs.setdefault(id(starting.steps), (starting.steps, []))[1].append(starting)
        for steps, started in jobs.values():
            together = getattr(steps, "first_together", None)
            try:
                if together is not None and len(started) > 1:
                    ran = together(self.broker, [(starting.message, starting.context.run)
                                                 for starting in started])
                else:
                    ran = [outcome_of(partial(starting.context.run, steps.first, self.broker,
                                              starting.message)) for starting in started]
            except BaseException as exc:  # noqa: BLE001 - the group's error is each message's
                self.logger.exception("The first steps of %d messages failed together.",
                                      len(started))
                ran = [[None, exc] for _ in started]
            for starting, (state, exception) in zip(started, ran, strict=True):
                try:
                    self._opened(starting, state, exception)
                except Exception:  # noqa: BLE001 - one message's failure leaves the others
                    self.logger.exception("Could not start message %s.", starting.message)

    def _opened(self, starting: _Starting, state: Any, exception: BaseException | None) -> None:
        """The awaited step onto the loop (in the message's context, which this thread
        has left), with the last step for :meth:`_finish_waiting`; or the message settled
        with the first step's error."""
        message, actor, context = starting.message, starting.actor, starting.context
        if exception is not None:
            self._settle(message, actor, context, None, exception)
            return
        assert self._loop is not None
        steps = starting.steps
        coroutine = _limited(steps.awaited(state), self._time_limit(message, actor))
        self._loop.call_soon_threadsafe(
            self._start, coroutine, message, actor, context, steps, state, context=context,
        )

    def _finish_waiting(self) -> None:
        """On a step thread: settle the messages whose coroutines ended and that no other
        step thread took yet (up to :data:`LAST_GROUP`), each after its job's ``last``
        step when it has one (given what the coroutine returned or raised), those of one
        job's steps together (``Steps.last_together``). A coroutine cancelled (the loop
        stopped under it) is left unacknowledged."""
        endings, more = self._ending.take(LAST_GROUP)
        if more:
            self._step_pool.submit(self._finish_waiting)
        outcomes: dict[int, list[Any]] = {}
        jobs: dict[int, tuple[Steps, list[_Ending]]] = {}
        for ending in endings:
            if ending.task.cancelled():
                continue
            exception = ending.task.exception()
            outcome = [None if exception else ending.task.result(), exception]
            outcomes[id(ending)] = outcome
            if ending.steps is not None:
                jobs.setdefault(id(ending.steps), (ending.steps, []))[1].append(ending)
        for steps, ended in jobs.values():
            lasts = [(ending.state, partial(ending.context.run, steps.last, ending.state,
                                            outcomes[id(ending)][1] or outcomes[id(ending)][0]))
                     for ending in ended]
            together = getattr(steps, "last_together", None)
            try:
                ran = together(self.broker, lasts) if together is not None else \
                    [outcome_of(call) for _, call in lasts]
            except BaseException as exc:  # noqa: BLE001 - the group's error is each message's
                self.logger.exception("The last steps of %d messages failed together.",
                                      len(lasts))
                ran = [[None, exc] for _ in lasts]
            for ending, (result, exception) in zip(ended, ran, strict=True):
                outcomes[id(ending)] = [result, exception]
        for ending in endings:
            if id(ending) not in outcomes:
                self._release()
                self.work_queue.task_done()
                continue
            result, exception = outcomes[id(ending)]
            try:
                self._settle(ending.message, ending.actor, ending.context, result, exception)
            except Exception:  # noqa: BLE001 - one message's failure leaves the others to settle
                self.logger.exception("Could not settle message %s.", ending.message)

    def _settle(
        self,
        message: MessageProxy,
        actor: dramatiq.Actor[Any, Any],
        context: contextvars.Context,
        result: Any,
        exception: BaseException | None,
    ) -> None:
        """The after hooks, then the ack or nack: what dramatiq's
        ``WorkerThread.process_message`` does once the actor returned or raised. An ack
        goes to the acknowledging thread when the consumer takes them in batches
        (``ack_many``); the message is settled once it is sent."""
        try:
            context.run(self._after, message, actor, result, exception)
        finally:
            self._ack_or_nack(message)

    def _ack_or_nack(self, message: MessageProxy) -> None:
        thread = self.consumers[message.queue_name]
        if not message.failed and hasattr(thread.consumer, "ack_many") and \
                self._acks.put(message):
            return
        try:
            thread.post_process_message(message)
        finally:
            self._settled_one(message)

    def _settled_one(self, message: MessageProxy) -> None:
        self.work_queue.task_done()
        message.clear_exception()
        self._release()

    def _ack_batch(self, batch: list[MessageProxy], stopping: Callable[[], bool]) -> None:
        """On the acknowledging thread: acknowledge ``batch`` a queue at a time, one round
        trip each, with dramatiq's ``before_ack`` and ``after_ack`` hooks for every
        message; a lost connection is retried as dramatiq's worker retries an ack, until
        it is back or the worker stops (the messages then stay unacknowledged and are
        delivered again). Then each message is settled."""
        queues: dict[str, list[MessageProxy]] = {}
        for message in batch:
            queues.setdefault(message.queue_name, []).append(message)
        for queue_name, messages in queues.items():
            thread = self.consumers[queue_name]
            try:
                for message in messages:
                    self.broker.emit_before("ack", message)
                while True:
                    try:
                        consumer: Any = thread.consumer
                        if consumer is None:  # reconnecting: as good as a lost connection
                            raise ConnectionClosed(OSError(f"{queue_name}: no consumer"))
                        consumer.ack_many(messages)
                        break
                    except ConnectionClosed as exc:
                        if stopping():
                            self.logger.warning("Could not acknowledge %d messages while "
                                                "stopping (%s); they are delivered again.",
                                                len(messages), exc)
                            break
                        self.logger.warning("Could not acknowledge %d messages (%s); "
                                            "trying again in %s s.", len(messages), exc,
                                            ACK_RETRY_SECONDS)
                        time.sleep(ACK_RETRY_SECONDS)
                for message in messages:
                    self.broker.emit_after("ack", message)
            except Exception:
                self.logger.exception("Could not acknowledge %d messages; they are "
                                      "delivered again.", len(messages))
            finally:
                for message in messages:
                    self._settled_one(message)

    def _after(
        self,
        message: MessageProxy,
        actor: dramatiq.Actor[Any, Any],
        result: Any,
        exception: BaseException | None,
    ) -> None:
        if exception is None:
            self.broker.emit_after("process_message", message, result=result)
            return
        if isinstance(exception, SkipMessage):
            if message.failed:
                message.stuff_exception(exception)
            self.logger.warning("Message %s was skipped.", message)
            self.broker.emit_after("skip_message", message)
            return
        message.stuff_exception(exception)
        throws = message.options.get("throws") or actor.options.get("throws")
        if isinstance(exception, RateLimitExceeded):
            self.logger.debug("Rate limit exceeded in message %s: %s.", message, exception)
        elif throws and isinstance(exception, throws):
            self.logger.info("Failed to process message %s with expected exception %s.",
                             message, type(exception).__name__)
        elif not isinstance(exception, Retry):
            self.logger.error("Failed to process message %s with unhandled exception.",
                              message, exc_info=exception)
        self.broker.emit_after("process_message", message, exception=exception)

    def _release(self) -> None:
        with self._settled:
            self.in_flight -= 1
            self._settled.notify_all()
        self._slots.release()

    def _forget_thread_deadline(self) -> None:
        """Take ``TimeLimit``'s deadline off this worker thread, which is not the
        message's any more (the coroutine carries the limit instead)."""
        for middleware in self.broker.middleware:
            if isinstance(middleware, TimeLimit):
                middleware.manager.remove_timeout(threading.get_ident())
                return

    def _time_limit(self, message: MessageProxy, actor: dramatiq.Actor[Any, Any]) -> float | None:
        """The message's time limit in seconds, as ``TimeLimit`` reads it; ``None`` without one."""
        for middleware in self.broker.middleware:
            if isinstance(middleware, TimeLimit):
                limit = message.options.get("time_limit") or actor.options.get(
                    "time_limit", middleware.time_limit)
                return None if limit == float("inf") else float(limit) / 1000
        return None


def settle_heap() -> None:
    """Tune this process's garbage collector for a life of running jobs, once it has booted.

    Every object it holds by now (modules, the store's and the broker's clients,
    compiled schemas) is collected once and frozen (``gc.freeze``): they live as long
    as the process, and each full collection would otherwise walk them all again
    while hundreds of jobs are in flight. The youngest generation is then collected
    every :data:`YOUNG_GC_THRESHOLD` allocations instead of Python's 700: a job
    allocates thousands of short-lived objects that reference counting frees anyway,
    and with many jobs in flight each of those collections walked them all
    (``bench/transfer.py``: about 7 % of the worker's CPU per job;
    ``bench/final_prices.py``: about 10 % of the sync's).
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_GC_THRESHOLD, *gc.get_threshold()[1:])


class _Waiting(Generic[W]):
    """Messages waiting for a step thread, with at most one drain of them queued: those
    that come while it waits its turn are taken with it."""

    def __init__(self) -> None:
        self._items: deque[W] = deque()
        self._lock = threading.Lock()
        self._queued = False

    def add(self, item: W) -> bool:
        """Add ``item``; ``True`` when no drain is queued (the caller queues one)."""
        with self._lock:
            self._items.append(item)
            if self._queued:
                return False
            self._queued = True
            return True

    def take(self, most: int) -> tuple[list[W], bool]:
        """The drain's part: up to ``most`` items, and whether more wait (the caller then
        queues the next drain)."""
        with self._lock:
            taken = [self._items.popleft() for _ in range(min(most, len(self._items)))]
            self._queued = bool(self._items)
            return taken, self._queued


@dataclass(slots=True)
class _Starting:
    """A message handed off with its job's steps, waiting for a step thread to run the
    first one."""

    steps: Steps
    message: MessageProxy
    actor: dramatiq.Actor[Any, Any]
    context: contextvars.Context


@dataclass(slots=True)
class _Ending:
    """A message whose coroutine ended, waiting for a step thread to settle it."""

    task: asyncio.Task[Any]
    message: MessageProxy
    actor: dramatiq.Actor[Any, Any]
    context: contextvars.Context
    steps: Steps | None
    state: Any


def outcome_of(call: Callable[[], Any]) -> list[Any]:
    """``[result, None]`` of ``call``, or ``[None, exception]`` when it raised: a message's
    outcome, as ``Steps.last_together`` returns each."""
    try:
        return [call(), None]
    except BaseException as exc:  # noqa: BLE001 - the message's outcome, settled by the caller
        return [None, exc]


class _Acks:
    """The acknowledgements of the messages a :class:`ConcurrentWorker` settled, sent by
    a thread of their own: it waits :data:`ACK_WINDOW` after the first one and then
    sends all that settled meanwhile in one round trip (``ack_many``), instead of a
    round trip on the settling step thread for each (``bench/latency.py``)."""

    def __init__(self, owner: ConcurrentWorker) -> None:
        self.owner = owner
        self._pending: list[MessageProxy] = []
        self._ready = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None

    def put(self, message: MessageProxy) -> bool:
        """Queue ``message``'s ack; ``False`` once the thread is stopping (the caller
        then acknowledges it itself)."""
        with self._ready:
            if self._stopping:
                return False
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="acks", daemon=True)
                self._thread.start()
            self._pending.append(message)
            if len(self._pending) == 1:
                self._ready.notify()
            return True

    def stop(self, timeout: float = 10.0) -> None:
        """Send what is queued, then end the thread."""
        with self._ready:
            self._stopping = True
            self._ready.notify()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._ready:
                self._ready.wait_for(lambda: self._pending or self._stopping)
                if not self._pending:
                    return
                stopping = self._stopping
            if not stopping:
                time.sleep(ACK_WINDOW)
            with self._ready:
                batch, self._pending = self._pending, []
            self.owner._ack_batch(batch, lambda: self._stopping)


class _HandingThread(WorkerThread):
    """A worker thread that hands concurrent actors' messages to its worker."""

    def __init__(self, *, owner: ConcurrentWorker, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.owner = owner

    def process_message(self, message: MessageProxy) -> None:
        function = None
        if not message.failed:
            try:
                actor = self.broker.get_actor(message.actor_name)
            except dramatiq.errors.ActorNotFound:
                actor = None
            function = concurrent_function(actor) if actor is not None else None
        if function is None or actor is None:
            super().process_message(message)
            return
        self.owner.hand_off(message, actor, function, actor.options.get("steps"))


async def _limited(coroutine: Coroutine[Any, Any, Any], limit: float | None) -> Any:
    """Await ``coroutine``; past ``limit`` seconds it is cancelled and the message
    fails with dramatiq's ``TimeLimitExceeded``, as a thread past its limit would."""
    if limit is None:
        return await coroutine
    deadline = asyncio.timeout(limit)
    try:
        async with deadline:
            return await coroutine
    except TimeoutError:
        if deadline.expired():
            raise TimeLimitExceeded(f"the job ran longer than its {limit:g} s time limit") from None
        raise


def _configured(broker: dramatiq.Broker, setting: str, default: int) -> int:
    """``setting`` of the runtime the broker carries, else ``default``."""
    from syndication.runtime import RuntimeMiddleware

    for middleware in broker.middleware:
        if isinstance(middleware, RuntimeMiddleware):
            return int(getattr(middleware.runtime.settings, setting))
    return default
