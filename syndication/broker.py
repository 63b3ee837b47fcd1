"""The dramatiq broker, built once from the settings.

:func:`setup_broker` decides which broker the worker runs on:

* ``SYNDICATION_BROKER_URL`` unset — dramatiq's in-process ``StubBroker``; the
  CLI runs the jobs on worker threads of its own process
  (:func:`in_process_worker`), so one machine needs nothing else.
* ``redis://…`` — dramatiq's ``RedisBroker``, shared by workers on many
  machines. A worker that dies keeps its unacknowledged messages in its own
  ack set; another worker's queue maintenance gives them back to the queue
  once the dead worker's heartbeat is older than ``heartbeat_timeout``. Every
  idle consumer polls about once a second and runs maintenance with
  probability :data:`MAINTENANCE_CHANCE` per million commands (25 %), so a
  message whose worker died is redelivered within seconds of the heartbeat
  timeout (default 60 s): well within two minutes.

Either way the broker gets dramatiq's ``Retries`` middleware with exponential
backoff, the middleware of :mod:`syndication.middleware`, and the
:class:`Runtime`. Each actor's retry budget is the ``max_retries`` it declares;
``settings.max_retries`` is only the default of an actor that declares none
(the transfer actors). Permanent errors are never retried because every actor
that is retried at all declares ``throws=(PermanentError,)``. No broker-wide
``retry_when`` is set: dramatiq lets such a predicate override every actor's
``max_retries``. Only then are the actors of
:mod:`syndication.jobs` declared on it, since an actor declared on a broker
without that middleware is refused by dramatiq (its ``lifecycle=`` option
would be unknown). Every entry point gets the actors from
:func:`setup_broker` and never imports :mod:`syndication.jobs` before it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from importlib import import_module
from typing import Any
from uuid import uuid4

import dramatiq
import dramatiq.broker
import redis
from dramatiq.brokers.redis import RedisBroker, _RedisConsumer
from dramatiq.brokers.stub import StubBroker
from dramatiq.common import current_millis, dq_name
from dramatiq.errors import ConnectionClosed
from dramatiq.middleware import CurrentMessage, Middleware, MiddlewareError, Retries
from hiredis import pack_command

from syndication.bulkheads import Bulkhead
from syndication.concurrent.worker import DaemonLoopAsyncIO
from syndication.errors import ConfigurationError
from syndication.middleware import JobLifecycle, LogContext, Metrics
from syndication.outbox import DurableRetries, OutboxRelay, Relay
from syndication.runtime import Runtime, attach_runtime, current_runtime
from syndication.settings import Settings

MAINTENANCE_CHANCE = 250_000
"""Out of a million Redis commands, how many also requeue dead workers' messages."""

MAX_BACKOFF_MS = 10 * 60_000
"""The longest wait between two tries of a failed message."""


def setup_broker(settings: Settings, runtime: Runtime) -> dramatiq.Broker:
    """Build the configured broker, make it dramatiq's global broker, declare
    the actors on it and return it.

    Actors declared on a broker set up earlier in this process (tests, the
    demo) move to the new one, so each call gives a working broker.
    """
    broker = _make_broker(settings)
    _install_middleware(broker, settings)
    attach_runtime(broker, runtime)
    previous = dramatiq.broker.global_broker
    dramatiq.set_broker(broker)
    if previous is not None and previous is not broker:
        for actor in list(previous.actors.values()):
            actor.broker = broker
            broker.declare_actor(actor)
    import_module("syndication.jobs")
    return broker


def is_in_process(broker: dramatiq.Broker) -> bool:
    """True when jobs run in this process (no Redis configured)."""
    return isinstance(broker, StubBroker)


def metrics(broker: dramatiq.Broker) -> Metrics:
    """The :class:`Metrics` middleware of ``broker``."""
    for middleware in broker.middleware:
        if isinstance(middleware, Metrics):
            return middleware
    raise RuntimeError("the broker was not set up by setup_broker()")


@contextmanager
def in_process_worker(broker: dramatiq.Broker, threads: int) -> Iterator[dramatiq.Worker]:
    """Run a dramatiq worker with ``threads`` threads in this process while in the block."""
    worker = dramatiq.Worker(broker, worker_threads=threads, worker_timeout=100)
    worker.start()
    try:
        yield worker
    finally:
        worker.stop()


