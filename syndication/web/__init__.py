"""The read-only support web view (Flask): log in, find a listing, see its status and history.

:func:`create_app` builds the app from its dependencies (the store's engine,
the marketplaces' error contacts, a secret key, a clock), so tests run it
over real HTTP with a clock they move. ``syndication serve`` runs it.

Security decisions:

* Every route but the login form needs a logged-in user (R9); pages redirect
  to the form, ``/api/…`` answers 401. Login is :func:`syndication.auth.authenticate`,
  so the web and the CLI share one failure message and one throttle.
* The session is Flask's signed cookie (HttpOnly, SameSite=Strict, Secure when
  served over HTTPS) holding only the user id, the time it was issued and the
  time it was last used. The server checks both on every request: idle for
  :data:`IDLE_TIMEOUT` or older than :data:`MAX_AGE` and it is cleared; so is
  the session of a user who was removed or changed password since it began.
* The login and logout forms carry a CSRF token bound to the session, compared
  in constant time; a login starts a fresh session (new token).
* A throttled login (:class:`~syndication.errors.LoginThrottled`) answers 429
  with ``Retry-After`` at once, the same page for every name; ``next`` is kept
  only when :func:`~syndication.web.checks.safe_next` finds it on this site as
  a browser would read it; a NUL byte in any parameter, form field or path
  part is a 400 before anything reaches the store.
* An unexpected error is logged through structlog, so the redaction of
  secrets applies to its message and traceback, and answers a plain 500.
* Nothing returns a password hash: pages and JSON are built from the status
  documents and :class:`~syndication.records.User` records, which have none.
  Jinja escapes every value; a Content-Security-Policy forbids scripts.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, Response, g, jsonify, redirect, render_template, request, session, url_for
from jinja2 import DictLoader
from sqlalchemy import Engine
from werkzeug.exceptions import HTTPException

from syndication.auth import authenticate
from syndication.errors import AuthenticationFailed, LoginThrottled
from syndication.logs import get_logger
from syndication.records import Contacts
from syndication.registry import title
from syndication.status_view import STATE_NOTES, UnknownListing, listing_status
from syndication.store.db import session_scope
from syndication.store.models import ListingRow, UserRow, utcnow
from syndication.support import (
    FILTER_STATES,
    UnknownOffice,
    address_of,
    find_listings,
    listing_history,
    office_photo_problems,
    office_status,
)
from syndication.web.checks import field_with_nul, safe_next
from syndication.web.templates import TEMPLATES

IDLE_TIMEOUT = timedelta(minutes=30)
MAX_AGE = timedelta(hours=8)
PUBLIC_ENDPOINTS = frozenset({"login"})
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


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


def create_app(
    engine: Engine,
    contacts: Mapping[str, Contacts],
    *,
    secret_key: str,
    clock: Callable[[], datetime] = utcnow,
    hasher: Any = None,
    idle_timeout: timedelta = IDLE_TIMEOUT,
    max_age: timedelta = MAX_AGE,
    secure_cookies: bool = False,
    login_engine: Engine | None = None,
) -> Flask:
    """The support web app over ``engine``; ``secret_key`` signs the session cookies.

    ``login_engine`` (default ``engine``) is where logins record their throttle
    and rehash (R9), so ``engine`` itself may be read-only.
    """
    auth_engine = login_engine or engine
    app = Flask(__name__, static_folder=None)
    app.jinja_loader = DictLoader(TEMPLATES)
    app.config.update(
        SECRET_KEY=secret_key,
        SESSION_COOKIE_NAME="syndication_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_SECURE=secure_cookies,
        PERMANENT_SESSION_LIFETIME=max_age,
        MAX_CONTENT_LENGTH=16 * 1024,
    )

    def now() -> float:
        return clock().timestamp()

    def csrf_token() -> str:
        if "csrf" not in session:
            session["csrf"] = secrets.token_urlsafe(32)
        return str(session["csrf"])

    def csrf_ok() -> bool:
        sent = request.form.get("csrf_token", "")
        expected = session.get("csrf", "")
        return bool(expected) and hmac.compare_digest(sent.encode(), str(expected).encode())

    def still_allowed(user_id: str, issued: float) -> bool:
        """The user still exists, still has a password, and has not changed it since
        this session began (a changed password ends every other session)."""
        with session_scope(engine) as db:
            row = db.get(UserRow, user_id)
            if row is None or not row.password_hash:
                return False
            changed = row.password_changed_at
            return changed is None or changed.timestamp() <= issued

    def page(template: str, status: int = 200, **context: Any) -> tuple[str, int]:
        context.setdefault("query", None)
        html = render_template(template, user=g.get("user"), csrf_token=csrf_token(), **context)
        return html, status

    @app.before_request
    def refuse_nul() -> Any:
        fields = [*request.args.items(multi=True), *(request.view_args or {}).items()]
        if request.method == "POST":
            fields += request.form.items(multi=True)
        name = field_with_nul((str(key), str(value)) for key, value in fields)
        if name is None:
            return None
        message = f"the parameter {name[:40]!r} holds a NUL byte, which is never valid here"
        if request.path.startswith("/api/"):
            return jsonify(error=message), 400
        g.user = None
        return page("message.html", 400, title="Bad request", message=message)

    @app.errorhandler(Exception)
    def server_error(exc: Exception) -> Any:
        if isinstance(exc, HTTPException):
            return exc
        get_logger().error("web_request_failed", method=request.method, path=request.path,
                           exc_info=exc)
        if request.path.startswith("/api/"):
            return jsonify(error="internal error; it is logged"), 500
        return "internal error; it is logged", 500, {"Content-Type": "text/plain; charset=utf-8"}

    @app.before_request
    def check_session() -> Any:
        g.user = None
        user, issued, seen = session.get("user"), session.get("iat"), session.get("seen")
        if user is not None:
            moment = now()
            fresh = (
                isinstance(issued, int | float)
                and isinstance(seen, int | float)
                and moment - seen <= idle_timeout.total_seconds()
                and moment - issued <= max_age.total_seconds()
            )
            if fresh and still_allowed(str(user), float(issued)):  # type: ignore[arg-type]
                g.user = user
                session["seen"] = moment
            else:
                session.clear()
        if request.endpoint in PUBLIC_ENDPOINTS or g.user is not None:
            return None
        if request.path.startswith("/api/"):
            return jsonify(error="login required"), 401
        return redirect(url_for("login", next=request.full_path.rstrip("?")))

    @app.after_request
    def harden(response: Response) -> Response:
        for header, value in SECURITY_HEADERS.items():
            response.headers.setdefault(header, value)
        return response

    @app.route("/login", methods=["GET", "POST"])
    def login() -> Any:
        target = safe_next(request.args.get("next"))
        if request.method == "GET":
            return page("login.html", next=target)
        if not csrf_ok():
            return page("login.html", 400, next=target, error="the form expired; try again")
        try:
            with session_scope(auth_engine) as db:
                user = authenticate(
                    db, request.form.get("username", ""), request.form.get("password", ""),
                    clock, hasher=hasher,
                )
        except LoginThrottled as exc:
            html, status = page("login.html", 429, next=target, error=str(exc))
            return html, status, {"Retry-After": str(exc.retry_after)}
        except AuthenticationFailed as exc:
            return page("login.html", 401, next=target, error=str(exc))
        session.clear()
        moment = now()
        session.update(user=user.id, iat=moment, seen=moment, csrf=secrets.token_urlsafe(32))
        return redirect(target or url_for("search"))

    @app.post("/logout")
    def logout() -> Any:
        if not csrf_ok():
            return page("message.html", 400, title="Not logged out",
                        message="the form expired; reload the page and try again")
        session.clear()
        return redirect(url_for("login"))

    @app.get("/")
    def search() -> Any:
        query = request.args.get("q")
        results = []
        if query is not None:
            with session_scope(engine) as db:
                results = find_listings(db, query[:200])
        return page("search.html", query=query, results=results)

    def listing_data(listing_id: str) -> tuple[dict[str, Any], list[dict[str, Any]], Any]:
        with session_scope(engine) as db:
            document = listing_status(db, listing_id, contacts)
            events = listing_history(db, listing_id)
            row = db.get(ListingRow, listing_id)
            assert row is not None, "listing_status found it in this session"
            info = {"address": address_of(row), "office_id": row.office_id, "state": row.state}
        return document, events, info

    @app.get("/listings/<listing_id>")
    def listing(listing_id: str) -> Any:
        try:
            document, events, info = listing_data(listing_id)
        except UnknownListing as exc:
            return page("message.html", 404, title="Not found", message=str(exc))
        return page("listing.html", document=document, entries=_rows(document), events=events,
                    listing=info)

    @app.get("/offices/<office_id>")
    def office(office_id: str) -> Any:
        state = request.args.get("state", "failed") or None
        if state is not None and state not in FILTER_STATES:
            return page("message.html", 400, title="Unknown state",
                        message=f"unknown state; known: {', '.join(FILTER_STATES)}")
        try:
            with session_scope(engine) as db:
                result = office_status(db, office_id, contacts, state=state)
                problems = office_photo_problems(db, office_id)
        except UnknownOffice as exc:
            return page("message.html", 404, title="Not found", message=str(exc))
        entries = [
            row
            for document in result["listings"]
            for row in _rows(document, object_id=document["object_id"],
                             address=document["address"])
        ]
        return page("office.html", result=result, entries=entries, problems=problems, state=state,
                    states=("failed", "queued", "sent", "published", "deleted", ""))

    @app.get("/api/listings/<listing_id>")
    def api_listing(listing_id: str) -> Any:
        try:
            document, events, _ = listing_data(listing_id)
        except UnknownListing as exc:
            return jsonify(error=str(exc)), 404
        return jsonify({**document, "history": events})

    @app.get("/api/offices/<office_id>")
    def api_office(office_id: str) -> Any:
        state = request.args.get("state") or None
        if state is not None and state not in FILTER_STATES:
            return jsonify(error=f"unknown state; known: {', '.join(FILTER_STATES)}"), 400
        try:
            with session_scope(engine) as db:
                return jsonify({**office_status(db, office_id, contacts, state=state),
                                "photo_problems": office_photo_problems(db, office_id)})
        except UnknownOffice as exc:
            return jsonify(error=str(exc)), 404

    @app.get("/api/me")
    def api_me() -> Any:
        return jsonify(user=g.user)

    return app
