"""R2 Selection: which marketplaces a listing is meant for.

A listing selects its marketplaces on the desktop's "Internetuppgifter" page.
An office keeps defaults per listing category ("Gemensamma inställningar ›
Internet › Marknadsplatsöverföring"). The defaults are applied once, when a
listing is created without an explicit selection; after that the listing owns
its selection:

============================  ===================  ==============================
listing sent …                already stored?      selection stored
============================  ===================  ==============================
with ``marketplaces``         either               exactly what was sent
without ``marketplaces``      no (new)             the office defaults for its category
without ``marketplaces``      yes                  the selection already stored
============================  ===================  ==============================

Changing the office defaults later therefore never changes an existing
listing. Selection and licence (R1) are independent: a listing may select a
marketplace its office is not licensed for, and is then reported
``not_licensed`` there rather than silently dropped. A name the registry does
not know is an error (:func:`syndication.registry.ordered`), never dropped.
"""

from __future__ import annotations

from collections.abc import Iterable

from syndication.records import Listing, Office
from syndication.registry import ordered


def defaults_at_creation(office: Office, category: str) -> tuple[str, ...]:
    """The selection a new listing of ``category`` gets when the desktop sends none:
    the office's defaults for that category, or nothing when it keeps none."""
    return ordered(office.category_defaults.get(category, ()))


def resolve_selection(
    sent: Iterable[str] | None,
    stored: Iterable[str] | None,
    office: Office,
    category: str,
) -> tuple[str, ...]:
    """The selection to store for a listing being ingested.

    ``sent`` is the selection in the record (``None`` when the record has none);
    ``stored`` the selection already stored (``None`` when the listing is new).
    """
    if sent is not None:
        return ordered(sent)
    if stored is not None:
        return ordered(stored)
    return defaults_at_creation(office, category)


def is_selected(listing: Listing, marketplace: str) -> bool:
    """True when the listing is meant to be shown on ``marketplace``."""
    return marketplace in listing.marketplaces
