"""``transfer --wait``'s summary: each outcome in its own words (R10 vs R2, R1, R3)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine

from syndication.cli.transfer import format_summary
from syndication.records import TRANSFER_STATES
from syndication.store.db import session_scope
from syndication.store.models import TransferEventRow, TransferRequestRow, utcnow
from syndication.transfer import OUTCOME_WORDS, request_outcome


def _event(listing: str, marketplace: str, state: str, at, request_id: str) -> TransferEventRow:
    return TransferEventRow(listing_id=listing, marketplace=marketplace, state=state,
                            action="create", at=at, request_id=request_id)


def test_pairs_left_as_they_were_are_counted_each_in_its_own_words(engine: Engine) -> None:
    """A ``not_selected`` that already was is not "unchanged since the last transfer";
    only a delivered pair left as it was is."""
    now = utcnow()
    before = now - timedelta(hours=1)
    with session_scope(engine) as session:
        session.add(TransferRequestRow(id="r1", scope="all", created_at=now,
                                       fanned_out_at=now))
        session.add_all([
            _event("A", "hemnet", "published", before, "r1"),
            _event("A", "blocket", "not_selected", before, "r1"),
            _event("B", "blocket", "not_selected", before, "r1"),
            _event("B", "hittahem", "not_licensed", before, "r1"),
            _event("C", "hemnet", "deleted", before, "r1"),
            _event("D", "hemnet", "not_selected", now + timedelta(seconds=1), "r1"),
            _event("D", "blocket", "sent", now + timedelta(seconds=1), "r1"),
        ])
    outcome = request_outcome(engine, "r1")
    assert outcome.finished and outcome.unchanged == 5 and outcome.unchanged_deliveries == 1
    assert dict(outcome.left_as_was) == {"not_selected": 2, "not_licensed": 1, "deleted": 1}
    text = format_summary(outcome)
    assert "(1 unchanged since the last transfer: nothing sent)" in text
    assert "(2 already not selected there: nothing sent)" in text
    assert "(1 already outside the office's licence: nothing sent)" in text
    assert "(1 already deleted there: nothing sent)" in text
    assert "  not_selected  3     not selected for that marketplace: not shown there" in text
    assert "  sent          1     accepted by the marketplace, waiting for it to publish" in text


def test_every_transfer_state_has_words_of_its_own() -> None:
    assert set(OUTCOME_WORDS) == set(TRANSFER_STATES)
    assert len(set(OUTCOME_WORDS.values())) == len(OUTCOME_WORDS)
