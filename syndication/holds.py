"""The mass-deletion guard (R15): deletes held for a person, confirmed or cancelled.

Two places can remove many listings at once, and both ask the guard first:

* an ingest (:func:`guard_ingest`), which sees each listing's state and
  selection before and after the document: a listing that was wanted on a
  marketplace that holds it and is now removed (sold, withdrawn, deleted) or
  deselected becomes a delete at the next transfer;
* a transfer (:func:`guard_transfer`, before its fan-out), which counts the
  deletes the transfer decision (:func:`syndication.rules.plan.decide`) gives
  for its scope — removals that several ingests, each under the limit, left
  for one transfer.

Per office and marketplace the deletes are weighed against the listings the
marketplace holds for the office (:func:`syndication.rules.mass_delete.holds_back`).
When any marketplace of an office is over the limit, every delete of that
office the ingest or transfer would cause is held: one
:class:`~syndication.store.guard_models.DeletionHoldRow` lists the pairs, the
counts, the cause and each listing's state and selection from before. The
held pairs keep their state (the marketplace still shows them) with the note
:data:`HOLD_NOTE` and the count and cause, in the status and its history.

While a hold is ``held`` the fan-out sends none of its deletes
(:func:`blocked_pairs`), whoever asks — a later transfer, a reconciliation.
:func:`confirm` lets them go (the caller then transfers the listings);
:func:`cancel` puts each listing's state and selection back as they were
before (where nothing changed them since) and leaves the marketplaces' copies
as they are; a cancelled pair is not deleted until the desktop sends its
listing again.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from syndication import registry
from syndication.hold_decisions import (  # the decisions, re-exported
    CANCEL_NOTE,
    CANCELLED,
    CONFIRMED,
    HELD,
    HOLD_NOTE,
    Cancelled,
    HoldDecided,
    UnknownHold,
    cancel,
    confirm,
    describe,
    list_holds,
    office_of_hold,
)
from syndication.logs import get_logger
from syndication.records import FeedInput, Listing, Office, TransferStatus
from syndication.registry import title
from syndication.rules.mass_delete import DEFAULT_MINIMUM, DEFAULT_SHARE, holds_back
from syndication.rules.plan import decide
from syndication.rules.removal import REASON_WORDS, marketplace_holds
from syndication.settings import Settings
from syndication.store.guard_models import DeletionHoldRow
from syndication.store.models import ListingRow, OfficeRow, TransferStatusRow
from syndication.store.repository import record_status

__all__ = [
    "CANCEL_NOTE", "CANCELLED", "CONFIRMED", "HELD", "HOLD_NOTE", "Cancelled", "Guard",
    "HoldDecided", "Removal", "UnknownHold", "blocked_pairs", "cancel", "confirm",
    "confirmed_pairs", "describe", "guard_ingest", "guard_transfer", "list_holds",
    "office_of_hold",
]

@dataclass(frozen=True)
class Guard:
    """The limit in force: more than ``share`` of the published and at least ``minimum``."""

    share: float = DEFAULT_SHARE
    minimum: int = DEFAULT_MINIMUM

    @classmethod
    def from_settings(cls, settings: Settings) -> Guard:
        return cls(settings.mass_delete_share, settings.mass_delete_min)

    def trips(self, removing: int, published: int) -> bool:
        return holds_back(removing, published, self.share, self.minimum)


@dataclass(frozen=True, slots=True)
class Removal:
    """One delete a change would cause: the listing, the marketplace and the reason."""

    office_id: str
    listing_id: str
    marketplace: str
    reason: str


@dataclass
class _Weighed:
    removals: list[Removal] = field(default_factory=list)
    counts: dict[str, dict[str, int]] = field(default_factory=dict)


def _listing(row: Any) -> Listing:
    return Listing(id=row.id, office_id=row.office_id, category=row.category, state=row.state,
                   marketplaces=tuple(row.marketplaces or ()))


def _weighed(office: Office) -> list[str]:
    """The licensed marketplaces the guard weighs: all of them. A pull marketplace's
    removals are weighed like a push one's; while they are held its feed job does not
    publish the office's feed (:func:`held_pairs`), so the feed it reads keeps them."""
    return [name for name in office.licence if name in registry.names()]


