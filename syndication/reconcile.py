"""R13 Reconciliation: what a marketplace holds against what the store believes.

A marketplace can drift from the store: a listing removed there by hand, a
receipt lost, a copy older than the last document sent. :func:`compare` is the
pure comparison of one marketplace's inventory for an office with the store;
every :class:`Difference` says what it is and what a repair does:

==============  ===========================================  ==========================
kind            store / marketplace                          repair
==============  ===========================================  ==========================
missing_there   store: held; marketplace: absent             still wanted there: send it
                                                             again; no longer wanted:
                                                             record it ``deleted``
unknown_here    marketplace holds it; store: not held or     not in the store: delete
                no such listing                              (``deleted``); removed or
                                                             deselected: delete with the
                                                             reason; still wanted: send it
                                                             so the store records it
stale_there     both hold it, the marketplace's document     send it again (or the pending
                hash differs from the last one sent          delete, with its reason)
==============  ===========================================  ==========================

What "still wanted" means is :func:`syndication.rules.plan.decide`'s call, so a
repair never sends outside the licence (R1): such a difference is reported
with the repair ``none``. Pairs with a transfer in flight (``queued``) are
left alone: the transfer is about to change them. A delete the mass-deletion
guard holds (R15, ``StoreView.held``) is reported with the repair ``none`` too.

:func:`repair` carries the repairs out. A delete of a stored listing goes
through the transfer queue: the status recorded first (``failed`` delete, the
marketplace still holding it, with a ``reconciliation: …`` message in the
history) makes the transfer decide the delete with its reason (sold,
withdrawn, deselected). A re-send is delivered by the reconciliation itself
under an idempotency key of its own run, because the queue's key is derived
from the document and a marketplace would replay its first answer to the same
document; its outcome is recorded like a transfer job's and its publication
check is queued. A listing that is not in the store has no document to build
from, so its delete (reason ``deleted``) is delivered directly too.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlmodel import Session, col

from adapters.base import Delivery, RemoteListing
from syndication import registry
from syndication.errors import PermanentError, SyndicationError
from syndication.holds import blocked_pairs
from syndication.logs import get_logger
from syndication.records import FeedInput, Listing, Office, TransferStatus
from syndication.registry import title
from syndication.rules.plan import decide
from syndication.rules.removal import marketplace_holds
from syndication.runtime import Runtime
from syndication.store.db import session_scope
from syndication.store.models import (
    ListingRow,
    OfficeRow,
    TransferRequestRow,
    TransferStatusRow,
)
from syndication.store.repository import (
    listing_record,
    load_feed_input,
    office_record,
    record_status,
    status_record,
)
from syndication.transfer import (
    JobRef,
    Scheduler,
    Scope,
    document_hash,
    idempotency_key,
    outgoing,
    request_transfer,
)

KINDS = ("missing_there", "unknown_here", "stale_there")


@dataclass(frozen=True, slots=True)
class Difference:
    """One listing on which the store and a marketplace disagree, and the repair.

    ``repair`` is ``resend``, ``delete`` (with ``reason``), ``record_deleted``
    (the marketplace already lacks a listing no longer wanted there) or
    ``none`` (nothing may be sent; ``detail`` says why).
    """

    marketplace: str
    listing_id: str
    kind: str
    repair: str
    detail: str
    reason: str | None = None
    marketplace_id: str | None = None
    in_store: bool = True

    def describe(self) -> str:
        """The difference and the repair as one sentence for the operator."""
        return f"{self.kind.replace('_', ' ')}: {self.detail}"


@dataclass(frozen=True)
class StoreView:
    """What the store holds for one office: its listings and their status rows."""

    office: Office
    listings: Mapping[str, Listing]
    statuses: Mapping[tuple[str, str], TransferStatus] = field(default_factory=dict)
    held: frozenset[tuple[str, str]] = frozenset()
    """Pairs whose delete the mass-deletion guard holds (R15): never deleted by a repair."""


def _held(remote: RemoteListing) -> TransferStatus:
    return TransferStatus(
        listing_id=remote.listing_id, marketplace="", state="published",
        marketplace_id=remote.marketplace_id, document_hash=remote.document_hash,
    )


def _wanted(
    feed_input: FeedInput, marketplace: str, status: TransferStatus | None
) -> tuple[str, str | None, str]:
    """The repair the transfer decision implies, its delete reason and its explanation."""
    decision = decide(feed_input, marketplace, status)
    if decision.action in ("create", "update"):
        return "resend", None, decision.reason
    if decision.action == "delete":
        return "delete", decision.delete_reason, decision.reason
    return "none", None, decision.reason


def compare(
    view: StoreView, marketplace: str, remote: Iterable[RemoteListing]
) -> list[Difference]:
    """Every difference between ``view`` and ``remote`` (the marketplace's inventory
    for the office), ordered by listing id. Pure."""
    name = title(marketplace)
    there_by_id = {item.listing_id: item for item in remote}
    differences: list[Difference] = []
    for listing_id in sorted(set(view.listings) | set(there_by_id)):
        listing = view.listings.get(listing_id)
        there = there_by_id.get(listing_id)
        remote_id = there.marketplace_id if there else None
        if listing is None:
            if there is not None:
                differences.append(Difference(
                    marketplace, listing_id, "unknown_here", "delete",
                    f"{name} holds {listing_id} ({remote_id}), which is not in the store: "
                    "delete it there", "deleted", remote_id, in_store=False,
                ))
            continue
        status = view.statuses.get((listing_id, marketplace))
        if status is not None and status.state == "queued":
            continue
        feed_input = FeedInput(listing, view.office)
        here = marketplace_holds(status)
        if here and there is None:
            assert status is not None
            repair, _, why = _wanted(feed_input, marketplace, status)
            if repair == "resend":
                detail = (
                    f"the store has it as {status.state} on {name}, which lacks it: send it again"
                )
            elif repair == "delete":
                repair = "record_deleted"
                detail = (
                    f"{name} lacks it and it is no longer wanted there ({why}): record it deleted"
                )
            else:
                detail = f"{name} lacks it; nothing to send ({why})"
            differences.append(Difference(marketplace, listing_id, "missing_there", repair,
                                          detail, None, status.marketplace_id))
        elif there is not None and not here:
            repair, reason, why = _wanted(feed_input, marketplace, _held(there))
            state = status.state if status else "never transferred"
            action = {
                "resend": "send it so the store records it",
                "delete": f"delete it there ({reason})",
            }.get(repair, f"nothing may be sent: {why}")
            differences.append(Difference(
                marketplace, listing_id, "unknown_here", repair,
                f"{name} holds it ({remote_id}) but the store has it as {state}: {action}",
                reason, remote_id,
            ))
        elif there is not None and status is not None and _stale(status, there):
            repair, reason, why = _wanted(feed_input, marketplace, status)
            action = {
                "resend": "send it again",
                "delete": f"delete it there ({reason})",
            }.get(repair, f"nothing to send: {why}")
            differences.append(Difference(
                marketplace, listing_id, "stale_there", repair,
                f"the copy on {name} differs from the last document sent: {action}",
                reason, remote_id,
            ))
    return [_held_back(d) if d.repair == "delete" and (d.listing_id, d.marketplace) in view.held
            else d for d in differences]


def _held_back(d: Difference) -> Difference:
    """A delete the guard holds: reported, with no repair until a person decides."""
    return replace(d, repair="none", detail=f"{d.detail}; but its delete is held for "
                   "confirmation (borttagning väntar på bekräftelse): see syndication holds")


def _stale(status: TransferStatus, there: RemoteListing) -> bool:
    return bool(status.document_hash and there.document_hash) and (
        status.document_hash != there.document_hash
    )


def load_view(session: Session, office_id: str) -> StoreView | None:
    """The office with its listings and their status rows (three queries), or ``None``."""
    office_row = session.get(OfficeRow, office_id)
    if office_row is None:
        return None
    rows = session.scalars(select(ListingRow).where(col(ListingRow.office_id) == office_id)).all()
    statuses = session.scalars(
        select(TransferStatusRow)
        .join(ListingRow, ListingRow.id == TransferStatusRow.listing_id)  # type: ignore[arg-type]
        .where(col(ListingRow.office_id) == office_id)
    )
    return StoreView(
        office=office_record(office_row),
        listings={row.id: listing_record(row) for row in rows},
        statuses={(s.listing_id, s.marketplace): status_record(s) for s in statuses},
        held=frozenset(blocked_pairs(session, [office_id])),
    )


@dataclass
class RepairReport:
    """What :func:`repair` did: transfer requests queued (deletes), listings re-sent,
    direct deletes of listings not in the store, status rows recorded, errors."""

    request_ids: list[str] = field(default_factory=list)
    resent: list[str] = field(default_factory=list)
    direct_deletes: list[str] = field(default_factory=list)
    recorded: int = 0
    errors: list[str] = field(default_factory=list)


def _prepare_delete(session: Session, d: Difference, now: datetime) -> None:
    """Record the status that makes the next transfer decide ``d``'s delete or bookkeeping."""
    name = title(d.marketplace)
    if d.repair == "record_deleted":
        record_status(session, d.listing_id, d.marketplace, "deleted", action="delete",
                      marketplace_id=None, document_hash=None, at=now)
    else:
        record_status(session, d.listing_id, d.marketplace, "failed", action="delete",
                      marketplace_id=d.marketplace_id,
                      error=f"reconciliation: {name} still holds it; deleting it ({d.reason})",
                      at=now)


