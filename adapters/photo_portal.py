"""The client of the photographers' portal API (R11, seed 001).

It does three things: list the assignments ready for transfer (status 1),
read one assignment with its images (title, tag, order) and download an
image, and set an assignment to status 2 once its images are stored. The
API is described in the README, section "Photo intake".

One pooled :class:`requests.Session` carries the bearer token; every call has
a timeout. Failures are translated and retried as in every HTTP client of
:mod:`adapters`: requests' exceptions by :func:`adapters.http.request_error`,
failed answers by :func:`adapters.http.answer_error`, the schedule by an
:class:`adapters.retry.RetryPolicy` (exponential backoff with jitter, a
``Retry-After`` honoured). So connection errors, timeouts, downloads broken
off, 5xx and 429 are retried; other 4xx and requests' other errors are not.
Callers see only :class:`~syndication.errors.TransientError` and
:class:`~syndication.errors.PermanentError` (with :class:`NotFound` for a 404
and :class:`ImageTooLarge` for a download over the size cap, cut off rather
than read whole). The token is never logged and never part of an error message.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, Any

import requests
from tenacity import Retrying

from adapters.http import answer_error, redirect_error, request_error
from adapters.retry import RetryPolicy, log_retries, parse_retry_after
from syndication.errors import ConfigurationError, PermanentError, Rejected, TransientError
from syndication.logs import get_logger
from syndication.settings import Settings

TOKEN_VARIABLE = "SYNDICATION_PHOTO_PORTAL_TOKEN"
DEFAULT_TIMEOUT: tuple[float, float] = (5.0, 30.0)
DEFAULT_MAX_IMAGE_BYTES = 25 * 1024 * 1024
CHUNK = 64 * 1024
SOURCE = "photo_portal"
DEFAULT_POLICY = RetryPolicy.standard(max_attempts=4, initial_wait=0.5, max_wait=10, jitter=0.5)
"""Four calls at most, waits from half a second growing to ten, never past two minutes in all."""


@dataclass(frozen=True)
class PortalImage:
    """One image of an assignment as the portal describes it."""

    id: str
    title: str
    tag: str
    order: int
    content_type: str | None = None
    size: int | None = None


@dataclass(frozen=True)
class PortalAssignment:
    """An assignment ("oppdrag"): the listing's system id, its status and its images."""

    id: str
    system_id: str
    name: str
    status: int
    images: tuple[PortalImage, ...] = ()


class NotFound(PermanentError):
    """The portal does not know the assignment or image (deleted meanwhile)."""


class ImageTooLarge(PermanentError):
    """The image is over the size cap; the download was cut off."""


