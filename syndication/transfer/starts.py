"""The starts of a transfer job: counted, recorded with their worker, and judged.

Every start of a transfer message counts one attempt on the listing's row
(``queued``, ``attempts`` + 1) and records the start with the worker process
that runs it (a ``job_start`` row, see :mod:`syndication.workers`), in the
job's first transaction (:func:`syndication.transfer.job.prepare`). The
earlier starts of the same message that never ended and whose worker is gone
are the worker deaths; a start whose worker is still there (paused, or the
same live worker running it again after a Redis reconnect) is none. When
``max_deaths`` deaths are seen the listing is recorded ``failed`` with what
was observed (:func:`death_report`) and the job ends there, so a listing that
kills workers cannot loop for ever. The job's last transaction removes its
start (:func:`~syndication.store.statements.end_start_rows`, or in the status write
that records the outcome).

A worker that keeps hundreds of jobs in flight takes them all down when it dies,
and they come back together: run together again, each of them would be counted
at every later death of a worker that took the whole group. So a start that finds
a death and asks to be ``isolated`` is not recorded: :class:`DiedBefore` rolls
its transaction back (the attempt uncounted), and the concurrent job runs it again
in the after-death lane, a few at a time
(:mod:`syndication.transfer.concurrent_job`). A later death takes few of them
along, and a listing that kills its worker still reaches the budget. The earlier
starts are read only when the job's status read
(:data:`~syndication.store.statements.SETTLED_VIEW`) counted some.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row

from syndication.registry import title
from syndication.store.statements import (
    COMPANY_OF,
    END_MESSAGE,
    ON_DRIVER_NEW_START,
    STARTS_OF,
    write_status,
)
from syndication.transfer.common import JobRef
from syndication.workers import WorkerIdentity


@dataclass(frozen=True, slots=True)
class Start:
    """One start of a job's message.

    ``alive`` tells whether the worker of an earlier start is still there
    (:meth:`syndication.workers.Liveness.alive`); ``max_deaths`` earlier starts
    whose worker is gone end the job ``failed``.
    """

    message_id: str
    worker: str
    broker_id: str | None
    alive: Callable[[str, str | None], bool]
    max_deaths: int
    isolated: bool = False
    """Raise :class:`DiedBefore` instead of recording a start that finds a death."""

    def row(self, job: JobRef, at: datetime) -> dict[str, Any]:
        """The start's ``job_start`` row for ``job`` at ``at`` (its id is the store's)."""
        return {"message_id": self.message_id, "listing_id": job.listing_id,
                "marketplace": job.marketplace, "request_id": job.request_id,
                "worker": self.worker, "broker_id": self.broker_id, "started_at": at}


class DiedBefore(Exception):
    """An earlier start of the message died with its worker: run it in the after-death
    lane (nothing of this start was recorded)."""

    def __init__(self, deaths: int) -> None:
        super().__init__(f"{deaths} earlier start(s) died with their worker")
        self.deaths = deaths


@dataclass(frozen=True, slots=True)
class Counted:
    """What :func:`count_start` did: the start's row id, or the ``failed`` error that
    ended the job after too many worker deaths (the start then has no row)."""

    start_id: int | None
    error: str | None = None
    deaths: int = 0


def record_start(
    conn: Connection, job: JobRef, start: Start, at: datetime, earlier: int,
    recorded: int | None = None,
) -> Counted:
    """Record the start, in ``conn``'s transaction, after its attempt was counted
    (:func:`~syndication.store.statements.count_attempt`) and ``earlier`` starts of the
    message were found; or, once the message's workers really died ``max_deaths``
    times, record ``failed`` instead and remove every start of the message.
    ``recorded``: the start's row, already inserted with the count (PostgreSQL); it is
    kept, or goes with the transaction when :class:`DiedBefore` rolls it back."""
    rows = conn.execute(STARTS_OF, {"p_message": start.message_id}).all() if earlier else []
    if recorded is not None:
        rows = [row for row in rows if row.id != recorded]
    dead = [row for row in rows if not start.alive(row.worker, row.broker_id)]
    if dead and start.isolated and len(dead) < start.max_deaths:
        raise DiedBefore(len(dead))
    if len(dead) >= start.max_deaths:
        error = death_report(conn, job, dead)
        write_status(conn, job.listing_id, job.marketplace, "failed", at=at, error=error,
                     fields={"request_id": job.request_id})
        conn.execute(END_MESSAGE, {"p_message": start.message_id})
        return Counted(None, error, len(dead))
    if recorded is not None:
        return Counted(recorded)
    inserted = ON_DRIVER_NEW_START.execute(conn, start.row(job, at))
    return Counted(int(inserted.scalar()))


def death_report(conn: Connection, job: JobRef, dead: Sequence[Row[Any]]) -> str:
    """The ``failed`` message after ``dead`` starts whose workers are gone: what was seen,
    and the listing blamed only if it was the only job in flight at each death."""
    workers = ", ".join(
        f"{_described(row.worker)} at {row.started_at:%Y-%m-%d %H:%M:%S} UTC" for row in dead
    )
    company: list[Row[Any]] = []
    for row in dead:
        others = conn.execute(COMPANY_OF, {"p_worker": row.worker,
                                           "p_message": row.message_id}).all()
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
