"""The domain's words as the view shows them: each text the domain writes in English (or
in English and Swedish at once) is matched to a catalog message, then translated.

The domain keeps its words: the CLI and the JSON API print them as they are (their
tests pin them), and the store keeps them in its rows. Only the view translates, here,
at the last moment. :func:`domain_text` decides what a text is:

* one of the domain's fixed texts (:data:`FIXED`: the failed login, the advice of R8,
  the final-price rules of R7 …) → its message;
* one of the domain's texts with values in it (:data:`PATTERNS`: the throttled login,
  the unknown listing or office, the licence refusal of R1, the circuit's waiting
  note, a final price that changed …) → its message with those values;
* several of these joined by ``"; "`` (the final-price reasons) → each translated,
  joined again;
* anything else — a marketplace's own answer, a validation message — is data and is
  shown as it is.

A value the domain wrote as ``None`` (a broker without a main company, a price
never sent) is shown as ``–``, as the view shows every missing value.

Each pattern is written beside the domain function whose text it reads, and
``tests/support/test_web_every_word.py`` feeds every such function's output through
here, so a changed domain text fails a test instead of showing English.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from syndication.api.queue import UNAVAILABLE_MESSAGE
from syndication.auth import FAILED_MESSAGE
from syndication.registry import ADVICE
from syndication.rules import final_price as r7
from syndication.support import UNMATCHED_ADVICE
from syndication.throttle import THROTTLED_MESSAGE
from syndication.transfer.job import NOT_KNOWN_NOTE
from syndication.web.pages import N_

Gettext = Callable[[str], str]

FIXED: dict[str, str] = {
    FAILED_MESSAGE: N_("wrong user name or password"),
    ADVICE: N_("Please try the transfer again first."),
    NOT_KNOWN_NOTE: N_("the marketplace did not know the listing"),
    UNAVAILABLE_MESSAGE: N_("the transfer queue cannot be set up; try again"),
    UNMATCHED_ADVICE: N_(
        "No listing has this system id. Check the system id in the photo portal's "
        "assignment, or create the listing with that system id; the assignment stays ready "
        "and is fetched again at the next photo round."),
    r7.OFFICE_SETTING_OFF: N_("the office's setting 'Hemnet – slutpris' is off"),
    r7.NO_AGREEMENT: N_("the office has no final-price agreement with Hemnet"),
    r7.NOT_SOLD: N_("the listing is not sold"),
    r7.NO_FINAL_PRICE: N_("the listing has no final price"),
    r7.NO_CONTRACT_DATE: N_("the listing has no contract date"),
    r7.NOT_PUBLISHED_BEFORE_SALE: N_(
        "sold before it was published on Hemnet (no delivery Hemnet accepted on or before "
        "the contract date; a file drop does not count)"),
    r7.FLAG_NOT_SET: N_(
        "the seller and buyer have not consented (the listing's 'send final price to "
        "Hemnet' flag is not set)"),
    r7.ALREADY_SENT: N_("final price already sent to Hemnet, unchanged"),
    r7.ALREADY_RETRACTED: N_("final price already retracted from Hemnet"),
    "eligible; not sent before": N_("eligible; not sent before"),
    "eligible; the last attempt failed": N_("eligible; the last attempt failed"),
    "eligible; not accepted before": N_("eligible; not accepted before"),
    "eligible; the last attempt did not finish": N_("eligible; the last attempt did not finish"),
    "finishing a delivery an earlier run left in flight": N_(
        "finishing a delivery an earlier run left in flight"),
    "consent withdrawn after the final price was sent": N_(
        "consent withdrawn after the final price was sent"),
}
"""The domain's fixed texts and the message each is shown as."""

PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(re.escape(THROTTLED_MESSAGE).replace(r"\{seconds\}", r"(?P<seconds>\d+)")),
     N_("too many failed logins for this user name; try again in %(seconds)s s")),
    (re.compile(r"no listing with id (?P<id>'[^']*')"), N_("no listing with id %(id)s")),
    (re.compile(r"no office with id (?P<id>'[^']*')"), N_("no office with id %(id)s")),
    (re.compile(r"listing (?P<id>'[^']*'): no such listing in the store"),
     N_("listing %(id)s: no such listing in the store")),
    (re.compile(r"(?P<office>.+) \((?P<id>[^()]+)\) has no licence for (?P<marketplace>.+?); "
                r"a licence change is needed before listings can be published there "
                r"\(licensen saknar .+, en licensförändring behövs\)"),
     N_("%(office)s (%(id)s) has no licence for %(marketplace)s; a licence change is needed "
        "before listings can be published there")),
    (re.compile(r"väntar på (?P<marketplace>.+?): (?P<reason>.*) \(waiting for the "
                r"marketplace: (?P<failures>\d+) failures in a row; tried again by itself\)",
                re.S),
     N_("waiting for %(marketplace)s: %(reason)s (%(failures)s failures in a row; tried "
        "again by itself)")),
    (re.compile(r"category (?P<category>'[^']*') has no final-price statistics on Hemnet "
                r"\(only villa, bostadsratt, fritidshus\)"),
     N_("category %(category)s has no final-price statistics on Hemnet (only villa, "
        "bostadsratt, fritidshus)")),
    (re.compile(r"the listing belongs to company (?P<company>'[^']*'), not the broker's main "
                r"company (?P<main>'[^']*'|None), and the broker's setting 'transfer "
                r"statistics for objects of all my companies' is off"),
     N_("the listing belongs to company %(company)s, not the broker's main company "
        "%(main)s, and the broker's setting 'transfer statistics for objects of all my "
        "companies' is off")),
    (re.compile(r"final price changed from (?P<old>\S+) \((?P<old_date>[^)]*)\) to "
                r"(?P<new>\S+) \((?P<new_date>[^)]*)\)"),
     N_("final price changed from %(old)s (%(old_date)s) to %(new)s (%(new_date)s)")),
]
"""The domain's texts with values, as patterns, and the message each is shown as."""


def domain_text(text: str | None, gettext: Gettext) -> str:
    """``text`` in the view's language when it is one of the domain's texts (see the
    module); otherwise ``text`` itself, and ``""`` for none."""
    if not text:
        return ""
    known = _one(text, gettext)
    if known is not None:
        return known
    translated = _joined(text.split("; "), gettext)
    return text if translated is None else "; ".join(translated)


def _joined(parts: list[str], gettext: Gettext) -> list[str] | None:
    """``parts`` (a text split at ``"; "``) as known texts, each translated, the longest
    first (a reason may hold ``"; "`` itself); ``None`` when some part is not known."""
    if not parts:
        return []
    for end in range(len(parts), 0, -1):
        known = _one("; ".join(parts[:end]), gettext)
        if known is not None:
            rest = _joined(parts[end:], gettext)
            if rest is not None:
                return [known, *rest]
    return None


def _one(text: str, gettext: Gettext) -> str | None:
    message = FIXED.get(text)
    if message is not None:
        return gettext(message)
    for pattern, template in PATTERNS:
        match = pattern.fullmatch(text)
        if match is not None:
            values = {key: "–" if value == "None" else value
                      for key, value in match.groupdict().items()}
            return gettext(template) % values
    return None
