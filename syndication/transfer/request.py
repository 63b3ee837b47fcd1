"""A transfer request ("marknadsplatsöverföring") and its fan-out into jobs.

One request names a scope — a listing, an office, or everything, optionally on
one marketplace only — and becomes one job per listing and marketplace, so a
slow marketplace holds up no other.
Only the marketplaces a decision can concern get a job: those in the office's
licence and those the listing selected (R1, R2). The decision is taken here
once to leave out work with nothing to send: a ``not_licensed`` or
``not_selected`` outcome is recorded at once, a "nothing to record" outcome
is skipped; everything that sends gets ``queued`` and a job, which decides
again when it runs (the records may have changed in between). The
mass-deletion guard (R15, :mod:`syndication.holds`) weighs the request's
deletes before the fan-out, and a delete it holds gets no job.

A pull marketplace (R17) gets no job per listing: its pairs are ``queued``
like the others, and one feed job per office rebuilds and publishes the
office's whole feed after the fan-out (:mod:`syndication.transfer.feed_job`).

Listings are handled in batches, in listing-id order. Each batch's statuses
and its messages (staged in the outbox, :mod:`syndication.outbox`) are
stored in one transaction, in a fixed number of bulk statements whatever the
batch's number of pairs (:mod:`.batch`), together with the request's
progress: the last listing id done (``fan_out_after``) and the job count.
The messages are sent once that transaction committed, so a job never finds
its row older than its message, and a broker that is down only delays them
(the relay sends them later). A batch is :data:`BATCH_SIZE` (500) listings on
SQLite: past it the fixed cost per batch is small, while a larger batch holds
SQLite's write lock longer against the workers. PostgreSQL takes
:data:`BATCH_SIZES` of 2,000: its batches do not lock the workers out, and
fewer of them cost fewer statements and commits beside a busy worker
(``docs/benchmarks.md``, "Fan-out").

The fan-out is resumable from the store. The process that started it holds
it (``fan_out_owner``) until ``fan_out_until``, renewed by every batch
(``SYNDICATION_FAN_OUT_LEASE_MS``). When that process stops — killed, the
machine lost — a worker's relay takes the request over once the time is up
(:func:`resume_stalled_fan_outs`) and continues after the last stored
batch. Each batch's commit checks that its writer still holds the fan-out
and that the cursor is where it read it, so two writers never store the same
batch twice. The last step stages the pull marketplaces' feed jobs — one per
office that has ``queued`` pairs there in this request, read from the
history — and marks the request ``fanned_out_at``; until then
:func:`~syndication.transfer.progress.request_outcome` does not call the
request finished.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, update
from sqlmodel import Session, col, select

from syndication import holds, registry
from syndication.errors import InputError
from syndication.logs import get_logger
from syndication.records import FeedInput
from syndication.runtime import Runtime
from syndication.store.db import session_scope, writer_lock
from syndication.store.models import (
    ListingRow,
    OfficeRow,
    TransferEventRow,
    TransferRequestRow,
    utcnow,
)
from syndication.transfer.batch import BatchOutcome, fan_out_batch
from syndication.transfer.common import Scheduler
from syndication.transfer.lease import LeaseKeeper

BATCH_SIZE = 500
"""Listings per fan-out batch on a store that :data:`BATCH_SIZES` does not name (SQLite)."""
BATCH_SIZES = {"postgresql": 2000}
"""Listings per fan-out batch by the store's dialect."""
MARKETPLACE_MARK = " marketplace:"


@dataclass(frozen=True, slots=True)
class Scope:
    """What a request transfers: ``kind`` is ``object``, ``office`` or ``all``; with
    ``marketplace``, only the pairs on that marketplace ("Försök igen" on one pair).
    An unknown marketplace name is :class:`~syndication.errors.UnknownMarketplace`."""

    kind: str
    value: str | None = None
    marketplace: str | None = None

    def __post_init__(self) -> None:
        if self.marketplace is not None:
            registry.get(self.marketplace)

    def __str__(self) -> str:
        text = self.kind if self.value is None else f"{self.kind}:{self.value}"
        return text if self.marketplace is None else f"{text}{MARKETPLACE_MARK}{self.marketplace}"

    @classmethod
    def parse(cls, text: str) -> Scope:
        """The scope :meth:`__str__` wrote (``all``, ``office:ID``, ``object:ID``, each
        optionally followed by `` marketplace:NAME``; an id never holds a space)."""
        which, mark, marketplace = text.partition(MARKETPLACE_MARK)
        kind, _, value = which.partition(":")
        if (kind not in ("all", "office", "object") or (kind == "all") == bool(value)
                or (mark and not marketplace)):
            raise ValueError(f"not a transfer scope: {text!r}")
        return cls(kind, value or None, marketplace or None)

    def _query(self, session: Session, what: Any) -> Any:
        query = select(what)
        if self.kind == "object":
            if session.get(ListingRow, self.value) is None:
                raise InputError("no such listing in the store", record=f"listing {self.value!r}")
            return query.where(col(ListingRow.id) == self.value)
        if self.kind == "office":
            if session.get(OfficeRow, self.value) is None:
                raise InputError("no such office in the store", record=f"office {self.value!r}")
            return query.where(col(ListingRow.office_id) == self.value)
        if self.kind != "all":
            raise ValueError(f"unknown scope kind {self.kind!r}")
        return query

    def count(self, session: Session) -> int:
        """How many listings are in scope; an unknown object or office is an input error."""
        return int(session.exec(
            self._query(session, func.count()).select_from(ListingRow)
        ).one())

    def listing_ids(
        self, session: Session, *, after: str | None = None, limit: int | None = None
    ) -> list[str]:
        """The ids of the listings in scope, in order, those after ``after`` only, at most
        ``limit``; an unknown object or office is an input error."""
        query = self._query(session, ListingRow.id).order_by(col(ListingRow.id))
        if after is not None:
            query = query.where(col(ListingRow.id) > after)
        if limit is not None:
            query = query.limit(limit)
        return list(session.exec(query))


