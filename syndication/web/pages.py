"""The templates of the view's pages (each extends ``base.html``) and the words of the states.

:data:`STATE_LABELS` are the states as the desktop names them to agents
(Publicerad, Raderad, Misslyckad, I kö, Skickad …), :data:`ACTION_LABELS` the
last actions (Skapa, Uppdatera, Ta bort …) and :data:`LISTING_STATE_LABELS` a
listing's own state (Till salu, Såld …), as gettext messages whose English
source the catalogs translate.
"""

from __future__ import annotations


def N_(message: str) -> str:
    """Mark ``message`` for the catalogs; it is translated where it is shown."""
    return message


STATE_LABELS: dict[str, str] = {
    "queued": N_("Queued"),
    "sent": N_("Sent"),
    "published": N_("Published"),
    "failed": N_("Failed"),
    "deleted": N_("Deleted"),
    "not_selected": N_("Not selected"),
    "not_licensed": N_("Not licensed"),
    "not_transferred": N_("Not transferred"),
    "not_published": N_("Never published"),
    "retry": N_("Try again"),
}

ACTION_LABELS: dict[str, str] = {
    "create": N_("Create"),
    "update": N_("Update"),
    "delete": N_("Delete"),
    "retry": N_("Try again"),
    "final_price": N_("Final price"),
    "final_price_retraction": N_("Final price retraction"),
}

LISTING_STATE_LABELS: dict[str, str] = {
    "coming": N_("Coming"),
    "for_sale": N_("For sale"),
    "sold": N_("Sold"),
    "withdrawn": N_("Withdrawn"),
    "deleted": N_("Deleted"),
}

TIME = """{% macro time(at) %}{% if at %}<time datetime="{{ at|utc }}" title="{{ at|utc }} UTC">{{
  at|local_time }}</time>{% else %}–{% endif %}{% endmacro %}
{% macro pager(page, more, name) %}{% if page > 1 or more %}
<nav class="pages" aria-label="{{ _('Pages') }}">
{% if page > 1 %}<a href="?{{ name }}={{ page - 1 }}">{{ _("Previous") }}</a>{% endif %}
<span>{% trans page=page %}Page {{ page }}{% endtrans %}</span>
{% if more %}<a href="?{{ name }}={{ page + 1 }}">{{ _("Next") }}</a>{% endif %}
</nav>{% endif %}{% endmacro %}
{% macro contacts(c) %}{% if c %}
{{ c.name }}{% if c.phone %}, {{ c.phone }}{% endif %}
{% if c.email %}, <a href="mailto:{{ c.email }}">{{ c.email }}</a>{% endif %}
{% if c.web %}, {{ c.web }}{% endif %}<br><em>{{ c.advice|domain }}</em>{% endif %}{% endmacro %}
"""

STATUS_TABLE = """{% from "time.html" import time, contacts %}
{% macro status_table(entries, show_object=False, retry=False) %}
<table class="stack">
<tr>{% if show_object %}<th scope="col">{{ _("Object") }}</th>
<th scope="col">{{ _("Address") }}</th>{% endif %}
<th scope="col">{{ _("Marketplace") }}</th><th scope="col">{{ _("State") }}</th>
<th scope="col">{{ _("Marketplace id") }}</th><th scope="col">{{ _("Last action") }}</th>
<th scope="col">{{ _("When") }}</th><th scope="col">{{ _("Attempts") }}</th>
<th scope="col">{{ _("Public address") }}</th><th scope="col">{{ _("Error / note") }}</th>
<th scope="col">{{ _("Contacts on failure") }}</th>
{% if retry %}<th scope="col">{{ _("Action") }}</th>{% endif %}</tr>
{% for row in entries %}
<tr class="status-row" data-marketplace="{{ row.marketplace }}" data-state="{{ row.state }}"
{% if show_object %} data-object="{{ row.object_id }}"{% endif %}>
{% if show_object %}
<td><a href="{{ url_for('listing', listing_id=row.object_id) }}">{{ row.object_id }}</a></td>
<td>{{ row.address }}</td>
{% endif %}
<td>{{ row.title }}</td>
<td class="{{ row.state }} state-label">{{ row.state|state_label }}</td>
<td>{{ row.marketplace_id or '–' }}</td>
<td>{{ row.action|action_label }}</td>
<td>{{ time(row.at) }}</td>
<td class="attempts">{{ row.attempts }}</td>
<td class="public-url wide">{% if row.public_link %}<a href="{{ row.public_link }}"
  rel="noopener noreferrer">{{ row.public_url }}</a>{% else %}{{ row.public_url or '–' }}
{% endif %}</td>
<td class="wide pair-error">{% if row.error %}{{ row.error|domain }}{% else %}
<span class="note">{{ _(row.note) if row.note else '' }}</span>{% endif %}</td>
<td class="wide">{{ contacts(row.contacts) }}</td>
{% if retry %}<td>{% if row.retryable %}
<form method="post" action="{{ url_for('retry', listing_id=row.object_id or document.object_id) }}"
  class="retry">
<input type="hidden" name="csrf_token" value="{{ csrf_token }}">
<input type="hidden" name="marketplace" value="{{ row.marketplace }}">
<button>{{ _("Try again") }}</button></form>{% endif %}</td>{% endif %}
</tr>
{% endfor %}
</table>
{% endmacro %}
"""

