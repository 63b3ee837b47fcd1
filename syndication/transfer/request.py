"""A transfer request ("marknadsplatsöverföring") and its fan-out into jobs.

One request names a scope — a listing, an office, or everything — and becomes
one job per listing and marketplace, so a slow marketplace holds up no other.
Only the marketplaces a decision can concern get a job: those in the office's
licence and those the listing selected (R1, R2). The decision is taken here
once to leave out work with nothing to send: a ``not_licensed`` or
``not_selected`` outcome is recorded at once, a "nothing to record" outcome
is skipped; everything that sends gets ``queued`` and a job, which decides
again when it runs (the records may have changed in between).

A pull marketplace (R17) gets no job per listing: its pairs are ``queued``
like the others, and one feed job per office rebuilds and publishes the
office's whole feed after the fan-out (:mod:`syndication.transfer.feed_job`).

Listings are handled in batches: each batch's statuses are stored in one
transaction (written in one flush at its end) *before* its messages are
queued, so a job never finds its row older than its message.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from sqlmodel import Session, col, select

from syndication import registry
from syndication.errors import InputError
from syndication.records import FeedInput, TransferStatus
from syndication.rules import plan
from syndication.runtime import Runtime
from syndication.store.db import session_scope
from syndication.store.models import ListingRow, OfficeRow, TransferRequestRow, TransferStatusRow
from syndication.store.repository import load_feed_inputs, record_status, status_record
from syndication.transfer.common import JobRef, Scheduler, settled_status

BATCH_SIZE = 200


@dataclass(frozen=True, slots=True)
class Scope:
    """What a request transfers: ``kind`` is ``object``, ``office`` or ``all``."""

    kind: str
    value: str | None = None

    def __str__(self) -> str:
        return self.kind if self.value is None else f"{self.kind}:{self.value}"

    def listing_ids(self, session: Session) -> list[str]:
        """The ids of the listings in scope; an unknown object or office is an input error."""
        query = select(ListingRow.id).order_by(col(ListingRow.id))
        if self.kind == "object":
            if session.get(ListingRow, self.value) is None:
                raise InputError("no such listing in the store", record=f"listing {self.value!r}")
            query = query.where(col(ListingRow.id) == self.value)
        elif self.kind == "office":
            if session.get(OfficeRow, self.value) is None:
                raise InputError("no such office in the store", record=f"office {self.value!r}")
            query = query.where(col(ListingRow.office_id) == self.value)
        elif self.kind != "all":
            raise ValueError(f"unknown scope kind {self.kind!r}")
        return list(session.exec(query))


@dataclass(frozen=True, slots=True)
class RequestSummary:
    """What :func:`request_transfer` did: the request id, jobs queued, outcomes recorded at once."""

    request_id: str
    jobs: int
    recorded: int
    listings: int


def marketplaces_for(feed_input: FeedInput) -> list[str]:
    """The marketplaces a decision concerns: licensed or selected, in registry order
    (a pull marketplace's pairs among them: they are queued for the office's feed job)."""
    wanted = set(feed_input.office.licence) | set(feed_input.listing.marketplaces)
    return [name for name in registry.names() if name in wanted]


def request_transfer(
    runtime: Runtime, scope: Scope, scheduler: Scheduler, *, batch_size: int = BATCH_SIZE
) -> RequestSummary:
    """Store a transfer request for ``scope`` and queue its jobs; returns the summary."""
    request_id = uuid.uuid4().hex
    with session_scope(runtime.engine) as session:
        ids = scope.listing_ids(session)
        session.add(TransferRequestRow(id=request_id, scope=str(scope), created_at=runtime.clock()))
    jobs = recorded = 0
    feeds: set[tuple[str, str]] = set()
    for batch in _batches(ids, batch_size):
        queued, direct, pulled = _fan_out_batch(runtime, request_id, batch)
        scheduler.transfer(queued)
        jobs += len(queued) + pulled.pairs
        recorded += direct
        feeds |= pulled.feeds
    for office_id, marketplace in sorted(feeds):
        scheduler.publish_feed(office_id, marketplace, request_id)
    with session_scope(runtime.engine) as session:
        row = session.get(TransferRequestRow, request_id)
        assert row is not None
        row.jobs = jobs
    return RequestSummary(request_id, jobs, recorded, len(ids))


@dataclass
class _Pulled:
    """The pairs of a batch on pull marketplaces: no job each, one feed per office."""

    pairs: int = 0
    feeds: set[tuple[str, str]] = field(default_factory=set)


def _fan_out_batch(
    runtime: Runtime, request_id: str, ids: Sequence[str]
) -> tuple[list[JobRef], int, _Pulled]:
    """Decide each pair of one batch; store ``queued`` or the final state; return the jobs,
    how many outcomes were recorded at once, and the feeds a pull marketplace needs."""
    jobs: list[JobRef] = []
    recorded = 0
    pulled = _Pulled()
    with session_scope(runtime.engine) as session, session.no_autoflush:
        inputs = load_feed_inputs(session, ids)
        current = _current_statuses(session, ids)
        now = runtime.clock()
        for listing_id in ids:
            feed_input = inputs.get(listing_id)
            if feed_input is None:
                continue
            for marketplace in marketplaces_for(feed_input):
                status = current.get((listing_id, marketplace))
                decision = plan.decide(feed_input, marketplace, status)
                if decision.sends:
                    record_status(
                        session, listing_id, marketplace, "queued",
                        request_id=request_id, at=now,
                    )
                    if registry.get(marketplace).pull:
                        pulled.pairs += 1
                        pulled.feeds.add((feed_input.office.id, marketplace))
                    else:
                        jobs.append(JobRef(listing_id, marketplace, request_id))
                elif decision.state is not None:
                    unchanged = status is not None and status.state == decision.state
                    record_status(
                        session, listing_id, marketplace, decision.state,
                        error=decision.reason if decision.state == "not_licensed" else None,
                        request_id=request_id,
                        at=status.at if unchanged and status is not None else now,
                    )
                    recorded += 1
    return jobs, recorded, pulled


def _current_statuses(
    session: Session, ids: Sequence[str]
) -> dict[tuple[str, str], TransferStatus | None]:
    """The settled status of every pair of the batch (one query, plus one per pending pair)."""
    rows = session.exec(
        select(TransferStatusRow).where(col(TransferStatusRow.listing_id).in_(ids))
    )
    return {
        (row.listing_id, row.marketplace): (
            status_record(row)
            if row.state != "queued"
            else settled_status(session, row.listing_id, row.marketplace)
        )
        for row in rows
    }


def _batches(ids: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for start in range(0, len(ids), size):
        yield ids[start : start + size]
