"""The office page's held mass deletions and newest reconciliation, in Swedish, over real
HTTP on SQLite and PostgreSQL; its cancel button (CSRF, admin only, tenancy)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
from sqlalchemy import Engine
from sqlmodel import Session
from web_server import Served, csrf_of, login, serve

from syndication.scope import set_role
from syndication.store.guard_models import DeletionHoldRow, ReconcileResultRow
from syndication.store.models import ListingRow, utcnow


def _hold(hold_id: str, office_id: str, listing_id: str, marketplace: str,
          selection: list[str]) -> DeletionHoldRow:
    return DeletionHoldRow(
        id=hold_id, office_id=office_id, state="held", source="ingest",
        cause=f"an ingest would remove 1 of 1 on {marketplace} at once", created_at=utcnow(),
        pairs=[{"listing_id": listing_id, "marketplace": marketplace, "reason": "deselected"}],
        listings=[{"listing_id": listing_id, "state": "for_sale", "marketplaces": selection,
                   "after_state": "for_sale",
                   "after_marketplaces": [m for m in selection if m != marketplace]}],
        counts={marketplace: {"removing": 1, "published": 1}})


@pytest.fixture
def served(seeded_any: Engine) -> Iterator[Served]:
    with serve(seeded_any) as running:
        with Session(seeded_any) as session:
            pub = session.get(ListingRow, "PUB")
            assert pub is not None
            pub.marketplaces = ["hittahem"]
            session.add(pub)
            session.add(_hold("hmine", "OFF1", "PUB", "hemnet", ["hemnet", "hittahem"]))
            session.add(_hold("htheirs", "OFF2", "OTHER", "blocket", ["blocket"]))
            session.add(ReconcileResultRow(
                run_id="nightly-2026-11-23", trigger="nightly", office_id="OFF1",
                marketplace="hemnet", held_there=3, repaired=1, differences=[{
                    "listing_id": "FAIL", "kind": "missing_there", "repair": "resend",
                    "detail": "Hemnet lacks it: send it again", "repaired": True}]))
            session.commit()
        yield running


def _as(served: Served, role: str) -> requests.Session:
    assert served.engine is not None
    with Session(served.engine) as session:
        set_role(session, "anna", role)
        session.commit()
    http, _ = login(served)
    return http


def test_the_office_page_shows_its_hold_and_its_last_reconciliation(served: Served) -> None:
    http, _ = login(served)
    page = http.get(served.url("/offices/OFF1"), timeout=10).text
    assert "Borttagningar som väntar på bekräftelse" in page
    assert 'data-hold="hmine"' in page and "htheirs" not in page
    assert "an ingest would remove 1 of 1 on hemnet at once" in page
    assert "Bekräfta borttagningarna" in page and "Avbryt borttagningarna" in page
    assert "Senaste avstämning" in page and "nightly-2026-11-23" in page
    assert 'data-object="FAIL"' in page and "Hemnet lacks it: send it again" in page
    other = http.get(served.url("/offices/OFF2"), timeout=10)
    assert other.status_code == 404


def _press(served: Served, http: requests.Session, hold_id: str, decision: str,
           token: str | None = None) -> requests.Response:
    page = http.get(served.url("/offices/OFF1"), timeout=10).text
    return http.post(served.url(f"/offices/OFF1/holds/{hold_id}"),
                     data={"csrf_token": token or csrf_of(page), "decision": decision},
                     allow_redirects=False, timeout=10)


def test_only_an_admin_cancels_and_the_listing_is_restored(served: Served) -> None:
    agent = _as(served, "agent")
    refused = _press(served, agent, "hmine", "cancel")
    assert refused.status_code == 403
    admin = _as(served, "admin")
    assert _press(served, admin, "hmine", "cancel", token="forged").status_code == 400
    theirs = _press(served, admin, "htheirs", "cancel")
    unknown = _press(served, admin, "hnope00", "cancel")
    assert [theirs.status_code, unknown.status_code] == [404, 404]
    assert theirs.content == unknown.content.replace(b"hnope00", b"htheirs")
    done = _press(served, admin, "hmine", "cancel")
    assert done.status_code == 302
    assert done.headers["Location"] == "/offices/OFF1?state=&hold=cancel"
    page = admin.get(served.url(done.headers["Location"]), timeout=10).text
    assert "Avbrutet: objekten är återställda och inget skickades." in page
    assert "Ingen borttagning väntar på bekräftelse." in page
    assert served.engine is not None
    with Session(served.engine) as session:
        hold = session.get(DeletionHoldRow, "hmine")
        assert hold is not None and (hold.state, hold.decided_by) == ("cancelled", "user:anna")
        pub = session.get(ListingRow, "PUB")
        assert pub is not None and sorted(pub.marketplaces) == ["hemnet", "hittahem"]
        assert session.get(DeletionHoldRow, "htheirs").state == "held"  # type: ignore[union-attr]
    again = _press(served, admin, "hmine", "confirm")
    assert again.status_code == 409