SEARCH = """{% extends "base.html" %}
{% block title %}{{ _("Find a listing") }}{% endblock %}
{% block main %}
<h1>{{ _("Find a listing") }}</h1>
{% if query is not none %}
{% if results %}
<table id="results" class="stack">
<tr><th scope="col">{{ _("Object") }}</th><th scope="col">{{ _("System id") }}</th>
<th scope="col">{{ _("Office") }}</th><th scope="col">{{ _("Address") }}</th>
<th scope="col">{{ _("State") }}</th></tr>
{% for r in results %}
<tr class="result" data-object="{{ r.object_id }}">
<td><a href="{{ url_for('listing', listing_id=r.object_id) }}">{{ r.object_id }}</a></td>
<td>{{ r.system_id or '–' }}</td>
<td><a href="{{ url_for('office', office_id=r.office_id) }}">{{ r.office_id }}</a></td>
<td>{{ r.address }}</td><td>{{ r.state|listing_state }}</td></tr>
{% endfor %}
</table>
{% else %}
<p id="no-results">{% trans query=query %}No listing matches “{{ query }}”.{% endtrans %}</p>
{% endif %}
{% else %}
<p>{{ _("Search by the listing's id, its system id or part of its address.") }}</p>
{% endif %}
{% endblock %}
"""

LISTING = """{% extends "base.html" %}
{% from "status_table.html" import status_table with context %}
{% from "time.html" import time %}
{% block title %}{{ document.object_id }}{% endblock %}
{% block main %}
<h1>{{ _("Object") }} <span id="object-id">{{ document.object_id }}</span></h1>
<p>{{ listing.address }} · {{ _("office") }}
<a href="{{ url_for('office', office_id=listing.office_id) }}">{{ listing.office_id }}</a>
· {{ listing.state|listing_state }}</p>
{% if notice %}<p id="notice" role="status">{{ notice }}</p>{% endif %}
<div id="pairs" data-poll="{{ url_for('listing_status', listing_id=document.object_id) }}"
  aria-live="polite">
{{ status_table(entries, retry=True) }}
</div>
{% if document.photo_problems %}
<h2>{{ _("Photo problems") }}</h2>
<ul>{% for p in document.photo_problems %}
<li>{{ time(p.at) }} · {{ _("assignment") }} {{ p.assignment_id }}: {{ p.message|domain }}</li>
{% endfor %}</ul>
{% endif %}
<h2>{{ _("History") }}</h2>
{% if events %}
<table id="history" class="stack">
<tr><th scope="col">{{ _("When") }}</th><th scope="col">{{ _("Marketplace") }}</th>
<th scope="col">{{ _("State") }}</th><th scope="col">{{ _("Action") }}</th>
<th scope="col">{{ _("Id") }}</th><th scope="col">{{ _("Attempts") }}</th>
<th scope="col">{{ _("By") }}</th><th scope="col">{{ _("Error") }}</th></tr>
{% for e in events %}
<tr class="event" data-marketplace="{{ e.marketplace }}" data-state="{{ e.state }}">
<td>{{ time(e.at) }}</td><td>{{ e.title }}</td><td>{{ e.state|state_label }}</td>
<td>{{ e.action|action_label }}</td>
<td>{{ e.marketplace_id or '–' }}</td><td>{{ e.attempts }}</td>
<td class="actor">{{ e.actor or '' }}</td><td class="wide">{{ e.error|domain }}</td></tr>
{% endfor %}
</table>
{% else %}<p>{{ _("No transfer recorded yet.") }}</p>{% endif %}
{% endblock %}
{% block scripts %}<script src="{{ url_for('poll_script') }}"></script>{% endblock %}
"""

