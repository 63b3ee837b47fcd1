"""The web view's Jinja templates, kept as data in the package (no template files to install).

:func:`environment` loads them with autoescaping on for every template, so
nothing a listing, an error message or a search text contains is ever
rendered as markup, and gives them :func:`url_for`, the one place the view's
addresses are written.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

from jinja2 import DictLoader, Environment

BASE = """<!doctype html>
<html lang="sv">
<head>
<meta charset="utf-8">
<title>{% block title %}Överföringsstatus{% endblock %} · syndication support</title>
<style>
body { font-family: system-ui, sans-serif; margin: 1.5rem; color: #222; }
table { border-collapse: collapse; margin: .5rem 0 1rem; }
th, td { border: 1px solid #ccc; padding: .25rem .6rem; text-align: left; vertical-align: top; }
th { background: #f2f2f2; }
.failed { color: #a00; font-weight: bold; }
.published { color: #060; }
.note { color: #555; }
header { display: flex; gap: 1rem; align-items: center; border-bottom: 1px solid #ddd; }
header form { margin-left: auto; }
.error { color: #a00; }
</style>
</head>
<body>
<header>
<strong>Överföringsstatus</strong>
{% if user %}
<form method="get" action="{{ url_for('search') }}">
<input name="q" placeholder="id, system id or address" value="{{ query or '' }}">
<button>Find</button>
</form>
<span id="who">{{ user }}</span>
<form method="post" action="{{ url_for('logout') }}">
<input type="hidden" name="csrf_token" value="{{ csrf_token }}">
<button>Log out</button>
</form>
{% endif %}
</header>
<main>{% block main %}{% endblock %}</main>
</body>
</html>
"""

LOGIN = """{% extends "base.html" %}
{% block title %}Log in{% endblock %}
{% block main %}
<h1>Log in</h1>
{% if error %}<p class="error" id="error">{{ error }}</p>{% endif %}
<form method="post" action="{{ url_for('login', next=next) }}" id="login">
<input type="hidden" name="csrf_token" value="{{ csrf_token }}">
<p><label>User <input name="username" id="username" autocomplete="username"></label></p>
<p><label>Password <input name="password" id="password" type="password"
  autocomplete="current-password"></label></p>
<p><button type="submit" id="submit">Log in</button></p>
</form>
{% endblock %}
"""

STATUS_TABLE = """{% macro status_table(entries, show_object=False) %}
<table>
<tr>{% if show_object %}<th>Object</th><th>Address</th>{% endif %}
<th>Marketplace</th><th>State</th><th>Marketplace id</th><th>Last action</th>
<th>At (UTC)</th><th>Attempts</th><th>Public address</th><th>Error / note</th>
<th>Contacts on failure</th></tr>
{% for row in entries %}
<tr class="status-row" data-marketplace="{{ row.marketplace }}" data-state="{{ row.state }}"
{% if show_object %} data-object="{{ row.object_id }}"{% endif %}>
{% if show_object %}
<td><a href="{{ url_for('listing', listing_id=row.object_id) }}">{{ row.object_id }}</a></td>
<td>{{ row.address }}</td>
{% endif %}
<td>{{ row.title }}</td>
<td class="{{ row.state }}">{{ row.state }}</td>
<td>{{ row.marketplace_id or '–' }}</td>
<td>{{ row.action or '–' }}</td>
<td>{{ row.at or '–' }}</td>
<td class="attempts">{{ row.attempts }}</td>
<td class="public-url">{% if row.public_link %}<a href="{{ row.public_link }}"
  rel="noopener noreferrer">{{ row.public_url }}</a>{% else %}{{ row.public_url or '–' }}
{% endif %}</td>
<td>{% if row.error %}{{ row.error }}{% else %}
<span class="note">{{ row.note }}</span>{% endif %}</td>
<td>{% if row.contacts %}
{{ row.contacts.name }}{% if row.contacts.phone %}, {{ row.contacts.phone }}{% endif %}
{% if row.contacts.email %}, <a href="mailto:{{ row.contacts.email }}">{{ row.contacts.email }}</a>
{% endif %}
{% if row.contacts.web %}, {{ row.contacts.web }}{% endif %}<br>
<em>{{ row.contacts.advice }}</em>{% endif %}</td>
</tr>
{% endfor %}
</table>
{% endmacro %}
"""

SEARCH = """{% extends "base.html" %}
{% block title %}Find a listing{% endblock %}
{% block main %}
<h1>Find a listing</h1>
{% if query is not none %}
{% if results %}
<table id="results">
<tr><th>Object</th><th>System id</th><th>Office</th><th>Address</th><th>State</th></tr>
{% for r in results %}
<tr class="result" data-object="{{ r.object_id }}">
<td><a href="{{ url_for('listing', listing_id=r.object_id) }}">{{ r.object_id }}</a></td>
<td>{{ r.system_id or '–' }}</td>
<td><a href="{{ url_for('office', office_id=r.office_id) }}">{{ r.office_id }}</a></td>
<td>{{ r.address }}</td><td>{{ r.state }}</td></tr>
{% endfor %}
</table>
{% else %}
<p id="no-results">No listing matches “{{ query }}”.</p>
{% endif %}
{% else %}
<p>Search by the listing's id, its system id or part of its address.</p>
{% endif %}
{% endblock %}
"""

LISTING = """{% extends "base.html" %}
{% from "status_table.html" import status_table %}
{% block title %}{{ document.object_id }}{% endblock %}
{% block main %}
<h1>Object <span id="object-id">{{ document.object_id }}</span></h1>
<p>{{ listing.address }} · office
<a href="{{ url_for('office', office_id=listing.office_id) }}">{{ listing.office_id }}</a>
· {{ listing.state }}</p>
{{ status_table(entries) }}
{% if document.photo_problems %}
<h2>Photo problems</h2>
<ul>{% for p in document.photo_problems %}
<li>{{ p.at }} · assignment {{ p.assignment_id }}: {{ p.message }}</li>{% endfor %}</ul>
{% endif %}
<h2>History</h2>
{% if events %}
<table id="history">
<tr><th>At (UTC)</th><th>Marketplace</th><th>State</th><th>Action</th><th>Id</th>
<th>Attempts</th><th>Error</th></tr>
{% for e in events %}
<tr class="event" data-marketplace="{{ e.marketplace }}" data-state="{{ e.state }}">
<td>{{ e.at }}</td><td>{{ e.marketplace }}</td><td>{{ e.state }}</td>
<td>{{ e.action or '–' }}</td><td>{{ e.marketplace_id or '–' }}</td><td>{{ e.attempts }}</td>
<td>{{ e.error or '' }}</td></tr>
{% endfor %}
</table>
{% else %}<p>No transfer recorded yet.</p>{% endif %}
{% endblock %}
"""

OFFICE = """{% extends "base.html" %}
{% from "status_table.html" import status_table %}
{% block title %}Office {{ result.office_id }}{% endblock %}
{% block main %}
<h1>Office {{ result.office_id }} · {{ result.office }}</h1>
<p><a href="{{ url_for('final_prices', office_id=result.office_id) }}">Slutpriser</a></p>
<p>Showing: {% for s in states %}
{% if s == state %}<strong>{{ s or 'all' }}</strong>{% else %}
<a href="{{ url_for('office', office_id=result.office_id, state=s) }}">{{ s or 'all' }}</a>
{% endif %}{% if not loop.last %} · {% endif %}{% endfor %}</p>
{% if entries %}{{ status_table(entries, show_object=True) }}
{% else %}<p id="none">Nothing {{ state or '' }} for this office.</p>{% endif %}
{% if problems %}
<h2>Photo problems</h2>
<table id="photo-problems">
<tr><th>At (UTC)</th><th>Assignment</th><th>System id</th><th>Listing</th><th>Problem</th>
<th>What to do</th></tr>
{% for p in problems %}
<tr class="photo-problem" data-assignment="{{ p.assignment_id }}">
<td>{{ p.at }}</td><td>{{ p.assignment_id }}</td>
<td>{{ p.system_id or '–' }}</td>
<td>{% if p.listing_id %}<a href="{{ url_for('listing', listing_id=p.listing_id) }}">{{
  p.listing_id }}</a>{% else %}no listing{% endif %}</td>
<td>{{ p.message }}</td><td>{{ p.advice or '' }}</td></tr>
{% endfor %}
</table>
{% endif %}
{% endblock %}
"""

MESSAGE = """{% extends "base.html" %}
{% block title %}{{ title }}{% endblock %}
{% block main %}<h1>{{ title }}</h1><p class="error">{{ message }}</p>{% endblock %}
"""

TEMPLATES: dict[str, str] = {
    "base.html": BASE,
    "login.html": LOGIN,
    "status_table.html": STATUS_TABLE,
    "search.html": SEARCH,
    "listing.html": LISTING,
    "office.html": OFFICE,
    "message.html": MESSAGE,
}

ROUTES: dict[str, str] = {
    "login": "/login",
    "logout": "/logout",
    "search": "/",
    "listing": "/listings/{listing_id}",
    "office": "/offices/{office_id}",
    "final_prices": "/offices/{office_id}/slutpriser",
}
"""The view's pages by name; :func:`url_for` builds their addresses."""


def url_for(name: str, **params: Any) -> str:
    """The address of page ``name``: path parameters quoted into the path, the others
    (unless ``None``) as the query, with ``/`` left readable."""
    pattern = ROUTES[name]
    path_keys = {key for key in params if "{" + key + "}" in pattern}
    path = pattern.format(**{key: quote(str(params[key]), safe="") for key in path_keys})
    query = {key: value for key, value in params.items()
             if key not in path_keys and value is not None}
    if not query:
        return path
    return f"{path}?{urlencode(query, quote_via=quote, safe='/')}"


def environment() -> Environment:
    """The templates' Jinja environment, autoescape on for every template."""
    env = Environment(loader=DictLoader(TEMPLATES), autoescape=True)
    env.globals["url_for"] = url_for
    return env