def _offices(session: Session, office_ids: Iterable[str]) -> dict[str, Office]:
    """The offices with, as their licence, only the marketplaces the guard weighs."""
    rows = session.exec(select(OfficeRow).where(col(OfficeRow.id).in_(sorted(set(office_ids)))))
    offices = {row.id: Office(id=row.id, name=row.name, licence=tuple(row.licence or ()))
               for row in rows}
    return {oid: replace(office, licence=tuple(_weighed(office)))
            for oid, office in offices.items()}


def _office_statuses(session: Session, office_ids: Iterable[str]
                     ) -> dict[tuple[str, str], TransferStatus]:
    """Every status of the offices' listings, by (listing, marketplace): the fields the
    decision reads (state, id, last action) and the time, read as plain columns."""
    rows = session.execute(
        _status_columns()
        .join(ListingRow, col(ListingRow.id) == col(TransferStatusRow.listing_id))
        .where(col(ListingRow.office_id).in_(sorted(set(office_ids))))
    )
    return _by_pair(rows)


def _status_columns() -> Any:
    return sa_select(TransferStatusRow.listing_id, TransferStatusRow.marketplace,  # type: ignore[call-overload]
                     TransferStatusRow.state, TransferStatusRow.marketplace_id,
                     TransferStatusRow.action, TransferStatusRow.at)


def _by_pair(rows: Iterable[Any]) -> dict[tuple[str, str], TransferStatus]:
    return {(r.listing_id, r.marketplace): TransferStatus(
        listing_id=r.listing_id, marketplace=r.marketplace, state=r.state,
        marketplace_id=r.marketplace_id, action=r.action, at=r.at) for r in rows}


def _delete_reason(listing: Listing, office: Office, marketplace: str,
                   status: TransferStatus | None) -> str | None:
    decision = decide(FeedInput(listing, office), marketplace, status)
    return decision.delete_reason if decision.action == "delete" else None


def _weigh(removals: list[Removal], statuses: Mapping[tuple[str, str], TransferStatus],
           office_of: Mapping[str, str]) -> dict[str, dict[str, dict[str, int]]]:
    """``{office: {marketplace: {"removing", "published"}}}`` for the removals' offices."""
    published: dict[tuple[str, str], int] = defaultdict(int)
    for (listing_id, marketplace), status in statuses.items():
        if marketplace_holds(status) and listing_id in office_of:
            published[(office_of[listing_id], marketplace)] += 1
    counts: dict[str, dict[str, dict[str, int]]] = defaultdict(dict)
    for removal in removals:
        entry = counts[removal.office_id].setdefault(
            removal.marketplace,
            {"removing": 0, "published": published[(removal.office_id, removal.marketplace)]})
        entry["removing"] += 1
    return counts


def _cause_text(source: str, counts: Mapping[str, Mapping[str, int]], guard: Guard) -> str:
    parts = [f"{c['removing']} of {c['published']} on {title(m)}"
             for m, c in sorted(counts.items()) if guard.trips(c["removing"], c["published"])]
    what = "an ingest" if source == "ingest" else "a transfer"
    return (f"{what} would remove {', '.join(parts)} published listings of the office at once "
            f"(limit: more than {guard.share:.0%} and at least {guard.minimum})")


def _hold(session: Session, office_id: str, source: str, removals: list[Removal],
          counts: Mapping[str, Mapping[str, int]], listings: list[dict[str, Any]],
          statuses: Mapping[tuple[str, str], TransferStatus], guard: Guard,
          now: datetime) -> DeletionHoldRow:
    """Store a hold of ``removals`` and note it on each held pair's status."""
    hold = DeletionHoldRow(
        id=uuid.uuid4().hex[:16], office_id=office_id, state=HELD, source=source,
        cause=_cause_text(source, counts, guard),
        pairs=[{"listing_id": r.listing_id, "marketplace": r.marketplace, "reason": r.reason}
               for r in removals],
        listings=listings, counts={m: dict(c) for m, c in counts.items()}, created_at=now,
    )
    session.add(hold)
    note = f"{HOLD_NOTE}: {len(removals)} delete(s) held ({hold.cause}); hold {hold.id}"
    for removal in removals:
        status = statuses.get((removal.listing_id, removal.marketplace))
        if status is not None:
            record_status(session, removal.listing_id, removal.marketplace, status.state,
                          error=f"{note}; reason: {REASON_WORDS[removal.reason]}", at=status.at)
    get_logger(component="holds", office_id=office_id, hold_id=hold.id).warning(
        "holds.mass_delete_held", source=source, deletes=len(removals), cause=hold.cause)
    return hold


