"""The HTTP transport: documents to a marketplace's HTTP interface.

One pooled :class:`requests.Session` per marketplace; every call has a
(connect, read) timeout, an overall ``deadline`` for the whole exchange
(connect, headers and body: a marketplace trickling a byte a second is cut
there, where the read timeout alone would wait for ever), and carries the
marketplace's bearer token. Redirects are never followed: a 3xx is a
permanent failure naming the status and the ``Location``, so a document is
never re-sent to another origin and no foreign receipt recorded. Connection
errors, timeouts, answers broken off, 429 and 5xx are retried by a tenacity
policy (:mod:`adapters.retry`: exponential backoff with jitter, or the
server's ``Retry-After``); any other 4xx is :class:`Rejected` at once with the
marketplace's own message. Every delivery carries ``Idempotency-Key``, so a
retried call is answered with the first answer instead of creating the
listing twice. requests' exceptions and failed answers are translated here
and nowhere else: :func:`request_error` and :func:`answer_error`, which the
photo-portal client calls too. Answers are parsed with
:func:`feeds.validate.parse_untrusted`: a receipt with a DOCTYPE or entities
is refused.

The wire protocol (also spoken by :mod:`adapters.sandbox`), relative to the
marketplace's URL: see :data:`ROUTES`, ``GET /listings/{id}`` (lookup) and
``GET /offices/{office}/listings`` (inventory); answers are the XML documents
``<receipt>``, ``<listing>``, ``<listings>`` and ``<error>``.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable
from typing import IO, Any
from urllib.parse import quote, urlsplit

import requests
from lxml import etree
from requests.structures import CaseInsensitiveDict

from adapters.base import Delivery, Receipt, RemoteListing, Transport
from adapters.deadline import Deadline, WatchedAdapter
from adapters.retry import RetryPolicy, log_retries, parse_retry_after
from feeds.validate import parse_untrusted
from syndication.errors import PermanentError, Rejected, TransientError
from syndication.logs import get_logger
from syndication.metrics import observe_http

ROUTES: dict[str, tuple[str, str]] = {
    "create": ("POST", "/listings/{id}"),
    "update": ("PUT", "/listings/{id}"),
    "delete": ("DELETE", "/listings/{id}"),
    "final_price": ("PUT", "/listings/{id}/final-price"),
    "final_price_retraction": ("DELETE", "/listings/{id}/final-price"),
}
"""Delivery action → HTTP method and path."""

REMOVALS = ("delete", "final_price_retraction")
DEFAULT_DEADLINE = 60.0
"""Seconds one HTTP exchange may take in all, unless the marketplaces file says otherwise."""
MAX_ANSWER_BYTES = 1 << 20
"""Answers larger than this are refused unread: a receipt is a few hundred bytes."""
XML = "application/xml; charset=utf-8"


class HttpTransport(Transport):
    """Delivers one marketplace's documents over HTTP.

    ``policy`` and ``sleep`` decide the retries (tests inject a recorder for
    ``sleep``); ``session`` may be given to share or inspect one. The token is
    kept only in the session's headers.
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
        sleep: Callable[[float], Any] = time.sleep,
        session: requests.Session | None = None,
        pool_size: int = 16,
    ) -> None:
        self.marketplace = marketplace
        self.base_url = base_url.rstrip("/")
        self.timeout = (connect_timeout, read_timeout)
        self.deadline = deadline
        self.policy = policy or RetryPolicy.standard()
        self.sleep = sleep
        self.session = session or requests.Session()
        self.session.trust_env = False
        adapter = WatchedAdapter(pool_connections=1, pool_maxsize=pool_size, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers["Accept"] = "application/xml"
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def __repr__(self) -> str:
        return f"HttpTransport({self.marketplace!r}, {self.base_url!r})"

    def send(self, delivery: Delivery) -> Receipt:
        """Deliver ``delivery`` and return the marketplace's receipt.

        A delete of a listing the marketplace does not know (404) is a success,
        what was asked for being true as far as it says, with a receipt marked
        ``not_known`` so the status can tell it from a real removal.
        """
        method, path, headers = delivery_request(delivery, self.marketplace)
        status, body = self._call(
            method,
            path,
            listing_id=delivery.listing_id,
            action=delivery.action,
            data=delivery.document,
            headers=headers,
            absent_ok=delivery.action in REMOVALS,
        )
        return receipt_of(self.marketplace, delivery.listing_id, status, body)

    def lookup(self, marketplace: str, listing_id: str) -> RemoteListing | None:
        """What the marketplace holds for ``listing_id``; ``None`` when nothing (404)."""
        status, body = self._call(
            "GET",
            f"/listings/{quote(listing_id, safe='')}",
            listing_id=listing_id,
            action="lookup",
            absent_ok=True,
        )
        if status == 404:
            return None
        return _remote(self._parse(body, "listing", listing_id))

    def inventory(self, marketplace: str, office_id: str) -> list[RemoteListing] | None:
        """Every listing the marketplace holds for ``office_id`` (R13)."""
        _, body = self._call(
            "GET",
            f"/offices/{quote(office_id, safe='')}/listings",
            listing_id=None,
            action="inventory",
        )
        root = self._parse(body, "listings", None)
        return [_remote(item) for item in root.iterfind("listing")]

    def upload(
        self, path: str, body: Callable[[], IO[bytes]], *, what: str, headers: dict[str, str]
    ) -> int:
        """PUT a body too large to hold in memory to ``path``, under the retry policy.

        ``body`` returns the stream to send, at its start, for every attempt (a
        retried PUT must send it whole again). Returns the answer's status; errors
        are translated as for every other call.
        """
        status, _ = self._call("PUT", path, listing_id=None, action=what, data=body,
                               headers=headers)
        return status

    def close(self) -> None:
        self.session.close()

    def _call(
        self,
        method: str,
        path: str,
        *,
        listing_id: str | None,
        action: str,
        data: bytes | Callable[[], IO[bytes]] | None = None,
        headers: dict[str, str] | None = None,
        absent_ok: bool = False,
    ) -> tuple[int, bytes]:
        """One logical call under the retry policy: ``(status, body)`` of the
        final answer, or the translated error of the last attempt."""
        log = get_logger(listing_id=listing_id, marketplace=self.marketplace, action=action)
        retrying = self.policy.retrying(self.sleep, log_retries(log, "http_retry"))
        return retrying(self._once, method, path, listing_id, data, headers, absent_ok, log)

    def _once(
        self,
        method: str,
        path: str,
        listing_id: str | None,
        data: bytes | Callable[[], IO[bytes]] | None,
        headers: dict[str, str] | None,
        absent_ok: bool,
        log: Any,
    ) -> tuple[int, bytes]:
        """One HTTP exchange; every requests exception and non-2xx status is
        translated into a :class:`TransientError` or a :class:`PermanentError`.

        The exchange runs under a :class:`adapters.deadline.Deadline`: when it is not over after
        ``deadline`` seconds its connection is shut, and the call fails as
        transient ("no complete answer within …"), whatever it was waiting for.
        """
        where: dict[str, Any] = {"listing_id": listing_id, "marketplace": self.marketplace}
        url = self.base_url + path
        payload = data() if callable(data) else data
        with Deadline(self.deadline) as deadline:
            try:
                with self._exchange(method, url, payload, headers) as response:
                    body = _read_limited(response)
                    status = response.status_code
                    retry_after = parse_retry_after(response.headers.get("Retry-After"))
                    location = response.headers.get("Location")
            except _TooLarge:
                observe_http(self.marketplace, "error")
                raise PermanentError(
                    f"{method} {url}: answer larger than {MAX_ANSWER_BYTES} bytes", **where
                ) from None
            except requests.RequestException as exc:
                timed_out = deadline.expired or isinstance(exc, requests.Timeout)
                observe_http(self.marketplace, "timeout" if timed_out else "error")
                if deadline.expired:
                    raise TransientError(
                        f"{method} {url}: no complete answer within the {self.deadline:g} s "
                        f"deadline (the marketplace is too slow or does not answer)", **where
                    ) from exc
                raise request_error(exc, f"{method} {url}", **where) from exc
        observe_http(self.marketplace, status)
        log.debug("http_answer", method=method, path=path, status=status)
        return judge_answer(self.marketplace, method, url, status, body, retry_after=retry_after,
                            location=location, absent_ok=absent_ok, listing_id=listing_id)

    def _exchange(
        self, method: str, url: str, payload: Any, headers: dict[str, str] | None
    ) -> requests.Response:
        """Send one request through the session's adapter, as a prepared request.

        ``Session.request`` would merge the session's cookies, hooks, auth and
        environment into every call and look for redirects to follow; this
        transport has none of those (``trust_env`` is off, redirects are refused), so
        the request is prepared (method, address, headers, body: no cookies, auth or
        hooks either) with the session's headers and handed to the mounted adapter
        directly: about a third less CPU per kept-alive call on loopback.
        """
        merged = CaseInsensitiveDict(self.session.headers)
        merged.update(headers or {})
        prepared = requests.PreparedRequest()
        prepared.prepare_method(method)
        prepared.prepare_url(url, None)
        prepared.prepare_headers(merged)
        prepared.prepare_body(payload, None)
        adapter = self.session.get_adapter(url)
        return adapter.send(prepared, stream=True, timeout=self.timeout,
                            verify=self.session.verify, cert=self.session.cert,
                            proxies=self.session.proxies)

    def _parse(self, body: bytes, tag: str, listing_id: str | None) -> etree._Element:
        return parse_answer(self.marketplace, body, tag, listing_id)


def delivery_request(delivery: Delivery, marketplace: str) -> tuple[str, str, dict[str, str]]:
    """The method, path and headers that carry ``delivery``: the wire protocol's one
    statement of a delivery, for every transport that speaks it."""
    try:
        method, path = ROUTES[delivery.action]
    except KeyError:
        raise PermanentError(
            f"unknown delivery action {delivery.action!r}",
            listing_id=delivery.listing_id,
            marketplace=marketplace,
        ) from None
    headers = {
        "Idempotency-Key": delivery.idempotency_key,
        "Content-Type": XML,
        "X-Office-Id": delivery.office_id,
    }
    return method, path.format(id=quote(delivery.listing_id, safe="")), headers


def receipt_of(marketplace: str, listing_id: str, status: int, body: bytes) -> Receipt:
    """The :class:`Receipt` of a delivery's accepted answer.

    A delete of a listing the marketplace does not know (404) is a success,
    what was asked for being true as far as it says, with a receipt marked
    ``not_known`` so the status can tell it from a real removal.
    """
    if status == 404:
        return Receipt(message="the marketplace did not know the listing; nothing to remove",
                       not_known=True)
    root = parse_answer(marketplace, body, "receipt", listing_id)
    return Receipt(
        marketplace_id=_text(root, "id"),
        public_url=_text(root, "url"),
        published=_text(root, "state") == "published",
        message=_text(root, "message"),
    )


def judge_answer(
    marketplace: str,
    method: str,
    url: str,
    status: int,
    body: bytes,
    *,
    retry_after: float | None,
    location: str | None,
    absent_ok: bool,
    listing_id: str | None,
) -> tuple[int, bytes]:
    """``(status, body)`` of an answer that is a success (a 2xx, or a 404 where
    ``absent_ok``); any other answer raises its translated error: a 3xx is
    :func:`redirect_error`, 429 and 5xx transient, every other status refused with
    the marketplace's own message."""
    where: dict[str, Any] = {"listing_id": listing_id, "marketplace": marketplace}
    if 200 <= status < 300 or (status == 404 and absent_ok):
        return status, body
    if 300 <= status < 400:
        raise redirect_error(status, location, marketplace,
                             "check the marketplace's url in the marketplaces file", **where)
    message = error_message(marketplace, status, body, listing_id)
    if status in (401, 403):
        message += " (check the marketplace's token_env in the marketplaces file)"
    raise answer_error(status, message, retry_after=retry_after, **where)


def error_message(marketplace: str, status: int, body: bytes, listing_id: str | None) -> str:
    """The marketplace's own message from an ``<error>`` answer, else the status."""
    prefix = f"{marketplace} answered {status}"
    if not body.strip():
        return prefix
    try:
        root = parse_answer(marketplace, body, "error", listing_id)
    except PermanentError as exc:
        return f"{prefix} ({exc.message})"
    message = _text(root, "message")
    return f"{prefix}: {message}" if message else prefix


def parse_answer(
    marketplace: str, body: bytes, tag: str, listing_id: str | None
) -> etree._Element:
    """Parse an answer safely and check its root element; a hostile or
    malformed answer is logged and refused."""
    where: dict[str, Any] = {"listing_id": listing_id, "marketplace": marketplace}
    try:
        root = parse_untrusted(body, f"{marketplace} {tag}")
    except PermanentError as exc:
        get_logger(**where).error("answer_refused", what=tag, reason=exc.message)
        raise PermanentError(exc.message, **where) from None
    if root.tag != tag:
        raise PermanentError(
            f"{marketplace} answered <{root.tag}> where <{tag}> was expected", **where
        )
    return root


def request_error(
    exc: requests.RequestException, what: str, **where: Any
) -> TransientError | PermanentError:
    """The error a failed requests call becomes: the one translation of requests'
    exceptions for every HTTP client of :mod:`adapters` (this transport, the
    photo-portal client). ``what`` names the call ("GET http://…"); ``where``
    carries ``listing_id`` and ``marketplace`` when the call has them.

    * ``Timeout`` (connect or read) → :class:`TransientError` "… timed out (…)";
    * ``ConnectionError`` (refused, reset, TLS, proxy; also a read timeout in
      mid-body) → :class:`TransientError` "…: cannot connect (…)";
    * ``ChunkedEncodingError`` (the answer broke off before its end) →
      :class:`TransientError` "…: the answer broke off (…)";
    * any other ``RequestException`` → :class:`PermanentError` "… failed: …".

    A generic ``RequestException`` is permanent. The first three rows are the
    failures of the network or of a server that may be back a moment later;
    what is left of requests' tree is a fault of the request itself or of an
    answer that cannot be read (``InvalidURL``, ``MissingSchema``,
    ``InvalidHeader`` — a token with a line break —, ``InvalidJSONError``,
    ``TooManyRedirects``, ``ContentDecodingError``). Sending the same request
    again meets the same fault, so retrying would only multiply the calls
    (tenacity's attempts times dramatiq's retries) and hold back for minutes
    the failure that tells support what to fix. An exception requests adds
    later lands here too: a failure nobody has classified is shown at once,
    not hidden behind retries.
    """
    kind = _kind(exc)
    if isinstance(exc, requests.Timeout):
        return network_error("timeout", what, kind, **where)
    if isinstance(exc, requests.ConnectionError):
        return network_error("connect", what, kind, **where)
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        return network_error("broke_off", what, kind, **where)
    return network_error("other", what, kind, **where)


def network_error(
    kind: str, what: str, detail: str, **where: Any
) -> TransientError | PermanentError:
    """The error of a call that got no complete answer, by ``kind``: ``timeout``,
    ``connect`` and ``broke_off`` are transient (the network, or a server back a moment
    later), anything else permanent (see :func:`request_error`, which, like the async
    transport's translation, sorts its client's exceptions into these kinds)."""
    if kind == "timeout":
        return TransientError(f"{what} timed out ({detail})", **where)
    if kind == "connect":
        return TransientError(f"{what}: cannot connect ({detail})", **where)
    if kind == "broke_off":
        return TransientError(f"{what}: the answer broke off ({detail})", **where)
    return PermanentError(f"{what} failed: {detail}", **where)


def answer_error(
    status: int,
    message: str,
    *,
    retry_after: float | None = None,
    refusal: type[PermanentError] = Rejected,
    **where: Any,
) -> TransientError | PermanentError:
    """The error of an answer that is not a success: 429 and 5xx are
    :class:`TransientError` (with the server's ``retry_after``), every other
    status is ``refusal`` (:class:`Rejected`, or a client's own subclass of
    :class:`PermanentError`): the server understood and said no."""
    if status == 429 or status >= 500:
        return TransientError(message, retry_after=retry_after, **where)
    return refusal(message, **where)


def redirect_error(
    status: int, location: str | None, who: str, advice: str, **where: Any
) -> PermanentError:
    """The error of a 3xx answer: every HTTP client of :mod:`adapters` sends its
    requests with redirects off and calls this for any 3xx.

    A redirect is never followed: a re-sent document would reach another
    origin (with the token, or with a receipt from a host nobody configured),
    and a retry meets the same answer, so it is permanent and names the
    status and the ``Location`` for whoever fixes the configuration.
    """
    return PermanentError(
        f"{who} answered {status} (a redirect to {_shown(location)}); redirects are not "
        f"followed, nothing was sent there ({advice})",
        **where,
    )


def plain_http_refusal(url: str, token_env: str) -> str | None:
    """Why a token may not be sent to ``url``, or ``None`` when it may.

    A bearer token over plain ``http://`` can be read by anyone on the path,
    so it is allowed only to loopback (the sandbox, a local proxy that speaks
    TLS onwards); every other host needs ``https://``. Decided at start, from
    the configuration, before any call is made.
    """
    parts = urlsplit(url)
    if parts.scheme != "http":
        return None
    host = (parts.hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return None
    try:
        if ipaddress.ip_address(host).is_loopback:
            return None
    except ValueError:
        pass
    return (
        f"the token of {token_env} would travel unencrypted over plain http:// to "
        f"{host or url!r}; use https://, or http:// only to a loopback address"
    )


class _TooLarge(Exception):
    pass


def _shown(location: str | None) -> str:
    """A redirect's ``Location`` as shown in an error: at most 200 characters, or "no
    Location" when the answer names none."""
    if not location:
        return "no Location"
    return location if len(location) <= 200 else location[:200] + "…"


def _read_limited(response: requests.Response) -> bytes:
    chunks, size = [], 0
    for chunk in response.iter_content(64 * 1024):
        size += len(chunk)
        if size > MAX_ANSWER_BYTES:
            raise _TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _kind(exc: Exception) -> str:
    """A short description of a requests error, without the request's headers:
    an ``InvalidHeader`` quotes the header's value, which may be the token."""
    if isinstance(exc, requests.exceptions.InvalidHeader):
        return f"{type(exc).__name__}: a request header is malformed (its value is not shown)"
    return f"{type(exc).__name__}: {exc}"


def _text(element: etree._Element, tag: str) -> str | None:
    value = element.findtext(tag)
    return value.strip() if value and value.strip() else None


def _remote(element: etree._Element) -> RemoteListing:
    return RemoteListing(
        listing_id=_text(element, "listingId") or "",
        marketplace_id=_text(element, "id"),
        published=_text(element, "state") == "published",
        public_url=_text(element, "url"),
        document_hash=_text(element, "documentHash"),
    )
