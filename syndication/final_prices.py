"""The nightly final-price sync to Hemnet (R7): select, decide, deliver, record.

**Selection** (:mod:`syndication.final_price_selection`) streams every sold listing
and every retraction candidate, each judged by the pure rule with the reason of every skip.

**Delivery** goes through the queue in batches of listing ids
(:mod:`syndication.jobs.final_prices`). :func:`process_batch` re-reads and re-decides
its listings (a message delivered twice does nothing the second time), records every
delivery as in flight (``sending``/``retracting``) *before* sending it, sends through
the Hemnet transport (which has the retries) and records the outcome after, with an
event in the transfer history (action ``final_price``). A run that dies between the
two writes leaves rows in flight; the next run sends those again with the same
idempotency key (listing, document hash and the number of deliveries Hemnet accepted
before), so Hemnet never holds a price twice. A retraction Hemnet did not know (404)
is ``retracted`` with the transfers' ``NOT_KNOWN_NOTE``, told apart from a real one.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Engine, func, select
from sqlmodel import Session, col

from adapters.base import Delivery, Transport
from feeds.common import document_hash
from syndication.errors import SyndicationError
from syndication.final_price_selection import (
    CHUNK_SIZE,
    DELIVERY_ACTIONS,
    MARKETPLACE,
    Planned,
    plan,
    selections,
)
from syndication.logs import get_logger
from syndication.runtime import Runtime
from syndication.store.models import FinalPriceRow, TransferEventRow
from syndication.store.repository import append_event
from syndication.transfer import NOT_KNOWN_NOTE
from syndication.transfer.keys import idempotency_key

__all__ = [
    "BATCH_SIZE", "CHUNK_SIZE", "IN_FLIGHT", "MARKETPLACE", "BatchOutcome", "Planned",
    "RunPlan", "dispatch", "new_run_id", "plan", "process_batch", "selections",
]

BATCH_SIZE = 100
"""Listing ids per queue message."""
IN_FLIGHT = ("sending", "retracting")


def new_run_id(now: datetime) -> str:
    """A run id that sorts by time: ``fp-20261124T010000-1a2b3c4d``."""
    return f"fp-{now:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"


# -- delivery ----------------------------------------------------------------------


@dataclass
class BatchOutcome:
    """What one batch did: listing id → final sync state (``sent``, ``failed``, …)."""

    states: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


def _rows(session: Session, ids: Iterable[str]) -> dict[str, FinalPriceRow]:
    query = select(FinalPriceRow).where(col(FinalPriceRow.listing_id).in_(list(ids)))
    return {row.listing_id: row for row in session.scalars(query)}


def _record_before(session: Session, decisions: list[Planned], run_id: str, now: datetime) -> None:
    """Mark each delivery in flight, and every other listing of the batch as looked at
    by this run (a listing never recorded before gets a ``skipped`` row with the reason)."""
    rows = _rows(session, (p.listing_id for p in decisions))
    for planned in decisions:
        row = rows.get(planned.listing_id)
        if row is None:
            row = FinalPriceRow(listing_id=planned.listing_id, state="skipped", attempts=0)
            session.add(row)
        row.run_id = run_id
        if not planned.actionable:
            if row.state in IN_FLIGHT:
                row.state = "failed" if row.state == "sending" else "retraction_failed"
                row.error, row.at = f"interrupted delivery not finished: {planned.reason}", now
            elif row.state == "skipped":
                row.error, row.at = planned.reason, now
            continue
        digest = document_hash(planned.document or b"")
        row.attempts = (row.attempts or 0) + 1 if row.document_hash == digest else 1
        row.state = "retracting" if planned.action == "retract" else "sending"
        row.document_hash, row.error, row.at = digest, planned.error, now


def _record_after(session: Session, decisions: list[Planned], outcome: BatchOutcome,
                  run_id: str, now: datetime) -> None:
    rows = _rows(session, outcome.states)
    by_id = {p.listing_id: p for p in decisions}
    for listing_id, state in outcome.states.items():
        row, planned = rows[listing_id], by_id[listing_id]
        error = outcome.errors.get(listing_id)
        row.state, row.error, row.at = state, error, now
        if state == "sent":
            row.sent_price = planned.price
            row.sent_contract_date = planned.contract_date
        elif state == "retracted":
            row.sent_price, row.sent_contract_date = None, None
        history_state = {"sent": "sent", "retracted": "deleted"}.get(state, "failed")
        append_event(session, listing_id, MARKETPLACE, history_state, action="final_price",
                     attempts=row.attempts, request_id=run_id, at=now, error=error)


def process_batch(runtime: Runtime, listing_ids: Sequence[str], run_id: str) -> BatchOutcome:
    """Re-decide, record, deliver and record again for one batch of listings.

    Every listing of the batch ends with its ``final_price_sync`` row carrying
    ``run_id``, so a waiting caller can count the batch as done.
    """
    decisions = [p for chunk in plan(runtime.engine, list(listing_ids)) for p in chunk]
    seen = {p.listing_id for p in decisions}
    decisions += [
        Planned(lid, "", "none", "no longer a final-price candidate")
        for lid in dict.fromkeys(listing_ids) if lid not in seen
    ]
    with Session(runtime.engine, expire_on_commit=False) as session:
        _record_before(session, decisions, run_id, runtime.clock())
        session.commit()
    outcome = BatchOutcome()
    transport = runtime.transport(MARKETPLACE)
    actionable = [p for p in decisions if p.actionable]
    generations = _generations(runtime.engine, [p.listing_id for p in actionable])
    for planned in actionable:
        _deliver(transport, planned, outcome, generations.get(planned.listing_id, 0))
    with Session(runtime.engine, expire_on_commit=False) as session:
        _record_after(session, decisions, outcome, run_id, runtime.clock())
        session.commit()
    return outcome


def _generations(engine: Engine, listing_ids: list[str]) -> dict[str, int]:
    """How many final-price deliveries Hemnet accepted per listing (from the history)."""
    if not listing_ids:
        return {}
    query = (
        select(col(TransferEventRow.listing_id), func.count())
        .where(col(TransferEventRow.listing_id).in_(listing_ids))
        .where(col(TransferEventRow.marketplace) == MARKETPLACE)
        .where(col(TransferEventRow.action) == "final_price")
        .where(col(TransferEventRow.state).in_(("sent", "deleted")))
        .group_by(col(TransferEventRow.listing_id))
    )
    with engine.connect() as conn:
        return {listing_id: count for listing_id, count in conn.execute(query)}


def _deliver(
    transport: Transport, planned: Planned, outcome: BatchOutcome, generation: int
) -> None:
    retract = planned.action == "retract"
    log = get_logger(listing_id=planned.listing_id, marketplace=MARKETPLACE)
    failed = "retraction_failed" if retract else "failed"
    if planned.document is None:
        outcome.states[planned.listing_id] = failed
        outcome.errors[planned.listing_id] = planned.error or "no document could be built"
        return
    action = DELIVERY_ACTIONS[planned.action]
    delivery = Delivery(
        marketplace=MARKETPLACE,
        listing_id=planned.listing_id,
        office_id=planned.office_id,
        action=action,
        document=planned.document,
        idempotency_key=idempotency_key(
            planned.listing_id, MARKETPLACE, action, document_hash(planned.document), generation
        ),
    )
    try:
        receipt = transport.send(delivery)
    except SyndicationError as exc:
        log.warning("final_price_failed", action=action, error=str(exc))
        outcome.states[planned.listing_id], outcome.errors[planned.listing_id] = failed, str(exc)
        return
    except Exception as exc:  # noqa: BLE001 - one listing's bug must not lose the batch's records
        log.exception("final_price_error", action=action)
        outcome.states[planned.listing_id] = failed
        outcome.errors[planned.listing_id] = f"unexpected error: {type(exc).__name__}: {exc}"
        return
    outcome.states[planned.listing_id] = "retracted" if retract else "sent"
    if retract and receipt.not_known:
        outcome.errors[planned.listing_id] = NOT_KNOWN_NOTE
    log.debug("final_price_delivered", action=action, price=planned.price)


# -- a run ---------------------------------------------------------------------------


@dataclass
class RunPlan:
    """What a run decided: the listings it queued and the ones it skipped, with reasons."""

    run_id: str
    queued: list[Planned] = field(default_factory=list)
    skipped: list[Planned] = field(default_factory=list)


def dispatch(
    engine: Engine,
    run_id: str,
    enqueue: Callable[[list[str], str], None] | None,
    *,
    batch_size: int = BATCH_SIZE,
    progress: Callable[[int], None] | None = None,
) -> RunPlan:
    """Plan a run and hand its deliveries to ``enqueue(ids, run_id)`` in batches
    (``None``: a dry run, nothing is queued). ``progress(n)`` counts candidates judged."""
    result = RunPlan(run_id)
    batch: list[str] = []
    for chunk in plan(engine):
        for planned in chunk:
            if not planned.actionable:
                result.skipped.append(_slim(planned))
                continue
            result.queued.append(_slim(planned))
            batch.append(planned.listing_id)
            if enqueue is not None and len(batch) >= batch_size:
                enqueue(batch, run_id)
                batch = []
        if progress is not None:
            progress(len(chunk))
    if enqueue is not None and batch:
        enqueue(batch, run_id)
    return result


def _slim(planned: Planned) -> Planned:
    return Planned(planned.listing_id, planned.office_id, planned.action, planned.reason,
                   planned.price, planned.contract_date, None, planned.error)
