"""Attempts of transfer jobs: counted in the store, bounded, and ended in ``failed``.

dramatiq calls these hooks through :class:`syndication.middleware.JobLifecycle`:

* :meth:`TransferLifecycle.started` — every start of a transfer message counts
  one attempt on the listing's row (``queued``, ``attempts`` + 1) and records
  the start with the worker process that runs it (a
  :class:`~syndication.store.models.JobStartRow`, see :mod:`syndication.workers`).
  The earlier starts of the same message that never ended and whose worker
  is gone are the worker deaths; a start whose worker is still there (paused,
  or the same live worker running it again after a Redis reconnect) is none.
  When ``max_worker_deaths`` deaths are seen the listing is recorded
  ``failed`` with what was observed, and the message skipped, so a listing
  that kills workers cannot loop for ever. A start that cannot reach the
  store is not run: the message is put back, uncounted as a try, and counted
  when the store answers again.
* :meth:`TransferLifecycle.finished` — the start ended (done, retried or
  given up): its row goes; a message done for good takes every row of its
  own with it.
* :meth:`TransferLifecycle.gave_up` — dramatiq will not retry the message
  (retry budget spent, or an error it must not retry): ``failed`` with the
  last error.
"""

from __future__ import annotations

from typing import Any

import dramatiq
from dramatiq.middleware import SkipMessage
from sqlalchemy import delete
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, col, select

from syndication.logs import get_logger
from syndication.middleware import deferred
from syndication.registry import title
from syndication.runtime import current_runtime
from syndication.store.db import session_scope
from syndication.store.models import JobStartRow
from syndication.store.repository import record_status
from syndication.transfer.common import JobRef, lock_status_row
from syndication.workers import Liveness, WorkerIdentity, this_worker

MAX_START_DELAY_MS = 30_000
"""The longest a start waits for an unreachable store before it is tried again."""


def job_of(message: dramatiq.Message[Any]) -> JobRef:
    """The :class:`JobRef` a transfer message carries."""
    kwargs = message.kwargs
    return JobRef(kwargs["listing_id"], kwargs["marketplace"], kwargs["request_id"])


class TransferLifecycle:
    """The ``lifecycle=`` hooks of the transfer actor.

    ``identity`` says which worker process this is (tests pretend to be others).
    """

    def __init__(self) -> None:
        self.identity = this_worker
        self._current: dict[str, int] = {}
        """The start id of each message being run, by message id (a message's hooks may
        run on different threads)."""

    def started(self, broker: dramatiq.Broker, message: dramatiq.Message[Any]) -> None:
        """Count the attempt and record the start; fail and skip the job once its
        workers really died too often; put it back when the store cannot be reached."""
        self._current.pop(message.message_id, None)
        try:
            self._count_start(broker, message)
        except SQLAlchemyError as exc:
            waits = int(message.options.get("start_waits", 0))
            message.options["start_waits"] = waits + 1
            delay = min(MAX_START_DELAY_MS, 500 * 2 ** min(waits, 10))
            get_logger().warning("transfer.start_not_counted", error=str(exc)[:300],
                                 delay_ms=delay)
            raise deferred(
                message, "the start could not be counted (the store is unreachable); "
                "not run, put back", delay,
            ) from exc

    def _count_start(self, broker: dramatiq.Broker, message: dramatiq.Message[Any]) -> None:
        runtime = current_runtime(broker)
        job = job_of(message)
        me = self.identity()
        liveness = Liveness(broker, heartbeat_ms=runtime.settings.heartbeat_timeout_ms)
        with session_scope(runtime.engine) as session:
            lock_status_row(session, job.listing_id, job.marketplace)
            record_status(
                session, job.listing_id, job.marketplace, "queued",
                request_id=job.request_id, attempt=True, at=runtime.clock(),
            )
            earlier = session.exec(
                select(JobStartRow).where(col(JobStartRow.message_id) == message.message_id)
            ).all()
            dead = [row for row in earlier if not liveness.alive(row.worker, row.broker_id)]
            start = JobStartRow(
                message_id=message.message_id, listing_id=job.listing_id,
                marketplace=job.marketplace, request_id=job.request_id, worker=me.key,
                broker_id=getattr(broker, "broker_id", None), started_at=runtime.clock(),
            )
            session.add(start)
            session.flush()
            if len(dead) < runtime.settings.max_worker_deaths:
                assert start.id is not None
                self._current[message.message_id] = start.id
                return
            error = death_report(session, job, dead)
            session.delete(start)
            record_status(
                session, job.listing_id, job.marketplace, "failed",
                request_id=job.request_id, error=error, at=runtime.clock(),
            )
        get_logger().error("transfer.worker_deaths", deaths=len(dead),
                           workers=[row.worker for row in dead])
        raise SkipMessage(error)

    def finished(
        self, broker: dramatiq.Broker, message: dramatiq.Message[Any], *, done: bool
    ) -> None:
        """The start ended: remove its row, and with ``done`` (nothing will run the message
        again) every row of the message."""
        start_id = self._current.pop(message.message_id, None)
        if start_id is None:
            return
        try:
            with session_scope(current_runtime(broker).engine) as session:
                if done:
                    where = col(JobStartRow.message_id) == message.message_id
                else:
                    where = col(JobStartRow.id) == start_id
                session.execute(delete(JobStartRow).where(where))
        except SQLAlchemyError as exc:
            get_logger().warning("transfer.start_not_ended", error=str(exc)[:300])

    def gave_up(
        self, broker: dramatiq.Broker, message: dramatiq.Message[Any], exception: BaseException
    ) -> None:
        """Record ``failed`` with the last error once dramatiq stops retrying."""
        runtime = current_runtime(broker)
        job = job_of(message)
        tries = int(message.options.get("retries", 0))
        error = f"{title(job.marketplace)}: {exception}"
        if tries > 1:
            error += f" (gave up after {tries} attempts)"
        with session_scope(runtime.engine) as session:
            record_status(
                session, job.listing_id, job.marketplace, "failed",
                request_id=job.request_id, error=error, at=runtime.clock(),
            )
        get_logger().warning("transfer.gave_up", error=error)


def death_report(session: Session, job: JobRef, dead: list[JobStartRow]) -> str:
    """The ``failed`` message after ``dead`` starts whose workers are gone: what was seen,
    and the listing blamed only if it was the only job in flight at each death."""
    workers = ", ".join(
        f"{_described(row.worker)} at {row.started_at:%Y-%m-%d %H:%M:%S} UTC" for row in dead
    )
    company: list[JobStartRow] = []
    for row in dead:
        others = session.exec(
            select(JobStartRow).where(
                col(JobStartRow.worker) == row.worker,
                col(JobStartRow.message_id) != row.message_id,
            )
        ).all()
        company.extend(other for other in others if other.listing_id != job.listing_id)
    if company:
        example = company[0]
        verdict = (
            f"other jobs died with them ({len(company)}, e.g. {example.listing_id} on "
            f"{title(example.marketplace)}), so nothing points at this listing; ask an "
            f"operator to look at the workers, then run the transfer again"
        )
    else:
        verdict = (
            "each time this listing was the only job in flight, so the listing itself may "
            "be what stops the worker; ask an operator to look at the worker logs"
        )
    return (
        f"{title(job.marketplace)}: the worker died {len(dead)} times while transferring "
        f"this listing and is not tried again (started by {workers}; none of these "
        f"processes is running any more): {verdict}"
    )


def _described(worker: str) -> str:
    identity = WorkerIdentity.parse(worker)
    return identity.describe() if identity is not None else worker


TRANSFER_LIFECYCLE = TransferLifecycle()
