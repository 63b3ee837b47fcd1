"""R6 Blocket and the logo: never to Blocket, to the others when the office has one."""

from __future__ import annotations

import factories
import pytest

from syndication import registry
from syndication.records import Office
from syndication.rules.logo import office_logo

MARKETPLACES = registry.names()

WITH_LOGO = factories.office_record("K1", logo_url="https://x/logo.png")
WITHOUT_LOGO = factories.office_record("K2", logo_url=None)


@pytest.mark.parametrize(
    ("marketplace", "office", "expected"),
    [
        ("blocket", WITH_LOGO, None),
        ("blocket", WITHOUT_LOGO, None),
        ("hemnet", WITH_LOGO, "https://x/logo.png"),
        ("hemnet", WITHOUT_LOGO, None),
        ("hittahem", WITH_LOGO, "https://x/logo.png"),
        ("hittahem", WITHOUT_LOGO, None),
    ],
)
def test_logo_per_marketplace(marketplace: str, office: Office, expected: str | None) -> None:
    assert office_logo(office, receives_logo=registry.get(marketplace).receives_logo) == expected
    assert registry.get(marketplace).new_document("O1").office_logo(office) == expected


@pytest.mark.parametrize("marketplace", MARKETPLACES)
def test_registry_entry_is_the_policy(marketplace: str) -> None:
    """Blocket never gets the logo (R6), and Kyero's format has no place for one; the
    entry says so, nothing else does."""
    assert registry.get(marketplace).receives_logo == (marketplace not in ("blocket", "kyero"))