def _resend(
    runtime: Runtime, d: Difference, run_id: str, scheduler: Scheduler
) -> None:
    """Send the listing's current document again, under a key of this reconciliation run.

    The queue's idempotency key is derived from the document, so a marketplace
    that lost a listing (or holds an older copy) would answer a re-send of the
    same document with its first, stored answer and change nothing. A repair
    therefore delivers with a key of its own (stable for the HTTP retries of
    this run), records the outcome like a transfer job, and leaves the
    publication check to the queue.
    """
    with session_scope(runtime.engine) as session:
        feed_input = load_feed_input(session, d.listing_id)
    if feed_input is None:
        raise PermanentError("the listing is no longer in the store", listing_id=d.listing_id,
                             marketplace=d.marketplace)
    # The document a transfer would send to a marketplace that holds nothing; the
    # difference says whether the marketplace is to create it or replace its copy.
    planned = outgoing(feed_input, d.marketplace, None)
    if planned.failure is not None:
        raise planned.failure
    if planned.document is None or planned.digest is None:
        raise PermanentError(f"a transfer would send nothing: {planned.decision.reason}",
                             listing_id=d.listing_id, marketplace=d.marketplace)
    action = "create" if d.kind == "missing_there" else "update"
    document, digest = planned.document, planned.digest
    receipt = runtime.transport(d.marketplace).send(Delivery(
        marketplace=d.marketplace, listing_id=d.listing_id, office_id=feed_input.office.id,
        action=action, document=document,
        idempotency_key=idempotency_key(d.listing_id, d.marketplace, action, digest,
                                        run=f"reconcile-{run_id[:12]}"),
    ))
    state = "published" if receipt.published else "sent"
    with session_scope(runtime.engine) as session:
        fields: dict[str, Any] = {"public_url": receipt.public_url} if receipt.public_url else {}
        record_status(session, d.listing_id, d.marketplace, state, action=action,
                      marketplace_id=receipt.marketplace_id or d.marketplace_id,
                      document_hash=digest, request_id=run_id, attempt=True,
                      at=runtime.clock(), **fields)
        if state == "sent":
            scheduler.confirm(session, JobRef(d.listing_id, d.marketplace, run_id), digest, 0,
                              runtime.first_check_ms(d.marketplace))
    get_logger(listing_id=d.listing_id, marketplace=d.marketplace).info(
        "reconcile.resent", kind=d.kind, state=state, marketplace_id=receipt.marketplace_id
    )


