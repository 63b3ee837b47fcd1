"""The one HTTP service: the support web view and the JSON API in one FastAPI app.

FastAPI serves both (it builds on the same pydantic models as SQLModel and
writes the OpenAPI document itself); the web view's routes are kept out of
that document, which describes ``/api/v1`` alone. Every request passes
:class:`~syndication.http_guards.HttpGuards` first.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from syndication import api, hooks, operator_routes
from syndication.api.errors import ApiError, error_json
from syndication.http_guards import API_PREFIX as GUARDED_API_PREFIX
from syndication.http_guards import HttpGuards
from syndication.service import ServiceContext
from syndication.web import WebView

API_PREFIX = "/api/v1"


def create_app(context: ServiceContext) -> FastAPI:
    """The service over ``context``: the API at :data:`API_PREFIX`, its OpenAPI
    document at ``/api/v1/openapi.json``, the operators' ``/healthz``, ``/readyz`` and
    ``/metrics`` (:mod:`syndication.operator_routes`), the marketplaces' callbacks at
    ``/hooks/{marketplace}`` (:mod:`syndication.hooks`), the web view at ``/``.

    An HTTP error under ``/api/`` (an unknown route, a method the route does not take)
    answers with the API's one error body; anywhere else the
    web view answers it with a page (an anonymous visitor to an unknown address
    is sent to the login form, as for every other page).
    """
    app = FastAPI(title="syndication", openapi_url=f"{API_PREFIX}/openapi.json",
                  docs_url=None, redoc_url=None)
    queue = api.TransferQueue(context)
    app.include_router(api.build_router(context, queue), prefix=API_PREFIX)
    app.include_router(operator_routes.build_router(context))
    app.include_router(hooks.build_router(context))
    web = WebView(context, queue)
    app.include_router(web.router)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        if request.url.path.startswith(GUARDED_API_PREFIX):
            status = exc.status_code if exc.status_code in (404, 405) else 400
            headers = dict(exc.headers or {})
            return ApiError(status, str(exc.detail), headers=headers).response()
        return await run_in_threadpool(web.http_error, request, exc.status_code,
                                       str(exc.detail) if exc.detail else None)

    app.add_middleware(HttpGuards, error_page=web.error_page, api_error=error_json)
    return app
