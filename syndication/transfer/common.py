"""What the parts of a transfer share: the job reference, the queue they
schedule on, and how the stored status is read back for a decision.

The fan-out writes ``queued`` over a listing's row, and each start of a job
writes ``queued`` again to count the attempt. Decisions, however, need the
listing's *settled* state — what the marketplace was last known to hold — so
:func:`settled_status` reads the row with its state and time taken from the
last history event that was not ``queued``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import String, bindparam, func, update
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from syndication.records import TransferStatus
from syndication.store.models import TransferEventRow, TransferStatusRow
from syndication.store.repository import status_record

if TYPE_CHECKING:
    from syndication.outbox.rows import Staging


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
    """Where the orchestration puts follow-up work; the actors implement it.

    Each method stages its messages in ``session``'s transaction (the outbox,
    :mod:`syndication.outbox`), so they exist exactly when the state that
    waits for them was stored, and are sent once that transaction commits.
    """

    def transfer(self, session: Session, jobs: list[JobRef]) -> None:
        """Queue a transfer job for each of ``jobs``."""

    def confirm(
        self, session: Session, job: JobRef, document_hash: str, poll: int, delay_ms: int
    ) -> None:
        """Queue a publication check of ``job`` after ``delay_ms``."""

    def publish_feed(
        self, session: Session, office_id: str, marketplace: str, request_id: str
    ) -> None:
        """Queue the rebuild and publication of an office's full feed on a pull
        marketplace (R17)."""

    def confirm_later(
        self, job: JobRef, document_hash: str, poll: int, delay_ms: int
    ) -> Staging | None:
        """The publication check of :meth:`confirm` as a message for a Core transaction
        to stage (:func:`syndication.outbox.stage_claimed`); ``None`` queues nothing."""


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


def _settled_view_query() -> Any:
    """The statement of :func:`settled_view`, built once: the aliases make it
    costly to build, and its parameters are bound per call."""
    pair_listing: Any = bindparam("listing_id", type_=String)
    pair_marketplace: Any = bindparam("marketplace", type_=String)
    settled = aliased(TransferEventRow)
    counted = aliased(TransferEventRow)
    newest = aliased(TransferEventRow)
    generation = (
        select(func.count())
        .select_from(counted)
        .where(
            col(counted.listing_id) == pair_listing,
            col(counted.marketplace) == pair_marketplace,
            col(counted.state).in_(("sent", "published", "deleted")),
        )
        .scalar_subquery()
    )
    newest_settled_id = (
        select(col(newest.id))
        .where(
            col(newest.listing_id) == pair_listing,
            col(newest.marketplace) == pair_marketplace,
            col(newest.state) != "queued",
        )
        .order_by(col(newest.id).desc())
        .limit(1)
        .scalar_subquery()
    )
    return (
        select(TransferStatusRow, generation, settled.state, settled.at)
        .outerjoin(settled, col(settled.id) == newest_settled_id)
        .where(
            col(TransferStatusRow.listing_id) == pair_listing,
            col(TransferStatusRow.marketplace) == pair_marketplace,
        )
    )


_SETTLED_VIEW = _settled_view_query()


def settled_view(
    session: Session, listing_id: str, marketplace: str
) -> tuple[TransferStatus | None, int]:
    """The pair's settled status and its delivery generation, read in one statement.

    The status is the stored row with a pending ``queued`` replaced by the
    newest history event that is not ``queued`` (``None`` when nothing was ever
    settled: never transferred, or only queued so far). The generation counts
    the accepted outcomes (sent, published, deleted) in the history; it goes
    into the idempotency key.

    One ``SELECT`` gives both from the same snapshot on SQLite and PostgreSQL
    alike. Read apart, a duplicate of the job that commits its delivery
    between the reads would leave this job seeing no delivery yet and the new
    generation: it would create the listing a second time under a fresh key.
    """
    found = session.exec(
        _SETTLED_VIEW, params={"listing_id": listing_id, "marketplace": marketplace}
    ).first()
    if found is None:
        return None, 0
    row, count, event_state, event_at = found
    status = status_record(row)
    if status.state == "queued":
        if event_state is None:
            return None, int(count)
        status = replace(status, state=event_state, at=event_at)
    return status, int(count)


def settled_status(session: Session, listing_id: str, marketplace: str) -> TransferStatus | None:
    """The stored status with a pending ``queued`` replaced by the state before it.

    ``None`` when nothing was ever settled for the pair (never transferred, or
    only queued so far).
    """
    return settled_view(session, listing_id, marketplace)[0]
