"""The served OpenAPI document: every route and every status it can answer, and the check
that holds the tests' responses to it."""

from __future__ import annotations

import pytest
import requests
from api_service import Api
from openapi_check import OpenApiCheck, OutsideDocument

ANY = {"400", "413", "431", "500"}
"""What the service's middleware may answer on any route (``syndication.api.errors.ANY_ROUTE``)."""

EXPECTED = {
    ("post", "/api/v1/sessions"): {"201", "400", "401", "413", "422", "429"},
    ("delete", "/api/v1/sessions/current"): {"204", "401", "403"},
    ("put", "/api/v1/records"): {"200", "401", "403", "413", "422"},
    ("post", "/api/v1/transfers"): {"202", "400", "401", "403", "404", "409", "413", "422",
                                    "503"},
    ("get", "/api/v1/transfers/{request_id}"): {"200", "401", "404", "422"},
    ("get", "/api/v1/listings/{listing_id}/status"): {"200", "401", "404", "422"},
    ("get", "/api/v1/offices/{office_id}/status"): {"200", "401", "404", "422"},
    ("get", "/api/v1/listings/{listing_id}/preview/{marketplace}"): {"200", "401", "404",
                                                                     "422"},
    ("get", "/api/v1/holds"): {"200", "401", "422"},
    ("get", "/api/v1/holds/{hold_id}"): {"200", "401", "404", "422"},
    ("post", "/api/v1/holds/{hold_id}/confirm"): {"200", "401", "403", "404", "422", "503"},
    ("post", "/api/v1/holds/{hold_id}/cancel"): {"200", "401", "403", "404", "422"},
}


def test_every_route_documents_every_status_it_answers(sqlite_api: Api) -> None:
    document = requests.get(f"{sqlite_api.url}/api/v1/openapi.json", timeout=10).json()
    assert document["openapi"].startswith("3.")
    found = {(method, path): set(operation["responses"])
             for path, item in document["paths"].items() if path.startswith("/api/v1/")
             for method, operation in item.items()}
    assert found == {route: {*statuses, *ANY} for route, statuses in EXPECTED.items()}
    errors = [response for item in document["paths"].values() for operation in item.values()
              for status, response in operation["responses"].items() if status >= "400"]
    assert all(r["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ErrorBody"} for r in errors)
    assert "HTTPValidationError" not in document["components"]["schemas"]
    schemes = document["components"]["securitySchemes"]
    assert schemes == {"HTTPBearer": {"type": "http", "scheme": "bearer",
                                      "description": schemes["HTTPBearer"]["description"]}}


def test_the_check_refuses_a_response_outside_the_document(sqlite_api: Api) -> None:
    document = requests.get(f"{sqlite_api.url}/api/v1/openapi.json", timeout=10).json()
    check = OpenApiCheck(document)
    unchecked = requests.Session()
    teapot = unchecked.get(f"{sqlite_api.url}/api/v1/listings/O1/status", timeout=10)
    teapot.status_code = 418
    with pytest.raises(OutsideDocument, match="status not in the document"):
        check.check(teapot)
    wrong = unchecked.get(f"{sqlite_api.url}/api/v1/listings/O1/status", timeout=10)
    wrong._content = b'{"code": 401}'
    with pytest.raises(OutsideDocument, match="does not match"):
        check.check(wrong)
    check.check(unchecked.get(f"{sqlite_api.url}/api/v1/listings/O1/status", timeout=10))


def test_an_unknown_route_or_method_answers_with_the_api_error_body(sqlite_api: Api) -> None:
    """Outside every documented route the API still speaks its one error body, never the
    framework's ``{"detail": …}``."""
    unknown = requests.get(f"{sqlite_api.url}/api/v1/no-such-route", timeout=10)
    assert unknown.status_code == 404
    assert unknown.json()["code"] == "not_found" and "detail" not in unknown.json()
    wrong = requests.delete(f"{sqlite_api.url}/api/v1/records", timeout=10)
    assert wrong.status_code == 405
    assert wrong.json()["code"] == "method_not_allowed"
