"""``POST /transfers`` and ``GET /transfers/{request_id}``: start a transfer, follow it.

The twin of ``syndication transfer --object ID | --office ID [--marketplace
NAME]``: the same request (:func:`~syndication.transfer.request_transfer`),
queued on the service's broker (:mod:`syndication.api.queue`), answered 202
at once with the request's id and where to follow it. With ``marketplace``
only that marketplace's pairs are transferred (a name outside the registry is
422). Tenancy (R14): a listing or office the principal cannot read is 404 with
the body of an unknown one; one it can read but not write (support) is 403.
``Idempotency-Key`` makes a repeat safe (:mod:`syndication.api.idempotency`).

Progress is :func:`~syndication.transfer.request_outcome`, what ``transfer
--wait`` prints: pairs (listing, marketplace) per state, how many are done,
and each failure. A request is readable by whoever may read its scope: the
listing or office it named; a request for everything (made by the CLI's
``--all``) by support and admin alone.
"""

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from syndication.access import ADMIN, SUPPORT, Principal, UserPrincipal
from syndication.api import idempotency
from syndication.api.auth import PrincipalDependency, principal_ref
from syndication.api.errors import ApiError, ApiRoute, not_found, responses
from syndication.api.models import FailureOut, TransferAccepted, TransferBody, TransferProgress
from syndication.api.queue import QueueUnavailable, TransferQueue
from syndication.errors import InputError
from syndication.rules.tenancy import can_write
from syndication.scope import may_read_listing, may_read_office, office_ref
from syndication.service import ServiceContext
from syndication.store.db import session_scope
from syndication.store.models import ListingRow, OfficeRow, TransferRequestRow
from syndication.transfer import Scope, request_outcome

MAX_ID = 64


def usable_id(value: str) -> bool:
    """Whether ``value`` can name a stored row at all (anything else is simply unknown)."""
    return 0 < len(value) <= MAX_ID and "\x00" not in value


def _scope_of(body: TransferBody) -> Scope:
    if (body.object_id is None) == (body.office_id is None):
        raise ApiError(422, "give exactly one of object_id and office_id",
                       record="request body", field="object_id")
    if body.object_id is not None:
        return Scope("object", body.object_id, body.marketplace)
    return Scope("office", body.office_id, body.marketplace)


def check_writable(context: ServiceContext, who: Principal, scope: Scope) -> None:
    """404 for what ``who`` cannot read (as for the unknown), 403 for what it reads but may
    not transfer."""
    assert scope.value is not None
    with session_scope(context.engine) as session:
        if scope.kind == "object":
            if not may_read_listing(session, who, scope.value):
                raise not_found("listing", scope.value)
            listing = session.get(ListingRow, scope.value)
            office = session.get(OfficeRow, listing.office_id) if listing else None
        else:
            if not may_read_office(session, who, scope.value):
                raise not_found("office", scope.value)
            office = session.get(OfficeRow, scope.value)
        if office is None or not can_write(who, office_ref(office)):
            raise ApiError(403, "may read this and not transfer it (support reads every office "
                           "and changes none)")


def may_read_request(context: ServiceContext, who: Principal, scope: str) -> bool:
    """Whether ``who`` may follow a request of ``scope`` (``object:ID``, ``office:ID``,
    ``all``, each perhaps on one marketplace; any other, such as a reconciliation's, is
    support's and admin's)."""
    try:
        parsed: Scope | None = Scope.parse(scope)
    except (ValueError, KeyError):
        parsed = None
    if parsed is not None and parsed.value is not None:
        with session_scope(context.engine) as session:
            if parsed.kind == "object":
                return may_read_listing(session, who, parsed.value)
            return may_read_office(session, who, parsed.value)
    return isinstance(who, UserPrincipal) and who.role in (SUPPORT, ADMIN)


def transfers_router(
    context: ServiceContext, principal: PrincipalDependency, queue: TransferQueue
) -> APIRouter:
    router = APIRouter(route_class=ApiRoute, tags=["transfers"])

    def start(who: Principal, scope: Scope, status_path: str) -> TransferAccepted:
        check_writable(context, who, scope)
        try:
            summary = queue.request(scope)
        except InputError:
            raise not_found("listing" if scope.kind == "object" else "office",
                            scope.value or "") from None
        except QueueUnavailable as exc:
            raise ApiError(503, str(exc)) from None
        return TransferAccepted(
            request_id=summary.request_id,
            status_url=status_path.replace("REQUEST_ID", summary.request_id),
            scope=str(scope), listings=summary.listings, jobs=summary.jobs,
            recorded=summary.recorded,
        )

    @router.post("/transfers", status_code=202, response_model=TransferAccepted,
                 responses=responses(400, 401, 403, 404, 409, 413, 422, 503),
                 summary="Start a transfer of one listing or one office")
    def post_transfer(
        request: Request, body: TransferBody, who: Annotated[Principal, Depends(principal)],
        idempotency_key: Annotated[str | None, Header(
            alias=idempotency.HEADER, max_length=200,
            description="a repeat with the same key gets the first answer")] = None,
    ) -> JSONResponse:
        """Queue a transfer ("marknadsplatsöverföring") and answer at once with its id."""
        scope = _scope_of(body)
        status_path = request.url_for("transfer_progress", request_id="REQUEST_ID").path
        if idempotency_key is None:
            accepted = start(who, scope, status_path)
            return JSONResponse(accepted.model_dump(), status_code=202)
        key = idempotency.check_key(idempotency_key)
        ref = principal_ref(who)
        request_text = idempotency.canonical("POST", "/transfers", body.model_dump(
            exclude={"marketplace"} if body.marketplace is None else None))
        replay = idempotency.reserve(context.engine, ref, key, request_text, context.clock())
        if replay is not None:
            return JSONResponse(replay.body, status_code=replay.status)
        try:
            accepted = start(who, scope, status_path)
        except BaseException:
            idempotency.release(context.engine, ref, key)
            raise
        idempotency.complete(context.engine, ref, key, 202, accepted.model_dump())
        return JSONResponse(accepted.model_dump(), status_code=202)

    @router.get("/transfers/{request_id}", response_model=TransferProgress,
                name="transfer_progress", responses=responses(401, 404, 422),
                summary="Follow a transfer")
    async def get_transfer(
        request_id: str, who: Annotated[Principal, Depends(principal)]
    ) -> TransferProgress:
        """Counts per state of the request's pairs, how many are done, and each failure."""
        return await run_in_threadpool(progress, who, request_id)

    def progress(who: Principal, request_id: str) -> TransferProgress:
        row = None
        if usable_id(request_id):
            with session_scope(context.engine) as session:
                row = session.get(TransferRequestRow, request_id)
        if row is None or not may_read_request(context, who, row.scope):
            raise not_found("transfer request", request_id)
        outcome = request_outcome(context.engine, request_id)
        state: Literal["running", "done", "failed"] = (
            "running" if not outcome.finished else "failed" if outcome.failed else "done")
        return TransferProgress(
            request_id=request_id, scope=row.scope, created_at=row.created_at,
            total=outcome.total, done=outcome.done, finished=outcome.finished, outcome=state,
            counts={s: n for s, n in sorted(outcome.counts.items()) if n},
            unchanged=outcome.unchanged,
            failures=[FailureOut(listing_id=f.listing_id, marketplace=f.marketplace,
                                 error=f.error) for f in outcome.failures],
        )

    return router
