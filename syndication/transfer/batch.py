"""One batch of a fan-out, read and written in a fixed number of statements.

A batch of listings becomes up to one status row, one history event and one
message per listing and marketplace. Reading them pair by pair (an ORM
``get`` per status row, a history query per pending pair) and writing them
as ORM objects cost a round trip per pair and a lot of ORM bookkeeping, so
the fan-out ran at the speed of the round trip, not of the database. Here
the work is split by what it touches:

* **read, set-based** — the batch's listings with their offices, only the
  columns the decision reads (:func:`decision_inputs`, two queries), the
  stored status rows (one query) and, for the rows that are ``queued``, the
  state before it (one query for all of them);
* **decide, in Python** — :func:`syndication.rules.plan.decide` per pair, as
  before;
* **write, in bulk** — the statuses in one ``INSERT … ON CONFLICT DO
  UPDATE`` (the dialect's own, SQLite and PostgreSQL alike) and the history
  events in one ``INSERT``, both compiled once per dialect and given to the
  driver as tuples (:mod:`syndication.store.bulk`; on PostgreSQL one
  ``INSERT … SELECT FROM unnest`` of arrays): SQLAlchemy's processing of a
  parameter dictionary per row was most of the writes' cost.

The messages of the batch's jobs are staged by the scheduler, which writes
them in one executemany ``INSERT`` as well
(:func:`syndication.outbox.bulk.stage_uniform`). What is written for a pair is
what :func:`~syndication.store.repository.record_status` writes: the
state, the error, the time and the request on the status row, everything
else left as stored; the event carries the row's action, marketplace id and
attempts.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session

from syndication import holds, registry
from syndication.records import FeedInput, Listing, TransferStatus
from syndication.rules import plan
from syndication.store.bulk import BulkStatement
from syndication.store.db import among
from syndication.store.models import ListingRow, OfficeRow, TransferEventRow, TransferStatusRow
from syndication.store.repository import office_record
from syndication.transfer.common import JobRef

STATUS = TransferStatusRow.__table__  # type: ignore[attr-defined]
EVENT = TransferEventRow.__table__  # type: ignore[attr-defined]
LISTING = ListingRow.__table__  # type: ignore[attr-defined]
OFFICE = OfficeRow.__table__  # type: ignore[attr-defined]
_STATUS_FIELDS = tuple(f.name for f in fields(TransferStatus))
_OVERWRITTEN = ("state", "error", "at", "updated_at", "request_id")
"""The columns a fan-out sets on a stored row; the others keep their stored value."""


@dataclass
class BatchOutcome:
    """What one batch decided: the jobs to queue, the outcomes recorded at once, and the
    pull marketplaces' pairs (no job each: one feed job per office at the end)."""

    jobs: list[JobRef] = field(default_factory=list)
    recorded: int = 0
    pulled_pairs: int = 0
    feeds: set[tuple[str, str]] = field(default_factory=set)


_STATUS_COLUMNS = (
    "listing_id", "marketplace", "state", "marketplace_id", "public_url", "action", "at",
    "attempts", "error", "document_hash", "request_id", "updated_at",
)
_EVENT_COLUMNS = (
    "listing_id", "marketplace", "state", "action", "marketplace_id", "error", "attempts",
    "request_id", "at", "actor",
)


@dataclass
class _Writes:
    statuses: list[tuple[Any, ...]] = field(default_factory=list)
    events: list[tuple[Any, ...]] = field(default_factory=list)

    def record(self, stored: dict[str, Any] | None, listing_id: str, marketplace: str,
               state: str, *, error: str | None, request_id: str, at: datetime) -> None:
        """Stage what ``record_status`` would write for the pair, given its ``stored`` row
        (in the column order of :data:`_STATUS_COLUMNS` and :data:`_EVENT_COLUMNS`)."""
        self.statuses.append((listing_id, marketplace, state, None, None, None, at, 0, error,
                              None, request_id, at))
        if stored is None:
            self.events.append((listing_id, marketplace, state, None, None, error, 0,
                                request_id, at, None))
        else:
            self.events.append((listing_id, marketplace, state, stored["action"],
                                stored["marketplace_id"], error, stored["attempts"],
                                request_id, at, None))


def fan_out_batch(
    session: Session, request_id: str, ids: Sequence[str], now: datetime,
    marketplaces_for: Any,
) -> BatchOutcome:
    """Decide every pair of the listings ``ids`` and write their statuses and events in
    ``session``; the jobs to queue and what was recorded at once.

    ``marketplaces_for`` names the marketplaces a listing's decision concerns
    (:func:`syndication.transfer.request.marketplaces_for`). A pair that sends is
    ``queued``; a ``not_licensed`` or ``not_selected`` outcome is recorded at once,
    keeping its time when the state is unchanged; a pair with nothing to record
    is left alone.
    """
    outcome = BatchOutcome()
    writes = _Writes()
    with session.no_autoflush:
        inputs = decision_inputs(session, ids)
        stored = stored_rows(session, ids)
        settled = settled_statuses(session, stored)
        blocked = holds.blocked_pairs(session, {i.office.id for i in inputs.values()})
    for listing_id in ids:
        feed_input = inputs.get(listing_id)
        if feed_input is None:
            continue
        for marketplace in marketplaces_for(feed_input):
            row = stored.get((listing_id, marketplace))
            status = settled.get((listing_id, marketplace))
            decision = plan.decide(feed_input, marketplace, status)
            if decision.action == "delete" and (listing_id, marketplace) in blocked:
                continue
            if decision.sends:
                writes.record(row, listing_id, marketplace, "queued", error=None,
                              request_id=request_id, at=now)
                if registry.get(marketplace).pull:
                    outcome.pulled_pairs += 1
                    outcome.feeds.add((feed_input.office.id, marketplace))
                else:
                    outcome.jobs.append(JobRef(listing_id, marketplace, request_id))
            elif decision.state is not None:
                unchanged = status is not None and status.state == decision.state
                writes.record(
                    row, listing_id, marketplace, decision.state,
                    error=decision.reason if decision.state == "not_licensed" else None,
                    request_id=request_id,
                    at=(status.at or now) if unchanged and status is not None else now,
                )
                outcome.recorded += 1
    write_statuses(session, writes.statuses, writes.events)
    return outcome


