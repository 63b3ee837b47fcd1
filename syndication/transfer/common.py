"""What the parts of a transfer share: the job reference, the queue they
schedule on, and how the stored status is read back for a decision.

The fan-out writes ``queued`` over a listing's row, and each start of a job
writes ``queued`` again to count the attempt. Decisions, however, need the
listing's *settled* state — what the marketplace was last known to hold — so
:func:`settled_status` reads the row with its state and time taken from the
last history event that was not ``queued``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from typing import Protocol

from sqlalchemy import func, update
from sqlmodel import Session, col, select

from syndication.records import TransferStatus
from syndication.store.models import TransferEventRow, TransferStatusRow
from syndication.store.repository import status_record


@dataclass(frozen=True, slots=True)
class JobRef:
    """One job of a transfer request: a listing on a marketplace."""

    listing_id: str
    marketplace: str
    request_id: str

    def as_kwargs(self) -> dict[str, str]:
        return {
            "listing_id": self.listing_id,
            "marketplace": self.marketplace,
            "request_id": self.request_id,
        }


class Scheduler(Protocol):
    """Where the orchestration puts follow-up work; the actors implement it."""

    def transfer(self, jobs: list[JobRef]) -> None:
        """Queue a transfer job for each of ``jobs``."""

    def confirm(self, job: JobRef, document_hash: str, poll: int, delay_ms: int) -> None:
        """Queue a publication check of ``job`` after ``delay_ms``."""


def document_hash(document: bytes) -> str:
    """The SHA-256 of a document, hex: equal documents, equal hashes (R10)."""
    return hashlib.sha256(document).hexdigest()


def idempotency_key(
    listing_id: str, marketplace: str, digest: str, action: str = "create", generation: int = 0
) -> str:
    """The key a delivery carries: a repeated delivery never creates twice.

    A redelivered job (a worker that died before recording the receipt) builds
    the same document in the same ``generation`` and so carries the same key,
    which the marketplace answers from its first answer. ``generation`` counts
    the deliveries the marketplace already accepted for the pair
    (:func:`delivery_generation`): after a delete, an update or any accepted
    delivery, the same document sent again is a new delivery with a new key,
    not a replay of a stale answer.
    """
    return f"{listing_id}:{marketplace}:{action}:{digest[:16]}:{generation}"


def delivery_generation(session: Session, listing_id: str, marketplace: str) -> int:
    """How many accepted outcomes (sent, published, deleted) the pair's history holds."""
    return int(
        session.scalar(
            select(func.count())
            .select_from(TransferEventRow)
            .where(
                col(TransferEventRow.listing_id) == listing_id,
                col(TransferEventRow.marketplace) == marketplace,
                col(TransferEventRow.state).in_(("sent", "published", "deleted")),
            )
        )
        or 0
    )


def lock_status_row(session: Session, listing_id: str, marketplace: str) -> None:
    """Take the write lock on the pair's status row for the rest of the transaction.

    A no-op ``UPDATE`` locks the row on PostgreSQL and takes SQLite's write
    lock, so a read-modify-write that follows (counting an attempt, moving
    ``sent`` to ``published``) cannot interleave with a duplicate of the same
    job running at the same time.
    """
    session.execute(
        update(TransferStatusRow)
        .where(
            col(TransferStatusRow.listing_id) == listing_id,
            col(TransferStatusRow.marketplace) == marketplace,
        )
        .values(attempts=TransferStatusRow.attempts)
    )


def last_settled_event(
    session: Session, listing_id: str, marketplace: str
) -> TransferEventRow | None:
    """The newest history event of the pair whose state is not ``queued``."""
    query = (
        select(TransferEventRow)
        .where(
            col(TransferEventRow.listing_id) == listing_id,
            col(TransferEventRow.marketplace) == marketplace,
            col(TransferEventRow.state) != "queued",
        )
        .order_by(col(TransferEventRow.id).desc())
        .limit(1)
    )
    return session.exec(query).first()


def settled_status(session: Session, listing_id: str, marketplace: str) -> TransferStatus | None:
    """The stored status with a pending ``queued`` replaced by the state before it.

    ``None`` when nothing was ever settled for the pair (never transferred, or
    only queued so far).
    """
    row = session.get(TransferStatusRow, (listing_id, marketplace))
    if row is None:
        return None
    status = status_record(row)
    if status.state != "queued":
        return status
    event = last_settled_event(session, listing_id, marketplace)
    if event is None:
        return None
    return replace(status, state=event.state, at=event.at)
