"""The view's pages that answer and act: the home page, "Försök igen", the polling route.

A part of :class:`~syndication.web.WebView` (it uses the view's session,
page and message helpers), kept apart so each module stays small. The
decisions are in :mod:`syndication.web.actions` and :mod:`syndication.web.home`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from syndication.api.queue import QueueUnavailable
from syndication.errors import InputError
from syndication.logs import get_logger
from syndication.scope import may_read_listing, may_read_office
from syndication.status_view import STATE_NOTES, listing_status
from syndication.store.db import session_scope
from syndication.transfer import Scope
from syndication.web import actions, home
from syndication.web.i18n import translations
from syndication.web.pages import STATE_LABELS
from syndication.web.templates import url_for
from syndication.web.words import domain_text

if TYPE_CHECKING:
    from syndication.web import WebView


def _page_number(request: Request, name: str) -> int:
    text = request.query_params.get(name, "1")
    return max(1, min(int(text), 10_000)) if text.isdigit() else 1


class ActingPages:
    """Routes of the home page, the retry buttons and the status JSON, over ``view``'s
    session, page and message helpers."""

    def __init__(self, view: WebView) -> None:
        self.view = view

    def home(self, request: Request) -> Response:
        """``/``: the search when a query is given, else what is wrong right now."""
        if "q" in request.query_params:
            return self.view.search(request)
        session = self.view.session_of(request)
        if session.principal is None:
            return self.view.to_login(session, request)
        _ = self.view.gettext(request)
        now = self.view.context.clock()
        failures_page = _page_number(request, "failures_page")
        waiting_page = _page_number(request, "waiting_page")
        with session_scope(self.view.context.engine) as db:
            who = session.principal
            counts = home.state_counts(db, who)
            failures, failures_more = home.recent_failures(db, who, now, self.view.context.contacts,
                                                           failures_page)
            waiting, waiting_more = home.waiting_pairs(db, who, waiting_page)
            hours = home.hourly_activity(db, who, now)
        states = sorted({state for m in counts for state in m["by_state"]},
                        key=lambda s: list(STATE_LABELS).index(s) if s in STATE_LABELS else 99)
        plot = home.activity_svg(hours, {
            "name": _("Transfers and failures per hour, last 7 days"),
            "transfers": _("Transfers"), "failures": _("Failures")})
        return self.view.page(request, session, "home.html", home={
            "counts": counts, "states": states, "failures": failures,
            "failures_page": failures_page, "failures_more": failures_more,
            "waiting": waiting, "waiting_page": waiting_page, "waiting_more": waiting_more,
            "plot": plot})

    def retry(self, request: Request, listing_id: str, form: dict[str, str]) -> Response:
        """``POST /listings/{id}/retry``: "Försök igen" for one pair (see
        :mod:`syndication.web.actions` for who may and when)."""
        session = self.view.session_of(request)
        if session.principal is None:
            return self.view.to_login(session, request)
        _ = self.view.gettext(request)
        if not session.csrf_ok(form.get("csrf_token")):
            return self.view.message(request, session, 400, _("Not queued"),
                                _("the form expired; reload the page and try again"))
        marketplace = form.get("marketplace", "")
        now = self.view.context.clock()
        with session_scope(self.view.context.engine) as db:
            if not may_read_listing(db, session.principal, listing_id):
                return self.view.message(request, session, 404, _("Not found"),
                                    str(_listing_unknown(listing_id)))
            if not actions.may_write_listing(db, session.principal, listing_id):
                return self.view.message(request, session, 403, _("Not allowed"), _(
                    "you may read this listing but not transfer it (support reads every "
                    "office and changes none)"))
            if actions.busy(db, listing_id, now):
                return self._back(request, session, listing_id, "busy")
            if not actions.pair_retryable(db, listing_id, marketplace, now):
                return self._back(request, session, listing_id, "not_retryable")
        queued = self._queue(request, session, listing_id, marketplace, now)
        if queued is not None:
            return queued
        return self._back(request, session, listing_id, "queued")

    def _queue(self, request: Request, session: Any, listing_id: str, marketplace: str,
               now: Any) -> Response | None:
        """Queue the listing's transfer to ``marketplace`` alone and record the press; a
        refusal page or ``None``. The press is recorded with the request, before its job
        is queued, so the history never shows it after the outcome of the job it asked
        for."""
        _ = self.view.gettext(request)

        def pressed(db: Any, request_id: str) -> None:
            actions.record_retry(db, listing_id, marketplace, str(session.user), request_id,
                                 now)

        try:
            summary = self.view.queue.request(Scope("object", listing_id, marketplace),
                                              noted=pressed)
        except QueueUnavailable as exc:
            return self.view.message(request, session, 503, _("Not queued"), str(exc))
        except InputError as exc:
            return self.view.message(request, session, 404, _("Not found"), str(exc))
        get_logger(component="web").info("web.retry_queued", listing_id=listing_id,
                                         marketplace=marketplace, user=session.user,
                                         request_id=summary.request_id)
        return None

    def _back(self, request: Request, session: Any, listing_id: str, outcome: str) -> Response:
        return self.view.redirect(session, url_for("listing", listing_id=listing_id, done=outcome))

    def office_retry(self, request: Request, office_id: str, form: dict[str, str]) -> Response:
        """``POST /offices/{id}/retry-failed``: "Överför alla misslyckade", one transfer per
        failed pair, to that pair's marketplace only (the listing's other marketplaces are
        left as they are, and so are listings already queued)."""
        session = self.view.session_of(request)
        if session.principal is None:
            return self.view.to_login(session, request)
        _ = self.view.gettext(request)
        if not session.csrf_ok(form.get("csrf_token")):
            return self.view.message(request, session, 400, _("Not queued"),
                                _("the form expired; reload the page and try again"))
        now = self.view.context.clock()
        with session_scope(self.view.context.engine) as db:
            if not may_read_office(db, session.principal, office_id):
                return self.view.message(request, session, 404, _("Not found"),
                                    _("no office %(id)s") % {"id": office_id})
            pairs = actions.office_failures(db, office_id)
            listings = sorted({listing_id for listing_id, _m in pairs})
            if listings and not actions.may_write_listing(db, session.principal, listings[0]):
                return self.view.message(request, session, 403, _("Not allowed"), _(
                    "you may read this office but not transfer it (support reads every "
                    "office and changes none)"))
            free = {listing_id for listing_id in listings if not actions.busy(db, listing_id, now)}
        chosen = [(listing_id, marketplace) for listing_id, marketplace in pairs
                  if listing_id in free]
        for listing_id, marketplace in chosen:
            refused = self._queue(request, session, listing_id, marketplace, now)
            if refused is not None:
                return refused
        return self.view.redirect(session, url_for("office", office_id=office_id,
                                                   queued=str(len(chosen))))

    def listing_status_json(self, request: Request, listing_id: str) -> Response:
        """``GET /listings/{id}/status.json``: the pairs' states, for the polling script."""
        session = self.view.session_of(request)
        if session.principal is None:
            return JSONResponse({"message": "log in first"}, 401)
        locale = self.view.locale_of(request)
        gettext = translations(locale).gettext
        with session_scope(self.view.context.engine) as db:
            if not may_read_listing(db, session.principal, listing_id):
                return JSONResponse({"message": str(_listing_unknown(listing_id))}, 404)
            document = listing_status(db, listing_id, self.view.context.contacts)
        pairs = [{"marketplace": entry["marketplace"], "state": entry["state"],
                  "label": gettext(STATE_LABELS.get(entry["state"], entry["state"])),
                  "error": domain_text(entry.get("error"), gettext) or None,
                  "note": _translated(gettext, STATE_NOTES.get(entry["state"], ""))}
                 for entry in document["marketplaces"]]
        return JSONResponse({"object_id": listing_id, "marketplaces": pairs})

    def poll_script(self) -> Response:
        return Response(actions.POLL_SCRIPT, media_type="text/javascript")


def _translated(gettext: Any, text: str) -> str:
    return str(gettext(text)) if text else ""


def _listing_unknown(listing_id: str) -> Exception:
    from syndication.status_view import unknown_listing

    return unknown_listing(listing_id)