def decision_inputs(session: Session, ids: Sequence[str]) -> dict[str, FeedInput]:
    """The listings ``ids`` with their offices, as the decision reads them, in two
    queries: each listing record carries only the columns :func:`plan.decide` and
    :func:`~syndication.transfer.request.marketplaces_for` read (id, office, category,
    state and selection), as the mass-deletion guard reads them
    (:mod:`syndication.holds`); its images, texts and broker are the job's to load.
    A listing whose office is not stored is left out."""
    if not ids:
        return {}
    dialect = session.get_bind().dialect.name
    rows = session.execute(
        select(LISTING.c.id, LISTING.c.office_id, LISTING.c.category, LISTING.c.state,
               LISTING.c.marketplaces)
        .where(among(LISTING.c.id, ids, dialect))
    ).all()
    office_ids = sorted({row.office_id for row in rows})
    offices = {row.id: office_record(row) for row in session.scalars(
        select(OfficeRow).where(among(OFFICE.c.id, office_ids, dialect)))}
    result: dict[str, FeedInput] = {}
    for listing_id, office_id, category, state, marketplaces in rows:
        office = offices.get(office_id)
        if office is not None:
            result[listing_id] = FeedInput(
                listing=Listing(id=listing_id, office_id=office_id, category=category,
                                state=state, marketplaces=tuple(marketplaces or ())),
                office=office,
            )
    return result


def stored_rows(session: Session, ids: Sequence[str]) -> dict[tuple[str, str], dict[str, Any]]:
    """The stored status rows of the listings ``ids``, by pair, in one query."""
    if not ids:
        return {}
    dialect = session.get_bind().dialect.name
    rows = session.execute(select(STATUS).where(among(STATUS.c.listing_id, ids, dialect)))
    return {(row["listing_id"], row["marketplace"]): dict(row) for row in rows.mappings()}


def settled_statuses(
    session: Session, stored: dict[tuple[str, str], dict[str, Any]]
) -> dict[tuple[str, str], TransferStatus | None]:
    """The settled status of each stored pair: the row itself, or for a ``queued`` row
    the row with the state and time of its newest history event that is not ``queued``
    (``None`` when there is none), as
    :func:`~syndication.transfer.common.settled_status` reads it for one pair. The
    pending pairs take one query together, whatever their number."""
    result: dict[tuple[str, str], TransferStatus | None] = {
        pair: _status(row) for pair, row in stored.items() if row["state"] != "queued"
    }
    pending = [pair for pair, row in stored.items() if row["state"] == "queued"]
    for pair in pending:
        result[pair] = None
    for pair, state, at in _newest_settled_events(session, pending):
        row = dict(stored[pair], state=state, at=at)
        result[pair] = _status(row)
    return result


def _newest_settled_events(
    session: Session, pairs: Sequence[tuple[str, str]]
) -> Iterable[tuple[tuple[str, str], str, datetime]]:
    """The state and time of the newest event that is not ``queued`` of each of ``pairs``
    that has one, in one query over their listings."""
    if not pairs:
        return []
    wanted = set(pairs)
    listing_ids = sorted({listing_id for listing_id, _ in pairs})
    dialect = session.get_bind().dialect.name
    newest = (
        select(func.max(EVENT.c.id).label("id"))
        .where(among(EVENT.c.listing_id, listing_ids, dialect), EVENT.c.state != "queued")
        .group_by(EVENT.c.listing_id, EVENT.c.marketplace)
        .subquery()
    )
    rows = session.execute(
        select(EVENT.c.listing_id, EVENT.c.marketplace, EVENT.c.state, EVENT.c.at)
        .join(newest, EVENT.c.id == newest.c.id)
    )
    return [((lid, mp), state, at) for lid, mp, state, at in rows if (lid, mp) in wanted]


def _status(row: dict[str, Any]) -> TransferStatus:
    return TransferStatus(**{name: row[name] for name in _STATUS_FIELDS})


def write_statuses(
    session: Session, statuses: list[tuple[Any, ...]], events: list[tuple[Any, ...]]
) -> None:
    """Upsert ``statuses`` (rows in :data:`_STATUS_COLUMNS` order) in one statement and
    append ``events`` (in :data:`_EVENT_COLUMNS` order) in one executemany ``INSERT``,
    both as the driver's own executemany (:mod:`syndication.store.bulk`); nothing when
    there is nothing to write."""
    if not statuses:
        return
    conn = session.connection()
    _STATUS_UPSERT.execute(conn, statuses)
    _EVENT_INSERT.execute(conn, events)


def _overwrite(statement: Any) -> Any:
    """``ON CONFLICT (listing_id, marketplace) DO UPDATE`` of the columns a fan-out sets,
    on the dialect's own ``insert`` (SQLite and PostgreSQL alike)."""
    return statement.on_conflict_do_update(
        index_elements=[STATUS.c.listing_id, STATUS.c.marketplace],
        set_={name: statement.excluded[name] for name in _OVERWRITTEN},
    )


_STATUS_UPSERT = BulkStatement(STATUS, _STATUS_COLUMNS, on_conflict=_overwrite)
_EVENT_INSERT = BulkStatement(EVENT, _EVENT_COLUMNS)
