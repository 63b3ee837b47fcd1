"""What the desktop's "Överföringsstatus" tab shows, and what a transfer would send.

* ``GET /listings/{id}/status[?history=true]`` — the twin of ``syndication status
  OBJECT_ID --json [--history]``: DESIGN §4's JSON
  (:func:`~syndication.status_view.listing_status`);
* ``GET /offices/{id}/status[?state=S&marketplace=M]`` — the twin of ``status
  --office``: every listing of the office, then its photo problems;
* ``GET /listings/{id}/preview/{marketplace}`` — the twin of ``syndication preview``:
  the document (``application/xml``) the next transfer would send, or, when it
  would send nothing, the reason as JSON (the CLI's exit status 3).

All are scoped by :func:`syndication.scope.readable_offices` (R14): a listing or
office the principal may not read is answered 404 with the body of an unknown one.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from syndication.access import Principal
from syndication.api.auth import PrincipalDependency
from syndication.api.errors import ApiRoute, invalid, not_found, responses
from syndication.api.models import ListingStatus, Marketplace, NothingToSend, OfficeStatus, State
from syndication.api.transfers import usable_id
from syndication.errors import InputError
from syndication.preview import preview
from syndication.scope import may_read_listing, may_read_office
from syndication.service import ServiceContext
from syndication.status_view import UnknownListing, listing_status
from syndication.store.db import session_scope
from syndication.support import (
    UnknownOffice,
    listing_history,
    office_photo_problems,
    office_status,
)

XML_RESPONSE: dict[int | str, dict[str, Any]] = {200: {
    "description": "The document the next transfer would send, or why nothing would be sent.",
    "model": NothingToSend,
    "content": {"application/xml": {"schema": {"type": "string"}}},
}}


def status_router(context: ServiceContext, principal: PrincipalDependency) -> APIRouter:
    router = APIRouter(route_class=ApiRoute, tags=["status"])
    engine = context.engine

    def readable_listing(who: Principal, listing_id: str) -> None:
        with session_scope(engine) as session:
            if not usable_id(listing_id) or not may_read_listing(session, who, listing_id):
                raise not_found("listing", listing_id)

    def one_listing(who: Principal, listing_id: str, history: bool) -> dict[str, Any]:
        with session_scope(engine) as session:
            if not usable_id(listing_id) or not may_read_listing(session, who, listing_id):
                raise not_found("listing", listing_id)
            try:
                result = listing_status(session, listing_id, context.contacts)
            except UnknownListing:
                raise not_found("listing", listing_id) from None
            if history:
                result["history"] = listing_history(session, listing_id)
        return result

    @router.get("/listings/{listing_id}/status", response_model=ListingStatus,
                response_model_exclude_unset=True, responses=responses(401, 404, 422),
                summary="A listing's transfer status per marketplace")
    async def get_listing_status(
        listing_id: str, who: Annotated[Principal, Depends(principal)],
        history: Annotated[bool, Query(description="add every recorded event")] = False,
    ) -> ListingStatus:
        """DESIGN §4's status of the listing; with ``history=true`` every recorded event."""
        result = await run_in_threadpool(one_listing, who, listing_id, history)
        return ListingStatus.model_validate(result)

    def one_office(who: Principal, office_id: str, state: str | None,
                   marketplace: str | None) -> dict[str, Any]:
        with session_scope(engine) as session:
            if not usable_id(office_id) or not may_read_office(session, who, office_id):
                raise not_found("office", office_id)
            try:
                result = office_status(session, office_id, context.contacts, state=state,
                                       marketplace=marketplace)
            except UnknownOffice:
                raise not_found("office", office_id) from None
            result["photo_problems"] = office_photo_problems(session, office_id)
        return result

    @router.get("/offices/{office_id}/status", response_model=OfficeStatus,
                responses=responses(401, 404, 422),
                summary="Every listing of an office, filtered by state or marketplace")
    async def get_office_status(
        office_id: str, who: Annotated[Principal, Depends(principal)],
        state: Annotated[State | None, Query(description="only entries in this state")] = None,
        marketplace: Annotated[Marketplace | None, Query(
            description="only entries of this marketplace")] = None,
    ) -> OfficeStatus:
        """The office's listings with their state on each marketplace, then its photo
        problems (R11), whatever the filters."""
        result = await run_in_threadpool(one_office, who, office_id, state, marketplace)
        return OfficeStatus.model_validate(result)

    def one_preview(who: Principal, listing_id: str, marketplace: str) -> Response:
        readable_listing(who, listing_id)
        try:
            result = preview(engine, listing_id, marketplace)
        except InputError as exc:
            if exc.record == f"listing {listing_id!r}":
                raise not_found("listing", listing_id) from None
            raise invalid(exc) from None
        if result.document is None:
            body = NothingToSend(object_id=listing_id, marketplace=marketplace, action="none",
                                 reason=result.reason)
            return JSONResponse(body.model_dump())
        return Response(result.document, media_type="application/xml",
                        headers={"X-Syndication-Action": result.action})

    @router.get("/listings/{listing_id}/preview/{marketplace}", response_class=Response,
                responses={**XML_RESPONSE, **responses(401, 404, 422)},
                summary="The document the next transfer would send to a marketplace")
    async def get_preview(
        listing_id: str, marketplace: Marketplace, who: Annotated[Principal, Depends(principal)]
    ) -> Response:
        """The validated document (``application/xml``; ``X-Syndication-Action`` says
        create, update or delete), or as JSON the reason nothing would be sent."""
        return await run_in_threadpool(one_preview, who, listing_id, marketplace)

    return router
