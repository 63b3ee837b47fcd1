"""Deciding a held mass deletion (R15): list, describe, confirm, cancel.

The guard that holds deletes is :mod:`syndication.holds`, which re-exports these
names; this module is what a person's decision does to a hold and its listings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from syndication.errors import InputError
from syndication.logs import get_logger
from syndication.store.db import session_scope
from syndication.store.guard_models import DeletionHoldRow
from syndication.store.models import ListingRow, TransferStatusRow, utcnow
from syndication.store.repository import record_status

HOLD_NOTE = "borttagning väntar på bekräftelse"
"""The note of a pair whose delete is held (Swedish, as the agents read it)."""
CANCEL_NOTE = "borttagning avbruten"
HELD, CONFIRMED, CANCELLED = "held", "confirmed", "cancelled"


class UnknownHold(InputError):
    """No hold with that id (or one of another office: R14 answers them alike)."""


class HoldDecided(InputError):
    """The hold was confirmed or cancelled already."""


def describe(hold: DeletionHoldRow) -> dict[str, Any]:
    """A hold as ``holds list --json`` and the API show it."""
    return {
        "hold_id": hold.id, "office_id": hold.office_id, "state": hold.state,
        "source": hold.source, "cause": hold.cause, "deletes": len(hold.pairs),
        "counts": hold.counts, "pairs": hold.pairs,
        "created_at": hold.created_at.isoformat(),
        "decided_at": hold.decided_at.isoformat() if hold.decided_at else None,
        "decided_by": hold.decided_by,
    }


def list_holds(session: Session, offices: Any = None, *, every: bool = False
               ) -> list[DeletionHoldRow]:
    """The holds still waiting (``every``: all of them), newest first; ``offices`` is an
    ``IN`` subquery of the offices the caller may read (``None``: every office)."""
    query = select(DeletionHoldRow).order_by(col(DeletionHoldRow.created_at).desc())
    if not every:
        query = query.where(col(DeletionHoldRow.state) == HELD)
    if offices is not None:
        query = query.where(col(DeletionHoldRow.office_id).in_(offices))
    return list(session.exec(query))


def _open(session: Session, hold_id: str, offices: Any) -> DeletionHoldRow:
    query = select(DeletionHoldRow).where(col(DeletionHoldRow.id) == hold_id)
    if offices is not None:
        query = query.where(col(DeletionHoldRow.office_id).in_(offices))
    hold = session.exec(query.with_for_update()).first()
    if hold is None:
        raise UnknownHold(f"no hold with id {hold_id[:40]!r}", record=f"hold {hold_id[:40]!r}")
    if hold.state != HELD:
        raise HoldDecided(f"the hold was {hold.state} already by {hold.decided_by}",
                          record=f"hold {hold.id!r}", field="state")
    return hold


def office_of_hold(engine: Engine, hold_id: str) -> str | None:
    """The office of ``hold_id`` (any state), or ``None`` when there is none."""
    with session_scope(engine) as session:
        hold = session.get(DeletionHoldRow, hold_id)
        return None if hold is None else hold.office_id


def confirm(engine: Engine, hold_id: str, actor: str, *, offices: Any = None,
            now: datetime | None = None) -> list[str]:
    """Let a hold's deletes go; returns the listings the caller must now transfer."""
    with session_scope(engine) as session:
        hold = _open(session, hold_id, offices)
        hold.state, hold.decided_at, hold.decided_by = CONFIRMED, now or utcnow(), actor
        session.add(hold)
        listing_ids = sorted({pair["listing_id"] for pair in hold.pairs})
    get_logger(component="holds", hold_id=hold_id).warning(
        "holds.confirmed", by=actor, listings=len(listing_ids))
    return listing_ids


@dataclass
class Cancelled:
    """What a cancel did: listings put back as they were, and those changed since (left)."""

    restored: list[str] = field(default_factory=list)
    left: list[str] = field(default_factory=list)


def cancel(engine: Engine, hold_id: str, actor: str, *, offices: Any = None,
           now: datetime | None = None) -> Cancelled:
    """Cancel a hold: each listing gets back its state and selection from before the
    change (unless the desktop changed it again since), the held pairs' note says the
    delete was cancelled, and nothing is sent: the marketplaces keep their copies."""
    stamp = now or utcnow()
    outcome = Cancelled()
    with session_scope(engine) as session:
        hold = _open(session, hold_id, offices)
        for snapshot in hold.listings:
            row = session.get(ListingRow, snapshot["listing_id"])
            if row is None:
                continue
            current = (row.state, list(row.marketplaces or ()))
            if current != (snapshot["after_state"], snapshot["after_marketplaces"]):
                outcome.left.append(row.id)
                continue
            marketplaces = list(snapshot["marketplaces"])
            for pair in hold.pairs:
                if (pair["listing_id"] == row.id and pair["reason"] == "deselected"
                        and pair["marketplace"] not in marketplaces):
                    marketplaces.append(pair["marketplace"])
            row.state, row.marketplaces, row.updated_at = snapshot["state"], marketplaces, stamp
            session.add(row)
            outcome.restored.append(row.id)
        for pair in hold.pairs:
            status = session.get(TransferStatusRow, (pair["listing_id"], pair["marketplace"]))
            if status is not None:
                record_status(session, pair["listing_id"], pair["marketplace"], status.state,
                              error=f"{CANCEL_NOTE} by {actor} (hold {hold.id}); "
                                    "the marketplace keeps it", at=status.at)
        hold.state, hold.decided_at, hold.decided_by = CANCELLED, stamp, actor
        session.add(hold)
    get_logger(component="holds", hold_id=hold_id).warning(
        "holds.cancelled", by=actor, restored=len(outcome.restored), left=len(outcome.left))
    return outcome
