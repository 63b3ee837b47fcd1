"""One transfer job: a listing on a marketplace, from decision to stored outcome.

:func:`run_transfer_job` loads the listing and its settled status, asks
:func:`syndication.transfer.outgoing.outgoing` what the transfer sends (the one
place that decides, checks the conditions, builds and compares), and carries
it out:

1. nothing to send — the decision's state (``not_licensed``, ``not_selected``)
   is recorded, or the settled state restored;
2. a failure before sending (conditions unmet, a document that cannot be
   built) — ``failed`` with every unmet condition, and nothing sent; the same
   document as the copy the marketplace holds (R10) sends nothing: the settled
   state is recorded again with its old time, so the request's history shows
   the listing as untouched;
3. otherwise the document is delivered with an idempotency key made of the
   listing, the marketplace, the action, the document hash and the delivery
   generation, and ``sent`` (or ``published``, when the receipt says so) is
   recorded with the marketplace's id and address; a delete records
   ``deleted`` and its date with its reason ("deleted: sold", R13),
   or with :data:`NOT_KNOWN_NOTE` when the marketplace answered that it did not
   know the listing (it may still hold it: support must tell the two apart).

A permanent error (invalid document, a refusal, a configuration gap) records
``failed`` with the marketplace's message and returns: the message is done.
Every call goes through the marketplace's circuit breaker
(:mod:`syndication.circuit`): while it is open nothing is called, and the
row stays ``queued`` with the note "väntar på <marknadsplats>: <orsak>"
until a later try finds it closed. A transient error records the attempt's
error on the ``queued`` row and is raised, so dramatiq retries the message
with backoff; once the retry budget is spent
:class:`~syndication.transfer.lifecycle.TransferLifecycle` records ``failed``.
Every outcome is stored before the function returns, and dramatiq
acknowledges a message only after its actor returned: a worker killed
mid-job leaves its message to be delivered again.

:func:`confirm_publication` is the follow-up check: a ``sent`` listing becomes
``published`` once the marketplace's lookup says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from adapters.base import Delivery, Receipt
from syndication.circuit import CircuitOpen
from syndication.errors import SyndicationError, TransientError
from syndication.logs import get_logger
from syndication.metrics import note_action
from syndication.records import TransferStatus
from syndication.registry import title
from syndication.rules import plan
from syndication.rules.removal import reason_note
from syndication.runtime import Runtime
from syndication.store.db import session_scope
from syndication.store.models import TransferStatusRow
from syndication.store.repository import load_feed_input, record_status
from syndication.transfer.common import JobRef, Scheduler, lock_status_row, settled_view
from syndication.transfer.keys import idempotency_key
from syndication.transfer.outgoing import outgoing

CONFIRM_POLLS = 8
"""How many times a ``sent`` listing is looked up before it is left ``sent``."""

NOT_KNOWN_NOTE = (
    "the marketplace did not know the listing (marknadsplatsen kände inte till objektet)"
)
"""The note of a ``deleted`` row whose delete the marketplace answered with "not known"."""


@dataclass(frozen=True, slots=True)
class JobOutcome:
    """What a job did: the state it recorded and whether a document left."""

    state: str | None
    sent: bool = False
    note: str = ""


def _record(runtime: Runtime, job: JobRef, state: str, **fields: Any) -> None:
    with session_scope(runtime.engine) as session:
        record_status(
            session, job.listing_id, job.marketplace, state, request_id=job.request_id, **fields
        )


def run_transfer_job(runtime: Runtime, job: JobRef, scheduler: Scheduler) -> JobOutcome:
    """Carry out the transfer of ``job``'s listing to its marketplace; see the module doc."""
    with session_scope(runtime.engine) as session:
        current, generation = settled_view(session, job.listing_id, job.marketplace)
        feed_input = load_feed_input(session, job.listing_id)
    if feed_input is None:
        _record(runtime, job, "failed", error="the listing is no longer in the store")
        return JobOutcome("failed", note="listing gone")

    planned = outgoing(feed_input, job.marketplace, current)
    decision = planned.decision
    if not decision.sends:
        return _record_no_send(runtime, job, decision, current)
    if planned.failure is not None:
        return _fail(runtime, job, decision.action, planned.failure)
    if planned.unchanged and current is not None:
        return _unchanged(runtime, job, current, scheduler)
    assert planned.document is not None and planned.digest is not None
    document, digest = planned.document, planned.digest
    note_action(decision.action)

    delivery = Delivery(
        marketplace=job.marketplace,
        listing_id=job.listing_id,
        office_id=feed_input.office.id,
        action=decision.action,
        document=document,
        idempotency_key=idempotency_key(
            job.listing_id, job.marketplace, decision.action, digest, generation
        ),
    )
    try:
        with runtime.breaker.guard(job.marketplace):
            receipt = runtime.transport(job.marketplace).send(delivery)
    except CircuitOpen as exc:
        _record(runtime, job, "queued", action=decision.action, error=exc.waiting_note)
        get_logger().info("transfer.waiting", reason=str(exc))
        raise
    except TransientError as exc:
        _record(runtime, job, "queued", action=decision.action, error=f"attempt failed: {exc}")
        raise
    except SyndicationError as exc:
        return _fail(runtime, job, decision.action, exc)
    return _delivered(runtime, job, decision.action, digest, receipt, scheduler,
                      reason=decision.delete_reason)