def guard_ingest(session: Session, guard: Guard, before: Mapping[str, tuple[str, Sequence[str]]],
                 listing_ids: Sequence[str], now: datetime) -> list[str]:
    """Hold the deletes an ingest caused where they are over the limit; the holds' ids.

    ``before`` is ``{listing id: (state, selection)}`` of the stored listings the
    document changed, read before the upsert; the listings are read again (as the
    ingest wrote them, in ``session``). A delete "caused" is one the transfer
    decision gives now and did not give before.
    """
    changed = [lid for lid in listing_ids if lid in before]
    if not changed:
        return []
    rows = {row.id: row for row in session.exec(
        select(ListingRow).where(col(ListingRow.id).in_(changed)))}
    offices = _offices(session, {row.office_id for row in rows.values()})
    candidates: list[tuple[Listing, Listing]] = []
    for lid, row in rows.items():
        after = _listing(row)
        state, selection = before[lid]
        prior = Listing(id=lid, office_id=row.office_id, category=row.category, state=state,
                        marketplaces=tuple(selection))
        if (after.state, after.marketplaces) != (prior.state, prior.marketplaces):
            candidates.append((prior, after))
    if not candidates:
        return []
    statuses = _office_statuses(session, {after.office_id for _p, after in candidates})
    removals: list[Removal] = []
    for prior, after in candidates:
        office = offices.get(after.office_id)
        if office is None:
            continue
        for marketplace in office.licence:
            status = statuses.get((after.id, marketplace))
            reason = _delete_reason(after, office, marketplace, status)
            if reason is not None and _delete_reason(prior, office, marketplace, status) is None:
                removals.append(Removal(after.office_id, after.id, marketplace, reason))
    if not _may_trip(guard, removals):
        return []
    snapshots = {prior.id: {"listing_id": prior.id, "state": prior.state,
                            "marketplaces": list(prior.marketplaces),
                            "after_state": after.state,
                            "after_marketplaces": list(after.marketplaces)}
                 for prior, after in candidates}
    return _hold_where_over(session, guard, "ingest", removals, statuses, snapshots, now)


def _hold_where_over(session: Session, guard: Guard, source: str, removals: list[Removal],
                     statuses: Mapping[tuple[str, str], TransferStatus],
                     snapshots: Mapping[str, dict[str, Any]], now: datetime) -> list[str]:
    """Hold, per office, every removal of an office that is over the limit somewhere."""
    listing_offices = dict(session.exec(
        select(ListingRow.id, ListingRow.office_id).where(
            col(ListingRow.office_id).in_(sorted({r.office_id for r in removals})))).all())
    counts = _weigh(removals, statuses, listing_offices)
    held: list[str] = []
    for office_id, per_marketplace in sorted(counts.items()):
        if not any(guard.trips(c["removing"], c["published"]) for c in per_marketplace.values()):
            continue
        mine = [r for r in removals if r.office_id == office_id]
        listings = [snapshots[lid] for lid in sorted({r.listing_id for r in mine})
                    if lid in snapshots]
        held.append(_hold(session, office_id, source, mine, per_marketplace, listings, statuses,
                          guard, now).id)
    return held


def _pairs_of(holds: Iterable[DeletionHoldRow]) -> Iterable[tuple[DeletionHoldRow, str, str]]:
    for hold in holds:
        for pair in hold.pairs:
            yield hold, pair["listing_id"], pair["marketplace"]


def blocked_pairs(session: Session, office_ids: Iterable[str]) -> set[tuple[str, str]]:
    """The (listing, marketplace) pairs of the offices whose delete must not be sent now:
    those of a ``held`` hold, and those of a ``cancelled`` one whose listing the desktop
    has not sent again since the cancel."""
    return _pairs_in(session, office_ids, (HELD, CANCELLED))


def held_pairs(session: Session, office_ids: Iterable[str]) -> dict[tuple[str, str], str]:
    """The pairs of the offices' holds still waiting for a person, with the hold's id:
    a pull marketplace's feed job publishes no feed of an office with one there."""
    wanted = sorted(set(office_ids))
    if not wanted:
        return {}
    rows = session.exec(select(DeletionHoldRow).where(
        col(DeletionHoldRow.office_id).in_(wanted), col(DeletionHoldRow.state) == HELD))
    return {(pair["listing_id"], pair["marketplace"]): row.id
            for row in rows for pair in row.pairs}


