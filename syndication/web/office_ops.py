"""The office page's operations section: held mass deletions (R15) and the newest
reconciliation (R13), and the confirm and cancel buttons of a hold.

The section is a template of its own (``office_ops.html`` in
:mod:`syndication.web.pages`, included by the office page) over :func:`office_ops`.
The buttons post a CSRF-protected form, like
"Försök igen" (:mod:`syndication.web.actions`); only an admin may press them
(an office's API key decides through the API) — anyone else who reads the
office sees the hold and gets 403 for the button; an office the user cannot
read, or a hold that is not the office's, is answered as an unknown one (404).
A confirm queues one transfer per listing of the hold on the view's queue.
"""

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlmodel import Session

from syndication import holds
from syndication.access import ADMIN, Principal, UserPrincipal
from syndication.api.queue import QueueUnavailable
from syndication.logs import get_logger
from syndication.reconcile_runs import latest_report
from syndication.scope import may_read_office
from syndication.store.db import session_scope
from syndication.transfer import Scope

if TYPE_CHECKING:
    from syndication.web import WebView


PATH = "/offices/{office_id}/holds/{hold_id}"


def office_ops(engine: Any, session: Session, office_id: str) -> dict[str, Any]:
    """The section's values: the office's waiting holds and its newest reconciliation."""
    waiting = [holds.describe(row) for row in holds.list_holds(session, [office_id])]
    return {"office_id": office_id, "holds": waiting,
            "reconcile": latest_report(engine, office_id)}


def may_decide(principal: Principal) -> bool:
    """In the view only an admin decides a hold (an office's key decides through the API)."""
    return isinstance(principal, UserPrincipal) and principal.role == ADMIN


def add_hold_actions(view: "WebView", router: APIRouter) -> None:
    """Register ``POST /offices/{office_id}/holds/{hold_id}`` (``decision`` confirm or
    cancel) on ``router``."""
    from syndication.web import FormFields

    def decide(request: Request, office_id: str, hold_id: str, form: FormFields) -> Response:
        session = view.session_of(request)
        if session.principal is None:
            return view.to_login(session, request)
        _ = view.gettext(request)
        if not session.csrf_ok(form.get("csrf_token")):
            return view.message(request, session, 400, _("Not changed"),
                                _("the form expired; reload the page and try again"))
        unknown = view.message(request, session, 404, _("Not found"),
                               _("no hold %(id)s") % {"id": hold_id[:40]})
        with session_scope(view.context.engine) as db:
            readable = may_read_office(db, session.principal, office_id)
        if not readable or holds.office_of_hold(view.context.engine, hold_id) != office_id:
            return unknown
        if not may_decide(session.principal):
            return view.message(request, session, 403, _("Not allowed"), _(
                "only an admin confirms or cancels a held deletion here (the office's API "
                "key may through the API)"))
        decision = form.get("decision")
        actor = f"user:{session.user}"
        try:
            if decision == "confirm":
                listing_ids = holds.confirm(view.context.engine, hold_id, actor)
                for listing_id in listing_ids:
                    view.queue.request(Scope("object", listing_id))
            elif decision == "cancel":
                holds.cancel(view.context.engine, hold_id, actor)
            else:
                return view.message(request, session, 400, _("Not changed"),
                                    _("choose confirm or cancel"))
        except holds.HoldDecided as exc:
            return view.message(request, session, 409, _("Not changed"), str(exc))
        except QueueUnavailable as exc:
            return view.message(request, session, 503, _("Not queued"), str(exc))
        get_logger(component="web").warning("web.hold_decided", hold_id=hold_id,
                                            decision=decision, user=session.user)
        from syndication.web.templates import url_for

        return view.redirect(session, url_for("office", office_id=office_id, state="",
                                              hold=decision))

    router.add_api_route(PATH, decide, methods=["POST"])