@contextmanager
def relay_thread(broker: dramatiq.Broker, name: str) -> Iterator[Relay]:
    """Run the outbox relay (and its sweeps) on a thread while in the block: for a
    process that sends messages without running a dramatiq worker (the scheduler)."""
    runtime = current_runtime(broker)
    relay = Relay(runtime.engine, broker, name=name, sweeps=[_fan_out_sweep(broker)]).start()
    try:
        yield relay
    finally:
        relay.stop()


def _make_broker(settings: Settings) -> dramatiq.Broker:
    url = settings.broker_url
    if not url:
        return StubBroker()
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigurationError(
            f"SYNDICATION_BROKER_URL must be a redis:// URL or unset, not {url.split(':', 1)[0]}://…"
        )
    return RecoveringRedisBroker(
        url=url,
        heartbeat_timeout=settings.heartbeat_timeout_ms,
        maintenance_chance=MAINTENANCE_CHANCE,
    )


class _ReturningConsumer(_RedisConsumer):  # type: ignore[misc]
    """dramatiq's Redis consumer, which on closing also gives back what it fetched ahead.

    A fetch moves up to ``prefetch`` messages into this worker's ack set at once and
    keeps those not yet handed to the worker in ``message_cache``. dramatiq's own
    consumer leaves them there when it closes, so after a graceful stop they wait
    until this worker's heartbeat is old enough for another worker to take them
    over. Here they go back to their queue straight away.

    A consumer that holds ``prefetch`` messages unacknowledged may fetch no more;
    dramatiq's then counts each look as a miss of an empty queue and sleeps ever
    longer, up to its timeout (a second), so when many messages are settled at
    once the worker waits out that sleep with its pipeline draining. This one
    waits for the ack that makes room instead, and fetches at once."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._room = threading.Condition()

    def __next__(self) -> dramatiq.broker.MessageProxy | None:
        if not self.message_cache and self._full():
            with self._room:
                self._room.wait_for(lambda: not self._full(), timeout=self.timeout / 1000)
            if self._full():
                return None
        message: dramatiq.broker.MessageProxy | None = super().__next__()
        return message

    def _full(self) -> bool:
        return bool(self.outstanding_message_count >= self.prefetch)

    def _made_room(self) -> None:
        with self._room:
            self._room.notify_all()

    def ack(self, message: dramatiq.broker.MessageProxy) -> None:
        try:
            super().ack(message)
        finally:
            self._made_room()

    def nack(self, message: dramatiq.broker.MessageProxy) -> None:
        try:
            super().nack(message)
        finally:
            self._made_room()

    def close(self) -> None:
        cached, self.message_cache = self.message_cache, []
        ids = [dramatiq.Message.decode(data).options["redis_message_id"]
               for data in cached if data is not None]
        try:
            if ids:
                self.broker.do_requeue(self.queue_name, *ids)
        except redis.ConnectionError:
            self.logger.warning("Could not give back %d prefetched messages of %r; they are "
                                "delivered again once this worker's heartbeat is gone.",
                                len(ids), self.queue_name)
        super().close()

    def ack_many(self, messages: Sequence[dramatiq.broker.MessageProxy]) -> None:
        """Acknowledge ``messages`` (all fetched by this consumer) in one round trip:
        Redis runs dramatiq's ``dispatch`` script for each, as :meth:`ack` does for one.
        A lost connection is ``ConnectionClosed`` and acknowledges none for certain
        (those Redis did take are acknowledged again when the caller retries, which
        changes nothing)."""
        try:
            self.broker.ack_encoded(self.queue_name,
                                    [m.options["redis_message_id"] for m in messages])
        finally:
            for message in messages:
                self.queued_message_ids.discard(message.message_id)
            self._made_room()


ENQUEUE_MANY = """
-- KEYS: a queue's list of message ids, its hash of messages by id.
-- ARGV: id, body, id, body, ... in the order they are queued.
for i = 1, #ARGV, 2 do
    redis.call("hset", KEYS[2], ARGV[i], ARGV[i + 1])
    redis.call("rpush", KEYS[1], ARGV[i])
