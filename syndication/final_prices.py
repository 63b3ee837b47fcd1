"""The nightly final-price sync to Hemnet (R7): select, decide, deliver, record.

**Selection** (:mod:`syndication.final_price_selection`) streams every sold listing
and every retraction candidate, each judged by the pure rule with the reason of every skip.

**Delivery** goes through the queue in batches of listing ids
(:mod:`syndication.jobs.final_prices`). :func:`process_batch` re-reads and re-decides
its listings (a message delivered twice does nothing the second time), records every
delivery as in flight (``sending``/``retracting``) *before* sending it, sends the batch
through the Hemnet transport (which has the retries), several deliveries at once
(:mod:`syndication.final_price_delivery`), and records every outcome after, with an
event in the transfer history (action ``final_price``); each record step is a few Core
statements for the whole batch. A run that dies between the
two writes leaves rows in flight; the next run sends those again with the same
idempotency key (listing, document hash and the number of deliveries Hemnet accepted
before), so Hemnet never holds a price twice. A retraction Hemnet did not know (404)
is ``retracted`` with the transfers' ``NOT_KNOWN_NOTE``, told apart from a real one.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Connection, Engine, bindparam, case, func, insert, select, update

from feeds.common import document_hash
from syndication.final_price_delivery import BatchOutcome, deliver_all
from syndication.final_price_selection import (
    CHUNK_SIZE,
    MARKETPLACE,
    Planned,
    plan,
    selections,
)
from syndication.runtime import Runtime
from syndication.store.models import FinalPriceRow, TransferEventRow
from syndication.store.repository import append_events

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


# -- recording -----------------------------------------------------------------------
#
# The two record steps are Core statements built once: one SELECT of the batch's rows,
# then one INSERT and one UPDATE (each an executemany) before sending, one UPDATE and
# one history INSERT (``append_events``) after; no ORM object per listing.

SYNC: Any = FinalPriceRow.__table__  # type: ignore[attr-defined]
EVENTS: Any = TransferEventRow.__table__  # type: ignore[attr-defined]

_EXISTING = select(
    SYNC.c.listing_id, SYNC.c.state, SYNC.c.attempts, SYNC.c.document_hash, SYNC.c.error,
    SYNC.c.at,
).where(SYNC.c.listing_id.in_(bindparam("ids", expanding=True)))
_INSERT = insert(SYNC)
_BEFORE = (
    update(SYNC)
    .where(SYNC.c.listing_id == bindparam("key"))
    .values(
        state=bindparam("new_state", type_=SYNC.c.state.type),
        attempts=bindparam("new_attempts", type_=SYNC.c.attempts.type),
        document_hash=bindparam("new_hash", type_=SYNC.c.document_hash.type),
        error=bindparam("new_error", type_=SYNC.c.error.type),
        at=bindparam("new_at", type_=SYNC.c.at.type),
        run_id=bindparam("new_run", type_=SYNC.c.run_id.type),
    )
)
_AFTER = (
    update(SYNC)
    .where(SYNC.c.listing_id == bindparam("key"))
    .values(
        state=bindparam("new_state", type_=SYNC.c.state.type),
        error=bindparam("new_error", type_=SYNC.c.error.type),
        at=bindparam("new_at", type_=SYNC.c.at.type),
        sent_price=case(
            (bindparam("keep_sent", type_=Boolean()), SYNC.c.sent_price),
            else_=bindparam("new_price", type_=SYNC.c.sent_price.type),
        ),
        sent_contract_date=case(
            (bindparam("keep_sent", type_=Boolean()), SYNC.c.sent_contract_date),
            else_=bindparam("new_date", type_=SYNC.c.sent_contract_date.type),
        ),
    )
)
_GENERATIONS = (
    select(EVENTS.c.listing_id, func.count())
    .where(EVENTS.c.listing_id.in_(bindparam("ids", expanding=True)))
    .where(EVENTS.c.marketplace == MARKETPLACE)
    .where(EVENTS.c.action == "final_price")
    .where(EVENTS.c.state.in_(("sent", "deleted")))
    .group_by(EVENTS.c.listing_id)
)


def _record_before(
    conn: Connection, decisions: list[Planned], run_id: str, now: datetime
) -> dict[str, int]:
    """Mark each delivery in flight, and every other listing of the batch as looked at
    by this run (a listing never recorded before gets a ``skipped`` row with the reason).

    Returns the attempt number of each delivery, which its history event carries.
    """
    ids = [p.listing_id for p in decisions]
    existing = {row.listing_id: row for row in conn.execute(_EXISTING, {"ids": ids})}
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    attempts: dict[str, int] = {}
    for planned in decisions:
        old = existing.get(planned.listing_id)
        state = old.state if old is not None else "skipped"
        values: dict[str, Any] = {
            "new_state": state, "new_run": run_id,
            "new_attempts": old.attempts if old is not None else 0,
            "new_hash": old.document_hash if old is not None else None,
            "new_error": old.error if old is not None else None,
            "new_at": old.at if old is not None else now,
        }
        if not planned.actionable:
            if state in IN_FLIGHT:
                values["new_state"] = "failed" if state == "sending" else "retraction_failed"
                values["new_error"] = f"interrupted delivery not finished: {planned.reason}"
                values["new_at"] = now
            elif state == "skipped":
                values["new_error"], values["new_at"] = planned.reason, now
        else:
            digest = document_hash(planned.document or b"")
            same = old is not None and old.document_hash == digest
            values["new_attempts"] = int(values["new_attempts"] or 0) + 1 if same else 1
            values["new_state"] = "retracting" if planned.action == "retract" else "sending"
            values["new_hash"], values["new_error"], values["new_at"] = digest, planned.error, now
            attempts[planned.listing_id] = values["new_attempts"]
        if old is None:
            inserts.append({
                "listing_id": planned.listing_id, "state": values["new_state"],
                "attempts": values["new_attempts"], "document_hash": values["new_hash"],
                "error": values["new_error"], "at": values["new_at"], "run_id": run_id,
                "sent_price": None, "sent_contract_date": None,
            })
        else:
            updates.append({"key": planned.listing_id, **values})
    if inserts:
        conn.execute(_INSERT, inserts)
    if updates:
        conn.execute(_BEFORE, updates)
    return attempts


def _record_after(conn: Connection, decisions: list[Planned], outcome: BatchOutcome,
                  run_id: str, now: datetime, attempts: dict[str, int]) -> None:
    """Record each delivery's outcome on its row and append it to the history
    (``sent``; a retraction ``deleted``; a failure ``failed`` with its error)."""
    by_id = {p.listing_id: p for p in decisions}
    updates: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    for listing_id, state in outcome.states.items():
        planned = by_id[listing_id]
        error = outcome.errors.get(listing_id)
        updates.append({
            "key": listing_id, "new_state": state, "new_error": error, "new_at": now,
            "keep_sent": state not in ("sent", "retracted"),
            "new_price": planned.price if state == "sent" else None,
            "new_date": planned.contract_date if state == "sent" else None,
        })
        events.append({
            "listing_id": listing_id, "marketplace": MARKETPLACE,
            "state": {"sent": "sent", "retracted": "deleted"}.get(state, "failed"),
            "action": "final_price", "error": error, "attempts": attempts.get(listing_id, 0),
            "request_id": run_id, "at": now,
        })
    if updates:
        conn.execute(_AFTER, updates)
        append_events(conn, events)


def process_batch(runtime: Runtime, listing_ids: Sequence[str], run_id: str) -> BatchOutcome:
    """Re-decide, record, deliver and record again for one batch of listings.

    Every listing of the batch ends with its ``final_price_sync`` row carrying
    ``run_id``, so a waiting caller can count the batch as done. The deliveries
    run concurrently (:mod:`syndication.final_price_delivery`); the two records are
    one transaction each.
    """
    decisions = [p for chunk in plan(runtime.engine, list(listing_ids)) for p in chunk]
    seen = {p.listing_id for p in decisions}
    decisions += [
        Planned(lid, "", "none", "no longer a final-price candidate")
        for lid in dict.fromkeys(listing_ids) if lid not in seen
    ]
    actionable = [p for p in decisions if p.actionable]
    with runtime.engine.begin() as conn:
        attempts = _record_before(conn, decisions, run_id, runtime.clock())
        generations = _generations(conn, [p.listing_id for p in actionable])
    outcome = deliver_all(runtime, actionable, generations)
    with runtime.engine.begin() as conn:
        _record_after(conn, decisions, outcome, run_id, runtime.clock(), attempts)
    return outcome


def _generations(conn: Connection, listing_ids: list[str]) -> dict[str, int]:
    """How many final-price deliveries Hemnet accepted per listing (from the history)."""
    if not listing_ids:
        return {}
    return {listing_id: count for listing_id, count in conn.execute(_GENERATIONS,
                                                                    {"ids": listing_ids})}


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
    for chunk in plan(engine, documents=False):
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
