"""The versioned JSON API under ``/api/v1/`` (the agency desktop's way in)."""

from __future__ import annotations

from fastapi import APIRouter

from syndication.service import ServiceContext


def build_router(context: ServiceContext) -> APIRouter:
    """The API's routes over ``context``; the app mounts them at ``/api/v1``."""
    return APIRouter()
