"""The front door of the HTTP service: what every request passes, web view and API alike.

:class:`HttpGuards` is one ASGI middleware, outermost in the app, that decides
in this order:

1. **NUL bytes.** A NUL in the path or in any query parameter's name or value
   is a 400 before anything reaches a route (PostgreSQL cannot store one, so
   it must never get as far as a query). Web form fields are checked by the
   view when it parses its forms.
2. **Header size.** A request line and headers over :data:`HEADER_LIMIT`
   bytes is a 431. h11 refuses as much only while the headers are still
   arriving (``h11_max_incomplete_event_size``); headers that arrive in one
   read are parsed whole, so the size is checked again here.
3. **Body size.** Every request body is capped at :data:`BODY_LIMIT` bytes
   except the routes in :data:`UNCAPPED` (``PUT /api/v1/records`` caps its own
   document): a declared ``Content-Length`` over the cap is refused at once
   with 413, a chunked body is refused as soon as it grows past it. The
   connection stays open, so the client reads the 413 instead of a reset;
   uvicorn discards the rest of the body, for at most the request deadline
   of :mod:`syndication.http_server`.
4. **Unexpected errors.** An exception out of a route is logged through
   structlog (so the redaction of secrets applies to its message and
   traceback) and answers a plain 500; it is never re-raised to the server,
   whose own logging would bypass the redaction.
5. **Security headers.** :data:`SECURITY_HEADERS` are added to every response
   that does not set them itself.
6. **Access log.** One structlog line per request (``http_request``): method,
   path without the query string, status and duration in ms; never the query,
   a header, a cookie or a token.

Under ``/api/`` every refusal is the API's one JSON error body, made by the
``api_error`` callable the app passes in (:func:`syndication.api.errors.error_json`);
elsewhere it is a page made by the ``error_page`` callable (the web view's).
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, MutableMapping
from html import escape
from typing import Any
from urllib.parse import parse_qsl

from syndication.logs import get_logger
from syndication.web.checks import field_with_nul

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
ErrorPage = Callable[[int, str, str], str]
"""``(status, title, message) -> HTML`` of a refusal outside ``/api/``."""
ApiErrorBody = Callable[[int, str], bytes]
"""``(status, message) -> JSON`` of a refusal under ``/api/``."""

BODY_LIMIT = 64 * 1024
HEADER_LIMIT = 16 * 1024
UNCAPPED = frozenset({("PUT", "/api/v1/records")})
API_PREFIX = "/api/"
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "script-src 'self'; connect-src 'self'; img-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
INTERNAL_ERROR = "internal error; it is logged"


class BodyTooLarge(Exception):
    """A request body grew past the cap while a route was reading it."""


def plain_api_error(status: int, message: str) -> bytes:
    """The JSON refusal when the app gives no API error body of its own."""
    return json.dumps({"message": message}).encode()


def plain_error_page(status: int, title: str, message: str) -> str:
    """The refusal page when the app gives none: the title and the message, escaped."""
    return f"<!doctype html><title>{escape(title)}</title><h1>{escape(title)}</h1>" \
           f"<p class=\"error\">{escape(message)}</p>"


def nul_refusal(scope: Scope) -> str | None:
    """Why the request is refused for a NUL byte in its path or query, or ``None``."""
    if "\x00" in scope.get("path", ""):
        return "the path holds a NUL byte, which is never valid here"
    query = scope.get("query_string", b"").decode("utf-8", "replace")
    name = field_with_nul(parse_qsl(query, keep_blank_values=True))
    if name is None:
        return None
    return f"the parameter {name[:40]!r} holds a NUL byte, which is never valid here"


def header_bytes(scope: Scope) -> int:
    """The size of the request's target and headers as they came on the wire (near enough:
    each header counts its name, its value and four bytes of separators)."""
    target = len(scope.get("raw_path", b"")) + len(scope.get("query_string", b""))
    return target + sum(len(key) + len(value) + 4 for key, value in scope.get("headers", ()))


def _declared_length(scope: Scope) -> int | None:
    for key, value in scope.get("headers", ()):
        if key == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class HttpGuards:
    """The ASGI middleware described in the module's docstring."""

    def __init__(self, app: ASGIApp, *, error_page: ErrorPage = plain_error_page,
                 api_error: ApiErrorBody = plain_api_error, body_limit: int = BODY_LIMIT,
                 uncapped: frozenset[tuple[str, str]] = UNCAPPED
                 ) -> None:
        self.app = app
        self.error_page = error_page
        self.api_error = api_error
        self.body_limit = body_limit
        self.uncapped = uncapped

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began = time.perf_counter()
        answered: dict[str, int] = {}

        async def send_hardened(message: Message) -> None:
            if "sealed" in answered:
                return
            if message["type"] == "http.response.start":
                present = {key.lower() for key, _ in message.get("headers", ())}
                extra = [(name.lower().encode(), value.encode())
                         for name, value in SECURITY_HEADERS.items()
                         if name.lower().encode() not in present]
                message["headers"] = [*message.get("headers", ()), *extra]
                answered["status"] = message["status"]
            await send(message)

        async def refuse_too_large() -> None:
            """Answer 413 once and seal the response, so whatever the route makes of
            the interrupted read (FastAPI turns it into a 400) is never sent."""
            if "status" not in answered:
                await self._refuse(scope, send_hardened, 413, "Request too large",
                                   self._too_large_message())
            answered["sealed"] = 1

        try:
            await self._guarded(scope, receive, send_hardened, refuse_too_large)
        except BodyTooLarge:
            await refuse_too_large()
        except Exception as exc:  # noqa: BLE001 - every unexpected error ends here, logged
            get_logger().error("web_request_failed", method=scope.get("method"),
                               path=scope.get("path"), exc_info=exc)
            if "status" not in answered:
                await self._refuse(scope, send_hardened, 500, "Internal error", INTERNAL_ERROR,
                                   plain=True)
        finally:
            get_logger().info(
                "http_request", method=scope.get("method"), path=scope.get("path"),
                status=answered.get("status"),
                duration_ms=round((time.perf_counter() - began) * 1000, 1),
            )

    async def _guarded(self, scope: Scope, receive: Receive, send: Send,
                       too_large: Callable[[], Awaitable[None]]) -> None:
        refusal = nul_refusal(scope)
        if refusal is not None:
            await self._refuse(scope, send, 400, "Bad request", refusal)
            return
        if header_bytes(scope) > HEADER_LIMIT:
            await self._refuse(scope, send, 431, "Request headers too large",
                               f"the request's headers are larger than {HEADER_LIMIT} bytes")
            return
        if (scope.get("method"), scope.get("path")) in self.uncapped:
            await self.app(scope, receive, send)
            return
        declared = _declared_length(scope)
        if declared is not None and declared > self.body_limit:
            await too_large()
            return
        await self.app(scope, self._capped(receive, too_large), send)

    def _capped(self, receive: Receive, too_large: Callable[[], Awaitable[None]]) -> Receive:
        received = 0

        async def capped_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.body_limit:
                    await too_large()
                    raise BodyTooLarge
            return message

        return capped_receive

    def _too_large_message(self) -> str:
        return f"the request body is larger than {self.body_limit} bytes, the most taken here"

    async def _refuse(self, scope: Scope, send: Send, status: int, title: str, message: str,
                      *, plain: bool = False) -> None:
        if scope.get("path", "").startswith(API_PREFIX):
            body = self.api_error(status, message)
            content_type = b"application/json"
        elif plain:
            body, content_type = message.encode(), b"text/plain; charset=utf-8"
        else:
            body = self.error_page(status, title, message).encode()
            content_type = b"text/html; charset=utf-8"
        headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
