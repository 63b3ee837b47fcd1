"""R1: the licence decides where an office may publish."""

from __future__ import annotations

import factories
import pytest
from hypothesis import given
from hypothesis import strategies as st

from syndication import registry
from syndication.rules.licence import (
    is_licensed,
    licensed_marketplaces,
    not_licensed_message,
    title,
)

MARKETPLACES = registry.names()


@pytest.mark.parametrize(
    ("licence", "marketplace", "expected"),
    [
        ((), "hemnet", False),
        (("hemnet",), "hemnet", True),
        (("hemnet",), "blocket", False),
        (("hemnet", "blocket", "hittahem"), "blocket", True),
        (("blocket",), "hittahem", False),
    ],
)
def test_is_licensed(licence: tuple[str, ...], marketplace: str, expected: bool) -> None:
    assert is_licensed(factories.office_record(licence=licence), marketplace) is expected


def test_licensed_marketplaces_in_display_order_whatever_the_stored_order() -> None:
    office = factories.office_record(licence=("hittahem", "hemnet"))
    assert licensed_marketplaces(office) == ("hemnet", "hittahem")


def test_message_names_office_marketplace_and_licence_change() -> None:
    message = not_licensed_message(
        factories.office_record("K9", name="Mäklarhuset Vänersborg"), "blocket"
    )
    assert "Blocket Bostad" in message and "K9" in message
    assert "licence change" in message and "licensförändring" in message


def test_unknown_marketplace_title_is_its_name() -> None:
    assert title("boneo") == "boneo"


@given(st.sets(st.sampled_from(MARKETPLACES)), st.sampled_from(MARKETPLACES))
def test_licensed_exactly_when_listed(licence: set[str], marketplace: str) -> None:
    office = factories.office_record(licence=tuple(licence))
    assert is_licensed(office, marketplace) == (marketplace in licence)
    assert set(licensed_marketplaces(office)) == licence
