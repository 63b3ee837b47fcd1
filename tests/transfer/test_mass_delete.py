"""R15 through the real orchestration on SQLite and PostgreSQL: deletes held, confirmed,
cancelled; a normal day's removals pass. The marketplaces are FakeTransports."""

from __future__ import annotations

import json
from typing import Any

import pytest
from factories import listing, office
from sqlmodel import select
from transfer_helpers import Queue, ingest

from syndication import holds
from syndication.ingest import IngestReport, ingest_document
from syndication.rules.mass_delete import holds_back
from syndication.store.db import session_scope
from syndication.store.guard_models import DeletionHoldRow
from syndication.store.models import ListingRow
from syndication.store.repository import history

PUSH = ["hemnet", "blocket"]


@pytest.fixture(params=["sqlite", "postgres"])
def q(request: pytest.FixtureRequest) -> Queue:
    queue: Queue = request.getfixturevalue("queue" if request.param == "sqlite" else "pg_queue")
    return queue


def _listings(count: int, **overrides: Any) -> list[dict[str, Any]]:
    fields = {"broker_id": None, "marketplaces": PUSH, **overrides}
    return [listing(f"O{n:02d}", **fields) for n in range(count)]


def _published_office(q: Queue, count: int) -> None:
    ingest(q.engine, offices=[office(licence=PUSH)], users=[], listings=_listings(count))
    outcome = q.transfer("office", "K1")
    assert outcome.failed == 0
    for name in PUSH:
        assert len(q.transports[name].holds) == count


def _ingest(q: Queue, listings: list[dict[str, Any]]) -> IngestReport:
    report = ingest_document(q.engine, json.dumps(
        {"offices": [], "users": [], "listings": listings}).encode())
    assert report.ok, report.errors
    return report


def _deletes(q: Queue) -> list[tuple[str, str]]:
    return sorted((d.marketplace, d.listing_id) for t in q.transports.values()
                  for d in t.deliveries if d.action == "delete")


def _hold(q: Queue, hold_id: str) -> DeletionHoldRow:
    with session_scope(q.engine) as session:
        row = session.get(DeletionHoldRow, hold_id)
        assert row is not None
        session.expunge(row)
        return row


@pytest.mark.parametrize(("removing", "published", "held"), [
    (0, 10, False), (4, 4, False), (5, 100, False), (20, 100, False), (21, 100, True),
    (5, 5, True), (5, 25, False), (6, 25, True),
])
def test_decision_table(removing: int, published: int, held: bool) -> None:
    assert holds_back(removing, published) is held


@pytest.mark.parametrize("lost", [{"marketplaces": []}, {"state": "deleted"}],
                         ids=["selection-lost", "all-deleted"])
def test_an_office_sent_without_its_listings_holds_every_delete(
        q: Queue, lost: dict[str, Any]) -> None:
    _published_office(q, 10)
    report = _ingest(q, _listings(10, **lost))
    assert len(report.holds) == 1
    hold = _hold(q, report.holds[0])
    assert hold.state == "held" and len(hold.pairs) == 20
    assert hold.counts == {m: {"removing": 10, "published": 10} for m in PUSH}
    assert "10 of 10 on Hemnet" in hold.cause

    outcome = q.transfer("office", "K1")
    assert _deletes(q) == [], "a held delete must not be sent"
    assert outcome.failed == 0
    for n in range(10):
        status = q.status(f"O{n:02d}", "hemnet")
        assert status.state == "published"
        assert status.error.startswith("borttagning väntar på bekräftelse: 20 delete(s) held")
        assert hold.id in status.error
    assert all(len(q.transports[m].holds) == 10 for m in PUSH)
    again = q.transfer("office", "K1")
    assert _deletes(q) == [] and again.failed == 0
    with session_scope(q.engine) as session:
        assert len(holds.list_holds(session)) == 1, "a second transfer adds no second hold"


def test_a_normal_days_removals_pass(q: Queue) -> None:
    _published_office(q, 20)
    report = _ingest(q, [listing("O00", broker_id=None, marketplaces=PUSH, state="sold"),
                         listing("O01", broker_id=None, marketplaces=PUSH, state="withdrawn"),
                         listing("O02", broker_id=None, marketplaces=["blocket"])])
    assert report.holds == []
    q.transfer("office", "K1")
    assert _deletes(q) == [("blocket", "O00"), ("blocket", "O01"), ("hemnet", "O00"),
                           ("hemnet", "O01"), ("hemnet", "O02")]
    assert q.status("O02", "hemnet").state == "deleted"
    assert q.status("O02", "blocket").state == "published"


def test_removals_left_for_one_transfer_are_weighed_by_the_transfer(q: Queue) -> None:
    _published_office(q, 20)
    for first in (0, 2, 4):
        report = _ingest(q, [listing(f"O{n:02d}", broker_id=None, marketplaces=[])
                             for n in (first, first + 1)])
        assert report.holds == [], "two at a time is under the minimum"
    q.transfer("office", "K1")
    assert _deletes(q) == []
    with session_scope(q.engine) as session:
        (hold,) = holds.list_holds(session)
        assert hold.source == "transfer" and len(hold.pairs) == 12
        assert hold.counts["hemnet"] == {"removing": 6, "published": 20}


def test_confirm_sends_the_held_deletes_with_their_reason(q: Queue) -> None:
    _published_office(q, 6)
    (hold_id,) = _ingest(q, _listings(6, state="withdrawn")).holds
    q.transfer("office", "K1")
    assert _deletes(q) == []
    listing_ids = holds.confirm(q.engine, hold_id, "admin:anna")
    assert listing_ids == [f"O{n:02d}" for n in range(6)]
    for listing_id in listing_ids:
        q.transfer("object", listing_id)
    assert len(_deletes(q)) == 12
    assert all(not q.transports[m].holds for m in PUSH)
    status = q.status("O03", "hemnet")
    assert status.state == "deleted" and "withdrawn" in (status.error or "")
    hold = _hold(q, hold_id)
    assert (hold.state, hold.decided_by) == ("confirmed", "admin:anna")
    with pytest.raises(holds.HoldDecided):
        holds.cancel(q.engine, hold_id, "admin:anna")


def test_cancel_restores_the_listings_and_keeps_the_marketplace_copies(q: Queue) -> None:
    _published_office(q, 8)
    (hold_id,) = _ingest(q, _listings(8, marketplaces=[])).holds
    q.transfer("office", "K1")
    outcome = holds.cancel(q.engine, hold_id, "key:K1")
    assert outcome.restored == [f"O{n:02d}" for n in range(8)] and outcome.left == []
    with session_scope(q.engine) as session:
        rows = {row.id: row for row in session.exec(select(ListingRow))}
        assert all(sorted(row.marketplaces) == sorted(PUSH) for row in rows.values())
        events = history(session, "O05", "hemnet")
        assert events[-1].error.startswith("borttagning avbruten by key:K1")
    q.transfer("office", "K1")
    assert _deletes(q) == []
    assert all(len(q.transports[m].holds) == 8 for m in PUSH)
    assert q.status("O05", "hemnet").state == "published"
    with pytest.raises(holds.UnknownHold):
        holds.cancel(q.engine, "no-such-hold", "key:K1")
