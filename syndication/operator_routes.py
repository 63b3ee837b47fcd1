"""The operators' routes of the HTTP service: ``/healthz``, ``/readyz`` and ``/metrics``.

None of them is in the OpenAPI document (that describes ``/api/v1`` for the
desktop). ``/healthz`` and ``/readyz`` say nothing but whether the service can
work (:mod:`syndication.health`), so anyone may ask. ``/metrics`` shows counts of
every office's listings, so it is not public: with ``SYNDICATION_METRICS_TOKEN``
set it needs ``Authorization: Bearer <token>`` from everyone; without it only a
client on loopback is answered (a reverse proxy on the same host must then not
route ``/metrics``, or the token must be set). Refusals are 403, with no detail.
"""

from __future__ import annotations

import hmac
import ipaddress

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response
from starlette.concurrency import run_in_threadpool

from syndication.health import readiness
from syndication.metrics import CONTENT_TYPE, exposition, state_collector
from syndication.service import ServiceContext

METRICS_TOKEN_ENV = "SYNDICATION_METRICS_TOKEN"


def build_router(context: ServiceContext) -> APIRouter:
    """The three routes over ``context``'s store and broker."""
    router = APIRouter(include_in_schema=False)
    collector = state_collector(context.settings, context.engine)
    token = context.settings.environ.get(METRICS_TOKEN_ENV, "")

    @router.get("/healthz")
    def healthz() -> Response:
        return PlainTextResponse("ok\n")

    @router.get("/readyz")
    def readyz() -> Response:
        problems = readiness(context.engine, context.settings.broker_url)
        body = "\n".join(problems or ["ready"]) + "\n"
        return PlainTextResponse(body, status_code=503 if problems else 200)

    @router.get("/metrics")
    async def metrics(request: Request) -> Response:
        if not may_read_metrics(request, token):
            return PlainTextResponse("forbidden\n", status_code=403)
        body = await run_in_threadpool(exposition, collector)
        return Response(body, media_type=CONTENT_TYPE)

    return router


def may_read_metrics(request: Request, token: str) -> bool:
    """With a token configured, whoever presents it; without one, loopback clients only."""
    if token:
        presented = request.headers.get("authorization", "")
        scheme, _, value = presented.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(value.encode(), token.encode())
    host = request.client.host if request.client else ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
