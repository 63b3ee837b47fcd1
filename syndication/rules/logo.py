"""R6 Blocket and the logo: which documents carry the office logo.

The agency sends its logo to Blocket itself ("Glöm inte att skicka din
företagslogotype till Blocket. Överförs ej från Säljstöd"), so the logo is
never in a Blocket document; the other marketplaces get it when the office has
one. Which marketplaces receive it is each registry entry's ``receives_logo``
(``syndication/registry.py``); this rule only applies it.
"""

from __future__ import annotations

from syndication.records import Office


def office_logo(office: Office, *, receives_logo: bool) -> str | None:
    """The logo URL to send to a marketplace whose entry says ``receives_logo``, or ``None``."""
    if not receives_logo or not office.logo_url:
        return None
    return office.logo_url
