"""Attempts of transfer jobs: counted in the store, bounded, and ended in ``failed``.

dramatiq calls these hooks through :class:`syndication.middleware.JobLifecycle`:

* :meth:`TransferLifecycle.started` — every start of a transfer message counts
  one attempt on the listing's row (``queued``, ``attempts`` + 1). The starts
  of this request beyond the first, less the retries dramatiq made after an
  error, are starts whose worker never finished: it died (killed, out of
  memory, the machine lost). When that has happened ``max_worker_deaths``
  times the listing is recorded ``failed`` ("worker died N times") and the
  message skipped, so a listing that kills workers cannot loop for ever.
* :meth:`TransferLifecycle.gave_up` — dramatiq will not retry the message
  (retry budget spent, or an error it must not retry): ``failed`` with the
  last error.
"""

from __future__ import annotations

from typing import Any

import dramatiq
from dramatiq.middleware import SkipMessage
from sqlmodel import col, select

from syndication.logs import get_logger
from syndication.registry import title
from syndication.runtime import current_runtime
from syndication.store.db import session_scope
from syndication.store.models import TransferEventRow
from syndication.store.repository import record_status
from syndication.transfer.common import JobRef, lock_status_row


def job_of(message: dramatiq.Message[Any]) -> JobRef:
    """The :class:`JobRef` a transfer message carries."""
    kwargs = message.kwargs
    return JobRef(kwargs["listing_id"], kwargs["marketplace"], kwargs["request_id"])


class TransferLifecycle:
    """The ``lifecycle=`` hooks of the transfer actor."""

    def started(self, broker: dramatiq.Broker, message: dramatiq.Message[Any]) -> None:
        """Count the attempt; fail and skip the job once its workers died too often."""
        runtime = current_runtime(broker)
        job = job_of(message)
        retries = int(message.options.get("retries", 0))
        with session_scope(runtime.engine) as session:
            lock_status_row(session, job.listing_id, job.marketplace)
            baseline = session.exec(
                select(TransferEventRow.attempts)
                .where(
                    col(TransferEventRow.listing_id) == job.listing_id,
                    col(TransferEventRow.marketplace) == job.marketplace,
                    col(TransferEventRow.request_id) == job.request_id,
                )
                .order_by(col(TransferEventRow.id))
                .limit(1)
            ).first()
            row = record_status(
                session, job.listing_id, job.marketplace, "queued",
                request_id=job.request_id, attempt=True, at=runtime.clock(),
            )
            starts = row.attempts - baseline if baseline is not None else 1
            deaths = starts - 1 - retries
            if deaths < runtime.settings.max_worker_deaths:
                return
            error = (
                f"{title(job.marketplace)}: the worker died {deaths} times while transferring "
                f"this listing; not tried again (run the transfer again, or ask an operator "
                f"to look at the worker logs)"
            )
            record_status(
                session, job.listing_id, job.marketplace, "failed",
                request_id=job.request_id, error=error, at=runtime.clock(),
            )
        get_logger().error("transfer.worker_deaths", deaths=deaths)
        raise SkipMessage(error)

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


TRANSFER_LIFECYCLE = TransferLifecycle()
