"""``/holds``: the held mass deletions (R15), and confirming or cancelling one.

* ``GET /holds[?all=true]`` — the holds of the offices the principal may read
  (waiting ones; ``all``: decided ones too), the twin of ``syndication holds list``;
* ``GET /holds/{id}`` — one hold;
* ``POST /holds/{id}/confirm`` — the deletes go: one transfer per listing, queued on
  the service's queue; the answer names the requests to follow;
* ``POST /holds/{id}/cancel`` — the listings get back their state and selection from
  before, nothing is sent, the marketplaces keep their copies.

Who may decide: the office's own API key and an admin. Whoever may read the
office but not decide (an agent, support) gets 403; a hold of an office the
principal cannot read is answered 404 with exactly the body of an unknown one
(R14). A hold already decided is 422 naming its ``state``.
"""

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel
from sqlmodel import col, select
from starlette.concurrency import run_in_threadpool

from syndication import holds
from syndication.access import ADMIN, ApiKeyPrincipal, Principal, UserPrincipal
from syndication.api.auth import PrincipalDependency
from syndication.api.errors import ApiError, ApiRoute, invalid, not_found, responses
from syndication.api.queue import QueueUnavailable, TransferQueue
from syndication.api.transfers import usable_id
from syndication.scope import readable_offices
from syndication.service import ServiceContext
from syndication.store.db import session_scope
from syndication.store.guard_models import DeletionHoldRow
from syndication.transfer import Scope


class HeldPair(BaseModel):
    listing_id: str
    marketplace: str
    reason: str


class HoldOut(BaseModel):
    """A held mass deletion: its office, state, cause, counts per marketplace and pairs."""

    hold_id: str
    office_id: str
    state: str
    source: str
    cause: str
    deletes: int
    counts: dict[str, dict[str, int]]
    pairs: list[HeldPair]
    created_at: str
    decided_at: str | None = None
    decided_by: str | None = None


class HoldList(BaseModel):
    holds: list[HoldOut]


class HoldDecision(BaseModel):
    """What a confirm or cancel did: the transfers queued, or the listings restored and
    those the desktop changed since (left as they are)."""

    hold_id: str
    state: str
    request_ids: list[str] = []
    restored: list[str] = []
    left: list[str] = []


def may_decide(who: Principal, hold: DeletionHoldRow) -> bool:
    """The office's own key, or an admin."""
    if isinstance(who, ApiKeyPrincipal):
        return who.office_id == hold.office_id
    return isinstance(who, UserPrincipal) and who.role == ADMIN


def actor_of(who: Principal) -> str:
    if isinstance(who, ApiKeyPrincipal):
        return f"key:{who.key_id}"
    return f"user:{who.user_id}"


def holds_router(context: ServiceContext, principal: PrincipalDependency,
                 queue: TransferQueue) -> APIRouter:
    router = APIRouter(route_class=ApiRoute, tags=["holds"])
    engine = context.engine

    def readable(who: Principal, hold_id: str) -> DeletionHoldRow:
        with session_scope(engine) as session:
            found = None
            if usable_id(hold_id):
                found = session.exec(select(DeletionHoldRow).where(
                    col(DeletionHoldRow.id) == hold_id,
                    col(DeletionHoldRow.office_id).in_(readable_offices(who)))).first()
            if found is None:
                raise not_found("hold", hold_id)
            session.expunge(found)
            return found

    def listed(who: Principal, every: bool) -> HoldList:
        with session_scope(engine) as session:
            rows = holds.list_holds(session, readable_offices(who), every=every)
            return HoldList(holds=[HoldOut.model_validate(holds.describe(r)) for r in rows])

    @router.get("/holds", response_model=HoldList, responses=responses(401, 422),
                summary="The held mass deletions of the offices the principal reads")
    async def get_holds(who: Annotated[Principal, Depends(principal)],
                        all: Annotated[bool, Query(description="also decided holds")] = False
                        ) -> HoldList:
        """Waiting holds, newest first; with ``all=true`` the confirmed and cancelled too."""
        return await run_in_threadpool(listed, who, all)

    @router.get("/holds/{hold_id}", response_model=HoldOut, responses=responses(401, 404, 422),
                summary="One held mass deletion")
    async def get_hold(hold_id: str, who: Annotated[Principal, Depends(principal)]) -> HoldOut:
        """The hold with its cause, counts and every held pair."""
        hold = await run_in_threadpool(readable, who, hold_id)
        return HoldOut.model_validate(holds.describe(hold))

    def decide(who: Principal, hold_id: str, verb: str) -> HoldDecision:
        hold = readable(who, hold_id)
        if not may_decide(who, hold):
            raise ApiError(403, "only the office's API key or an admin confirms or cancels "
                                "a held deletion")
        offices = readable_offices(who)
        try:
            if verb == "cancel":
                done = holds.cancel(engine, hold.id, actor_of(who), offices=offices,
                                    now=context.clock())
                return HoldDecision(hold_id=hold.id, state=holds.CANCELLED,
                                    restored=done.restored, left=done.left)
            listing_ids = holds.confirm(engine, hold.id, actor_of(who), offices=offices,
                                        now=context.clock())
        except holds.UnknownHold:
            raise not_found("hold", hold_id) from None
        except holds.HoldDecided as exc:
            raise invalid(exc) from None
        try:
            ids = [queue.request(Scope("object", lid)).request_id for lid in listing_ids]
        except QueueUnavailable as exc:
            raise ApiError(503, str(exc)) from None
        return HoldDecision(hold_id=hold.id, state=holds.CONFIRMED, request_ids=ids)

    @router.post("/holds/{hold_id}/confirm", response_model=HoldDecision,
                 responses=responses(401, 403, 404, 422, 503),
                 summary="Confirm a held mass deletion: send its deletes")
    async def confirm_hold(hold_id: str,
                           who: Annotated[Principal, Depends(principal)]) -> HoldDecision:
        """One transfer per listing of the hold; each delete carries its reason."""
        return await run_in_threadpool(decide, who, hold_id, "confirm")

    @router.post("/holds/{hold_id}/cancel", response_model=HoldDecision,
                 responses=responses(401, 403, 404, 422),
                 summary="Cancel a held mass deletion: restore the listings, send nothing")
    async def cancel_hold(hold_id: str,
                          who: Annotated[Principal, Depends(principal)]) -> HoldDecision:
        """The listings get back their state and selection; the marketplaces keep them."""
        return await run_in_threadpool(decide, who, hold_id, "cancel")

    return router


__all__ = ["HoldDecision", "HoldList", "HoldOut", "holds_router"]
