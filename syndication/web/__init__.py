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

from collections.abc import Mapping
from typing import Annotated, Any
from urllib.parse import parse_qsl, urlsplit

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from syndication.auth import authenticate
from syndication.errors import AuthenticationFailed, LoginThrottled
from syndication.registry import title
from syndication.scope import may_read_listing, may_read_office, readable_offices
from syndication.service import ServiceContext
from syndication.status_view import STATE_NOTES, UnknownListing, listing_status, unknown_listing
from syndication.store.db import session_scope
from syndication.store.models import ListingRow
from syndication.support import (
    FILTER_STATES,
    UnknownOffice,
    address_of,
    find_listings,
    listing_history,
    office_photo_problems,
    office_status,
    unknown_office,
)
from syndication.web.checks import field_with_nul, safe_next
from syndication.web.final_prices import add_final_price_page
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
    """The support web view over one service context: its routes and its error pages."""

    def __init__(self, context: ServiceContext) -> None:
        self.context = context
        self.templates = environment()
        self.sessions = Sessions(context.engine, CookieSigner(context.secret_key), context.clock)
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

    def page(self, session: WebSession, template: str, status: int = 200,
             headers: Mapping[str, str] | None = None, **values: Any) -> Response:
        values.setdefault("query", None)
        html = self.templates.get_template(template).render(
            user=session.user, csrf_token=session.csrf, **values)
        return self._finish(session, HTMLResponse(html, status, headers=headers))

    def message(self, session: WebSession, status: int, heading: str, text: str) -> Response:
        return self.page(session, "message.html", status, title=heading, message=text)

    def redirect(self, session: WebSession, location: str) -> Response:
        return self._finish(session, RedirectResponse(location, status_code=302))

    def to_login(self, session: WebSession, request: Request) -> Response:
        """Anonymous: back to the login form, remembering the page asked for."""
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return self.redirect(session, url_for("login", next=target))

    def error_page(self, status: int, heading: str, text: str) -> str:
        """A refusal page for the guards, which answer before any session is read."""
        return self.templates.get_template("message.html").render(
            user=None, csrf_token="", query=None, title=heading, message=text)

    def http_error(self, request: Request, status: int, detail: str | None) -> Response:
        """The page of an HTTP error raised in the view: an address that has no page (or
        not for this method) sends an anonymous visitor to the login form and shows
        a logged-in user "not found"; any other error is a page with its detail."""
        session = self.session_of(request)
        if status in (404, 405):
            if session.principal is None:
                return self.to_login(session, request)
            if status == 404:
                return self.message(session, 404, "Not found", "there is no page at this address")
            return self.message(session, 405, "Method not allowed",
                                "this page cannot be used that way")
        return self.message(session, status, "Bad request", detail or "bad request")

    def _routes(self) -> APIRouter:
        router = APIRouter(include_in_schema=False)
        router.add_api_route("/login", self.login_form, methods=["GET"])
        router.add_api_route("/login", self.login, methods=["POST"])
        router.add_api_route("/logout", self.logout, methods=["POST"])
        router.add_api_route("/", self.search, methods=["GET"])
        router.add_api_route("/listings/{listing_id}", self.listing, methods=["GET"])
        router.add_api_route("/offices/{office_id}", self.office, methods=["GET"])
        add_final_price_page(self, router)
        return router

    def login_form(self, request: Request) -> Response:
        session = self.session_of(request)
        return self.page(session, "login.html", next=safe_next(request.query_params.get("next")))

    def login(self, request: Request, form: FormFields) -> Response:
        session = self.session_of(request)
        target = safe_next(request.query_params.get("next"))
        if not session.csrf_ok(form.get("csrf_token")):
            return self.page(session, "login.html", 400, next=target,
                             error="the form expired; try again")
        try:
            with session_scope(self.context.engine) as db:
                user = authenticate(db, form.get("username", ""), form.get("password", ""),
                                    self.context.clock, hasher=self.context.hasher)
        except LoginThrottled as exc:
            return self.page(session, "login.html", 429, {"Retry-After": str(exc.retry_after)},
                             next=target, error=str(exc))
        except AuthenticationFailed as exc:
            return self.page(session, "login.html", 401, next=target, error=str(exc))
        self.sessions.start(session, user.id)
        return self.redirect(session, target or url_for("search"))

    def logout(self, request: Request, form: FormFields) -> Response:
        session = self.session_of(request)
        if session.principal is None:
            return self.redirect(session, url_for("login"))
        if not session.csrf_ok(form.get("csrf_token")):
            return self.message(session, 400, "Not logged out",
                                "the form expired; reload the page and try again")
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
        return self.page(session, "search.html", query=query, results=results)

    def listing(self, request: Request, listing_id: str) -> Response:
        session = self.session_of(request)
        if session.principal is None:
            return self.to_login(session, request)
        try:
            with session_scope(self.context.engine) as db:
                if not may_read_listing(db, session.principal, listing_id):
                    raise unknown_listing(listing_id)
                document = listing_status(db, listing_id, self.context.contacts)
                events = listing_history(db, listing_id)
                row = db.get(ListingRow, listing_id)
                assert row is not None, "may_read_listing found it in this session"
                info = {"address": address_of(row), "office_id": row.office_id,
                        "state": row.state}
        except UnknownListing as exc:
            return self.message(session, 404, "Not found", str(exc))
        return self.page(session, "listing.html", document=document, entries=_rows(document),
                         events=events, listing=info)

    def office(self, request: Request, office_id: str) -> Response:
        session = self.session_of(request)
        if session.principal is None:
            return self.to_login(session, request)
        state = request.query_params.get("state", "failed") or None
        if state is not None and state not in FILTER_STATES:
            return self.message(session, 400, "Unknown state",
                                f"unknown state; known: {', '.join(FILTER_STATES)}")
        try:
            with session_scope(self.context.engine) as db:
                if not may_read_office(db, session.principal, office_id):
                    raise unknown_office(office_id)
                result = office_status(db, office_id, self.context.contacts, state=state)
                problems = office_photo_problems(db, office_id)
        except UnknownOffice as exc:
            return self.message(session, 404, "Not found", str(exc))
        entries = [
            row
            for document in result["listings"]
            for row in _rows(document, object_id=document["object_id"],
                             address=document["address"])
        ]
        return self.page(session, "office.html", result=result, entries=entries,
                         problems=problems, state=state, states=OFFICE_STATES)
