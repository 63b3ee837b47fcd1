"""R4 Object types: a table per marketplace, farms by orientation, unknown values refused."""

from __future__ import annotations

import re

import factories
import pytest
from hypothesis import given
from hypothesis import strategies as st

import schemas
from syndication import registry
from syndication.errors import InputError, UnknownMarketplace
from syndication.records import CATEGORIES, ORIENTATIONS, Listing
from syndication.rules.object_types import ObjectType, codes, object_type

MARKETPLACES = registry.names()

WITHOUT_FARMING = {"fritid", "hastgard", "ovrig"}


def listing(category: str, *orientations: str) -> Listing:
    """The factory's listing ``OBJ1`` of ``category`` with ``orientations``."""
    return factories.listing_record("OBJ1", category=category, orientations=orientations)


EXPECTED = {
    "hemnet": {
        "villa": "100",
        "radhus": "110",
        "parhus": "111",
        "kedjehus": "112",
        "bostadsratt": "200",
        "fritidshus": "300",
        "tomt": "400",
    },
    "blocket": {
        "villa": "villa",
        "radhus": "radhus",
        "parhus": "parhus",
        "kedjehus": "kedjehus",
        "bostadsratt": "lagenhet",
        "fritidshus": "fritidsboende",
        "tomt": "tomt",
    },
    "hittahem": {
        "villa": "VILLA",
        "radhus": "RADHUS",
        "parhus": "PARHUS",
        "kedjehus": "KEDJEHUS",
        "bostadsratt": "BOSTADSRATT",
        "fritidshus": "FRITIDSHUS",
        "tomt": "TOMT",
    },
    "kyero": {
        "villa": "villa",
        "radhus": "town house",
        "parhus": "semi-detached house",
        "kedjehus": "link-detached house",
        "bostadsratt": "apartment",
        "fritidshus": "holiday home",
        "tomt": "plot",
    },
}
FARM = {
    "hemnet": ("320", "330"),
    "blocket": ("gard", "gard_fritid"),
    "hittahem": ("GARD_MED_BRUK", "GARD_UTAN_BRUK"),
    "kyero": ("finca", "country house"),
}


@pytest.mark.parametrize(
    ("marketplace", "category", "code"),
    [(m, c, code) for m, table in EXPECTED.items() for c, code in table.items()],
)
def test_each_category_has_its_code(marketplace: str, category: str, code: str) -> None:
    assert object_type(listing(category), marketplace).code == code


def test_every_category_has_a_code_on_every_marketplace() -> None:
    for marketplace in MARKETPLACES:
        for category in CATEGORIES:
            assert object_type(listing(category, "jordbruk"), marketplace).code


@pytest.mark.parametrize("orientation", ["fritid", "hastgard", "ovrig"])
def test_a_farm_with_a_non_farming_orientation_is_hemnet_330(orientation: str) -> None:
    assert object_type(listing("lantbruk", "jordbruk", orientation), "hemnet") == ObjectType(
        "330", "Gård utan bruk"
    )


@pytest.mark.parametrize("orientations", [(), ("jordbruk",), ("skogsbruk", "djurhallning")])
def test_other_farms_get_the_farming_code(orientations: tuple[str, ...]) -> None:
    assert object_type(listing("lantbruk", *orientations), "hemnet").code == "320"


@given(
    st.lists(st.sampled_from(ORIENTATIONS), unique=True, max_size=len(ORIENTATIONS)),
    st.sampled_from(MARKETPLACES),
)
def test_farm_code_depends_only_on_the_non_farming_orientations(
    orientations: list[str], marketplace: str
) -> None:
    farming, without = FARM[marketplace]
    expected = without if WITHOUT_FARMING & set(orientations) else farming
    assert object_type(listing("lantbruk", *orientations), marketplace).code == expected


def test_unknown_category_is_an_input_error_naming_the_field() -> None:
    with pytest.raises(InputError) as caught:
        object_type(listing("slott"), "hemnet")
    assert caught.value.field == "category" and caught.value.record == "listing 'OBJ1'"
    assert "slott" in str(caught.value)


@given(st.text(min_size=1).filter(lambda o: o not in ORIENTATIONS))
def test_unknown_orientation_is_an_input_error(orientation: str) -> None:
    with pytest.raises(InputError) as caught:
        object_type(listing("lantbruk", "jordbruk", orientation), "hemnet")
    assert caught.value.field == "orientations"


def test_unknown_marketplace_is_refused() -> None:
    with pytest.raises(UnknownMarketplace):
        object_type(listing("villa"), "bovision")


def xsd_codes(name: str) -> set[str]:
    text = schemas.path(name).read_text("utf-8")
    block = re.search(r'<xs:simpleType name="TypeCode">(.*?)</xs:simpleType>', text, re.S)
    assert block is not None
    return set(re.findall(r'<xs:enumeration value="([^"]+)"/>', block.group(1)))


@pytest.mark.parametrize("marketplace", MARKETPLACES)
def test_the_table_and_the_xsd_enumerate_the_same_codes(marketplace: str) -> None:
    assert set(codes(marketplace)) == xsd_codes(registry.get(marketplace).schema)
