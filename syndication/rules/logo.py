"""R6 Blocket and the logo: which marketplaces get the office logo.

The agency sends its logo to Blocket itself ("Glöm inte att skicka din
företagslogotype till Blocket. Överförs ej från Säljstöd"), so the logo is
never in a Blocket document; the other marketplaces get it when the office has
one.
"""

from __future__ import annotations

from syndication.records import Office

NO_LOGO: frozenset[str] = frozenset({"blocket"})
"""Marketplaces that never receive the office logo."""


def receives_logo(marketplace: str) -> bool:
    """True when ``marketplace``'s documents may carry the office logo."""
    return marketplace not in NO_LOGO


def office_logo(office: Office, marketplace: str) -> str | None:
    """The logo URL to send to ``marketplace``, or ``None``."""
    if not receives_logo(marketplace) or not office.logo_url:
        return None
    return office.logo_url
