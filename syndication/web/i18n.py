"""The web view's languages: Swedish first, English second, through gettext catalogs (Babel).

The catalogs are the ``.po`` files in ``syndication/web/locale``; they are
compiled in memory with :mod:`babel.messages` the first time a language is
used, so a clean checkout installed with ``pip install -e .`` needs no build
step and there is no compiled file that could drift from its source.

:func:`choose_locale` decides a request's language: a ``lang`` parameter
(the switch in the header, remembered in a cookie), else the cookie, else the
browser's ``Accept-Language`` (the first of ours it names, by its q-order),
else Swedish, the language the desktop speaks to agents. Times are shown in
Europe/Stockholm as Swedes read them ("1 dec 2026 08:49"); the UTC instant
goes in the element's ``title`` (see :func:`local_time`).
"""

from __future__ import annotations

import io
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from zoneinfo import ZoneInfo

from babel.dates import format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

LOCALES = ("sv", "en")
DEFAULT_LOCALE = "sv"
LANG_COOKIE = "lang"
TIME_ZONE = ZoneInfo("Europe/Stockholm")
DOMAIN = "messages"


def catalog_text(locale: str) -> bytes:
    """The ``.po`` source of ``locale`` as stored in the package."""
    path = resources.files("syndication.web") / "locale" / locale / "LC_MESSAGES" / "messages.po"
    return path.read_bytes()


@cache
def translations(locale: str) -> Translations:
    """``locale``'s catalog, compiled from its ``.po`` once per process."""
    if locale not in LOCALES:
        raise ValueError(f"unknown locale {locale!r}; known: {', '.join(LOCALES)}")
    catalog = read_po(io.BytesIO(catalog_text(locale)), locale=locale, domain=DOMAIN)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return Translations(compiled, domain=DOMAIN)


def from_accept_language(header: str | None) -> str | None:
    """The first of :data:`LOCALES` the ``Accept-Language`` header asks for, by q-value
    (``sv-SE`` counts as ``sv``); ``None`` when it names none of them."""
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate((header or "").split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        language = tag.strip().lower().split("-")[0]
        if language in LOCALES and quality > 0:
            ranked.append((-quality, index, language))
    return min(ranked)[2] if ranked else None


def choose_locale(param: str | None, cookie: str | None, accept_language: str | None) -> str:
    """The request's language: the switch's parameter, the remembered cookie, the
    browser's preference, else Swedish."""
    for asked in (param, cookie):
        if asked in LOCALES:
            return str(asked)
    return from_accept_language(accept_language) or DEFAULT_LOCALE


def local_time(moment: datetime | str | None, locale: str) -> str:
    """``moment`` in Stockholm time as its readers write it: "1 dec 2026 08:49" in Swedish
    (CLDR's abbreviation dot dropped, as the desktop writes months), "1 Dec 2026 08:49"
    in English; ``–`` for no time."""
    if moment is None or moment == "":
        return "–"
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    text = format_datetime(moment, "d MMM y HH:mm", tzinfo=TIME_ZONE, locale=locale)
    return text.replace(".", "") if locale == "sv" else text


def utc_iso(moment: datetime | str | None) -> str:
    """``moment`` as UTC ISO 8601 (for a ``title`` attribute); empty for no time."""
    if moment is None or moment == "":
        return ""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="seconds")
