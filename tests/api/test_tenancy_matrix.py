"""Every API route × every kind of principal → the status R14 and the tenancy rule say.

Principals: anonymous, an agent of the listing's own company, an agent of
another company, support, admin, the own office's API key, another office's
key. The subject is listing ``O1`` and office ``K1`` (company C1) throughout.
Where a principal may not read the subject, the body must be the one an unknown
id gets, with only the id differing, so nothing tells that ``O1`` exists.
"""

from __future__ import annotations

import factories
import pytest
from api_data import PASSWORD
from api_service import Api

PRINCIPALS = (None, "agent", "agent9", "support", "admin", "key:K1", "key:K9")

RECORDS = {"offices": [], "users": [],
           "listings": [factories.listing("O1", office_id="K1", broker_id="agent",
                                          headline="Ny rubrik")]}

# route: (method, path, body, {principal: expected status}); None is anonymous.
READ = {None: 401, "agent": 200, "agent9": 404, "support": 200, "admin": 200,
        "key:K1": 200, "key:K9": 404}
WRITE = {None: 401, "agent": 202, "agent9": 404, "support": 403, "admin": 202,
         "key:K1": 202, "key:K9": 404}
ROUTES = {
    "post session": ("POST", "/sessions", {"user": "agent", "password": PASSWORD},
                     dict.fromkeys(PRINCIPALS, 201)),
    "put records": ("PUT", "/records", RECORDS,
                    {None: 401, "agent": 200, "agent9": 200, "support": 403, "admin": 200,
                     "key:K1": 200, "key:K9": 200}),
    "transfer listing": ("POST", "/transfers", {"object_id": "O1"}, WRITE),
    "transfer office": ("POST", "/transfers", {"office_id": "K1"}, WRITE),
    "transfer progress": ("GET", "/transfers/{request}", None, READ),
    "listing status": ("GET", "/listings/O1/status?history=true", None, READ),
    "office status": ("GET", "/offices/K1/status?state=failed", None, READ),
    "preview": ("GET", "/listings/O1/preview/hemnet", None, READ),
    "log out": ("DELETE", "/sessions/current", None,
                {None: 401, "agent": 204, "agent9": 204, "support": 204, "admin": 204,
                 "key:K1": 403, "key:K9": 403}),
}
TAKEN_BY = {"agent", "admin", "key:K1"}
"""Who may write O1's record; the others get it back rejected, naming ``office_id``."""

UNKNOWN = {"/transfers/{request}": "/transfers/0123456789abcdef0123456789abcdef",
           "O1": "ZZ", "K1": "ZZ"}


def _request_id(api: Api) -> str:
    response = api.call("POST", "/transfers", "admin", json={"object_id": "O1"})
    assert response.status_code == 202, response.text
    return str(response.json()["request_id"])


@pytest.mark.parametrize("route", list(ROUTES))
def test_route_answers_each_principal_as_tenancy_says(api: Api, route: str) -> None:
    method, path, body, expected = ROUTES[route]
    if "{request}" in path:
        path = path.replace("{request}", _request_id(api))
    got = {}
    for who in PRINCIPALS:
        response = api.call(method, path, who, json=body)
        got[who] = response.status_code
        if response.status_code == 401:
            assert response.headers["WWW-Authenticate"] == "Bearer"
        if route == "put records" and response.status_code == 200:
            outcome = response.json()["records"][0]
            assert outcome["outcome"] == ("accepted" if who in TAKEN_BY else "rejected"), who
            if who not in TAKEN_BY:
                assert outcome["field"] == "office_id"
                assert outcome["message"] == "office 'K1' is not in the document or the store"
    assert got == expected


@pytest.mark.parametrize("route", ["transfer listing", "transfer office", "transfer progress",
                                   "listing status", "office status", "preview"])
@pytest.mark.parametrize("who", ["agent9", "key:K9"])
def test_another_tenants_answer_is_the_unknown_ones(api: Api, route: str, who: str) -> None:
    method, path, body, _ = ROUTES[route]
    if "{request}" in path:
        request_id = _request_id(api)
        other_path, unknown_path = path.replace("{request}", request_id), UNKNOWN[path]
        swap = (UNKNOWN[path].rsplit("/", 1)[1], request_id)
    else:
        other_path = path
        unknown_path = path.replace("O1", "ZZ").replace("K1", "ZZ")
        swap = ("ZZ", "O1" if "O1" in path or (body or {}).get("object_id") else "K1")
    unknown_body = None if body is None else {k: "ZZ" for k in body}
    other = api.call(method, other_path, who, json=body)
    unknown = api.call(method, unknown_path, who, json=unknown_body)
    assert other.status_code == unknown.status_code == 404
    assert other.text == unknown.text.replace(*swap)
    assert dict(other.headers).keys() == dict(unknown.headers).keys()


def test_a_stored_listing_of_another_tenant_is_not_taken_over(api: Api) -> None:
    moved = factories.listing("O9", office_id="K1", broker_id="agent", headline="Kapad")
    response = api.call("PUT", "/records", "agent",
                        json={"offices": [], "users": [], "listings": [moved]})
    outcome = response.json()["records"][0]
    assert (outcome["outcome"], outcome["field"]) == ("rejected", "id")
    status = api.call("GET", "/listings/O9/status", "agent9")
    assert status.status_code == 200
    assert api.call("GET", "/listings/O9/status", "agent").status_code == 404


def test_nobody_but_an_admin_grants_a_company(api: Api) -> None:
    user = factories.user("agent", office_id="K1", companies=["C1", "C9"], main_company=None)
    refused = api.call("PUT", "/records", "agent", json={"offices": [], "users": [user],
                                                         "listings": []})
    outcome = refused.json()["records"][0]
    assert (outcome["outcome"], outcome["field"]) == ("rejected", "companies")
    assert api.call("GET", "/listings/O9/status", "agent").status_code == 404
    granted = api.call("PUT", "/records", "admin", json={"offices": [], "users": [user],
                                                         "listings": []})
    assert granted.json()["records"][0]["outcome"] == "accepted"
    assert api.call("GET", "/listings/O9/status", "agent").status_code == 200


@pytest.mark.parametrize(("who", "office", "taken"), [
    ("agent", factories.office("K1", company_id="C1", name="Nytt namn"), True),
    ("agent", factories.office("K9", company_id="C1", name="Kapad"), False),
    ("agent", factories.office("K5", company_id="C9", name="I fel bolag"), False),
    ("agent", factories.office("K5", company_id="C1", name="Nytt kontor"), True),
    ("key:K1", factories.office("K1", company_id="C1", name="Nytt namn"), True),
    ("key:K1", factories.office("K5", company_id="C1", name="Nytt kontor"), False),
    ("admin", factories.office("K9", company_id="C9", name="Rättat"), True),
])
def test_office_records_are_written_only_inside_the_tenant(
    api: Api, who: str, office: dict[str, object], taken: bool
) -> None:
    response = api.call("PUT", "/records", who,
                        json={"offices": [office], "users": [], "listings": []})
    outcome = response.json()["records"][0]
    assert outcome["outcome"] == ("accepted" if taken else "rejected"), outcome
    if not taken:
        assert outcome["field"] == "id"
