"""How far a transfer request has got, read from the history.

Every pair (listing, marketplace) a request touches gets history events
carrying the request's id: ``queued`` at the fan-out and at each start, then
the outcome. A pair is done when its newest event of the request is in a
final state (:data:`syndication.records.FINAL_STATES`; ``sent`` is final for
the transfer, the confirmation moves it on later). Reading the history rather
than the current rows keeps a request's outcome its own even when a later
request has already touched the same listing.

A request whose fan-out has not stored its last batch yet is not finished,
however many of its pairs are done.

A pair whose outcome event carries a time older than the request itself was
left as it was and is counted in ``unchanged``. Only a delivered pair (``sent``,
``published``) left so is R10's "unchanged since the last transfer: nothing sent"
(:attr:`RequestOutcome.unchanged_deliveries`); a pair that already was
``not_selected``, ``not_licensed`` or ``deleted`` is also counted per state in
``left_as_was``, so a summary says what each outcome means
(:data:`OUTCOME_WORDS`, :data:`LEFT_AS_WAS_WORDS`).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, case, func, literal
from sqlalchemy import select as sa_select
from sqlmodel import col, select

from syndication.records import FINAL_STATES
from syndication.store.db import session_scope
from syndication.store.models import TransferEventRow, TransferRequestRow

DELIVERED_STATES: frozenset[str] = frozenset({"sent", "published"})
"""States a pair left as it was by a request counts as R10's "unchanged"."""

OUTCOME_WORDS: dict[str, str] = {
    "queued": "still waiting for a worker",
    "sent": "accepted by the marketplace, waiting for it to publish",
    "published": "published on the marketplace",
    "failed": "failed: nothing published, see the failures",
    "deleted": "deleted from the marketplace",
    "not_selected": "not selected for that marketplace: not shown there",
    "not_licensed": "outside the office's licence: a licence change is needed",
}
"""What a pair's state at the end of a request means, in a summary's words."""

LEFT_AS_WAS_WORDS: dict[str, str] = {
    "deleted": "already deleted there: nothing sent",
    "not_selected": "already not selected there: nothing sent",
    "not_licensed": "already outside the office's licence: nothing sent",
}
"""What a pair a request left as it was means, per state (delivered ones are ``unchanged``)."""


def outcome_words(state: str) -> str:
    """The summary's words for ``state`` (a state without words of its own is named as is)."""
    return OUTCOME_WORDS.get(state, state)


@dataclass(frozen=True, slots=True)
class Failure:
    listing_id: str
    marketplace: str
    error: str


@dataclass(frozen=True)
class RequestOutcome:
    """The state of every pair of one request."""

    request_id: str
    total: int
    done: int
    counts: Counter[str] = field(default_factory=Counter)
    unchanged: int = 0
    failures: tuple[Failure, ...] = ()
    fanning_out: bool = False
    left_as_was: Counter[str] = field(default_factory=Counter)

    @property
    def finished(self) -> bool:
        """Every pair is done and the fan-out stored its last batch (a fan-out under way
        or waiting for a relay to take it over has pairs still to come)."""
        return not self.fanning_out and self.done >= self.total

    @property
    def unchanged_deliveries(self) -> int:
        """Delivered pairs left as they were: R10's "unchanged, nothing sent"."""
        return self.unchanged - sum(self.left_as_was.values())

    @property
    def failed(self) -> int:
        return self.counts.get("failed", 0)

    def counts_text(self) -> str:
        """``sent 3, published 2, failed 1`` in a stable order."""
        return ", ".join(f"{state} {n}" for state, n in sorted(self.counts.items()) if n)


def _newest_ids(request_id: str) -> Any:
    """The id of each pair's newest event of ``request_id``, chosen by the database
    (through the ``ix_transfer_event_request`` index) however long the history."""
    return (
        select(func.max(TransferEventRow.id).label("id"))
        .where(col(TransferEventRow.request_id) == request_id)
        .group_by(col(TransferEventRow.listing_id), col(TransferEventRow.marketplace))
        .subquery()
    )


def state_counts(request_id: str, started_at: datetime | None) -> Any:
    """Per state of the pairs' newest events of ``request_id``: how many pairs, and how
    many of them carry a time older than ``started_at`` (left as they were). Counted by
    the database, so a poll of a request of 30,000 pairs reads a handful of rows."""
    newest = _newest_ids(request_id)
    at = col(TransferEventRow.at)
    older = (func.sum(case((at < started_at, 1), else_=0)) if started_at is not None
             else literal(0))
    return (
        sa_select(col(TransferEventRow.state), func.count(), older)
        .join(newest, col(TransferEventRow.id) == newest.c.id)
        .group_by(col(TransferEventRow.state))
    )


def failed_pairs(request_id: str) -> Any:
    """The pairs of ``request_id`` whose newest event is ``failed``, with its error."""
    newest = _newest_ids(request_id)
    return (
        sa_select(col(TransferEventRow.listing_id), col(TransferEventRow.marketplace),
                  col(TransferEventRow.error))
        .join(newest, col(TransferEventRow.id) == newest.c.id)
        .where(col(TransferEventRow.state) == "failed")
        .order_by(col(TransferEventRow.listing_id), col(TransferEventRow.marketplace))
    )


def request_outcome(engine: Engine, request_id: str) -> RequestOutcome:
    """The outcome of ``request_id`` so far (an unknown id has no pairs): counted by the
    database per state; the failed pairs are read only when there are any."""
    with session_scope(engine) as session:
        request = session.get(TransferRequestRow, request_id)
        started_at = request.created_at if request is not None else None
        fanning_out = (request is not None and request.fanned_out_at is None
                       and request.fan_out_owner is not None)
        per_state = session.execute(state_counts(request_id, started_at)).all()
        failures: tuple[Failure, ...] = ()
        if any(state == "failed" and n for state, n, _ in per_state):
            failures = tuple(Failure(listing_id, marketplace, error or "(no message)")
                             for listing_id, marketplace, error
                             in session.execute(failed_pairs(request_id)))
    counts: Counter[str] = Counter()
    left_as_was: Counter[str] = Counter()
    unchanged = done = 0
    for state, n, older in per_state:
        counts[state] += n
        if state not in FINAL_STATES:
            continue
        done += n
        if state != "failed" and older:
            unchanged += int(older)
            if state not in DELIVERED_STATES:
                left_as_was[state] += int(older)
    return RequestOutcome(request_id, sum(counts.values()), done, counts, unchanged, failures,
                          fanning_out, left_as_was)


def wait_for_request(
    engine: Engine,
    request_id: str,
    *,
    on_progress: Callable[[RequestOutcome], None] | None = None,
    interval: float = 0.25,
    timeout: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> RequestOutcome:
    """Poll until every pair of the request is done (or ``timeout`` seconds passed)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        outcome = request_outcome(engine, request_id)
        if on_progress is not None:
            on_progress(outcome)
        if outcome.finished or (deadline is not None and time.monotonic() >= deadline):
            return outcome
        sleep(interval)
