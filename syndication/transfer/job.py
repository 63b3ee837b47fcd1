"""One transfer job: a listing on a marketplace, from decision to stored outcome.

:func:`run_transfer_job` runs a job in three steps, each reusable on its own
(an asyncio actor awaits its own send between the other two):

* :func:`prepare` loads the listing and its settled status and asks
  :func:`syndication.transfer.outgoing.outgoing` what the transfer sends (the
  one place that decides, checks the conditions, builds and compares): the
  store's part in one transaction (:func:`find`), then the rest (:func:`decide`),
  so a worker can run the store's part of several jobs in one transaction;
* :func:`deliver` sends the document through the marketplace's circuit breaker;
* :func:`finish` records the outcome.

The outcomes:

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

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from adapters.base import Delivery, Receipt
from syndication.circuit import CircuitOpen
from syndication.errors import SyndicationError, TransientError
from syndication.logs import get_logger
from syndication.metrics import note_action
from syndication.outbox.rows import Staged, send_staged, stage_claimed
from syndication.records import FeedInput, TransferStatus
from syndication.registry import title
from syndication.rules.removal import reason_note
from syndication.runtime import Runtime
from syndication.store.db import after_commit, begin, session_scope
from syndication.store.models import TransferStatusRow
from syndication.store.repository import record_status
from syndication.store.statements import (
    StartEnd,
    count_attempt,
    end_start_rows,
    read_pair_and_listing,
    write_status,
)
from syndication.transfer.common import JobRef, Scheduler, lock_status_row
from syndication.transfer.keys import idempotency_key
from syndication.transfer.outgoing import Outgoing, outgoing
from syndication.transfer.starts import Start, record_start

CONFIRM_POLLS = 8
"""How many times a ``sent`` listing is looked up before it is left ``sent``."""

NOT_KNOWN_NOTE = (
    "the marketplace did not know the listing (marknadsplatsen kände inte till objektet)"
)
"""The note of a ``deleted`` row whose delete the marketplace answered with "not known"."""

LISTING_GONE = "the listing is no longer in the store"


@dataclass(frozen=True, slots=True)
class JobOutcome:
    """What a job did: the state it recorded and whether a document left."""

    state: str | None
    sent: bool = False
    note: str = ""


@dataclass(frozen=True, slots=True)
class Prepared:
    """What :func:`prepare` found, and what :func:`finish` needs to record the outcome.

    ``outcome`` set: the job is over (nothing more to send or record).
    ``delivery`` set: send it (:func:`deliver`), then :func:`finish` with the
    receipt or the error. Neither: :func:`finish` with ``None`` records the
    decision that sends nothing (``planned`` says which). ``message_id`` and
    ``start_id`` name the start that :func:`finish` ends.
    """

    job: JobRef
    scheduler: Scheduler
    outcome: JobOutcome | None = None
    planned: Outgoing | None = None
    current: TransferStatus | None = None
    delivery: Delivery | None = None
    message_id: str | None = None
    start_id: int | None = None


def run_transfer_job(
    runtime: Runtime, job: JobRef, scheduler: Scheduler, *, start: Start | None = None
) -> JobOutcome:
    """Carry out the transfer of ``job``'s listing to its marketplace; see the module doc.

    The three steps in order: :func:`prepare`, :func:`deliver`, :func:`finish`.
    """
    return carry_out(runtime, prepare(runtime, job, scheduler, start=start))


def carry_out(runtime: Runtime, prepared: Prepared) -> JobOutcome:
    """:func:`deliver` what ``prepared`` holds, if anything, then :func:`finish`."""
    if prepared.delivery is None:
        return finish(runtime, prepared, None)
    try:
        receipt: Receipt | BaseException = deliver(runtime, prepared.delivery)
    except Exception as exc:  # noqa: BLE001 - finish records it and raises what must be retried
        receipt = exc
    return finish(runtime, prepared, receipt)


def prepare(
    runtime: Runtime, job: JobRef, scheduler: Scheduler, *, start: Start | None = None
) -> Prepared:
    """Read what the job needs and decide what it sends: the first step, one transaction
    (:func:`find`), then the decision and the document, built after the commit so no
    lock is held while it is (:func:`decide`).

    Returns a :class:`Prepared` whose ``outcome`` is set when the job is already
    over (too many worker deaths, the listing gone: recorded here), whose
    ``delivery`` is set when a document must be sent, and neither when the
    outcome is a decision that sends nothing.
    """
    return decide(find(runtime, job, scheduler, start=start))


@dataclass(frozen=True, slots=True)
class Found:
    """What the first step's transaction found (:func:`find`), for :func:`decide`.

    ``outcome`` set: the job ended in that transaction (``deaths`` worker deaths, or
    the listing gone). Otherwise ``feed_input`` is the listing to decide on, with the
    pair's settled status (``current``) and delivery generation; ``message_id`` and
    ``start_id`` name the start that :func:`finish` ends.
    """

    job: JobRef
    scheduler: Scheduler
    outcome: JobOutcome | None = None
    deaths: int = 0
    feed_input: FeedInput | None = None
    current: TransferStatus | None = None
    generation: int = 0
    message_id: str | None = None
    start_id: int | None = None


def find(
    runtime: Runtime, job: JobRef, scheduler: Scheduler, *, start: Start | None = None
) -> Found:
    """The first step's transaction: count the start, read the pair and the listing.

    With ``start`` the transaction first counts the attempt, which takes the row's
    write lock, so the reads that follow cannot interleave with a duplicate of the
    job, and records the start (:func:`syndication.transfer.starts.record_start`; on
    PostgreSQL in the counting statement, and judged once the reads are done).
    Inside a :class:`~syndication.store.db.Group` it is one savepoint of the group's
    transaction, and what it found holds only once the group committed.
    """
    now = runtime.clock()
    message_id = start.message_id if start is not None else None
    with begin(runtime.engine) as conn:
        recorded = None
        if start is not None:
            recorded = count_attempt(conn, job.listing_id, job.marketplace, job.request_id, now,
                                     start=start.row(job, now))
        current, generation, earlier, feed_input = read_pair_and_listing(
            conn, job.listing_id, job.marketplace, message_id)
        if recorded is not None:
            earlier -= 1  # the start just recorded is none of the earlier ones
        counted = record_start(conn, job, start, now, earlier, recorded) \
            if start is not None else None
        if counted is not None and counted.error is not None:
            return Found(job, scheduler, outcome=JobOutcome("failed", note=counted.error),
                         deaths=counted.deaths)
        if feed_input is None:
            write_status(conn, job.listing_id, job.marketplace, "failed", at=now,
                         error=LISTING_GONE, fields={"request_id": job.request_id},
                         ending=StartEnd(message_id, None, done=True))
            return Found(job, scheduler, outcome=JobOutcome("failed", note="listing gone"))
    return Found(job, scheduler, feed_input=feed_input, current=current, generation=generation,
                 message_id=message_id,
                 start_id=counted.start_id if counted is not None else None)


def decide(found: Found) -> Prepared:
    """What the job sends, from what :func:`find` read: the decision, the document built
    and compared (:func:`~syndication.transfer.outgoing.outgoing`) and its delivery.
    Reads and writes nothing in the store."""
    job, scheduler = found.job, found.scheduler
    if found.outcome is not None:
        if found.deaths:
            get_logger().error("transfer.worker_deaths", deaths=found.deaths)
        return Prepared(job, scheduler, outcome=found.outcome)
    feed_input, current = found.feed_input, found.current
    assert feed_input is not None
    planned = outgoing(feed_input, job.marketplace, current)
    decision = planned.decision
    if not planned.sends:
        return Prepared(job, scheduler, planned=planned, current=current,
                        message_id=found.message_id, start_id=found.start_id)
    assert planned.document is not None and planned.digest is not None
    delivery = Delivery(
        marketplace=job.marketplace,
        listing_id=job.listing_id,
        office_id=feed_input.office.id,
        action=decision.action,
        document=planned.document,
        idempotency_key=idempotency_key(
            job.listing_id, job.marketplace, decision.action, planned.digest, found.generation
        ),
    )
    note_action(decision.action)
    return Prepared(job, scheduler, planned=planned, current=current, delivery=delivery,
                    message_id=found.message_id, start_id=found.start_id)


def deliver(runtime: Runtime, delivery: Delivery) -> Receipt:
    """Send ``delivery`` to its marketplace through the marketplace's circuit breaker:
    the second step, the only one that leaves the process."""
    with runtime.breaker.guard(delivery.marketplace):
        return runtime.transport(delivery.marketplace).send(delivery)


@dataclass(frozen=True, slots=True)
class _Write:
    """The status write of an outcome: what :func:`finish` stores in one transaction."""

    state: str
    at: datetime
    error: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    confirm: str | None = None
    done: bool = True


def finish(
    runtime: Runtime, prepared: Prepared, result: Receipt | BaseException | None
) -> JobOutcome:
    """Record the outcome of a prepared job: the last step, one transaction.

    ``result`` is the receipt of the delivery, the error that sending raised, or
    ``None`` when nothing was sent. The status, its history event, the outbox
    row of a publication check and the end of the start are written together.
    A wait for an open circuit and a transient error are recorded on the
    ``queued`` row and raised again, so dramatiq retries the message; a
    permanent error records ``failed``.
    """
    if prepared.outcome is not None:
        return prepared.outcome
    planned = prepared.planned
    assert planned is not None
    action = planned.decision.action
    if isinstance(result, BaseException) and not isinstance(result, SyndicationError):
        _store(runtime, prepared, None)
        raise result
    if isinstance(result, CircuitOpen):
        _store(runtime, prepared, _Write("queued", runtime.clock(), result.waiting_note,
                                         {"action": action}, done=False))
        get_logger().info("transfer.waiting", reason=str(result))
        raise result
    if isinstance(result, TransientError):
        _store(runtime, prepared, _Write("queued", runtime.clock(), f"attempt failed: {result}",
                                         {"action": action}, done=False))
        raise result
    if isinstance(result, SyndicationError):
        return _fail(runtime, prepared, action, result)
    if result is not None:
        assert planned.digest is not None
        return _delivered(runtime, prepared, action, planned.digest, result)
    if not planned.decision.sends:
        return _record_no_send(runtime, prepared)
    if planned.failure is not None:
        return _fail(runtime, prepared, action, planned.failure)
    return _unchanged(runtime, prepared)


def _store(runtime: Runtime, prepared: Prepared, write: _Write | None) -> None:
    """Write ``write`` (if any), stage its publication check and end the start, in one
    transaction; send the check once it committed (:func:`after_commit`: in a group
    transaction, once the group did)."""
    job = prepared.job
    staged: list[Staged] = []
    ending = StartEnd(prepared.message_id, prepared.start_id,
                      done=write is not None and write.done)
    with begin(runtime.engine) as conn:
        if write is None:
            end_start_rows(conn, ending)
        else:
            write_status(conn, job.listing_id, job.marketplace, write.state, at=write.at,
                         error=write.error,
                         fields={"request_id": job.request_id, **write.fields},
                         ending=ending)
            if write.confirm is not None:
                staging = prepared.scheduler.confirm_later(
                    job, write.confirm, 0, runtime.first_check_ms(job.marketplace))
                if staging is not None:
                    staged.append(stage_claimed(conn, staging))
    if staged:
        after_commit(runtime.engine, lambda: send_staged(runtime.engine, staged))


def _record_no_send(runtime: Runtime, prepared: Prepared) -> JobOutcome:
    """Record a decision that sends nothing; an unchanged state keeps its time.

    A decision with no state of its own (a removed listing never published
    there, a marketplace neither licensed nor selected) can reach a job only
    when the records changed after the fan-out; the pair's ``queued`` row then
    becomes ``not_selected`` — it is not shown there — so no row stays queued.
    """
    assert prepared.planned is not None
    decision, current = prepared.planned.decision, prepared.current
    state = decision.state or (current.state if current is not None else "not_selected")
    if current is not None and current.state == state:
        error, at = current.error, current.at or runtime.clock()
    else:
        error, at = None, runtime.clock()
    if state == "not_licensed":
        error = decision.reason
    _store(runtime, prepared, _Write(state, at, error))
    return JobOutcome(state, note=decision.reason)


def _unchanged(runtime: Runtime, prepared: Prepared) -> JobOutcome:
    """R10: the marketplace holds this very document. Send nothing; say so.

    The settled state is recorded again with its old time. A copy still
    ``sent`` gets its publication check staged in the same transaction and is
    also looked up at once, so a confirmation lost with the in-process
    broker's process is made up for by the next transfer (the staged check
    then finds it published and does nothing).
    """
    current = prepared.current
    assert current is not None
    state = current.state if current.state in ("sent", "published") else "sent"
    digest = current.document_hash
    confirm = digest if state == "sent" and digest else None
    _store(runtime, prepared, _Write(state, current.at or runtime.clock(), confirm=confirm))
    get_logger().info("transfer.unchanged", state=state, note="same document; nothing sent")
    if confirm is not None:
        after_commit(runtime.engine, lambda: _looked_up(runtime, prepared.job, confirm))
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
    runtime: Runtime, prepared: Prepared, action: str, digest: str, receipt: Receipt
) -> JobOutcome:
    """Record an accepted delivery; a ``sent`` one with its publication check, staged in
    the outbox in the same transaction, so no ``sent`` row waits for a check never sent."""
    fields: dict[str, Any] = {"action": action}
    if receipt.marketplace_id is not None:
        fields["marketplace_id"] = receipt.marketplace_id
    if receipt.public_url is not None:
        fields["public_url"] = receipt.public_url
    if action == "delete":
        reason = prepared.planned.decision.delete_reason if prepared.planned else None
        note = NOT_KNOWN_NOTE if receipt.not_known else reason_note(reason)
        _store(runtime, prepared, _Write("deleted", runtime.clock(), note,
                                         {**fields, "document_hash": None}))
        get_logger().info("transfer.deleted", not_known=receipt.not_known)
        return JobOutcome("deleted", sent=True, note=note or "")
    state = "published" if receipt.published else "sent"
    _store(runtime, prepared, _Write(state, runtime.clock(), None,
                                     {**fields, "document_hash": digest},
                                     confirm=digest if state == "sent" else None))
    get_logger().info("transfer.delivered", state=state, marketplace_id=receipt.marketplace_id)
    return JobOutcome(state, sent=True)


def _fail(
    runtime: Runtime, prepared: Prepared, action: str, exc: SyndicationError
) -> JobOutcome:
    """Record a failure that trying again cannot mend, with the marketplace's message."""
    message = f"{title(prepared.job.marketplace)}: {exc}"
    _store(runtime, prepared, _Write("failed", runtime.clock(), message, {"action": action}))
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
