"""The HTTP transport as coroutines: the wire protocol of :mod:`adapters.http` on aiohttp.

:class:`AsyncHttpTransport` is what :class:`~adapters.http.HttpTransport` is, for
a worker that keeps hundreds of calls in flight on one event loop instead of one
per thread: one pooled ``aiohttp.ClientSession`` per marketplace (kept-alive
connections, up to ``max_connections``), the same (connect, read) timeouts, the
same overall ``deadline`` of one exchange (``asyncio.timeout``: a marketplace
trickling a byte a second is cut there), redirects never followed, the bearer
token only in the client's headers, ``Idempotency-Key`` on every delivery, the
answers parsed with ``parse_untrusted`` and refused above
:data:`~adapters.http.MAX_ANSWER_BYTES`. The protocol itself is not restated: the
request of a delivery, the judgement of an answer, the receipt and the error
texts are :mod:`adapters.http`'s own functions (:func:`~adapters.http.delivery_request`,
:func:`~adapters.http.judge_answer`, :func:`~adapters.http.receipt_of`,
:func:`~adapters.http.network_error`), so both transports fail in the same words.
Retries follow the same :class:`~adapters.retry.RetryPolicy` through tenacity's
``AsyncRetrying``.

aiohttp's exceptions are sorted here, once, into the kinds of
:func:`adapters.http.network_error`: a timeout; a connection that could not be
made or was lost; an answer that broke off (the server disconnected, the body
cut short); anything else (a URL or a header it cannot send) is permanent.

Why aiohttp and not httpx: measured against the sandbox at 100 ms latency on the
development machine, httpx's pool spent 4–6 ms of CPU per request (28 requests/s
with 20 or 256 in flight); aiohttp 0.3 ms (178 requests/s with 20 in flight, 475
with 256). At the goal of 300 transfers/s per process, the client alone must stay
well under a millisecond.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import quote

import aiohttp
from yarl import URL

from adapters.base import Delivery, Receipt, RemoteListing
from adapters.http import (
    DEFAULT_DEADLINE,
    MAX_ANSWER_BYTES,
    REMOVALS,
    HttpTransport,
    _remote,
    delivery_request,
    judge_answer,
    network_error,
    parse_answer,
    receipt_of,
)
from adapters.retry import RetryPolicy, log_retries, parse_retry_after
from syndication.errors import PermanentError, TransientError
from syndication.logs import get_logger, writes
from syndication.metrics import observe_http

DEFAULT_CONNECTIONS = 256
"""Kept-alive connections per marketplace: as many as a worker process keeps in flight."""


class AsyncHttpTransport:
    """Delivers one marketplace's documents over HTTP, as coroutines.

    ``policy`` and ``sleep`` decide the retries (tests inject a recorder for
    ``sleep``). The client is made on first use, on the running event loop, and
    belongs to that loop.
    """

    def __init__(
        self,
        marketplace: str,
        base_url: str,
        *,
        token: str | None = None,
        connect_timeout: float = 3.05,
        read_timeout: float = 20.0,
        deadline: float = DEFAULT_DEADLINE,
        policy: RetryPolicy | None = None,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        max_connections: int = DEFAULT_CONNECTIONS,
    ) -> None:
        self.marketplace = marketplace
        self.base_url = base_url.rstrip("/")
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.deadline = deadline
        self.policy = policy or RetryPolicy.standard()
        self.sleep = sleep
        self.max_connections = max_connections
        self._headers = {"Accept": "application/xml"}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        self._client: aiohttp.ClientSession | None = None
        self._encoded_base = str(URL(self.base_url))

    @classmethod
    def like(cls, transport: HttpTransport, **overrides: Any) -> AsyncHttpTransport:
        """The async twin of a configured ``transport``: its address, token, timeouts,
        deadline and retry policy (the marketplaces file is read once, for both), and its
        retry sleep when one was injected (a test's recorder), awaited."""
        authorization = str(transport.session.headers.get("Authorization") or "")
        token = authorization.removeprefix("Bearer ") or None
        connect, read = transport.timeout
        options: dict[str, Any] = {
            "token": token, "connect_timeout": connect, "read_timeout": read,
            "deadline": transport.deadline, "policy": transport.policy,
        }
        if transport.sleep is not time.sleep:
            options["sleep"] = _awaited(transport.sleep)
        options.update(overrides)
        return cls(transport.marketplace, transport.base_url, **options)

    def __repr__(self) -> str:
        return f"AsyncHttpTransport({self.marketplace!r}, {self.base_url!r})"

    @property
    def client(self) -> aiohttp.ClientSession:
        """The session, made on first use on the running loop: no proxy from the
        environment, no cookies kept, answers not decompressed (read as sent)."""
        if self._client is None:
            self._client = aiohttp.ClientSession(
                headers=self._headers,
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=self.connect_timeout,
                                              sock_read=self.read_timeout),
                connector=aiohttp.TCPConnector(limit=self.max_connections, limit_per_host=0),
                trust_env=False, auto_decompress=False,
                cookie_jar=aiohttp.DummyCookieJar(),
            )
        return self._client

    async def send(self, delivery: Delivery) -> Receipt:
        """Deliver ``delivery`` and return the marketplace's receipt (as
        :meth:`adapters.http.HttpTransport.send`)."""
        method, path, headers = delivery_request(delivery, self.marketplace)
        status, body = await self._call(
            method, path, listing_id=delivery.listing_id, action=delivery.action,
            data=delivery.document, headers=headers, absent_ok=delivery.action in REMOVALS,
        )
        return receipt_of(self.marketplace, delivery.listing_id, status, body)

    async def lookup(self, marketplace: str, listing_id: str) -> RemoteListing | None:
        """What the marketplace holds for ``listing_id``; ``None`` when nothing (404)."""
        status, body = await self._call(
            "GET", f"/listings/{quote(listing_id, safe='')}", listing_id=listing_id,
            action="lookup", absent_ok=True,
        )
        if status == 404:
            return None
        return _remote(parse_answer(self.marketplace, body, "listing", listing_id))

    @property
    def is_open(self) -> bool:
        """Whether a session was made on a loop and not closed yet."""
        return self._client is not None and not self._client.closed

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.close()

    async def _call(
        self,
        method: str,
        path: str,
        *,
        listing_id: str | None,
        action: str,
        data: bytes | None = None,
        headers: dict[str, str] | None = None,
        absent_ok: bool = False,
    ) -> tuple[int, bytes]:
        """One logical call under the retry policy: ``(status, body)`` of the
        final answer, or the translated error of the last attempt. Its logger is bound
        only for a line that is written: a retry, or an answer at ``debug`` level."""
        where = {"listing_id": listing_id, "marketplace": self.marketplace, "action": action}

        async def attempt() -> tuple[int, bytes]:
            return await self._once(method, path, listing_id, data, headers, absent_ok, where)

        def before_sleep() -> Callable[[Any], None]:
            return log_retries(get_logger(**where), "http_retry")

        return await self.policy.call_async(attempt, self.sleep, before_sleep)

    async def _once(
        self,
        method: str,
        path: str,
        listing_id: str | None,
        data: bytes | None,
        headers: dict[str, str] | None,
        absent_ok: bool,
        logged: dict[str, Any],
    ) -> tuple[int, bytes]:
        """One HTTP exchange under the deadline; every aiohttp exception and non-2xx
        status is translated into a :class:`TransientError` or a :class:`PermanentError`."""
        where: dict[str, Any] = {"listing_id": listing_id, "marketplace": self.marketplace}
        url = self.base_url + path
        what = f"{method} {url}"
        try:
            async with asyncio.timeout(self.deadline):
                status, body, answer_headers = await self._exchange(
                    method, URL(self._encoded_base + path, encoded=True), data, headers)
        except _TooLarge:
            observe_http(self.marketplace, "error")
            raise PermanentError(f"{what}: answer larger than {MAX_ANSWER_BYTES} bytes",
                                 **where) from None
        except (aiohttp.ClientError, ValueError) as exc:
            error = translate(exc, what, **where)
            observe_http(self.marketplace, "timeout" if isinstance(exc, TimeoutError) else "error")
            raise error from exc
        except TimeoutError as exc:
            observe_http(self.marketplace, "timeout")
            raise TransientError(
                f"{what}: no complete answer within the {self.deadline:g} s "
                f"deadline (the marketplace is too slow or does not answer)", **where
            ) from exc
        observe_http(self.marketplace, status)
        if writes(logging.DEBUG):
            get_logger(**logged).debug("http_answer", method=method, path=path, status=status)
        return judge_answer(
            self.marketplace, method, url, status, body,
            retry_after=parse_retry_after(answer_headers.get("Retry-After")),
            location=answer_headers.get("Location"), absent_ok=absent_ok, listing_id=listing_id,
        )

    async def _exchange(
        self, method: str, url: URL, data: bytes | None, headers: dict[str, str] | None
    ) -> tuple[int, bytes, Mapping[str, str]]:
        """One request and its whole answer. ``url`` is the address already encoded (the
        base encoded once, the path quoted by the wire protocol), so it is not parsed
        and encoded again for every request."""
        async with self.client.request(method, url, data=data, headers=headers,
                                       allow_redirects=False) as response:
            chunks, size = [], 0
            async for chunk in response.content.iter_chunked(64 * 1024):
                size += len(chunk)
                if size > MAX_ANSWER_BYTES:
                    raise _TooLarge
                chunks.append(chunk)
            return response.status, b"".join(chunks), response.headers