def _record_no_send(
    runtime: Runtime, job: JobRef, decision: plan.Decision, current: TransferStatus | None
) -> JobOutcome:
    """Record a decision that sends nothing; an unchanged state keeps its time.

    A decision with no state of its own (a removed listing never published
    there, a marketplace neither licensed nor selected) can reach a job only
    when the records changed after the fan-out; the pair's ``queued`` row then
    becomes ``not_selected`` — it is not shown there — so no row stays queued.
    """
    state = decision.state or (current.state if current is not None else "not_selected")
    if current is not None and current.state == state:
        error, at = current.error, current.at
    else:
        error, at = None, runtime.clock()
    if state == "not_licensed":
        error = decision.reason
    _record(runtime, job, state, error=error, at=at)
    return JobOutcome(state, note=decision.reason)


def _unchanged(
    runtime: Runtime, job: JobRef, current: TransferStatus, scheduler: Scheduler
) -> JobOutcome:
    """R10: the marketplace holds this very document. Send nothing; say so.

    The settled state is recorded again with its old time. A copy still
    ``sent`` gets its publication check staged in the same transaction and is
    also looked up at once, so a confirmation lost with the in-process
    broker's process is made up for by the next transfer (the staged check
    then finds it published and does nothing).
    """
    state = current.state if current.state in ("sent", "published") else "sent"
    digest = current.document_hash
    with session_scope(runtime.engine) as session:
        record_status(session, job.listing_id, job.marketplace, state,
                      request_id=job.request_id, at=current.at)
        if state == "sent" and digest:
            scheduler.confirm(session, job, digest, 0, runtime.first_check_ms(job.marketplace))
    get_logger().info("transfer.unchanged", state=state, note="same document; nothing sent")
    if state == "sent" and digest:
        _looked_up(runtime, job, digest)
    return JobOutcome(state, note="unchanged, nothing sent")


def _looked_up(runtime: Runtime, job: JobRef, digest: str) -> bool:
    """:func:`confirm_publication` at once; a marketplace that cannot answer now
    is asked again later rather than failing a transfer that had nothing to send."""
    try:
        return confirm_publication(runtime, job, digest)
    except SyndicationError as exc:
        get_logger().info("transfer.lookup_failed", error=str(exc))
        return False


def _delivered(
    runtime: Runtime,
    job: JobRef,
    action: str,
    digest: str,
    receipt: Receipt,
    scheduler: Scheduler,
    reason: str | None = None,
) -> JobOutcome:
    """Record an accepted delivery; a ``sent`` one with its publication check, staged in
    the outbox in the same transaction, so no ``sent`` row waits for a check never sent."""
    fields: dict[str, Any] = {"action": action, "at": runtime.clock()}
    if receipt.marketplace_id is not None:
        fields["marketplace_id"] = receipt.marketplace_id
    if receipt.public_url is not None:
        fields["public_url"] = receipt.public_url
    if action == "delete":
        note = NOT_KNOWN_NOTE if receipt.not_known else reason_note(reason)
        _record(runtime, job, "deleted", document_hash=None, error=note, **fields)
        get_logger().info("transfer.deleted", not_known=receipt.not_known)
        return JobOutcome("deleted", sent=True, note=note or "")
    state = "published" if receipt.published else "sent"
    with session_scope(runtime.engine) as session:
        record_status(session, job.listing_id, job.marketplace, state,
                      request_id=job.request_id, document_hash=digest, **fields)
        if state == "sent":
            scheduler.confirm(session, job, digest, 0, runtime.first_check_ms(job.marketplace))
    get_logger().info("transfer.delivered", state=state, marketplace_id=receipt.marketplace_id)
    return JobOutcome(state, sent=True)


def _fail(runtime: Runtime, job: JobRef, action: str, exc: SyndicationError) -> JobOutcome:
    """Record a failure that trying again cannot mend, with the marketplace's message."""
    message = f"{title(job.marketplace)}: {exc}"
    _record(runtime, job, "failed", action=action, error=message, at=runtime.clock())
    get_logger().warning("transfer.failed", error=message)
    return JobOutcome("failed", note=message)


def confirm_publication(runtime: Runtime, job: JobRef, digest: str) -> bool:
    """Move a ``sent`` listing to ``published`` if the marketplace now shows it.

    Returns ``True`` when there is nothing more to check: published now, or the
    row moved on (a newer document, a delete, a failure). ``False`` means still
    waiting for the marketplace.
    """
    if not _still_sent(runtime, job, digest):
        return True
    with runtime.breaker.guard(job.marketplace):
        remote = runtime.transport(job.marketplace).lookup(job.marketplace, job.listing_id)
    if remote is None or not remote.published:
        return False
    with session_scope(runtime.engine) as session:
        lock_status_row(session, job.listing_id, job.marketplace)
        row = session.get(TransferStatusRow, (job.listing_id, job.marketplace))
        if row is None or row.state != "sent" or row.document_hash != digest:
            return True
        fields: dict[str, Any] = {"at": runtime.clock()}
        if remote.marketplace_id:
            fields["marketplace_id"] = remote.marketplace_id
        if remote.public_url:
            fields["public_url"] = remote.public_url
        record_status(
            session, job.listing_id, job.marketplace, "published",
            request_id=job.request_id, **fields,
        )
    get_logger(listing_id=job.listing_id, marketplace=job.marketplace).info("transfer.published")
    return True


def _still_sent(runtime: Runtime, job: JobRef, digest: str) -> bool:
    with session_scope(runtime.engine) as session:
        row = session.get(TransferStatusRow, (job.listing_id, job.marketplace))
        return row is not None and row.state == "sent" and row.document_hash == digest
