"""``PUT /records``: the input document in, one outcome per record out; caps and hostile bodies."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import factories
import pytest
from api_data import seed
from api_service import Api, served_api, service_context
from sqlalchemy import Engine

from syndication.store.db import session_scope
from syndication.store.models import ListingRow


def document(*listings: dict[str, object]) -> dict[str, object]:
    return {"offices": [], "users": [], "listings": list(listings)}


def stored_headline(api: Api, listing_id: str) -> str | None:
    with session_scope(api.engine) as session:
        row = session.get(ListingRow, listing_id)
        return None if row is None else row.headline


def listing(listing_id: str = "O1", **overrides: object) -> dict[str, object]:
    return factories.listing(listing_id, office_id="K1", broker_id="agent", **overrides)


def test_each_record_is_accepted_or_rejected_naming_its_field(api: Api) -> None:
    before = stored_headline(api, "O1")
    response = api.call("PUT", "/records", "key:K1", json=document(
        listing("O2", headline="Ny villa"), listing("O1", headline="Ändrad", price="dyr")))
    assert response.status_code == 200
    result = response.json()
    assert (result["accepted"], result["rejected"], result["created_listings"]) == (1, 1, ["O2"])
    accepted, rejected = result["records"]
    assert (accepted["record"], accepted["outcome"]) == ("listing 'O2'", "accepted")
    assert (rejected["record"], rejected["id"], rejected["outcome"], rejected["field"]) == (
        "listing 'O1'", "O1", "rejected", "price")
    assert rejected["message"] and rejected["problems"][0]["field"] == "price"
    assert stored_headline(api, "O1") == before
    assert stored_headline(api, "O2") == "Ny villa"


@pytest.mark.parametrize("raw", [
    b'{"listings": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    b'{"listings": [{"id": "\xff\xfe"}]}',
    b"<?xml version='1.0'?><a/>",
    b'{"listings": [], "offices": [], "users": [], "listings": NaN}',
    b'[]',
], ids=["deep", "not-utf8", "xml", "nan", "array"])
def test_an_unusable_document_is_422_about_the_document(api: Api, raw: bytes) -> None:
    response = api.call("PUT", "/records", "agent", data=raw,
                        headers={"Content-Type": "application/json"})
    assert response.status_code == 422, response.text[:500]
    assert response.json()["record"] == "document"


@pytest.mark.parametrize(("value", "field"), [
    ('"Villa\\u0000 i sol"', "headline"),
    ("1" + "0" * 40, "price"),
    ('"Villa \\ud800 i sol"', "headline"),
], ids=["nul", "huge-number", "lone-surrogate"])
def test_a_hostile_value_rejects_its_record_by_field_and_keeps_the_stored_one(
    api: Api, value: str, field: str
) -> None:
    before = stored_headline(api, "O1")
    raw = json.dumps(document(listing("O1", **{field: "@@"}))).encode().replace(
        b'"@@"', value.encode())
    response = api.call("PUT", "/records", "agent", data=raw,
                        headers={"Content-Type": "application/json"})
    assert response.status_code == 200, response.text[:500]
    outcome = response.json()["records"][0]
    assert (outcome["record"], outcome["outcome"], outcome["field"]) == (
        "listing 'O1'", "rejected", field)
    assert outcome["message"].isprintable()
    assert stored_headline(api, "O1") == before


def test_control_characters_other_than_nul_are_taken_as_the_cli_takes_them(api: Api) -> None:
    raw = json.dumps(document(listing("O1", description="a\u001bb\u007fc"))).encode()
    response = api.call("PUT", "/records", "agent", data=raw,
                        headers={"Content-Type": "application/json"})
    assert response.json()["records"][0]["outcome"] == "accepted"


def test_support_is_refused_before_the_body_is_read(api: Api) -> None:
    response = api.call("PUT", "/records", "support", json=document(listing("O1")))
    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"


@pytest.fixture
def capped_api(sqlite_engine: Engine, tmp_path: Path) -> Iterator[Api]:
    context = service_context(sqlite_engine, tmp_path,
                              environ={"SYNDICATION_API_MAX_BODY_BYTES": "4000"})
    with served_api(context, seed(sqlite_engine)) as served:
        yield served


def test_a_body_over_the_cap_is_413_declared_or_streamed(capped_api: Api) -> None:
    big = json.dumps(document(listing("O1", description="x" * 5000))).encode()
    declared = capped_api.call("PUT", "/records", "agent", data=big,
                               headers={"Content-Type": "application/json"})
    assert declared.status_code == 413
    assert declared.json()["record"] == "document"

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(big), 1000):
            yield big[start:start + 1000]

    streamed = capped_api.call("PUT", "/records", "agent", data=chunks(),
                               headers={"Content-Type": "application/json"})
    assert streamed.status_code == 413
    small = capped_api.call("PUT", "/records", "agent", json=document(listing("O1")))
    assert small.status_code == 200