class _TooLarge(Exception):
    pass


def translate(exc: Exception, what: str, **where: Any) -> TransientError | PermanentError:
    """The error a failed aiohttp call becomes, through :func:`adapters.http.network_error`:

    * a timeout (connecting, or waiting ``read_timeout`` for the next bytes) →
      "… timed out";
    * ``ServerDisconnectedError`` and ``ClientPayloadError`` (the server closed the
      connection or cut the body short) → "the answer broke off";
    * any other ``ClientConnectionError`` (refused, reset, unreachable) →
      "cannot connect";
    * anything else (an invalid URL, a header that cannot be sent, an answer aiohttp
      cannot parse) → permanent.
    """
    detail = _kind(exc)
    if isinstance(exc, TimeoutError):
        return network_error("timeout", what, detail, **where)
    if isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError):
        return network_error("broke_off", what, detail, **where)
    if isinstance(exc, aiohttp.ClientConnectionError):
        return network_error("connect", what, detail, **where)
    return network_error("other", what, detail, **where)


def _kind(exc: Exception) -> str:
    """A short description of an aiohttp error, never a request header's value (which
    may be the token): a request that could not be written says only that."""
    if isinstance(exc, ValueError | aiohttp.InvalidURL):
        return f"{type(exc).__name__}: the request could not be written (its headers are not shown)"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _awaited(sleep: Callable[[float], Any]) -> Callable[[float], Awaitable[None]]:
    """A threaded transport's injected sleep, for its async twin."""

    async def awaited(seconds: float) -> None:
        sleep(seconds)

    return awaited
