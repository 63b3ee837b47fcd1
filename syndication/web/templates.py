"""The web view's Jinja templates, kept as data in the package (no template files to install).

One base layout (``base.html``: header, language switch, ``main`` and
``scripts`` blocks) that every page extends, so a new section is one more
template. Every word is a gettext message (``{% trans %}`` or ``_()``,
:mod:`syndication.web.i18n`); :func:`environment` loads the templates with
autoescaping on for every template, so nothing a listing, an error message
or a search text contains is ever rendered as markup, and gives them
:func:`url_for`, the one place the view's addresses are written. The
``domain`` filter shows the domain's own texts (errors, notes, advice) in the
page's language (:mod:`syndication.web.words`).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

from jinja2 import DictLoader, Environment

from syndication.web.i18n import DEFAULT_LOCALE, local_time, translations, utc_iso
from syndication.web.pages import ACTION_LABELS, LISTING_STATE_LABELS, PAGES, STATE_LABELS
from syndication.web.words import domain_text

BASE = """<!doctype html>
<html lang="{{ locale }}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{% block title %}{{ _("Transfer status") }}{% endblock %} · syndication</title>
<style>
body { font-family: system-ui, sans-serif; margin: 1rem; color: #222; max-width: 1260px; }
table { border-collapse: collapse; margin: .5rem 0 1rem; width: 100%; table-layout: auto; }
th, td { border: 1px solid #bbb; padding: .25rem .5rem; text-align: left; vertical-align: top;
  overflow-wrap: anywhere; }
th { background: #eee; }
.failed { color: #900; font-weight: bold; }
.published { color: #050; }
.note { color: #444; }
header { display: flex; flex-wrap: wrap; gap: .5rem 1rem; align-items: center;
  border-bottom: 1px solid #ccc; padding-bottom: .5rem; }
header .end { margin-left: auto; display: flex; gap: .5rem; align-items: center; }
.error { color: #900; }
.wide { overflow-wrap: anywhere; max-width: 28rem; }
nav.pages { margin: .5rem 0; }
@media (max-width: 600px) {
  table.stack, table.stack tbody, table.stack tr, table.stack td { display: block; width: auto; }
  table.stack tr:first-child { display: none; }
  table.stack tr { border-bottom: 2px solid #999; margin-bottom: .5rem; }
  table.stack td { border: none; }
}
</style>
</head>
<body>
<header>
<a href="{{ url_for('home') }}"><strong>{{ _("Transfer status") }}</strong></a>
{% if user %}
<form method="get" action="{{ url_for('search') }}" role="search">
<label for="q">{{ _("Find a listing") }}</label>
<input id="q" name="q" placeholder="{{ _('id, system id or address') }}"
  value="{{ query or '' }}">
<button>{{ _("Search") }}</button>
</form>
{% endif %}
<div class="end">
<nav aria-label="{{ _('Language') }}">
{% if locale == "sv" %}<a id="lang-en" href="?lang=en" lang="en" hreflang="en">English</a>
{% else %}<a id="lang-sv" href="?lang=sv" lang="sv" hreflang="sv">Svenska</a>{% endif %}
</nav>
{% if user %}
<span id="who">{{ user }}</span>
<form method="post" action="{{ url_for('logout') }}">
<input type="hidden" name="csrf_token" value="{{ csrf_token }}">
<button>{{ _("Log out") }}</button>
</form>
{% endif %}
</div>
</header>
<main>{% block main %}{% endblock %}</main>
{% block scripts %}{% endblock %}
</body>
</html>
"""

LOGIN = """{% extends "base.html" %}
{% block title %}{{ _("Log in") }}{% endblock %}
{% block main %}
<h1>{{ _("Log in") }}</h1>
{% if error %}<p class="error" id="error">{{ error|domain }}</p>{% endif %}
<form method="post" action="{{ url_for('login', next=next) }}" id="login">
<input type="hidden" name="csrf_token" value="{{ csrf_token }}">
<p><label>{{ _("User") }} <input name="username" id="username" autocomplete="username">
</label></p>
<p><label>{{ _("Password") }} <input name="password" id="password" type="password"
  autocomplete="current-password"></label></p>
<p><button type="submit" id="submit">{{ _("Log in") }}</button></p>
</form>
{% endblock %}
"""

MESSAGE = """{% extends "base.html" %}
{% block title %}{{ title }}{% endblock %}
{% block main %}<h1>{{ title }}</h1><p class="error">{{ message|domain }}</p>{% endblock %}
"""

TEMPLATES: dict[str, str] = {
    "base.html": BASE,
    "login.html": LOGIN,
    "message.html": MESSAGE,
    **PAGES,
}

ROUTES: dict[str, str] = {
    "login": "/login",
    "logout": "/logout",
    "home": "/",
    "search": "/sok",
    "listing": "/listings/{listing_id}",
    "listing_status": "/listings/{listing_id}/status.json",
    "retry": "/listings/{listing_id}/retry",
    "office": "/offices/{office_id}",
    "office_retry": "/offices/{office_id}/retry-failed",
    "final_prices": "/offices/{office_id}/slutpriser",
    "hold_decide": "/offices/{office_id}/holds/{hold_id}",
    "poll_script": "/static/poll.js",
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


def environment(locale: str = DEFAULT_LOCALE) -> Environment:
    """The templates' Jinja environment in ``locale``: autoescape on for every template,
    that language's catalog installed (new-style gettext, so translated text is escaped
    and formatted like any value), its time and state filters."""
    env = Environment(loader=DictLoader(TEMPLATES), autoescape=True,
                      extensions=["jinja2.ext.i18n"])
    env.policies["ext.i18n.trimmed"] = True
    env.install_gettext_translations(translations(locale), newstyle=True)  # type: ignore[attr-defined]
    env.globals.update(url_for=url_for, locale=locale)
    env.filters["local_time"] = lambda moment: local_time(moment, locale)
    env.filters["utc"] = utc_iso
    gettext = translations(locale).gettext
    env.filters["state_label"] = lambda state: gettext(STATE_LABELS.get(state) or str(state))
    env.filters["action_label"] = lambda action: (
        gettext(ACTION_LABELS.get(action) or str(action)) if action else "–")
    env.filters["listing_state"] = lambda state: gettext(
        LISTING_STATE_LABELS.get(state) or str(state))
    env.filters["domain"] = lambda text: domain_text(text, gettext)
    return env