end
return #ARGV / 2
"""
"""Many encoded messages queued as dramatiq's ``dispatch`` script queues one
(:meth:`RecoveringRedisBroker.enqueue_encoded`)."""


class RecoveringRedisBroker(RedisBroker):
    """dramatiq's Redis broker, made to keep delayed messages across a lost connection.

    When a consumer loses its connection, dramatiq's worker drops the delayed
    messages it held in memory (retries waiting for their backoff) while Redis
    still lists them in this live worker's ack set; heartbeat maintenance never
    frees them because the worker is not dead, so they would wait forever. Each
    time a consumer for a queue is opened again in this process, the messages
    this broker still holds unacknowledged on that queue go back to it first.
    A message that was in fact still being worked on may then run twice, which
    the transfer jobs tolerate (R10: same document, same idempotency key).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._hooks: dict[str, tuple[list[Middleware], list[tuple[Middleware, Any]]]] = {}
        super().__init__(*args, **kwargs)
        self._opened_queues: set[str] = set()
        self._enqueue_many = self.client.register_script(ENQUEUE_MANY)

    def emit_before(self, signal: str, *args: Any, **kwargs: Any) -> None:
        """dramatiq's ``emit_before``, calling only the middleware that define the hook."""
        name = "before_" + signal
        for middleware, hook in self._defining(name):
            try:
                hook(self, *args, **kwargs)
            except MiddlewareError:
                raise
            except Exception:
                self.logger.critical("Unexpected failure in %s of %r.", name, middleware,
                                     exc_info=True)

    def emit_after(self, signal: str, *args: Any, **kwargs: Any) -> None:
        """dramatiq's ``emit_after``, calling only the middleware that define the hook."""
        name = "after_" + signal
        for middleware, hook in reversed(self._defining(name)):
            try:
                hook(self, *args, **kwargs)
            except Exception:
                self.logger.critical("Unexpected failure in %s of %r.", name, middleware,
                                     exc_info=True)

    def _defining(self, name: str) -> list[tuple[Middleware, Any]]:
        """The middleware whose class defines hook ``name`` (not only inherits dramatiq's
        empty one), in order, with the bound hook. A job's messages emit some ten signals
        through fourteen middleware, most of which do nothing for most of them; the list
        is made again whenever the broker's middleware changed."""
        known = self._hooks.get(name)
        if known is not None and known[0] == self.middleware:
            return known[1]
        empty = getattr(Middleware, name, None)
        defining = [(middleware, getattr(middleware, name)) for middleware in self.middleware
                    if getattr(type(middleware), name, None) is not empty
                    or name in getattr(middleware, "__dict__", ())]
        self._hooks[name] = (list(self.middleware), defining)
        return defining

    def consume(self, queue_name: str, prefetch: int = 1, timeout: int = 5000) -> Any:
        if queue_name in self._opened_queues:
            self._requeue_unacknowledged(queue_name)
        self._opened_queues.add(queue_name)
        return _ReturningConsumer(self, queue_name, prefetch, timeout)

    def _dispatch(self, command: str) -> Any:
        """Every Redis script call, with a lost connection raised as dramatiq's
        ``ConnectionClosed``: the worker's consumer threads expect that error and
        reconnect, where a bare ``redis.ConnectionError`` (from ``enqueue`` in the
        delay-queue consumer, or ``requeue`` while closing) kills the thread."""
        dispatch = super()._dispatch(command)

        def translated(queue_name: str, *args: Any) -> Any:
            try:
                return dispatch(queue_name, *args)
            except redis.ConnectionError as exc:
                raise ConnectionClosed(exc) from None

        return translated

    def enqueue_many(self, items: Sequence[tuple[dramatiq.Message[Any], int | None]]) -> None:
        """Enqueue each ``(message, delay)`` as :meth:`enqueue` does — its own Redis
        message id, a delay moving it to the delay queue, the middleware's
        ``before_enqueue``/``after_enqueue`` — but through one pipeline: one round trip
        for all of them instead of one each, which bounded a fan-out of thousands.

        Redis runs dramatiq's own ``dispatch`` script for each, so the stored messages
        are exactly those of :meth:`enqueue`. When the pipeline fails none of them
        counts as sent: those Redis did take are sent once more, which every consumer
        tolerates (R10), as with any message sent twice.
        """
        dispatch = self.scripts["dispatch"]
        pipeline = self.client.pipeline(transaction=False)
        staged: list[tuple[dramatiq.Message[Any], int | None]] = []
        for original, delay in items:
            message = original.copy(options={"redis_message_id": str(uuid4())})
            queue_name = message.queue_name
            if delay is not None:
                queue_name = dq_name(queue_name)
                message = message.copy(queue_name=queue_name,
                                       options={"eta": current_millis() + delay})
            self.emit_before("enqueue", message, delay)
            dispatch(keys=[self.namespace], client=pipeline, args=[
                "enqueue", current_millis(), queue_name, self.broker_id,
                self.heartbeat_timeout, self.dead_message_ttl,
                self._should_do_maintenance("enqueue"), self._max_unpack_size(),
                message.options["redis_message_id"], message.encode(),
            ])
            staged.append((message, delay))
        try:
            pipeline.execute()
        except redis.ConnectionError as exc:
            raise ConnectionClosed(exc) from None
        for message, delay in staged:
            self.emit_after("enqueue", message, delay)

    def enqueue_encoded(self, queue_name: str, messages: Sequence[tuple[str, bytes]]) -> None:
        """Enqueue messages already encoded, each ``(redis message id, body)`` where the
        body is dramatiq's encoding of the message with that id in its
        ``redis_message_id`` option, on ``queue_name`` without delay, in order. It emits
        no enqueue hooks, so it is for a broker whose middleware has none
        (:func:`syndication.outbox.bulk.sends_encoded`).

        Redis stores them as dramatiq's ``dispatch`` script stores one (its
        ``enqueue``: the body in the queue's hash under the id, then the id at the end
        of the queue's list), for all of them in one call of :data:`ENQUEUE_MANY`: a
        call of ``dispatch`` per message cost Redis some 16 µs each (its heartbeat
        and maintenance check, its arguments copied), as much again as the rest of a
        fan-out's send. The script leaves out the heartbeat ``dispatch`` records for
        the broker that calls it, which only a consumer's acks need. One call is
        atomic: Redis holds all of the messages or none. A script Redis does not hold
        yet is loaded and the call sent again; any other refusal or a lost connection
        is ``ConnectionClosed``, as in :meth:`enqueue_many`.
        """
        if not messages:
            return
        queue = f"{self.namespace}:{queue_name}"
        flat = [part for message in messages for part in message]
        self._run_scripts(self._enqueue_many, [
            ("EVALSHA", self._enqueue_many.sha, 2, queue, f"{queue}.msgs", *flat)])

    def ack_encoded(self, queue_name: str, redis_message_ids: Sequence[str]) -> None:
        """Acknowledge the messages of ``queue_name`` this broker's worker fetched, by
        their Redis message ids: dramatiq's ``dispatch`` script with ``ack`` for each,
        all written to one connection at once (:meth:`_send_commands`)."""
        self._dispatch_all("ack", queue_name, [(rid,) for rid in redis_message_ids])

    def _dispatch_all(self, command: str, queue_name: str,
                      arguments: Sequence[tuple[Any, ...]]) -> None:
        """dramatiq's ``dispatch`` script run with ``command`` on ``queue_name`` once per
        item of ``arguments`` (that call's own arguments), all written at once
        (:meth:`_send_commands`). A script Redis does not hold yet is loaded and the
        calls it refused sent again; any other refusal or a lost connection is
        ``ConnectionClosed``."""
        dispatch = self.scripts["dispatch"]
        fixed = (queue_name, self.broker_id, self.heartbeat_timeout, self.dead_message_ttl)
        try:
            unpack = self._max_unpack_size()  # asks Redis on a process's first call
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise ConnectionClosed(exc) from None
        self._run_scripts(dispatch, [
            ("EVALSHA", dispatch.sha, 1, self.namespace, command, current_millis(), *fixed,
             self._should_do_maintenance(command), unpack, *each)
            for each in arguments
        ])

    def _run_scripts(self, script: Any, commands: Sequence[tuple[Any, ...]]) -> None:
        """``commands``, each an ``EVALSHA`` of ``script``, written at once
        (:meth:`_send_commands`). A script Redis does not hold yet is loaded and the
        calls it refused sent again; any other refusal or a lost connection is
        ``ConnectionClosed``."""
        refused = self._send_commands(commands)
        if refused and all(isinstance(exc, redis.exceptions.NoScriptError)
                           for _, exc in refused):
            try:
                self.client.script_load(script.script)
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                raise ConnectionClosed(exc) from None
            refused = self._send_commands([commands[n] for n, _ in refused])
        if refused:
            raise ConnectionClosed(refused[0][1])

    def _send_commands(self, commands: Sequence[tuple[Any, ...]]
                       ) -> list[tuple[int, redis.exceptions.ResponseError]]:
        """Write ``commands`` to one pooled connection in one write and read every answer; the
        position and error of each one Redis refused. A lost connection is
        :class:`ConnectionClosed` (the connection is dropped, not reused)."""
        pool = self.client.connection_pool
        try:
            connection = pool.get_connection()
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise ConnectionClosed(exc) from None
        try:
            connection.send_packed_command([b"".join(map(pack_command, commands))])
            refused = []
            for position in range(len(commands)):
                try:
                    connection.read_response()
                except redis.exceptions.ResponseError as exc:
                    refused.append((position, exc))
            return refused
        except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
            connection.disconnect()
            raise ConnectionClosed(exc) from None
        finally:
            pool.release(connection)

    def _requeue_unacknowledged(self, queue_name: str) -> None:
        acks_key = f"{self.namespace}:__acks__.{self.broker_id}.{queue_name}"
        try:
            message_ids = [m.decode() for m in self.client.smembers(acks_key)]
            if message_ids:
                self.do_requeue(queue_name, *message_ids)
        except (redis.ConnectionError, ConnectionClosed):
            return  # still unreachable: the consumer's own reconnect loop tries again


