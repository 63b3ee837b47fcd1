"""Bad and hostile input: clear errors naming record and field, never a traceback."""

from __future__ import annotations

import json
from functools import partial
from typing import Any

import factories
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from syndication.errors import InputError
from syndication.ingest import RecordError, ingest_document, parse_document

OFFICE = factories.office(licence=["hemnet"])
listing = partial(factories.listing, broker_id=factories.OMIT)
"""The factory's listing without a broker: the documents here carry no users."""


def errors_of(engine: Engine, record: dict[str, Any], kind: str = "listings") -> list[str]:
    document = {"offices": [OFFICE], kind: [record]}
    report = ingest_document(engine, json.dumps(document).encode())
    return [str(error) for error in report.errors]


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (b"", "is not valid JSON"),
        (b"{\"listings\": [", "is not valid JSON"),
        (b"\xff\xfe{}", "is not UTF-8"),
        (b"[]", "must be an object"),
        (b"{\"listings\": {}}", "field 'listings': must be an array"),
        (b"{\"listning\": []}", "field 'listning': is not a known field"),
        (b"{\"listings\": [{\"price\": NaN}]}", "NaN is not a JSON number"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    ],
)
def test_unusable_documents(raw: bytes, words: str) -> None:
    with pytest.raises(RecordError) as caught:
        parse_document(raw)
    assert caught.value.record == "document" and words in str(caught.value)
    assert isinstance(caught.value, InputError)


def test_size_limit() -> None:
    with pytest.raises(RecordError, match="at most 100 are accepted"):
        parse_document(b" " * 101, max_bytes=100)


def test_bom_and_empty_document_accepted() -> None:
    assert parse_document(b"\xef\xbb\xbf{}") == {"offices": [], "users": [], "listings": []}


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        (listing(price="12"), "listing 'O1': field 'price': must be a whole number or null, "
                              "not a string"),
        (listing(price=-1), "listing 'O1': field 'price': -1 is less than the minimum 0"),
        (listing(category="slott"), "listing 'O1': field 'category': 'slott' is not one of: "
                                    "villa, radhus, parhus, kedjehus, bostadsratt, fritidshus, "
                                    "tomt, lantbruk"),
        (listing(category="lantbruk", orientations=["vinodling"]),
         "listing 'O1': field 'orientations[0]': 'vinodling' is not one of: jordbruk, skogsbruk, "
         "djurhallning, fritid, hastgard, ovrig"),
        (listing(orientations=["fritid"]),
         "listing 'O1': field 'orientations': only farms (category lantbruk) have orientations; "
         "this is villa"),
        (listing(state="såld"), "listing 'O1': field 'state': 'såld' is not one of: coming, "
                                "for_sale, sold, withdrawn, deleted"),
        (listing(marketplaces=["myspace"]), "listing 'O1': field 'marketplaces[0]': 'myspace' is "
                                            "not one of: hemnet, blocket, hittahem, kyero"),
        (listing(headline="x" * 1_000_000),
         "listing 'O1': field 'headline': is too long (1000000 characters; at most 200)"),
        (listing(address={"postal_code": "ABCDE"}),
         "listing 'O1': field 'address.postal_code': 'ABCDE' is not in the expected form"),
        (listing(images=[{"url": "javascript:alert(1)"}]),
         "listing 'O1': field 'images[0].url': 'javascript:alert(1)' is not in the expected form"),
        (listing(images=[{"url": "https://b.se/1.jpg"}] * 201),
         "listing 'O1': field 'images': has 201 items; at most 200 are allowed"),
        (listing(contract_date="2026-13-45"),
         "listing 'O1': field 'contract_date': '2026-13-45' is not a valid date"),
        (listing(viewings=[{"starts_at": "i morgon"}]),
         "listing 'O1': field 'viewings[0].starts_at': 'i morgon' is not a valid date-time"),
        (listing(viewings=[{"starts_at": "2026-11-28T13:00:00+01:00",
                            "ends_at": "2026-11-28T11:00:00+01:00"}]),
         "listing 'O1': field 'viewings[0].ends_at': ends before it starts"),
        (listing(colour="röd"), "listing 'O1': field 'colour': is not a known field"),
        (listing(category=factories.OMIT), "listing 'O1': field 'category': is required"),
        (listing(send_final_price="ja"),
         "listing 'O1': field 'send_final_price': must be true or false, not a string"),
        (listing(id="OBJ\u0000 1"),
         "listing #1: field 'id': 'OBJ\\x00 1' is not in the expected form"),
        (listing(id="OBJ1\n"), "listing #1: field 'id': 'OBJ1\\n' is not in the expected form"),
        (listing(id="x" * 65), "listing #1: field 'id': is too long (65 characters; at most 64)"),
        (listing(id=7), "listing #1: field 'id': must be a string, not a number"),
        (listing(headline="Villa \ud800 i sol"),
         "listing 'O1': field 'headline': holds a lone surrogate escape (\\ud800–\\udfff), "
         "which is not text"),
        (listing(**{"\u001b[2Jfärg": "röd"}),
         "listing 'O1': field '\\x1b[2Jfärg': is not a known field"),
        (listing(description={"a": {"b": {"c": {"d": {"e": {"f": {"g": {"h": 1}}}}}}}}),
         "listing 'O1': field 'description': is nested deeper than 8 levels"),
    ],
)
def test_bad_listing_fields(sqlite_engine: Engine, record: dict[str, Any], expected: str) -> None:
    assert expected in errors_of(sqlite_engine, record)


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        (factories.user(images=[{"url": "https://b.se/a.jpg", "category": "selfie"}]),
         "user 'U1': field 'images[0].category': 'selfie' is not one of: portratt, signatur, "
         "logotyp, ovrig"),
        (factories.user(companies=["C1"], main_company="C2"),
         "user 'U1': field 'main_company': 'C2' is not one of the user's companies"),
        (factories.user(name=""), "user 'U1': field 'name': must not be empty"),
        (factories.user(email="inte-en-adress"),
         "user 'U1': field 'email': 'inte-en-adress' is not a valid email"),
    ],
)
def test_bad_user_fields(sqlite_engine: Engine, record: dict[str, Any], expected: str) -> None:
    assert expected in errors_of(sqlite_engine, record, kind="users")


def test_bad_office_fields(sqlite_engine: Engine) -> None:
    bad = factories.office("K2", category_defaults={"slott": ["hemnet"]})
    report = ingest_document(sqlite_engine, json.dumps({"offices": [bad]}).encode())
    assert [str(e) for e in report.errors] == [
        "office 'K2': field 'category_defaults': 'slott' is not one of: villa, radhus, parhus, "
        "kedjehus, bostadsratt, fritidshus, tomt, lantbruk"]


def test_several_errors_of_one_record_are_reported_and_it_counts_once(
    sqlite_engine: Engine,
) -> None:
    report = ingest_document(
        sqlite_engine,
        json.dumps({"offices": [OFFICE], "listings": [listing(price="x", rooms=-2, state="?")]})
        .encode())
    assert report.rejected == 1 and len(report.errors) == 3
    assert {e.field for e in report.errors} == {"price", "rooms", "state"}


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=300), key=st.sampled_from(["headline", "description", "id", "city"]))
def test_arbitrary_text_never_raises(sqlite_engine: Engine, text: str, key: str) -> None:
    record = listing(address={"city": text}) if key == "city" else listing(**{key: text})
    report = ingest_document(sqlite_engine, json.dumps({"offices": [OFFICE],
                                                        "listings": [record]}).encode())
    assert report.accepted + report.rejected == 2
    for error in report.errors:
        assert error.record and all(c.isprintable() for c in str(error))
