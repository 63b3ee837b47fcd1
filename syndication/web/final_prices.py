"""The view's final-price page (R7): every sold listing of one office and what the nightly
sync does with it — sends it, has sent it, retracts it, or skips it with every rule that
stops it (the seller's and buyer's consent, "sold before it was published on Hemnet", …).

It is the report of ``syndication final-prices --dry-run`` for one office, judged by the
same selection (:func:`syndication.final_price_selection.plan`), so the page and the
command never disagree. Read-only: nothing is queued or recorded. Tenancy as on the office
page: another tenant's office is answered exactly as an unknown one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from jinja2 import ChoiceLoader, DictLoader

from syndication.final_price_selection import Planned, plan
from syndication.rules.final_price import ALREADY_RETRACTED, ALREADY_SENT
from syndication.scope import may_read_office
from syndication.store.db import session_scope
from syndication.support import unknown_office
from syndication.web.pages import N_

if TYPE_CHECKING:
    from syndication.web import WebView

PATH = "/offices/{office_id}/slutpriser"
PAGE_LIMIT = 500
"""Listings shown on the page; the command's ``--json`` lists every one."""

OUTCOME_WORDS: dict[str, str] = {
    "send": N_("To be sent tonight"),
    "resend": N_("To be sent again tonight"),
    "retract": N_("To be retracted tonight"),
    "sent": N_("Already sent"),
    "retracted": N_("Already retracted"),
    "skipped": N_("Not sent"),
}
"""The page's word for each outcome of the sync (a catalog message)."""

TEMPLATE = """{% extends "base.html" %}
{% block title %}{{ _("Final prices") }} {{ office_id }}{% endblock %}
{% block main %}
<h1>{{ _("Final prices") }} · {{ _("office") }} <a href="{{
  url_for('office', office_id=office_id) }}">{{ office_id }}</a></h1>
<p>{{ _("Every sold listing and what tonight's final-price transfer to Hemnet does with it.")
  }}</p>
{% if rows %}
<table id="final-prices">
<tr><th>{{ _("Object") }}</th><th>{{ _("Outcome") }}</th><th>{{ _("Final price") }}</th>
<th>{{ _("Contract date") }}</th><th>{{ _("Reason") }}</th></tr>
{% for r in rows %}
<tr class="final-price" data-object="{{ r.listing_id }}" data-outcome="{{ r.outcome }}">
<td><a href="{{ url_for('listing', listing_id=r.listing_id) }}">{{ r.listing_id }}</a></td>
<td>{{ _(r.words) }}</td><td>{{ r.price or '–' }}</td><td>{{ r.contract_date or '–' }}</td>
<td>{{ r.reason|domain }}</td></tr>
{% endfor %}
</table>
{% if more %}<p id="more">{% trans more=more %}… and {{ more }} more (syndication
final-prices --dry-run --json shows them all).{% endtrans %}</p>{% endif %}
{% else %}<p id="none">{{ _("No sold listings at this office.") }}</p>{% endif %}
{% endblock %}
"""


def outcome_of(planned: Planned) -> str:
    """``send``/``resend``/``retract`` for a delivery tonight; ``sent`` or ``retracted``
    when the sync already did it and nothing changed; otherwise ``skipped``."""
    if planned.actionable:
        return planned.action
    if planned.reason == ALREADY_SENT:
        return "sent"
    if planned.reason == ALREADY_RETRACTED:
        return "retracted"
    return "skipped"


def add_final_price_page(view: WebView, router: APIRouter) -> None:
    """Register the page's template with the view and its route on ``router``."""
    for environment in view.templates.values():
        environment.loader = ChoiceLoader(
            [DictLoader({"final_prices.html": TEMPLATE}), *_loaders(environment)]
        )

    def final_prices(request: Request, office_id: str) -> Response:
        session = view.session_of(request)
        if session.principal is None:
            return view.to_login(session, request)
        with session_scope(view.context.engine) as db:
            allowed = may_read_office(db, session.principal, office_id)
        if not allowed:
            _ = view.gettext(request)
            return view.message(request, session, 404, _("Not found"),
                                str(unknown_office(office_id)))
        rows: list[dict[str, Any]] = []
        total = 0
        for chunk in plan(view.context.engine, office_ids=[office_id]):
            for planned in chunk:
                total += 1
                if len(rows) < PAGE_LIMIT:
                    outcome = outcome_of(planned)
                    rows.append({"listing_id": planned.listing_id, "outcome": outcome,
                                 "words": OUTCOME_WORDS[outcome], "price": planned.price,
                                 "contract_date": planned.contract_date,
                                 "reason": planned.reason})
        rows.sort(key=lambda r: r["listing_id"])
        return view.page(request, session, "final_prices.html", office_id=office_id, rows=rows,
                         more=total - len(rows))

    router.add_api_route(PATH, final_prices, methods=["GET"])


def _loaders(environment: Any) -> list[Any]:
    loader = environment.loader
    return [] if loader is None else [loader]