def confirmed_pairs(session: Session, office_ids: Iterable[str]) -> set[tuple[str, str]]:
    """The pairs a person let go (a ``confirmed`` hold, listing unchanged since): the
    guard does not weigh them again."""
    return _pairs_in(session, office_ids, (CONFIRMED,))


def _pairs_in(session: Session, office_ids: Iterable[str], states: Sequence[str]
              ) -> set[tuple[str, str]]:
    wanted = sorted(set(office_ids))
    if not wanted:
        return set()
    holds = list(session.exec(select(DeletionHoldRow).where(
        col(DeletionHoldRow.office_id).in_(wanted), col(DeletionHoldRow.state).in_(states))))
    if not holds:
        return set()
    decided = [h for h in holds if h.state != HELD]
    updated: dict[str, datetime] = {}
    if decided:
        ids = sorted({p["listing_id"] for h in decided for p in h.pairs})
        updated = dict(session.exec(select(ListingRow.id, ListingRow.updated_at).where(
            col(ListingRow.id).in_(ids))).all())
    found: set[tuple[str, str]] = set()
    for hold, listing_id, marketplace in _pairs_of(holds):
        if hold.state != HELD:
            changed = updated.get(listing_id)
            if changed is None or hold.decided_at is None or changed > hold.decided_at:
                continue
        found.add((listing_id, marketplace))
    return found


def guard_transfer(session: Session, guard: Guard, scope: tuple[str, str | None],
                   now: datetime) -> list[str]:
    """Hold a transfer's deletes where they are over the limit, before its fan-out; the
    holds' ids. ``scope`` is the request's (kind, value): ``object``, ``office`` or
    ``all``. Pairs already held, cancelled or confirmed are not weighed again."""
    kind, value = scope
    query = sa_select(ListingRow.id, ListingRow.office_id, ListingRow.category,  # type: ignore[call-overload]
                      ListingRow.state, ListingRow.marketplaces)
    if kind == "object":
        query = query.where(col(ListingRow.id) == value)
    elif kind == "office":
        query = query.where(col(ListingRow.office_id) == value)
    rows = list(session.execute(query).all())
    if not rows:
        return []
    office_ids = {row.office_id for row in rows}
    offices = _offices(session, office_ids)
    statuses = (_listing_statuses(session, str(value)) if kind == "object"
                else _office_statuses(session, office_ids))
    skip = blocked_pairs(session, office_ids) | confirmed_pairs(session, office_ids)
    removals: list[Removal] = []
    snapshots: dict[str, dict[str, Any]] = {}
    for row in rows:
        office = offices.get(row.office_id)
        if office is None:
            continue
        listing: Listing | None = None
        for marketplace in office.licence:
            status = statuses.get((row.id, marketplace))
            if not marketplace_holds(status) or (row.id, marketplace) in skip:
                continue  # a delete is decided only where the marketplace holds a copy
            listing = listing or _listing(row)
            reason = _delete_reason(listing, office, marketplace, status)
            if reason is not None:
                removals.append(Removal(row.office_id, row.id, marketplace, reason))
                snapshots[row.id] = {"listing_id": row.id, "state": row.state,
                                     "marketplaces": list(row.marketplaces or ()),
                                     "after_state": row.state,
                                     "after_marketplaces": list(row.marketplaces or ())}
    if not _may_trip(guard, removals):
        return []
    if kind == "object":
        statuses = _office_statuses(session, office_ids)
    return _hold_where_over(session, guard, "transfer", removals, statuses, snapshots, now)


def _may_trip(guard: Guard, removals: Sequence[Removal]) -> bool:
    """Whether any office and marketplace has at least the minimum of removals: below it
    the guard never holds, so the published counts need not be read."""
    per_pair: dict[tuple[str, str], int] = defaultdict(int)
    for removal in removals:
        per_pair[(removal.office_id, removal.marketplace)] += 1
    return any(count >= guard.minimum for count in per_pair.values())


def _listing_statuses(session: Session, listing_id: str
                      ) -> dict[tuple[str, str], TransferStatus]:
    rows = session.execute(_status_columns().where(
        col(TransferStatusRow.listing_id) == listing_id))
    return _by_pair(rows)
