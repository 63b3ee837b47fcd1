"""Attempts of transfer jobs: counted in the store, bounded, and ended in ``failed``.

The transfer actor's body is :meth:`TransferLifecycle.run`: it builds the
message's :class:`~syndication.transfer.starts.Start` and runs the job
(:func:`~syndication.transfer.job.run_transfer_job`), whose first transaction
counts the attempt and records the start and whose last removes it
(:mod:`syndication.transfer.starts` says what a worker death is). A start that
cannot reach the store is not run: the message is put back, uncounted as a
try, and counted when the store answers again.

dramatiq calls :meth:`TransferLifecycle.gave_up` through
:class:`syndication.middleware.JobLifecycle` when it will not retry the
message (retry budget spent, or an error it must not retry): ``failed`` with
the last error, and every start of the message removed.
"""

from __future__ import annotations

from typing import Any

import dramatiq
from sqlalchemy.exc import SQLAlchemyError

from syndication.logs import get_logger
from syndication.middleware import Deferred, deferred
from syndication.registry import title
from syndication.runtime import current_runtime
from syndication.store.db import begin
from syndication.store.statements import StartEnd, write_status
from syndication.transfer.common import JobRef, Scheduler
from syndication.transfer.job import Found, JobOutcome, Prepared, carry_out, decide, find
from syndication.transfer.starts import Start
from syndication.workers import Liveness, this_worker

MAX_START_DELAY_MS = 30_000
"""The longest a start waits for an unreachable store before it is tried again."""


def job_of(message: dramatiq.Message[Any]) -> JobRef:
    """The :class:`JobRef` a transfer message carries."""
    kwargs = message.kwargs
    return JobRef(kwargs["listing_id"], kwargs["marketplace"], kwargs["request_id"])


class TransferLifecycle:
    """The transfer actor's body and its ``lifecycle=`` hook.

    ``identity`` says which worker process this is (tests pretend to be others).
    """

    def __init__(self) -> None:
        self.identity = this_worker

    def start_of(
        self, broker: dramatiq.Broker, message: dramatiq.Message[Any], *, isolated: bool = False
    ) -> Start:
        """The :class:`Start` of ``message`` on this worker (``isolated``: see
        :class:`~syndication.transfer.starts.DiedBefore`)."""
        runtime = current_runtime(broker)
        liveness = Liveness(broker, heartbeat_ms=runtime.settings.heartbeat_timeout_ms)
        return Start(
            message_id=message.message_id, worker=self.identity().key,
            broker_id=getattr(broker, "broker_id", None), alive=liveness.alive,
            max_deaths=runtime.settings.max_worker_deaths, isolated=isolated,
        )

    def run(
        self, broker: dramatiq.Broker, message: dramatiq.Message[Any], scheduler: Scheduler
    ) -> JobOutcome:
        """Run ``message``'s job with its start counted; put the message back, uncounted,
        when the store cannot be reached to count it."""
        return carry_out(current_runtime(broker), self.prepared(broker, message, scheduler))

    def prepared(
        self, broker: dramatiq.Broker, message: dramatiq.Message[Any], scheduler: Scheduler,
        *, isolated: bool = False,
    ) -> Prepared:
        """The first step of ``message``'s job with its start counted (:meth:`run`; the
        concurrent job sends and finishes it on its own, and with ``isolated`` is told by
        :class:`~syndication.transfer.starts.DiedBefore` when the start found a death)."""
        return decide(self.found(broker, message, scheduler, isolated=isolated))

    def found(
        self, broker: dramatiq.Broker, message: dramatiq.Message[Any], scheduler: Scheduler,
        *, isolated: bool = False,
    ) -> Found:
        """The store's part of :meth:`prepared` (:func:`~syndication.transfer.job.find`);
        a store that cannot be reached puts the message back (:meth:`not_counted`)."""
        start = self.start_of(broker, message, isolated=isolated)
        try:
            return find(current_runtime(broker), job_of(message), scheduler, start=start)
        except SQLAlchemyError as exc:
            raise self.not_counted(message, exc) from exc

    def not_counted(self, message: dramatiq.Message[Any], error: SQLAlchemyError) -> Deferred:
        """What the start of ``message`` raises when the store could not count it (the
        ``error``): the message is put back, not counted as a try, and tried again after
        a delay that doubles with each such put-back of it."""
        waits = int(message.options.get("start_waits", 0))
        message.options["start_waits"] = waits + 1
        delay = min(MAX_START_DELAY_MS, 500 * 2 ** min(waits, 10))
        get_logger().warning("transfer.start_not_counted", error=str(error)[:300],
                             delay_ms=delay)
        return deferred(
            message, "the start could not be counted (the store is unreachable); "
            "not run, put back", delay,
        )

    def gave_up(
        self, broker: dramatiq.Broker, message: dramatiq.Message[Any], exception: BaseException
    ) -> None:
        """Record ``failed`` with the last error once dramatiq stops retrying, and remove
        every start of the message."""
        runtime = current_runtime(broker)
        job = job_of(message)
        tries = int(message.options.get("retries", 0))
        error = f"{title(job.marketplace)}: {exception}"
        if tries > 1:
            error += f" (gave up after {tries} attempts)"
        with begin(runtime.engine) as conn:
            write_status(conn, job.listing_id, job.marketplace, "failed", at=runtime.clock(),
                         error=error, fields={"request_id": job.request_id},
                         ending=StartEnd(message.message_id, None, done=True))
        get_logger().warning("transfer.gave_up", error=error)


TRANSFER_LIFECYCLE = TransferLifecycle()
