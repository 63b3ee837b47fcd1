"""The support web view: log in, find a listing, see its status and history (FastAPI routes).

:class:`WebView` builds the view's routes from a
:class:`~syndication.service.ServiceContext` (the store, the error contacts,
the cookie secret, the clock), as an :class:`~fastapi.APIRouter` kept out of
the OpenAPI document; :func:`syndication.app.create_app` mounts it beside the
API. Route functions are sync, so FastAPI runs them on its bounded thread
pool; none of them ever waits while holding a database connection (a refused
login answers at once).

Security decisions:

* Every page but the login form needs a logged-in user (R9); without one a
  page redirects to the form, keeping where it was going in ``next``. Login
  is :func:`syndication.auth.authenticate`, so the web, the API and the CLI
  share one failure message and one throttle: a throttled login answers 429
  with ``Retry-After`` at once, the same page for every name. ``next`` is kept
  only when :func:`~syndication.web.checks.safe_next` finds it on this site as
  a browser would read it.
* Sessions are server-side (:mod:`syndication.web.session`): a log-out
  revokes the session's token, so a copied cookie dies with it.
* The login and logout forms carry a CSRF token bound to the session,
  compared in constant time; a login starts a fresh session (new token). A
  NUL byte in a form field is a 400 before anything reaches the store (the
  path and the query are refused by :mod:`syndication.http_guards`).
* Tenancy (R14): the principal comes from the session's token; search shows
  only listings of offices :func:`~syndication.scope.readable_offices` allows,
  and another tenant's listing or office is answered with exactly the page of
  an unknown one.
* Nothing returns a password hash: pages are built from the status documents
  and principals, which have none. Jinja escapes every value; the
  Content-Security-Policy the guards add forbids scripts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import parse_qsl, urlsplit

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from syndication.api.queue import TransferQueue
from syndication.auth import authenticate
from syndication.errors import AuthenticationFailed, LoginThrottled
from syndication.registry import title
from syndication.scope import may_read_listing, may_read_office, readable_offices
from syndication.service import ServiceContext
from syndication.status_view import STATE_NOTES, UnknownListing, listing_status, unknown_listing
from syndication.store.db import session_scope
from syndication.store.models import ListingRow
from syndication.store.repository import history
from syndication.support import (
    FILTER_STATES,
    UnknownOffice,
    address_of,
    find_listings,
    history_entry,
    office_photo_problems,
    office_status,
    unknown_office,
)
from syndication.web.acting import ActingPages
from syndication.web.actions import retryable
from syndication.web.checks import field_with_nul, safe_next
from syndication.web.final_prices import add_final_price_page
from syndication.web.i18n import DEFAULT_LOCALE, LANG_COOKIE, LOCALES, choose_locale, translations
from syndication.web.office_ops import add_hold_actions, office_ops
from syndication.web.pages import N_, STATE_LABELS
from syndication.web.session import (
    COOKIE_NAME,
    IDLE_TIMEOUT,
    MAX_AGE,
    CookieSigner,
    Sessions,
    WebSession,
)
from syndication.web.templates import environment, url_for

__all__ = ["IDLE_TIMEOUT", "MAX_AGE", "WebView", "web_link"]

OFFICE_STATES = ("failed", "queued", "sent", "published", "deleted", "")
ERROR_HEADINGS: dict[int, str] = {
    400: N_("Bad request"),
    403: N_("Not allowed"),
    413: N_("Request too large"),
    429: N_("Too many requests"),
    500: N_("Internal error"),
    503: N_("Not available right now"),
}
"""The heading of an HTTP error's page, by status (anything else: "Bad request")."""
GUARD_HEADINGS: dict[str, str] = {
    "Bad request": N_("Bad request"),
    "Request too large": N_("Request too large"),
    "Request headers too large": N_("Request headers too large"),
    "Internal error": N_("Internal error"),
}
"""The headings :mod:`syndication.http_guards` writes, as catalog messages."""
FORM_TYPE = "application/x-www-form-urlencoded"


