"""Publishing a pull marketplace's full feed (R17): the whole file, atomically.

Kyero fetches an office's feed from an address the agency gives it, whenever
it likes; a reader must only ever see a whole old feed or a whole new one. A
:class:`FeedPublisher` takes the feed as export writes it (a binary stream, or
the path of a file it was streamed to), puts it in place, and returns its
public address (``public_url`` + the file name). Two targets:

* :class:`FolderPublisher` — a folder served by any web server. The feed is
  written to a temporary file in the same folder, flushed and fsynced, made
  readable, and moved over the old one with :func:`os.replace` (atomic within
  one file system); the folder is fsynced so the rename survives a crash.
* :class:`HttpPutPublisher` — an HTTP PUT to object storage, through
  :class:`adapters.http.HttpTransport`, so its retries and its translation of
  errors (5xx and timeouts transient, other 4xx permanent) are the ones every
  HTTP call has. The body is streamed from a file and re-sent whole on a retry.

:func:`feed_publisher` builds one from a configuration table; a token is read
from the environment variable the table names, never written in it.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

from adapters.base import Delivery, Receipt, Transport
from adapters.http import XML, HttpTransport, plain_http_refusal
from adapters.retry import RetryPolicy
from syndication.errors import ConfigurationError, PermanentError, TransientError
from syndication.logs import get_logger

FeedSource = Path | IO[bytes]
"""A feed as export produces it: the path of the file it was streamed to, or a binary stream."""

FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")
"""Feed file names: no folders, no hidden files, nothing a URL must escape."""
CHUNK = 1 << 20
TARGETS = ("folder", "http")
FEED_UPLOAD_DEADLINE = 900.0
"""Seconds a whole feed upload may take: a full office feed is many megabytes."""


class FeedPublisher(ABC):
    """Puts a whole feed at its public address, atomically."""

    def __init__(self, name: str, public_url: str) -> None:
        self.name = name
        self.public_url = public_url.rstrip("/")

    def address(self, file_name: str) -> str:
        """Where readers fetch ``file_name`` once published."""
        return f"{self.public_url}/{quote(file_name)}"

    @abstractmethod
    def publish(self, file_name: str, feed: FeedSource) -> str:
        """Publish ``feed`` as ``file_name`` and return its public address."""

    def close(self) -> None:  # noqa: B027 - optional hook, a no-op by default
        """Release connections."""

    def _checked(self, file_name: str) -> str:
        if not FILE_NAME.fullmatch(file_name) or ".." in file_name:
            raise PermanentError(
                f"feed file name {file_name!r} is not a plain file name "
                "(letters, digits, . _ -; no folders)",
                marketplace=self.name,
            )
        return file_name


class FolderPublisher(FeedPublisher):
    """Publishes into ``folder``, which a web server serves at ``public_url``."""

    def __init__(self, name: str, folder: Path, public_url: str, *, mode: int = 0o644) -> None:
        super().__init__(name, public_url)
        if not folder.is_dir():
            raise ConfigurationError(
                f"feed folder {folder} does not exist or is not a folder", marketplace=name
            )
        self.folder = folder
        self.mode = mode

    def publish(self, file_name: str, feed: FeedSource) -> str:
        """Write ``feed`` beside its old version, then swap it in with one rename.

        A failure on the way (the source breaks off, the disk fills) leaves the
        old feed as it was and no temporary file behind; it is a
        :class:`TransientError`, since the next transfer can try again.
        """
        target = self.folder / self._checked(file_name)
        descriptor, temporary = tempfile.mkstemp(dir=self.folder, prefix=f".{file_name}.",
                                                 suffix=".part")
        try:
            with os.fdopen(descriptor, "wb") as out:
                size = _copy(feed, out)
                out.flush()
                os.fsync(out.fileno())
            os.chmod(temporary, self.mode)
            os.replace(temporary, target)
        except BaseException as exc:
            Path(temporary).unlink(missing_ok=True)
            if isinstance(exc, OSError):
                raise TransientError(
                    f"cannot write the feed {target}: {exc.strerror or exc}", marketplace=self.name
                ) from exc
            raise
        _fsync_folder(self.folder)
        address = self.address(file_name)
        get_logger(marketplace=self.name).info("feed_published", target="folder", bytes=size,
                                               url=address)
        return address


class HttpPutPublisher(FeedPublisher):
    """Publishes with an HTTP PUT of ``{url}/{file name}`` (object storage)."""

    def __init__(self, name: str, transport: HttpTransport, public_url: str) -> None:
        super().__init__(name, public_url)
        self.transport = transport

    def publish(self, file_name: str, feed: FeedSource) -> str:
        """PUT the whole feed; a retried PUT sends it whole again from its start."""
        path = f"/{quote(self._checked(file_name))}"
        with ExitStack() as stack:
            body = _seekable(feed, stack)
            start = body.tell()
            size = body.seek(0, os.SEEK_END) - start

            def rewound() -> IO[bytes]:
                body.seek(start)
                return body

            self.transport.upload(path, rewound, what="publish_feed",
                                  headers={"Content-Type": XML,
                                           "Content-Length": str(size)})
        address = self.address(file_name)
        get_logger(marketplace=self.name).info("feed_published", target="http", bytes=size,
                                               url=address)
        return address

    def close(self) -> None:
        self.transport.close()


def feed_publisher(
    name: str,
    entry: Mapping[str, Any],
    environ: Mapping[str, str],
    *,
    sleep: Callable[[float], Any] | None = None,
) -> FeedPublisher:
    """The publisher ``entry`` configures for marketplace ``name``::

        target = "folder"            # or "http"
        folder = "/srv/feeds"        # target folder
        url = "https://store.example/feeds"   # target http: where to PUT
        token_env = "FEED_STORE_TOKEN"        # optional, the NAME of the variable
        public_url = "https://feeds.example/kyero"

    Every mistake is a :class:`ConfigurationError` naming the marketplace and key.
    """

    def fail(key: str, problem: str) -> ConfigurationError:
        return ConfigurationError(f"feed of {name!r}, key {key!r}: {problem}", marketplace=name)

    public_url = entry.get("public_url")
    if not isinstance(public_url, str) or not public_url.startswith(("http://", "https://")):
        raise fail("public_url", f"an http(s) address is required, not {public_url!r}")
    target = entry.get("target")
    if target == "folder":
        folder = entry.get("folder")
        if not isinstance(folder, str) or not folder:
            raise fail("folder", "must be a folder path")
        return FolderPublisher(name, Path(folder), public_url)
    if target != "http":
        raise fail("target", f"must be one of {', '.join(TARGETS)}, not {target!r}")
    url = entry.get("url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise fail("url", f"an http(s) address is required for target 'http', not {url!r}")
    token = None
    token_env = entry.get("token_env")
    if token_env is not None:
        if not isinstance(token_env, str) or not token_env:
            raise fail("token_env", "must be the name of an environment variable")
        refusal = plain_http_refusal(url, token_env)
        if refusal:
            raise fail("url", refusal)
        token = environ.get(token_env)
        if not token:
            raise fail("token_env", f"environment variable {token_env} is not set")
    options: dict[str, Any] = {"sleep": sleep} if sleep is not None else {}
    transport = HttpTransport(
        name,
        url,
        token=token,
        read_timeout=60.0,
        deadline=FEED_UPLOAD_DEADLINE,
        policy=RetryPolicy.standard(max_attempts=4, max_delay=300),
        **options,
    )
    return HttpPutPublisher(name, transport, public_url)


def _copy(feed: FeedSource, out: IO[bytes]) -> int:
    """Copy ``feed`` into ``out`` in chunks; the number of bytes copied."""
    with ExitStack() as stack:
        source = stack.enter_context(feed.open("rb")) if isinstance(feed, Path) else feed
        before = out.tell()
        shutil.copyfileobj(source, out, CHUNK)
        return out.tell() - before


def _seekable(feed: FeedSource, stack: ExitStack) -> IO[bytes]:
    """``feed`` as a stream that can be read again from its start: the opened file, the
    stream itself, or a temporary copy of a stream that cannot seek."""
    if isinstance(feed, Path):
        return stack.enter_context(feed.open("rb"))
    if feed.seekable():
        return feed
    copy = stack.enter_context(tempfile.TemporaryFile())
    shutil.copyfileobj(feed, copy, CHUNK)
    copy.seek(0)
    return copy


def _fsync_folder(folder: Path) -> None:
    """Make the rename durable (a no-op where folders cannot be opened, as on Windows)."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


class FeedTransport(Transport):
    """The transport of a pull marketplace (R17): it publishes whole feeds, and takes no
    per-listing delivery (the feed job, :mod:`syndication.transfer.feed_job`, publishes)."""

    def __init__(self, publisher: FeedPublisher) -> None:
        self.publisher = publisher

    def send(self, delivery: Delivery) -> Receipt:
        raise PermanentError(
            "this marketplace fetches the office's whole feed; it takes no single listing",
            listing_id=delivery.listing_id,
            marketplace=delivery.marketplace,
        )

    def publish(self, file_name: str, feed: FeedSource) -> str:
        """Publish the whole feed as ``file_name``; its public address."""
        return self.publisher.publish(file_name, feed)

    def close(self) -> None:
        self.publisher.close()
