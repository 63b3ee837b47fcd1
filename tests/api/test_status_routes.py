"""Status and preview over the API: the CLI's ``status --json`` and ``preview`` twins."""

from __future__ import annotations

from api_service import Api
from lxml import etree

from syndication.store.db import session_scope
from syndication.store.repository import record_status

DESIGN_KEYS = {"marketplace", "state", "marketplace_id", "action", "at", "error", "contacts"}


def test_listing_status_is_design_section_4_with_history_on_request(api: Api) -> None:
    status = api.call("GET", "/listings/O1/status", "agent").json()
    assert status["object_id"] == "O1" and "history" not in status
    assert [row["marketplace"] for row in status["marketplaces"]] == ["hemnet", "blocket",
                                                                      "hittahem"]
    assert all(DESIGN_KEYS <= set(row) for row in status["marketplaces"])
    with session_scope(api.engine) as session:
        record_status(session, "O1", "hemnet", "failed", action="create", attempt=True,
                      error="Hemnet: 422 missing price")
    status = api.call("GET", "/listings/O1/status?history=true", "agent").json()
    hemnet = status["marketplaces"][0]
    assert (hemnet["state"], hemnet["error"]) == ("failed", "Hemnet: 422 missing price")
    assert hemnet["contacts"]["name"] == "Hemnet mäklarsupport"
    assert [event["state"] for event in status["history"]] == ["failed"]


def test_office_status_filters_by_state(api: Api) -> None:
    with session_scope(api.engine) as session:
        record_status(session, "O1", "blocket", "failed", action="create", error="nej")
    failed = api.call("GET", "/offices/K1/status?state=failed", "key:K1").json()
    assert failed["office_id"] == "K1"
    assert [(item["object_id"], [row["marketplace"] for row in item["marketplaces"]])
            for item in failed["listings"]] == [("O1", ["blocket"])]
    every = api.call("GET", "/offices/K1/status", "key:K1").json()
    assert len(every["listings"][0]["marketplaces"]) == 3


def test_an_unknown_state_or_marketplace_is_422_naming_the_parameter(api: Api) -> None:
    state = api.call("GET", "/offices/K1/status?state=lost", "agent")
    assert (state.status_code, state.json()["field"]) == (422, "state")
    preview = api.call("GET", "/listings/O1/preview/eniro", "agent")
    assert (preview.status_code, preview.json()["field"]) == (422, "marketplace")


def test_preview_is_the_document_or_why_nothing_would_be_sent(api: Api) -> None:
    document = api.call("GET", "/listings/O1/preview/hemnet", "agent")
    assert document.status_code == 200
    assert document.headers["content-type"].startswith("application/xml")
    assert document.headers["X-Syndication-Action"] == "create"
    assert etree.fromstring(document.content) is not None
    nothing = api.call("GET", "/listings/O1/preview/hittahem", "agent")
    assert nothing.status_code == 200
    assert nothing.json()["action"] == "none"
    assert nothing.json()["reason"].startswith("not selected: not shown on ")


def test_a_nul_byte_in_the_path_or_query_is_never_a_server_error(api: Api) -> None:
    """400 once the service's middleware refuses it first; the API alone answers 404 (no id
    holds a NUL) or 422 (no state is one), never a 500 from PostgreSQL."""
    for path in ("/listings/O%001/status", "/offices/K%001/status", "/transfers/%00",
                 "/listings/O%001/preview/hemnet", "/offices/K1/status?state=%00"):
        response = api.call("GET", path, "admin")
        assert response.status_code in (400, 404, 422), (path, response.text)
