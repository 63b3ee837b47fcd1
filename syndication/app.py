"""The one HTTP service: the support web view and the JSON API in one FastAPI app."""

from __future__ import annotations

from fastapi import FastAPI

from syndication import api
from syndication.service import ServiceContext

API_PREFIX = "/api/v1"


def create_app(context: ServiceContext) -> FastAPI:
    """The service over ``context``: the API at :data:`API_PREFIX`, its OpenAPI
    document at ``/api/v1/openapi.json``."""
    app = FastAPI(title="syndication", openapi_url=f"{API_PREFIX}/openapi.json",
                  docs_url=None, redoc_url=None)
    app.include_router(api.build_router(context), prefix=API_PREFIX)
    return app