@dataclass(frozen=True, slots=True)
class RequestSummary:
    """What :func:`request_transfer` did: the request id, jobs queued, outcomes recorded at once."""

    request_id: str
    jobs: int
    recorded: int
    listings: int


def marketplaces_for(feed_input: FeedInput, only: str | None = None) -> list[str]:
    """The marketplaces a decision concerns: licensed or selected, in registry order
    (a pull marketplace's pairs among them: they are queued for the office's feed job);
    with ``only``, that one of them alone (a scope's marketplace)."""
    wanted = set(feed_input.office.licence) | set(feed_input.listing.marketplaces)
    return [name for name in registry.names() if name in wanted and only in (None, name)]


def batch_size_for(engine: Engine) -> int:
    """Listings per fan-out batch on ``engine``'s store."""
    return BATCH_SIZES.get(engine.dialect.name, BATCH_SIZE)


def request_transfer(
    runtime: Runtime, scope: Scope, scheduler: Scheduler, *, batch_size: int | None = None,
    noted: Callable[[Session, str], None] | None = None,
) -> RequestSummary:
    """Store a transfer request for ``scope`` and fan it out; returns the summary.

    ``noted(session, request_id)`` writes in the transaction that stores the
    request, so before any of its jobs is queued: what a job records then comes
    after it in the history (the web's note of a press).

    When another process took the fan-out over meanwhile (this one was too slow
    to renew it), the summary counts what this process stored.
    """
    request_id = uuid.uuid4().hex
    owner = f"request-{uuid.uuid4().hex[:12]}"
    with session_scope(runtime.engine) as session:
        listings = scope.count(session)
        holds.guard_transfer(session, holds.Guard.from_settings(runtime.settings),
                             (scope.kind, scope.value), runtime.clock())
        session.add(TransferRequestRow(
            id=request_id, scope=str(scope), created_at=runtime.clock(),
            fan_out_owner=owner, fan_out_until=_lease_end(runtime),
        ))
        if noted is not None:
            session.flush()
            noted(session, request_id)
    done = fan_out(runtime, request_id, scheduler, owner=owner, batch_size=batch_size)
    return RequestSummary(request_id, done.jobs, done.recorded, listings)


@dataclass
class FanOutProgress:
    """What one writer stored of a fan-out: jobs, outcomes recorded at once, and whether
    it finished the fan-out (``False``: another writer holds it now)."""

    jobs: int = 0
    recorded: int = 0
    finished: bool = False


class _LostFanOut(Exception):
    """The writer no longer holds the fan-out; its batch is rolled back."""


def fan_out(
    runtime: Runtime, request_id: str, scheduler: Scheduler, *, owner: str,
    batch_size: int | None = None,
) -> FanOutProgress:
    """Store the remaining batches of ``request_id``'s fan-out as ``owner``, ``batch_size``
    listings at a time (by default the store's, :func:`batch_size_for`), then its feed
    jobs; stops early when another writer took the fan-out over. The lease is kept by a
    :class:`~syndication.transfer.lease.LeaseKeeper` meanwhile, so a batch slower than
    the lease does not lose it. On SQLite each batch takes the store's
    :func:`~syndication.store.db.writer_lock` in turn with the workers' store steps, so
    a busy worker cannot keep it waiting in SQLite's busy handler."""
    progress = FanOutProgress()
    size = batch_size or batch_size_for(runtime.engine)
    with LeaseKeeper(runtime.engine, request_id, owner, runtime.settings.fan_out_lease_ms):
        while True:
            try:
                with writer_lock(runtime.engine) or nullcontext(), \
                        session_scope(runtime.engine) as session:
                    finished = _fan_out_step(runtime, session, request_id, scheduler, owner,
                                             size, progress)
            except _LostFanOut:
                get_logger(request_id=request_id).info("transfer.fan_out_taken_over",
                                                       owner=owner)
                return progress
            if finished:
                progress.finished = True
                return progress


