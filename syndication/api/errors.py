"""The API's one error body and the translation of every refusal into it.

Every answer other than a success is :class:`~syndication.api.models.ErrorBody`:
``{"code", "message", "record", "field"}``, where ``record`` and ``field`` name
what was wrong when one record or field was (``listing 'O1'``, ``price``), as
the CLI's messages do. The status follows the CLI twin's exit meaning:

====  =====================  ===============================================
code  status                 when
====  =====================  ===============================================
400   ``bad_request``        a body that cannot be read (not UTF-8 JSON), a NUL
                             byte in the path or query (the service's middleware)
401   ``unauthorized``       no credential, or one that is not live; a failed login
403   ``forbidden``          an action the principal may not take on what it can read
404   ``not_found``          unknown, or another tenant's (the same body, R14)
409   ``in_progress``        an Idempotency-Key whose first request is still running
413   ``too_large``          a body over its cap (the middleware's, or PUT /records')
422   ``invalid``            an input error naming its record and field
429   ``throttled``          too many failed logins for the name (``Retry-After``)
503   ``unavailable``        the transfer queue cannot be reached
====  =====================  ===============================================

:class:`ApiRoute` catches :class:`ApiError` and FastAPI's own request
validation and body-parsing errors in every route of the API, so the body is the same however
the refusal arose, and the web view's errors are left to the app.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException

from syndication.api.models import ErrorBody
from syndication.errors import InputError

CODES: dict[int, tuple[str, str]] = {
    400: ("bad_request", "The request cannot be read: a body that is not JSON in UTF-8, a "
                         "NUL byte in the path or query."),
    401: ("unauthorized", "Not authenticated: no live session token or API key."),
    403: ("forbidden", "Not allowed for this principal."),
    404: ("not_found", "Unknown, or not visible to this principal (the same answer)."),
    409: ("in_progress", "The first request with this Idempotency-Key is still running."),
    405: ("method_not_allowed", "The route does not take this method."),
    413: ("too_large", "The body is larger than accepted."),
    422: ("invalid", "An input error, naming its record and field."),
    429: ("throttled", "Too many failed logins for this user name; see Retry-After."),
    431: ("headers_too_large", "The request's headers are larger than accepted."),
    500: ("internal", "An unexpected error; it is logged."),
    503: ("unavailable", "The transfer queue cannot be reached; try again."),
}
"""Every error status the API answers, its ``code`` and its description in the document."""

MAX_MESSAGE = 300


class ApiError(Exception):
    """A refusal: its status, message, the record and field at fault, and extra headers."""

    def __init__(
        self, status: int, message: str, *, record: str | None = None,
        field: str | None = None, headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.record = record
        self.field = field
        self.headers = headers or {}

    def body(self) -> ErrorBody:
        return ErrorBody(code=CODES[self.status][0], message=printable(self.message),
                         record=self.record, field=self.field)

    def response(self) -> JSONResponse:
        return JSONResponse(self.body().model_dump(), status_code=self.status,
                            headers=self.headers)


def error_json(status: int, message: str) -> bytes:
    """The error body of ``status`` as JSON bytes, for refusals made outside a route
    (the service's middleware); a status without a code of its own is a 400."""
    known = status if status in CODES else 400
    return bytes(ApiError(known, message).response().body)


def printable(text: str, limit: int = MAX_MESSAGE) -> str:
    """``text`` without control characters, cut to ``limit``: a message may quote input."""
    clean = "".join(ch if ch.isprintable() else " " for ch in text)
    return clean if len(clean) <= limit else clean[: limit - 1] + "…"


def unauthorized(message: str = "a bearer token (st_…) or office API key (sk_…) is required"
                 ) -> ApiError:
    """401 with ``WWW-Authenticate: Bearer``, as RFC 6750 asks of a protected resource."""
    return ApiError(401, message, headers={"WWW-Authenticate": "Bearer"})


def not_found(what: str, ident: str) -> ApiError:
    """The one 404 for an unknown ``what`` and another tenant's (R14: no existence leak)."""
    return ApiError(404, f"no {what} with id {printable(ident, 80)!r}", record=f"{what} {ident!r}"
                    if len(ident) <= 80 else what)


def invalid(exc: InputError) -> ApiError:
    """422 from an input error, keeping the record and field it names."""
    return ApiError(422, exc.message, record=exc.record, field=exc.field)


def validation_error(exc: RequestValidationError) -> ApiError:
    """422 from FastAPI's validation of a parameter or body: the first problem, with the
    part of the request (``body``, ``query``, ``path``, ``header``) as the record and the
    parameter as the field."""
    errors = exc.errors()
    first = errors[0] if errors else {"loc": ("body",), "msg": "invalid request"}
    location = [str(part) for part in first.get("loc", ())]
    record = location[0] if location else "request"
    field = ".".join(location[1:]) or None
    return ApiError(422, str(first.get("msg", "invalid")), record=f"request {record}",
                    field=printable(field, 80) if field else None)


ANY_ROUTE = (400, 413, 431, 500)
"""What the service's middleware may answer on any route, before or around the route: 400
for a NUL byte in the path or query, 413 for a body over the service's cap, 431 for headers
over the service's cap, 500 for an unexpected error (logged)."""


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI ``responses`` entry of each error status a route can answer, with
    :data:`ANY_ROUTE` added."""
    documented: dict[int | str, dict[str, Any]] = {}
    for status in sorted({*statuses, *ANY_ROUTE}):
        entry: dict[str, Any] = {"model": ErrorBody, "description": CODES[status][1]}
        if status == 401:
            entry["headers"] = {"WWW-Authenticate": {"schema": {"type": "string"},
                                                     "description": "Bearer"}}
        if status == 429:
            entry["headers"] = {"Retry-After": {"schema": {"type": "integer"},
                                                "description": "seconds to wait"}}
        documented[status] = entry
    return documented


class ApiRoute(APIRoute):
    """A route whose refusals all answer with :class:`ErrorBody` (see the module's table)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except ApiError as exc:
                return exc.response()
            except RequestValidationError as exc:
                return validation_error(exc).response()
            except HTTPException as exc:
                status = exc.status_code if exc.status_code in CODES else 400
                return ApiError(status, str(exc.detail), record="request body").response()

        return route