class PhotoPortalClient:
    """Talks to the portal at ``base_url`` with ``token``.

    ``policy`` and ``sleep`` decide the retries (tests pass a sleep that
    records instead of sleeping); ``max_image_bytes`` caps a download.
    """

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        max_image_bytes: int = DEFAULT_MAX_IMAGE_BYTES,
        policy: RetryPolicy = DEFAULT_POLICY,
        sleep: Callable[[float], Any] = time.sleep,
        session: requests.Session | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.max_image_bytes = max_image_bytes
        self._session = session or requests.Session()
        self._session.headers["Authorization"] = f"Bearer {token}"
        self._session.headers["Accept"] = "application/json"
        self.policy = policy
        self.sleep = sleep

    @classmethod
    def from_settings(cls, settings: Settings, **kwargs: Any) -> PhotoPortalClient:
        """The client for ``SYNDICATION_PHOTO_PORTAL_URL`` with the token from the environment."""
        if not settings.photo_portal_url:
            raise ConfigurationError(
                "SYNDICATION_PHOTO_PORTAL_URL is not set: no photo portal to pull from"
            )
        token = settings.environ.get(TOKEN_VARIABLE)
        if not token:
            raise ConfigurationError(f"{TOKEN_VARIABLE} is not set: the photo portal needs a token")
        return cls(settings.photo_portal_url, token, **kwargs)

    @property
    def _log(self) -> Any:
        """A logger bound to the portal (fetched per use, so logging set up later applies)."""
        return get_logger(source=SOURCE, portal=self.base_url)

    def __repr__(self) -> str:
        return f"PhotoPortalClient({self.base_url!r})"

    # ---- the API -------------------------------------------------------------------

    def ready_assignments(self) -> list[PortalAssignment]:
        """Every assignment at status 1 ("Klar for overføring"), without its images."""
        data = self._json("GET", "/api/assignments", params={"status": 1})
        return [_assignment(item) for item in _field(data, "assignments", list)]

    def assignment(self, assignment_id: str) -> PortalAssignment:
        """One assignment with its images, in the portal's order."""
        return _assignment(self._json("GET", f"/api/assignments/{assignment_id}"))

    def set_fetched(self, assignment_id: str) -> None:
        """Set the assignment to status 2 ("Meglersystemet har hentet bildene")."""
        self._json("PUT", f"/api/assignments/{assignment_id}/status", json={"status": 2})

    def download(self, image: PortalImage, out: IO[bytes]) -> int:
        """Write the image's bytes to ``out`` (truncated first on every attempt); return the size.

        The body is streamed in chunks and cut off past ``max_image_bytes``
        (:class:`ImageTooLarge`); a body shorter than its Content-Length is a
        :class:`TransientError`, retried like a dropped connection.
        """
        return self._retrying()(self._download_once, image, out)

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> PhotoPortalClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # ---- transport -----------------------------------------------------------------

    def _retrying(self) -> Retrying:
        """A tenacity ``Retrying`` of this client's policy, logging each retry."""
        return self.policy.retrying(self.sleep, log_retries(self._log, "photo_portal_retry"))

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self._retrying()(self._json_once, method, path, **kwargs)

    def _json_once(self, method: str, path: str, **kwargs: Any) -> Any:
        with self._call(method, path, **kwargs) as response:
            try:
                return response.json()
            except ValueError as exc:
                raise PermanentError(f"photo portal: {method} {path} did not answer JSON") from exc

    def _download_once(self, image: PortalImage, out: IO[bytes]) -> int:
        """One attempt of :meth:`download`, from the first byte."""
        out.seek(0)
        out.truncate()
        with self._call("GET", f"/api/images/{image.id}/content", stream=True) as response:
            declared = response.headers.get("Content-Length")
            if declared is not None and declared.isdigit() and int(declared) > self.max_image_bytes:
                raise ImageTooLarge(
                    f"image {image.id} is {int(declared)} bytes, "
                    f"over the limit of {self.max_image_bytes}"
                )
            size = 0
            try:
                for chunk in response.iter_content(CHUNK):
                    size += len(chunk)
                    if size > self.max_image_bytes:
                        raise ImageTooLarge(
                            f"image {image.id} is over the limit of {self.max_image_bytes} bytes"
                        )
                    out.write(chunk)
            except requests.RequestException as exc:
                raise request_error(exc, f"photo portal: download of image {image.id}") from exc
            if declared is not None and declared.isdigit() and size != int(declared):
                raise TransientError(
                    f"photo portal: download of image {image.id} broke off "
                    f"after {size} of {declared} bytes"
                )
            return size

    @contextmanager
    def _call(self, method: str, path: str, **kwargs: Any) -> Iterator[requests.Response]:
        """One HTTP call, its failures translated by :mod:`adapters.http`'s rules."""
        url = self.base_url + path
        what = f"photo portal: {method} {path}"
        try:
            response = self._session.request(
                method, url, timeout=self.timeout, allow_redirects=False, **kwargs
            )
        except requests.RequestException as exc:
            error = request_error(exc, what)
            transient = isinstance(error, TransientError)
            event = "photo_portal_unreachable" if transient else "photo_portal_request_failed"
            self._log.warning(event, method=method, path=path, error=error.message)
            raise error from exc
        with response:
            status = response.status_code
            if 300 <= status < 400:
                raise redirect_error(status, response.headers.get("Location"), "photo portal",
                                     "check SYNDICATION_PHOTO_PORTAL_URL")
            if status >= 400:
                if status == 429 or status >= 500:
                    self._log.warning("photo_portal_busy", method=method, path=path, status=status)
                raise answer_error(
                    status,
                    f"{what} answered {status}: {_reason(response)}",
                    retry_after=parse_retry_after(response.headers.get("Retry-After")),
                    refusal=NotFound if status == 404 else Rejected,
                )
            yield response


def _reason(response: requests.Response) -> str:
    try:
        return str(response.json().get("error", ""))[:200]
    except (ValueError, AttributeError):
        return response.reason or ""


def _field(data: Any, name: str, kind: type) -> Any:
    if not isinstance(data, dict) or not isinstance(data.get(name), kind):
        raise PermanentError(f"photo portal: answer without a valid {name!r}")
    return data[name]


def _assignment(data: Any) -> PortalAssignment:
    """An assignment from the API's JSON; a malformed answer is a PermanentError."""
    try:
        images = tuple(
            PortalImage(
                id=str(item["id"]),
                title=str(item.get("title") or ""),
                tag=str(item.get("tag") or ""),
                order=int(item.get("order") or 0),
                content_type=item.get("content_type"),
                size=int(item["size"]) if item.get("size") is not None else None,
            )
            for item in data.get("images") or ()
        )
        return PortalAssignment(
            id=str(data["id"]),
            system_id=str(data["system_id"]),
            name=str(data.get("name") or ""),
            status=int(data["status"]),
            images=tuple(sorted(images, key=lambda i: (i.order, i.id))),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise PermanentError(f"photo portal: malformed assignment in answer ({exc!r})") from exc
