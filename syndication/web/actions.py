""""Försök igen" from the view: queue a listing's transfer again, and follow it without reload.

Who may press it (R14, :func:`syndication.rules.tenancy.can_write`): an agent
for the offices of its tenant and admin for every office. Support reads every
office and changes none, so it sees the pairs and their advice but gets 403
for the button, as the API answers it; the button is shown to everyone who
may read, since the page does not know a role's rights better than the rule.
A listing or office the user cannot read is answered as an unknown one (404).

A pair may be tried again when it is ``failed``, or stale: ``queued`` or
``sent`` for longer than :data:`STALE_AFTER` (a lost job, a receipt that
never came). One transfer per listing at a time: while any pair of the
listing is ``queued`` and not stale, a second press queues nothing and says
so. The transfer is of that listing to that marketplace alone (a scope with
its ``marketplace``, :class:`~syndication.transfer.Scope`), so the listing's
other marketplaces keep their rows and histories; "överför alla misslyckade"
queues each failed pair the same way. The history gets one event per pair
pressed, ``action`` ``retry``, naming the user.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from syndication.access import Principal
from syndication.rules.tenancy import can_write
from syndication.scope import office_ref
from syndication.store.models import ListingRow, OfficeRow, TransferStatusRow
from syndication.store.repository import append_event

STALE_AFTER = timedelta(hours=6)
RETRY_ACTION = "retry"
OFFICE_RETRY_LIMIT = 200

POLL_SCRIPT = """'use strict';
(function () {
  var pairs = document.getElementById('pairs');
  if (!pairs) { return; }
  var rounds = 0;
  function update(data) {
    var busy = false;
    data.marketplaces.forEach(function (pair) {
      var row = pairs.querySelector('tr[data-marketplace="' + pair.marketplace + '"]');
      if (!row) { return; }
      row.setAttribute('data-state', pair.state);
      var cell = row.querySelector('.state-label');
      if (cell) { cell.textContent = pair.label; cell.className = pair.state + ' state-label'; }
      var error = row.querySelector('.pair-error');
      if (error) { error.textContent = pair.error || pair.note || ''; }
      if (pair.state === 'queued') { busy = true; }
    });
    return busy;
  }
  function poll() {
    rounds += 1;
    fetch(pairs.getAttribute('data-poll'), {credentials: 'same-origin',
      headers: {'Accept': 'application/json'}})
      .then(function (answer) { return answer.ok ? answer.json() : null; })
      .then(function (data) {
        if (data && update(data) && rounds < 120) { setTimeout(poll, 1000); }
      });
  }
  if (pairs.querySelector('tr[data-state="queued"]')) { setTimeout(poll, 500); }
})();
"""
"""Polls the listing's JSON status once a second while a pair is queued (at most two
minutes) and writes each pair's state into the table; served same-origin, so the
Content-Security-Policy allows it (``script-src 'self'``)."""


@dataclass(frozen=True)
class RetryOutcome:
    """What a press decided: ``queued`` (with the request), ``busy``, ``not_retryable``,
    ``forbidden``."""

    outcome: str
    request_id: str | None = None


def retryable(state: str, at: datetime | None, now: datetime) -> bool:
    """Whether a pair in ``state`` since ``at`` may be tried again (see the module)."""
    if state == "failed":
        return True
    if state in ("queued", "sent"):
        return at is None or now - at > STALE_AFTER
    return False


def may_write_listing(session: Session, principal: Principal, listing_id: str) -> bool:
    """Whether ``principal`` may start a transfer of the (readable) listing."""
    listing = session.get(ListingRow, listing_id)
    office = session.get(OfficeRow, listing.office_id) if listing else None
    return office is not None and can_write(principal, office_ref(office))


def busy(session: Session, listing_id: str, now: datetime) -> bool:
    """Whether a transfer of the listing is queued already (and not stale)."""
    rows = session.exec(select(TransferStatusRow).where(
        col(TransferStatusRow.listing_id) == listing_id,
        col(TransferStatusRow.state) == "queued"))
    return any(not retryable(row.state, row.updated_at, now) for row in rows)


def pair_retryable(session: Session, listing_id: str, marketplace: str, now: datetime) -> bool:
    row = session.get(TransferStatusRow, (listing_id, marketplace))
    return row is not None and retryable(row.state, row.updated_at, now)


def record_retry(session: Session, listing_id: str, marketplace: str, actor: str,
                 request_id: str, now: datetime) -> None:
    """The history's note of a press: who asked to try ``marketplace`` again, and the
    request it queued."""
    append_event(session, listing_id, marketplace, "queued", action=RETRY_ACTION, at=now,
                 request_id=request_id, actor=actor)


def office_failures(session: Session, office_id: str) -> list[tuple[str, str]]:
    """The office's ``failed`` pairs, by listing (at most :data:`OFFICE_RETRY_LIMIT`)."""
    query = (select(TransferStatusRow.listing_id, TransferStatusRow.marketplace)
             .join(ListingRow, col(ListingRow.id) == col(TransferStatusRow.listing_id))
             .where(col(ListingRow.office_id) == office_id,
                    col(TransferStatusRow.state) == "failed")
             .order_by(col(TransferStatusRow.listing_id), col(TransferStatusRow.marketplace))
             .limit(OFFICE_RETRY_LIMIT))
    return [(listing_id, marketplace) for listing_id, marketplace in session.exec(query)]