def _install_middleware(broker: dramatiq.Broker, settings: Settings) -> None:
    """Replace dramatiq's default ``Retries`` with ours and add the cross-cutting middleware.

    ``Retries`` (as :class:`~syndication.outbox.DurableRetries`, whose retry is
    in Redis or in the outbox before the message is acknowledged) gets the
    settings' budget and backoff as defaults only, and no ``retry_when``: an
    actor's own ``max_retries``, ``min_backoff`` and ``throws`` decide for its
    messages. :class:`Bulkhead` comes before :class:`JobLifecycle`, so a message
    put back for want of a thread is not counted as an attempt.
    :class:`~syndication.outbox.OutboxRelay` runs the outbox relay (and the
    fan-out takeover) on a thread of every worker. dramatiq's ``AsyncIO`` runs the event
    loop of the ``async def`` transfer actor (:mod:`syndication.concurrent` uses the same
    loop). dramatiq's ``Prometheus`` is
    added when ``syndication worker --metrics-port`` set its variables (it forks its
    exposition server from dramatiq's CLI, so it is of use there alone).
    """
    retries = DurableRetries(
        max_retries=settings.max_retries,
        min_backoff=settings.min_backoff_ms,
        max_backoff=MAX_BACKOFF_MS,
    )
    broker.middleware[:] = [m for m in broker.middleware if not isinstance(m, Retries)]
    broker.add_middleware(retries)
    broker.add_middleware(CurrentMessage())
    broker.add_middleware(DaemonLoopAsyncIO())
    broker.add_middleware(LogContext(), before=Retries)
    broker.add_middleware(Metrics(), before=Retries)
    broker.add_middleware(JobLifecycle(), before=Retries)
    broker.add_middleware(
        Bulkhead(settings.marketplace_threads, settings.bulkhead_delay_ms,
                 concurrent_limit=settings.marketplace_in_flight),
        before=JobLifecycle,
    )
    broker.add_middleware(OutboxRelay(sweeps=[_fan_out_sweep]))
    if settings.environ.get("PROMETHEUS_MULTIPROC_DIR") and settings.environ.get(
        "dramatiq_prom_port"
    ):
        from dramatiq.middleware.prometheus import Prometheus

        broker.add_middleware(Prometheus())


def _fan_out_sweep(broker: dramatiq.Broker) -> Any:
    """The relay's sweep that takes over fan-outs whose process stopped."""
    from syndication.jobs.transfer import fan_out_sweep

    return fan_out_sweep(broker)