OFFICE = """{% extends "base.html" %}
{% from "status_table.html" import status_table with context %}
{% from "time.html" import time %}
{% block title %}{{ _("Office") }} {{ result.office_id }}{% endblock %}
{% block main %}
<h1>{{ _("Office") }} {{ result.office_id }} · {{ result.office }}</h1>
<p><a href="{{ url_for('final_prices', office_id=result.office_id) }}">{{
  _("Final prices") }}</a></p>
{% if notice %}<p id="notice" role="status">{{ notice }}</p>{% endif %}
<p>{{ _("Showing:") }} {% for s in states %}
{% if s == state %}<strong>{{ s|state_label if s else _('all') }}</strong>{% else %}
<a href="{{ url_for('office', office_id=result.office_id, state=s) }}">{{
  s|state_label if s else _('all') }}</a>
{% endif %}{% if not loop.last %} · {% endif %}{% endfor %}</p>
{% if failed_count %}
<form method="post" action="{{ url_for('office_retry', office_id=result.office_id) }}">
<input type="hidden" name="csrf_token" value="{{ csrf_token }}">
<button id="retry-all">{{ _("Transfer all failed") }} ({{ failed_count }})</button></form>
{% endif %}
{% if entries %}{{ status_table(entries, show_object=True) }}
{% else %}<p id="none">{{ _("Nothing to show for this office.") }}</p>{% endif %}
{% if problems %}
<h2>{{ _("Photo problems") }}</h2>
<table id="photo-problems" class="stack">
<tr><th scope="col">{{ _("When") }}</th><th scope="col">{{ _("Assignment") }}</th>
<th scope="col">{{ _("System id") }}</th><th scope="col">{{ _("Listing") }}</th>
<th scope="col">{{ _("Problem") }}</th><th scope="col">{{ _("What to do") }}</th></tr>
{% for p in problems %}
<tr class="photo-problem" data-assignment="{{ p.assignment_id }}">
<td>{{ time(p.at) }}</td><td>{{ p.assignment_id }}</td>
<td>{{ p.system_id or '–' }}</td>
<td>{% if p.listing_id %}<a href="{{ url_for('listing', listing_id=p.listing_id) }}">{{
  p.listing_id }}</a>{% else %}{{ _("no listing") }}{% endif %}</td>
<td class="wide">{{ p.message|domain }}</td><td>{{ p.advice|domain }}</td></tr>
{% endfor %}
</table>
{% endif %}
{% if ops %}{% include "office_ops.html" %}{% endif %}
{% endblock %}
"""

HOME = """{% extends "base.html" %}
{% from "time.html" import time, pager, contacts %}
{% block title %}{{ _("What is wrong right now") }}{% endblock %}
{% block main %}
<h1>{{ _("What is wrong right now") }}</h1>
<h2 id="counts-heading">{{ _("Listings per marketplace and state") }}</h2>
{% if home.counts %}
<table id="counts" aria-labelledby="counts-heading">
<tr><th scope="col">{{ _("Marketplace") }}</th>{% for s in home.states %}
<th scope="col">{{ s|state_label }}</th>{% endfor %}</tr>
{% for m in home.counts %}<tr class="count-row" data-marketplace="{{ m.marketplace }}">
<th scope="row">{{ m.title }}</th>{% for s in home.states %}
<td data-state="{{ s }}">{{ m.by_state.get(s, 0) }}</td>{% endfor %}</tr>{% endfor %}
</table>
{% else %}<p>{{ _("No transfer recorded yet.") }}</p>{% endif %}
<h2 id="failures-heading">{{ _("Failures in the last 24 hours") }}</h2>
{% if home.failures %}
<table id="failures" class="stack" aria-labelledby="failures-heading">
<tr><th scope="col">{{ _("Object") }}</th><th scope="col">{{ _("Office") }}</th>
<th scope="col">{{ _("Marketplace") }}</th><th scope="col">{{ _("When") }}</th>
<th scope="col">{{ _("Error") }}</th><th scope="col">{{ _("Contacts on failure") }}</th></tr>
{% for f in home.failures %}
<tr class="failure" data-object="{{ f.listing_id }}" data-marketplace="{{ f.marketplace }}">
<td><a href="{{ url_for('listing', listing_id=f.listing_id) }}">{{ f.listing_id }}</a></td>
<td><a href="{{ url_for('office', office_id=f.office_id) }}">{{ f.office_id }}</a></td>
<td>{{ f.title }}</td><td>{{ time(f.at) }}</td>
<td class="wide">{{ f.error|domain }}</td><td class="wide">{{ contacts(f.contacts) }}</td></tr>
{% endfor %}
</table>
{{ pager(home.failures_page, home.failures_more, "failures_page") }}
{% else %}<p id="no-failures">{{ _("No failures in the last 24 hours.") }}</p>{% endif %}
<h2 id="waiting-heading">{{ _("Waiting on a marketplace") }}</h2>
{% if home.waiting %}
<table id="waiting" class="stack" aria-labelledby="waiting-heading">
<tr><th scope="col">{{ _("Object") }}</th><th scope="col">{{ _("Marketplace") }}</th>
<th scope="col">{{ _("Since") }}</th><th scope="col">{{ _("Note") }}</th></tr>
{% for w in home.waiting %}
<tr class="waiting" data-object="{{ w.listing_id }}" data-marketplace="{{ w.marketplace }}">
<td><a href="{{ url_for('listing', listing_id=w.listing_id) }}">{{ w.listing_id }}</a></td>
<td>{{ w.title }}</td><td>{{ time(w.at) }}</td><td class="wide">{{ w.note|domain }}</td></tr>
{% endfor %}
</table>
{{ pager(home.waiting_page, home.waiting_more, "waiting_page") }}
{% else %}<p id="no-waiting">{{ _("Nothing is waiting on a marketplace.") }}</p>{% endif %}
<h2 id="plot-heading">{{ _("Transfers and failures per hour, last 7 days") }}</h2>
{{ home.plot }}
{% endblock %}
"""

