"""R1 Licence: which marketplaces an office may publish to.

An office's licence lists the marketplaces it has an agreement with. A listing
is never sent to a marketplace outside that list, whatever the listing
selected; the status there is ``not_licensed`` with a message telling the
agency that a licence change is needed. The licence is read afresh at every
transfer, so a licence change takes effect at the next one.
"""

from __future__ import annotations

from syndication.records import MARKETPLACES, Office

TITLES: dict[str, str] = {"hemnet": "Hemnet", "blocket": "Blocket Bostad", "hittahem": "HittaHem",
                         "kyero": "Kyero"}
"""Display names of the marketplaces, for messages to the agency."""


def title(marketplace: str) -> str:
    """The marketplace's display name (the bare name for one we do not know)."""
    return TITLES.get(marketplace, marketplace)


def is_licensed(office: Office, marketplace: str) -> bool:
    """True when ``office``'s licence includes ``marketplace``."""
    return marketplace in office.licence


def licensed_marketplaces(office: Office) -> tuple[str, ...]:
    """The office's licensed marketplaces in display order (status views list these)."""
    return tuple(name for name in MARKETPLACES if name in office.licence)


def not_licensed_message(office: Office, marketplace: str) -> str:
    """What the agency is told when a listing selected a marketplace the office may not use."""
    return (
        f"{office.name} ({office.id}) has no licence for {title(marketplace)}; "
        f"a licence change is needed before listings can be published there "
        f"(licensen saknar {title(marketplace)}, en licensförändring behövs)"
    )