def web_link(address: str | None) -> str | None:
    """``address`` when it may be a clickable link: an absolute http(s) address
    with a host and nothing unprintable. Anything else (``javascript:``, a bare
    path, text a marketplace put there) is shown as text only; the template
    escapes either way."""
    if not address or not address.isprintable() or address != address.strip():
        return None
    try:
        parts = urlsplit(address)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    return address


def _when(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _rows(document: Mapping[str, Any], **extra: Any) -> list[dict[str, Any]]:
    return [
        {**entry, **extra, "title": title(entry["marketplace"]),
         "note": STATE_NOTES.get(entry["state"], ""),
         "public_link": web_link(entry.get("public_url"))}
        for entry in document["marketplaces"]
    ]


async def form_fields(request: Request) -> dict[str, str]:
    """The posted form's fields (the first value of each); a NUL byte in any name or
    value is a 400 here, before the route (and so the store) sees the form."""
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != FORM_TYPE:
        return {}
    pairs = parse_qsl((await request.body()).decode("utf-8", "replace"), keep_blank_values=True)
    name = field_with_nul(pairs)
    if name is not None:
        raise HTTPException(400, f"the parameter {name[:40]!r} holds a NUL byte, "
                                 "which is never valid here")
    fields: dict[str, str] = {}
    for key, value in pairs:
        fields.setdefault(key, value)
    return fields


FormFields = Annotated[dict[str, str], Depends(form_fields)]


class WebView:
    """The support web view over one service context: its routes and its error pages.

    ``queue`` is the service's transfer queue (the API's, so one broker), which
    "Försök igen" queues on; without one the view makes its own."""

    def __init__(self, context: ServiceContext, queue: TransferQueue | None = None) -> None:
        self.context = context
        self.queue = queue if queue is not None else TransferQueue(context)
        self.templates = {locale: environment(locale) for locale in LOCALES}
        self.sessions = Sessions(context.engine, CookieSigner(context.secret_key), context.clock)
        self.acting = ActingPages(self)
        self.router = self._routes()

    def session_of(self, request: Request) -> WebSession:
        return self.sessions.open(request.cookies.get(COOKIE_NAME))

    def _finish(self, session: WebSession, response: Response) -> Response:
        if session.changed:
            response.set_cookie(
                COOKIE_NAME, self.sessions.signer.dumps(session.data()), httponly=True,
                samesite="Strict",  # type: ignore[arg-type]  # Starlette lower-cases only to check
                secure=self.context.secure_cookies, path="/",
            )
        return response

    def locale_of(self, request: Request) -> str:
        """The request's language (:func:`~syndication.web.i18n.choose_locale`)."""
        return choose_locale(request.query_params.get("lang"), request.cookies.get(LANG_COOKIE),
                             request.headers.get("accept-language"))

    def gettext(self, request: Request) -> Callable[[str], str]:
        return translations(self.locale_of(request)).gettext

    def page(self, request: Request, session: WebSession, template: str, status: int = 200,
             headers: Mapping[str, str] | None = None, **values: Any) -> Response:
        """A page in the request's language; a ``lang`` switch is remembered in a cookie."""
        values.setdefault("query", None)
        locale = self.locale_of(request)
        html = self.templates[locale].get_template(template).render(
            user=session.user, csrf_token=session.csrf, **values)
        response = self._finish(session, HTMLResponse(html, status, headers=headers))
        if request.query_params.get("lang") in LOCALES:
            response.set_cookie(LANG_COOKIE, locale, max_age=365 * 86400, httponly=True,
                                samesite="Strict",  # type: ignore[arg-type]
                                secure=self.context.secure_cookies, path="/")
        return response

    def message(self, request: Request, session: WebSession, status: int, heading: str,
                text: str) -> Response:
        return self.page(request, session, "message.html", status, title=heading, message=text)

    def redirect(self, session: WebSession, location: str) -> Response:
        return self._finish(session, RedirectResponse(location, status_code=302))

    def to_login(self, session: WebSession, request: Request) -> Response:
        """Anonymous: back to the login form, remembering the page asked for."""
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return self.redirect(session, url_for("login", next=target))

    def error_page(self, status: int, heading: str, text: str) -> str:
        """A refusal page for the guards, which answer before any session (or language) is
        read: in Swedish, the heading through the catalog; the guards' HTTP-level reasons
        as they wrote them."""
        heading = translations(DEFAULT_LOCALE).gettext(GUARD_HEADINGS.get(heading, heading))
        return self.templates[DEFAULT_LOCALE].get_template("message.html").render(
            user=None, csrf_token="", query=None, title=heading, message=text)

    def http_error(self, request: Request, status: int, detail: str | None) -> Response:
        """The page of an HTTP error raised in the view: an address that has no page (or
        not for this method) sends an anonymous visitor to the login form and shows
        a logged-in user "not found"; a server error says only that it is logged; any
        other error is a page with its detail under its status's heading."""
        session = self.session_of(request)
        _ = self.gettext(request)
        if status in (404, 405):
            if session.principal is None:
                return self.to_login(session, request)
            if status == 404:
                return self.message(request, session, 404, _("Not found"),
                                    _("there is no page at this address"))
            return self.message(request, session, 405, _("Method not allowed"),
                                _("this page cannot be used that way"))
        heading = _(ERROR_HEADINGS.get(status, N_("Bad request")))
        if status >= 500:
            return self.message(request, session, status, heading,
                                _("an internal error; it is logged"))
        return self.message(request, session, status, heading, detail or _("bad request"))

    def _routes(self) -> APIRouter:
        router = APIRouter(include_in_schema=False)
        router.add_api_route("/login", self.login_form, methods=["GET"])
        router.add_api_route("/login", self.login, methods=["POST"])
        router.add_api_route("/logout", self.logout, methods=["POST"])
        router.add_api_route("/", self.acting.home, methods=["GET"])
        router.add_api_route("/sok", self.search, methods=["GET"])
        router.add_api_route("/static/poll.js", self.acting.poll_script, methods=["GET"])
        router.add_api_route("/listings/{listing_id}", self.listing, methods=["GET"])
        router.add_api_route("/listings/{listing_id}/status.json", self.acting.listing_status_json,
                             methods=["GET"])
        router.add_api_route("/listings/{listing_id}/retry", self.retry_form, methods=["POST"])
        router.add_api_route("/offices/{office_id}", self.office, methods=["GET"])
        router.add_api_route("/offices/{office_id}/retry-failed", self.office_retry_form,
                             methods=["POST"])
        add_final_price_page(self, router)
        add_hold_actions(self, router)
        return router

    def retry_form(self, request: Request, listing_id: str, form: FormFields) -> Response:
        return self.acting.retry(request, listing_id, form)

    def office_retry_form(self, request: Request, office_id: str, form: FormFields) -> Response:
        return self.acting.office_retry(request, office_id, form)

    def login_form(self, request: Request) -> Response:
        session = self.session_of(request)
        return self.page(request, session, "login.html",
                         next=safe_next(request.query_params.get("next")))

    def login(self, request: Request, form: FormFields) -> Response:
        session = self.session_of(request)
        target = safe_next(request.query_params.get("next"))
        if not session.csrf_ok(form.get("csrf_token")):
            _ = self.gettext(request)
            return self.page(request, session, "login.html", 400, next=target,
                             error=_("the form expired; try again"))
        try:
            with session_scope(self.context.engine) as db:
                user = authenticate(db, form.get("username", ""), form.get("password", ""),
                                    self.context.clock, hasher=self.context.hasher)
        except LoginThrottled as exc:
            return self.page(request, session, "login.html", 429,
                             {"Retry-After": str(exc.retry_after)}, next=target, error=str(exc))
        except AuthenticationFailed as exc:
            return self.page(request, session, "login.html", 401, next=target, error=str(exc))
        self.sessions.start(session, user.id)
        return self.redirect(session, target or url_for("home"))

    def logout(self, request: Request, form: FormFields) -> Response:
        session = self.session_of(request)
        if session.principal is None:
            return self.redirect(session, url_for("login"))
        if not session.csrf_ok(form.get("csrf_token")):
            _ = self.gettext(request)
            return self.message(request, session, 400, _("Not logged out"),
                                _("the form expired; reload the page and try again"))
        self.sessions.end(session)
        return self.redirect(session, url_for("login"))

    def search(self, request: Request) -> Response:
        session = self.session_of(request)
        if session.principal is None:
            return self.to_login(session, request)
        query = request.query_params.get("q")
        results: list[dict[str, Any]] = []
        if query is not None:
            with session_scope(self.context.engine) as db:
                results = find_listings(db, query[:200],
                                        offices=readable_offices(session.principal))
        return self.page(request, session, "search.html", query=query, results=results)

    def listing(self, request: Request, listing_id: str) -> Response:
        session = self.session_of(request)
        if session.principal is None:
            return self.to_login(session, request)
        try:
            with session_scope(self.context.engine) as db:
                if not may_read_listing(db, session.principal, listing_id):
                    raise unknown_listing(listing_id)
                document = listing_status(db, listing_id, self.context.contacts)
                events = [{**history_entry(event), "actor": event.actor,
                           "title": title(event.marketplace)}
                          for event in history(db, listing_id)]
                row = db.get(ListingRow, listing_id)
                assert row is not None, "may_read_listing found it in this session"
                info = {"address": address_of(row), "office_id": row.office_id,
                        "state": row.state}
        except UnknownListing as exc:
            _ = self.gettext(request)
            return self.message(request, session, 404, _("Not found"), str(exc))
        now = self.context.clock()
        entries = [{**entry, "object_id": listing_id,
                    "retryable": retryable(entry["state"], _when(entry.get("at")), now)}
                   for entry in _rows(document)]
        return self.page(request, session, "listing.html", document=document, entries=entries,
                         events=events, listing=info,
                         notice=self._notice(request, request.query_params.get("done")))

    def _notice(self, request: Request, outcome: str | None) -> str | None:
        """The words of a press's outcome after its redirect."""
        _ = self.gettext(request)
        words = {"queued": _("Queued again; the outcome appears here when it arrives."),
                 "busy": _("A transfer of this listing is already queued; wait for it."),
                 "not_retryable": _("That marketplace's transfer is neither failed nor stale.")}
        return words.get(outcome or "")

    def office(self, request: Request, office_id: str) -> Response:
        session = self.session_of(request)
        if session.principal is None:
            return self.to_login(session, request)
        state = request.query_params.get("state", "failed") or None
        if state is not None and state not in FILTER_STATES:
            _ = self.gettext(request)
            return self.message(request, session, 400, _("Unknown state"),
                                _("unknown state; known: %(states)s")
                                % {"states": ", ".join(_(STATE_LABELS.get(known, known))
                                                       for known in FILTER_STATES)})
        try:
            with session_scope(self.context.engine) as db:
                if not may_read_office(db, session.principal, office_id):
                    raise unknown_office(office_id)
                result = office_status(db, office_id, self.context.contacts, state=state)
                problems = office_photo_problems(db, office_id)
                ops = office_ops(self.context.engine, db, office_id)
        except UnknownOffice as exc:
            _ = self.gettext(request)
            return self.message(request, session, 404, _("Not found"), str(exc))
        entries = [
            row
            for document in result["listings"]
            for row in _rows(document, object_id=document["object_id"],
                             address=document["address"])
        ]
        failed_count = sum(1 for row in entries if row["state"] == "failed")
        queued = request.query_params.get("queued")
        _ = self.gettext(request)
        notice = (_("Transfers queued: %(n)s") % {"n": queued}
                  if queued is not None and queued.isdigit() else None)
        notice = {"confirm": _("Confirmed: the held deletes are queued."),
                  "cancel": _("Cancelled: the listings are restored and nothing was sent.")
                  }.get(request.query_params.get("hold", ""), notice)
        return self.page(request, session, "office.html", result=result, entries=entries,
                         problems=problems, state=state, states=OFFICE_STATES,
                         failed_count=failed_count, notice=notice, ops=ops)