def resume_stalled_fan_outs(runtime: Runtime, scheduler: Scheduler, *, owner: str) -> int:
    """Take over every fan-out whose holder let its time run out, and finish it; how many.

    Only requests that were fanned out by :func:`request_transfer` have a holder; the
    take-over is one conditional ``UPDATE``, so of two relays one wins.
    """
    now = utcnow()
    with session_scope(runtime.engine) as session:
        stalled = list(session.exec(
            select(TransferRequestRow.id).where(
                col(TransferRequestRow.fanned_out_at).is_(None),
                col(TransferRequestRow.fan_out_owner).is_not(None),
                col(TransferRequestRow.fan_out_until) < now,
            )
        ))
    resumed = 0
    for request_id in stalled:
        with session_scope(runtime.engine) as session:
            taken = _rows_changed(session.execute(
                update(TransferRequestRow)
                .where(
                    col(TransferRequestRow.id) == request_id,
                    col(TransferRequestRow.fanned_out_at).is_(None),
                    col(TransferRequestRow.fan_out_until) < now,
                )
                .values(fan_out_owner=owner, fan_out_until=_lease_end(runtime))
            ))
        if taken:
            get_logger(request_id=request_id).warning("transfer.fan_out_resumed", owner=owner)
            fan_out(runtime, request_id, scheduler, owner=owner)
            resumed += 1
    return resumed


def _rows_changed(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


def _lease_end(runtime: Runtime) -> datetime:
    return utcnow() + timedelta(milliseconds=runtime.settings.fan_out_lease_ms)


def _fan_out_step(
    runtime: Runtime, session: Session, request_id: str, scheduler: Scheduler, owner: str,
    batch_size: int, progress: FanOutProgress,
) -> bool:
    """Store the next batch (or, when none is left, the feed jobs and the end) in
    ``session``; ``True`` once the fan-out is finished."""
    request = session.get(TransferRequestRow, request_id)
    if request is None or request.fan_out_owner != owner or request.fanned_out_at is not None:
        raise _LostFanOut
    after = request.fan_out_after
    scope = Scope.parse(request.scope)
    ids = scope.listing_ids(session, after=after, limit=batch_size)
    if not ids:
        feeds = _pending_feeds(session, request_id)
        _advance(session, request_id, owner, after, after, 0, runtime, finished=True)
        for office_id, marketplace in feeds:
            scheduler.publish_feed(session, office_id, marketplace, request_id)
        return True
    batch = _fan_out_batch(runtime, session, request_id, ids, scope.marketplace)
    jobs = len(batch.jobs) + batch.pulled_pairs
    _advance(session, request_id, owner, after, ids[-1], jobs, runtime, finished=False)
    scheduler.transfer(session, batch.jobs)
    session.flush()
    progress.jobs += jobs
    progress.recorded += batch.recorded
    return False


def _advance(
    session: Session, request_id: str, owner: str, after: str | None, last: str | None,
    jobs: int, runtime: Runtime, *, finished: bool,
) -> None:
    """Move the request's cursor from ``after`` to ``last`` if ``owner`` still holds it
    there; otherwise the whole step is rolled back (:class:`_LostFanOut`)."""
    values: dict[str, Any] = {
        "fan_out_after": last,
        "jobs": TransferRequestRow.jobs + jobs,
        "fan_out_until": _lease_end(runtime),
    }
    if finished:
        values.update(fanned_out_at=utcnow(), fan_out_owner=None, fan_out_until=None)
    moved = _rows_changed(session.execute(
        update(TransferRequestRow)
        .where(
            col(TransferRequestRow.id) == request_id,
            col(TransferRequestRow.fan_out_owner) == owner,
            col(TransferRequestRow.fan_out_after).is_not_distinct_from(after),
            col(TransferRequestRow.fanned_out_at).is_(None),
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    ))
    if moved != 1:
        raise _LostFanOut


def _pending_feeds(session: Session, request_id: str) -> list[tuple[str, str]]:
    """The (office, pull marketplace) pairs whose listings this request queued."""
    pull = [name for name in registry.names() if registry.get(name).pull]
    if not pull:
        return []
    rows = session.execute(
        select(ListingRow.office_id, TransferEventRow.marketplace)
        .join(ListingRow, col(ListingRow.id) == col(TransferEventRow.listing_id))
        .where(
            col(TransferEventRow.request_id) == request_id,
            col(TransferEventRow.state) == "queued",
            col(TransferEventRow.marketplace).in_(pull),
        )
        .distinct()
    ).all()
    return sorted((office_id, marketplace) for office_id, marketplace in rows)


def _fan_out_batch(
    runtime: Runtime, session: Session, request_id: str, ids: Sequence[str],
    only: str | None = None,
) -> BatchOutcome:
    """Decide and store each pair of one batch in ``session`` (:mod:`.batch`), on
    marketplace ``only`` alone when given."""
    return fan_out_batch(
        session, request_id, ids, runtime.clock(),
        lambda feed_input: marketplaces_for(feed_input, only),
    )
