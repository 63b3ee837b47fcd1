"""R2: a listing's selection, and the office defaults applied at creation only."""

from __future__ import annotations

import factories
import pytest
from hypothesis import given
from hypothesis import strategies as st

from syndication import registry
from syndication.records import CATEGORIES
from syndication.rules.selection import (
    defaults_at_creation,
    is_selected,
    ordered,
    resolve_selection,
)

MARKETPLACES = registry.names()

OFFICE = factories.office_record(
    licence=("hemnet", "blocket"),
    category_defaults={"villa": ("hittahem", "hemnet"), "tomt": ()},
)


@pytest.mark.parametrize(
    ("category", "expected"),
    [
        ("villa", ("hemnet", "hittahem")),
        ("tomt", ()),
        ("bostadsratt", ()),
    ],
)
def test_defaults_at_creation(category: str, expected: tuple[str, ...]) -> None:
    assert defaults_at_creation(OFFICE, category) == expected


@pytest.mark.parametrize(
    ("sent", "stored", "expected"),
    [
        (None, None, ("hemnet", "hittahem")),
        (None, ("blocket",), ("blocket",)),
        (None, (), ()),
        (("blocket",), None, ("blocket",)),
        (("blocket",), ("hemnet",), ("blocket",)),
        ((), ("hemnet",), ()),
        (("hittahem", "hemnet", "hemnet"), None, ("hemnet", "hittahem")),
    ],
    ids=[
        "new-without-selection-gets-defaults",
        "existing-without-selection-keeps-stored",
        "existing-empty-selection-stays-empty",
        "new-with-selection",
        "existing-with-selection-replaces",
        "explicit-empty-deselects-all",
        "deduplicated-and-ordered",
    ],
)
def test_resolve_selection(
    sent: tuple[str, ...] | None, stored: tuple[str, ...] | None, expected: tuple[str, ...]
) -> None:
    assert resolve_selection(sent, stored, OFFICE, "villa") == expected


@given(
    st.sampled_from(CATEGORIES),
    st.dictionaries(st.sampled_from(CATEGORIES), st.sets(st.sampled_from(MARKETPLACES))),
    st.sets(st.sampled_from(MARKETPLACES)),
)
def test_changing_defaults_never_changes_an_existing_listing(
    category: str, new_defaults: dict[str, set[str]], stored: set[str]
) -> None:
    changed = factories.office_record(
        category_defaults={k: tuple(v) for k, v in new_defaults.items()}
    )
    assert resolve_selection(None, tuple(stored), changed, category) == ordered(stored)


@given(st.lists(st.sampled_from(MARKETPLACES)))
def test_ordered_is_a_display_order_subset(names: list[str]) -> None:
    result = ordered(names)
    assert set(result) == set(names)
    assert list(result) == sorted(result, key=MARKETPLACES.index)


def test_is_selected() -> None:
    listing = factories.listing_record(marketplaces=("hemnet",))
    assert is_selected(listing, "hemnet") and not is_selected(listing, "blocket")
