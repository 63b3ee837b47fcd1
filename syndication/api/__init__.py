"""The versioned JSON API under ``/api/v1/`` (the agency desktop's way in).

One router per role, each a small module: :mod:`.auth` (the bearer credential
and the session routes), :mod:`.records` (``PUT /records``), :mod:`.transfers`
(start and follow a transfer, with :mod:`.idempotency` and the service's
:mod:`.queue`), :mod:`.status` (status and preview), :mod:`.holds` (held mass
deletions, R15). Their bodies are the
models of :mod:`.models`, every refusal the one body of :mod:`.errors`, so the
OpenAPI document FastAPI writes describes every answer. ``docs/api.md`` shows
the desktop's flow with curl.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from syndication.api.auth import principal_dependency, sessions_router
from syndication.api.errors import ApiError, ApiRoute
from syndication.api.holds import holds_router
from syndication.api.models import ErrorBody
from syndication.api.queue import TransferQueue
from syndication.api.records import records_router
from syndication.api.status import status_router
from syndication.api.transfers import transfers_router
from syndication.service import ServiceContext

__all__ = ["ApiError", "ErrorBody", "TransferQueue", "build_router"]


def build_router(context: ServiceContext, queue: TransferQueue | None = None) -> APIRouter:
    """The API's routes over ``context``; the app mounts them at ``/api/v1``.

    Its lifespan starts the transfer queue (and, with the in-process broker,
    the service's own worker threads: :mod:`syndication.api.queue`) and stops it;
    ``queue`` is the service's one queue when the web view shares it.
    """
    queue = queue if queue is not None else TransferQueue(context)

    @asynccontextmanager
    async def lifespan(_: Any) -> AsyncIterator[None]:
        await run_in_threadpool(queue.start)
        try:
            yield
        finally:
            await run_in_threadpool(queue.stop)

    principal = principal_dependency(context)
    router = APIRouter(route_class=ApiRoute, lifespan=lifespan)
    router.include_router(sessions_router(context, principal))
    router.include_router(records_router(context, principal))
    router.include_router(transfers_router(context, principal, queue))
    router.include_router(status_router(context, principal))
    router.include_router(holds_router(context, principal, queue))
    return router