OFFICE_OPS = """{% from "time.html" import time %}
<h2 id="holds-heading">{{ _("Deletions waiting for confirmation") }}</h2>
{% if ops.holds %}
{% for h in ops.holds %}
<section class="hold" data-hold="{{ h.hold_id }}">
<p><strong>{{ _("Deletion waiting for confirmation") }}</strong>:
{{ h.deletes }} {{ _("deletes held") }} · {{ time(h.created_at) }}</p>
<p class="wide">{{ _("Cause") }}: {{ h.cause }}</p>
<table class="stack">
<tr><th scope="col">{{ _("Marketplace") }}</th><th scope="col">{{ _("Deletes held") }}</th>
<th scope="col">{{ _("Published there") }}</th></tr>
{% for m, c in h.counts|dictsort %}<tr><td>{{ m }}</td><td>{{ c.removing }}</td>
<td>{{ c.published }}</td></tr>{% endfor %}
</table>
<form method="post" action="{{ url_for('hold_decide', office_id=ops.office_id,
  hold_id=h.hold_id) }}">
<input type="hidden" name="csrf_token" value="{{ csrf_token }}">
<button name="decision" value="confirm" class="hold-confirm">{{ _("Confirm the deletes")
  }}</button>
<button name="decision" value="cancel" class="hold-cancel">{{ _("Cancel the deletes")
  }}</button></form>
</section>
{% endfor %}
{% else %}<p id="no-holds">{{ _("No deletion is waiting for confirmation.") }}</p>{% endif %}
<h2 id="reconcile-heading">{{ _("Latest reconciliation") }}</h2>
{% if ops.reconcile %}
<p>{{ time(ops.reconcile.at) }} · {{ ops.reconcile.run_id }}</p>
<table id="reconcile" class="stack">
<tr><th scope="col">{{ _("Marketplace") }}</th><th scope="col">{{ _("Held there") }}</th>
<th scope="col">{{ _("Differences") }}</th><th scope="col">{{ _("Repaired") }}</th>
<th scope="col">{{ _("Error / note") }}</th></tr>
{% for r in ops.reconcile.results %}
<tr class="reconcile-row" data-marketplace="{{ r.marketplace }}">
<td>{{ r.marketplace }}</td><td>{{ r.held_there if r.held_there is not none else '–' }}</td>
<td>{{ r.differences|length }}</td><td>{{ r.repaired }}</td>
<td class="wide">{{ r.error or '' }}</td></tr>
{% for d in r.differences %}
<tr class="difference" data-object="{{ d.listing_id }}"><td></td>
<td><a href="{{ url_for('listing', listing_id=d.listing_id) }}">{{ d.listing_id }}</a></td>
<td>{{ d.kind }}</td><td>{{ _("yes") if d.repaired else _("no, left for a person") }}</td>
<td class="wide">{{ d.detail }}</td></tr>
{% endfor %}
{% endfor %}
</table>
{% else %}<p id="no-reconcile">{{ _("No reconciliation recorded yet.") }}</p>{% endif %}
"""
"""The office page's section on held mass deletions (R15) and the newest reconciliation
(R13); its values and its buttons' route are :mod:`syndication.web.office_ops`."""

PAGES: dict[str, str] = {
    "time.html": TIME,
    "status_table.html": STATUS_TABLE,
    "search.html": SEARCH,
    "listing.html": LISTING,
    "office.html": OFFICE,
    "home.html": HOME,
    "office_ops.html": OFFICE_OPS,
}
