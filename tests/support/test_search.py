"""Finding a listing ignores case, Swedish letters included, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from syndication.store.models import ListingRow
from syndication.support import find_listings

ADDRESSES = {
    "OBJ-Å1": ("Åsgatan 5", "Örebro", "702 10", "SYS-åäö"),
    "OBJ-Ö2": ("Östra Ågatan 12", "Västerås", "722 14", None),
    "OBJ-É3": ("Rue du Café 3", "Malmö", "211 20", None),
    "OBJ-P4": ("Storgatan 100% 7", "Uppsala", "753 20", None),
}


@pytest.fixture
def store(seeded_any: Engine) -> Engine:
    with Session(seeded_any) as session:
        for listing_id, (street, city, postal_code, system_id) in ADDRESSES.items():
            session.add(ListingRow(id=listing_id, office_id="OFF1", category="villa",
                                   state="for_sale", marketplaces=["hemnet"], street=street,
                                   city=city, postal_code=postal_code, system_id=system_id))
        session.commit()
    return seeded_any


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("åsgatan", ["OBJ-Å1"]),
        ("ÅSGATAN", ["OBJ-Å1"]),
        ("ÖREBRO", ["OBJ-Å1"]),
        ("östra ÅGATAN", ["OBJ-Ö2"]),
        ("VÄSTERÅS", ["OBJ-Ö2"]),
        ("ågatan", ["OBJ-Ö2"]),
        ("CAFÉ", ["OBJ-É3"]),
        ("malmÖ", ["OBJ-É3"]),
        ("obj-å1", ["OBJ-Å1"]),
        ("Obj-É3", ["OBJ-É3"]),
        ("sys-ÅÄÖ", ["OBJ-Å1"]),
        ("pub", ["PUB"]),
        ("sys-fail", ["FAIL"]),
        ("obj-", []),
        ("100%", ["OBJ-P4"]),
        ("0%", ["OBJ-P4"]),
        ("_", []),
        ("STORGATAN", ["OBJ-P4", "PUB"]),
    ],
)
def test_search_folds_case_on_both_stores(store: Engine, query: str,
                                          expected: list[str]) -> None:
    with Session(store) as session:
        assert [hit["object_id"] for hit in find_listings(session, query)] == expected