def _delete_unknown(runtime: Runtime, office: Office, d: Difference) -> None:
    """Delete a listing the store does not know straight through the transport."""
    stub = Listing(id=d.listing_id, office_id=office.id, category="villa", state="deleted")
    document = registry.get(d.marketplace).build_delete(FeedInput(stub, office), "deleted")
    runtime.transport(d.marketplace).send(Delivery(
        marketplace=d.marketplace, listing_id=d.listing_id, office_id=office.id,
        action="delete", document=document,
        idempotency_key=idempotency_key(d.listing_id, d.marketplace, "delete",
                                        document_hash(document), run="reconcile"),
    ))


def repair(
    runtime: Runtime, office: Office, differences: Sequence[Difference], scheduler: Scheduler
) -> RepairReport:
    """Carry out every repair of ``differences`` (see the module doc); errors are collected.

    Deletes of stored listings go through the transfer queue (one request per
    listing), which sends them with the reason the transfer decision gives;
    re-sends are delivered by :func:`_resend`; a listing the store does not
    know is deleted directly.
    """
    report = RepairReport()
    run_id = uuid.uuid4().hex
    with session_scope(runtime.engine) as session:
        session.add(TransferRequestRow(id=run_id, scope=f"reconcile:{office.id}",
                                       jobs=len(differences), created_at=runtime.clock()))
    to_transfer: list[str] = []
    for d in differences:
        where = f"{d.listing_id} on {title(d.marketplace)}"
        try:
            if d.repair == "none":
                continue
            if not d.in_store:
                _delete_unknown(runtime, office, d)
                report.direct_deletes.append(d.listing_id)
            elif d.repair == "resend":
                _resend(runtime, d, run_id, scheduler)
                report.resent.append(d.listing_id)
            else:
                with session_scope(runtime.engine) as session:
                    _prepare_delete(session, d, runtime.clock())
                report.recorded += 1
                if d.repair == "delete" and d.listing_id not in to_transfer:
                    to_transfer.append(d.listing_id)
        except SyndicationError as exc:
            report.errors.append(f"{where}: {exc}")
            if d.in_store:
                with session_scope(runtime.engine) as session:
                    record_status(session, d.listing_id, d.marketplace, "failed",
                                  error=f"reconciliation: {title(d.marketplace)}: {exc}",
                                  request_id=run_id, at=runtime.clock())
    for listing_id in to_transfer:
        summary = request_transfer(runtime, Scope("object", listing_id), scheduler)
        report.request_ids.append(summary.request_id)
    return report
