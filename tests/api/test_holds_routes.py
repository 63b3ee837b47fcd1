"""``/api/v1/holds`` (R15) over real HTTP on SQLite and PostgreSQL: who reads and who
decides a held mass deletion, and another tenant's hold answered as an unknown one."""

from __future__ import annotations

import pytest
from api_service import Api

from syndication.store.db import session_scope
from syndication.store.guard_models import DeletionHoldRow
from syndication.store.models import ListingRow, utcnow
from syndication.store.repository import record_status


def held(api: Api, office_id: str, listing_id: str) -> str:
    """A hold of ``listing_id``'s Hemnet delete, as the guard stores one (the listing
    deselected after it was published)."""
    hold_id = f"h{office_id.lower()}"
    with session_scope(api.engine) as session:
        row = session.get(ListingRow, listing_id)
        assert row is not None
        before = list(row.marketplaces)
        row.marketplaces = [m for m in before if m != "hemnet"]
        session.add(row)
        record_status(session, listing_id, "hemnet", "published", marketplace_id="H-1")
        session.add(DeletionHoldRow(
            id=hold_id, office_id=office_id, state="held", source="ingest",
            cause="an ingest would remove 1 of 1 on Hemnet", created_at=utcnow(),
            pairs=[{"listing_id": listing_id, "marketplace": "hemnet", "reason": "deselected"}],
            listings=[{"listing_id": listing_id, "state": row.state, "marketplaces": before,
                       "after_state": row.state, "after_marketplaces": row.marketplaces}],
            counts={"hemnet": {"removing": 1, "published": 1}}))
    return hold_id


def unknown_body(hold_id: str) -> dict[str, object]:
    return {"code": "not_found", "message": f"no hold with id {hold_id!r}",
            "record": f"hold {hold_id!r}", "field": None}


@pytest.fixture
def holds_of(api: Api) -> tuple[str, str]:
    return held(api, "K1", "O1"), held(api, "K9", "O9")


def test_each_principal_lists_the_holds_of_its_offices(api: Api,
                                                       holds_of: tuple[str, str]) -> None:
    mine, theirs = holds_of
    for who, expected in [("key:K1", [mine]), ("agent", [mine]), ("agent9", [theirs]),
                          ("key:K9", [theirs]), ("support", sorted([mine, theirs]))]:
        answer = api.call("GET", "/holds", who)
        assert answer.status_code == 200
        assert sorted(h["hold_id"] for h in answer.json()["holds"]) == expected, who
    one = api.call("GET", f"/holds/{mine}", "key:K1").json()
    assert one["cause"].startswith("an ingest would remove") and one["deletes"] == 1
    assert api.call("GET", "/holds", None).status_code == 401


def test_another_tenants_hold_is_answered_as_an_unknown_one(
        api: Api, holds_of: tuple[str, str]) -> None:
    mine, theirs = holds_of
    for method, path in [("GET", f"/holds/{theirs}"), ("POST", f"/holds/{theirs}/confirm"),
                         ("POST", f"/holds/{theirs}/cancel")]:
        answer = api.call(method, path, "key:K1")
        assert (answer.status_code, answer.json()) == (404, unknown_body(theirs))
    unknown = api.call("POST", "/holds/hnothere/confirm", "key:K1")
    assert (unknown.status_code, unknown.json()) == (404, unknown_body("hnothere"))
    with session_scope(api.engine) as session:
        row = session.get(DeletionHoldRow, theirs)
        assert row is not None and row.state == "held"


def test_the_offices_key_or_an_admin_decides_and_no_one_else(
        api: Api, holds_of: tuple[str, str]) -> None:
    mine, theirs = holds_of
    for who in ("agent", "support"):
        answer = api.call("POST", f"/holds/{mine}/confirm", who)
        assert answer.status_code == 403 and "API key or an admin" in answer.json()["message"]
    confirmed = api.call("POST", f"/holds/{mine}/confirm", "key:K1")
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["state"] == "confirmed" and len(confirmed.json()["request_ids"]) == 1
    again = api.call("POST", f"/holds/{mine}/cancel", "key:K1")
    assert again.status_code == 422 and again.json()["field"] == "state"
    cancelled = api.call("POST", f"/holds/{theirs}/cancel", "admin")
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["restored"] == ["O9"] and cancelled.json()["left"] == []
    with session_scope(api.engine) as session:
        row = session.get(ListingRow, "O9")
        assert row is not None and "hemnet" in row.marketplaces
        decided = session.get(DeletionHoldRow, mine)
        assert decided is not None and decided.decided_by.startswith("key:")
