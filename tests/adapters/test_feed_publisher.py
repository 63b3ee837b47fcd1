"""Publishing a whole feed: atomic in a served folder, and an HTTP PUT to a real server on
127.0.0.1 with its body and headers, 5xx retried as transient and 4xx permanent."""

from __future__ import annotations

import hashlib
import io
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from transport_helpers import SleepRecorder

from adapters.feed import FolderPublisher, HttpPutPublisher, feed_publisher
from syndication.errors import ConfigurationError, PermanentError, Rejected, TransientError

TOKEN = "feed-store-s3cret"


def feed_bytes(marker: str, size: int = 2_000_000) -> bytes:
    """A well-formed feed of about ``size`` bytes, every byte of it depending on ``marker``."""
    line = f"<property><id>{marker}</id></property>\n".encode()
    return b"<?xml version='1.0' encoding='UTF-8'?>\n<root>\n" + line * (size // len(line)) + (
        b"</root>\n"
    )


class OneWay(io.RawIOBase):
    """A stream that can only be read forwards, as from a pipe."""

    def __init__(self, data: bytes, fail_after: int | None = None) -> None:
        self.data, self.at, self.fail_after = data, 0, fail_after

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.fail_after is not None and self.at >= self.fail_after:
            raise OSError(5, "source broke off")
        chunk = self.data[self.at : self.at + min(len(buffer), 65536)]
        buffer[: len(chunk)] = chunk
        self.at += len(chunk)
        return len(chunk)


def test_a_concurrent_reader_only_ever_sees_a_whole_old_or_new_feed(tmp_path: Path) -> None:
    publisher = FolderPublisher("kyero", tmp_path, "https://feeds.example.se/kyero/")
    versions = [feed_bytes("A"), feed_bytes("B", 2_500_000)]
    whole = {hashlib.sha256(v).hexdigest() for v in versions}
    publisher.publish("KTR-SOL.xml", io.BytesIO(versions[0]))
    stop, seen, torn = threading.Event(), set(), []

    def read() -> None:
        while not stop.is_set():
            data = (tmp_path / "KTR-SOL.xml").read_bytes()
            digest = hashlib.sha256(data).hexdigest()
            (seen.add if digest in whole else torn.append)(digest)

    readers = [threading.Thread(target=read) for _ in range(2)]
    for reader in readers:
        reader.start()
    try:
        for n in range(30):
            publisher.publish("KTR-SOL.xml", io.BytesIO(versions[n % 2]))
    finally:
        stop.set()
        for reader in readers:
            reader.join()
    assert torn == [] and seen == whole
    assert [p.name for p in tmp_path.iterdir()] == ["KTR-SOL.xml"]
    assert (tmp_path / "KTR-SOL.xml").stat().st_mode & 0o777 == 0o644


def test_folder_publish_takes_a_path_or_a_one_way_stream_and_returns_the_address(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "served"
    folder.mkdir()
    publisher = FolderPublisher("kyero", folder, "https://feeds.example.se/kyero/")
    streamed = tmp_path / "export.xml"
    streamed.write_bytes(feed_bytes("P", 10_000))
    assert publisher.publish("KTR-SOL.xml", streamed) == (
        "https://feeds.example.se/kyero/KTR-SOL.xml"
    )
    assert (folder / "KTR-SOL.xml").read_bytes() == streamed.read_bytes()
    publisher.publish("KTR-SOL.xml", OneWay(feed_bytes("Q", 10_000)))  # type: ignore[arg-type]
    assert (folder / "KTR-SOL.xml").read_bytes() == feed_bytes("Q", 10_000)


def test_a_source_that_breaks_off_leaves_the_old_feed_and_no_temporary_file(
    tmp_path: Path,
) -> None:
    publisher = FolderPublisher("kyero", tmp_path, "https://feeds.example.se/kyero")
    publisher.publish("KTR-SOL.xml", io.BytesIO(feed_bytes("OLD", 10_000)))
    broken = OneWay(feed_bytes("NEW", 500_000), fail_after=200_000)
    with pytest.raises(TransientError) as caught:
        publisher.publish("KTR-SOL.xml", broken)  # type: ignore[arg-type]
    assert "source broke off" in str(caught.value) and caught.value.marketplace == "kyero"
    assert (tmp_path / "KTR-SOL.xml").read_bytes() == feed_bytes("OLD", 10_000)
    assert [p.name for p in tmp_path.iterdir()] == ["KTR-SOL.xml"]


@pytest.mark.parametrize("name", ["../etc/passwd", "a/b.xml", ".hidden.xml", "", "x y.xml"])
def test_a_file_name_that_is_not_a_plain_name_is_refused(tmp_path: Path, name: str) -> None:
    publisher = FolderPublisher("kyero", tmp_path, "https://feeds.example.se/kyero")
    with pytest.raises(PermanentError):
        publisher.publish(name, io.BytesIO(b"<root/>"))
    assert list(tmp_path.iterdir()) == []


class Store:
    """An object store stand-in on 127.0.0.1: records every request; answers from a script."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.answers: list[int] = []
        store = self

        class Handler(BaseHTTPRequestHandler):
            def do_PUT(self) -> None:  # noqa: N802 - the http.server hook name
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                store.requests.append(
                    {"path": self.path, "headers": dict(self.headers), "body": body}
                )
                status = store.answers.pop(0) if store.answers else 200
                message = b"<error><message>bucket says no</message></error>"
                payload = b"" if status < 300 else message
                self.send_response(status)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/bucket/feeds"


@pytest.fixture
def store() -> Iterator[Store]:
    running = Store()
    running.thread.start()
    yield running
    running.server.shutdown()
    running.server.server_close()


def http_publisher(store: Store, waits: SleepRecorder) -> HttpPutPublisher:
    publisher = feed_publisher(
        "kyero",
        {"target": "http", "url": store.url, "token_env": "FEED_TOKEN",
         "public_url": "https://cdn.example.se/kyero"},
        {"FEED_TOKEN": TOKEN},
        sleep=waits,
    )
    assert isinstance(publisher, HttpPutPublisher)
    return publisher


def test_the_put_carries_the_whole_feed_and_the_token(store: Store, tmp_path: Path) -> None:
    waits = SleepRecorder()
    publisher = http_publisher(store, waits)
    streamed = tmp_path / "export.xml"
    streamed.write_bytes(feed_bytes("PUT", 1_500_000))
    address = publisher.publish("KTR-SOL.xml", streamed)
    publisher.close()
    assert address == "https://cdn.example.se/kyero/KTR-SOL.xml"
    (request,) = store.requests
    assert request["path"] == "/bucket/feeds/KTR-SOL.xml"
    assert request["body"] == streamed.read_bytes()
    assert request["headers"]["Authorization"] == f"Bearer {TOKEN}"
    assert request["headers"]["Content-Type"] == "application/xml; charset=utf-8"
    assert request["headers"]["Content-Length"] == str(len(streamed.read_bytes()))
    assert waits == []


def test_a_5xx_is_retried_and_the_retry_sends_the_whole_body_again(store: Store) -> None:
    waits = SleepRecorder()
    publisher = http_publisher(store, waits)
    store.answers = [503, 500]
    feed = OneWay(feed_bytes("RETRY", 300_000))
    publisher.publish("KTR-SOL.xml", feed)  # type: ignore[arg-type]
    publisher.close()
    assert len(store.requests) == 3 and len(waits) == 2
    assert all(r["body"] == feed_bytes("RETRY", 300_000) for r in store.requests)


def test_a_5xx_that_persists_is_a_transient_error(store: Store) -> None:
    waits = SleepRecorder()
    publisher = http_publisher(store, waits)
    store.answers = [503] * 10
    with pytest.raises(TransientError) as caught:
        publisher.publish("KTR-SOL.xml", io.BytesIO(feed_bytes("X", 1000)))
    publisher.close()
    assert "503" in str(caught.value) and caught.value.marketplace == "kyero"
    assert len(store.requests) == 4 and TOKEN not in str(caught.value)


@pytest.mark.parametrize("status", [400, 403, 404])
def test_a_4xx_is_permanent_and_not_retried(store: Store, status: int) -> None:
    waits = SleepRecorder()
    publisher = http_publisher(store, waits)
    store.answers = [status]
    with pytest.raises(Rejected) as caught:
        publisher.publish("KTR-SOL.xml", io.BytesIO(feed_bytes("X", 1000)))
    publisher.close()
    assert f"answered {status}" in str(caught.value) and "bucket says no" in str(caught.value)
    assert len(store.requests) == 1 and waits == []


def test_a_connection_refused_is_transient(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    publisher = feed_publisher(
        "kyero",
        {"target": "http", "url": f"http://127.0.0.1:{port}/b",
         "public_url": "https://cdn.example.se/kyero"},
        {},
        sleep=SleepRecorder(),
    )
    with pytest.raises(TransientError):
        publisher.publish("KTR-SOL.xml", io.BytesIO(b"<root/>"))
    publisher.close()


@pytest.mark.parametrize(
    ("entry", "key"),
    [
        ({"target": "ftp"}, "target"),
        ({"target": "folder"}, "folder"),
        ({"target": "http", "url": "store.example"}, "url"),
        ({"target": "http", "url": "https://s.example", "token_env": "NOPE"}, "token_env"),
        ({"target": "folder", "folder": "/x", "public_url": "feeds.example"}, "public_url"),
    ],
)
def test_configuration_mistakes_name_the_key(entry: dict[str, str], key: str) -> None:
    entry = {"public_url": "https://cdn.example.se/kyero", **entry}
    with pytest.raises(ConfigurationError) as caught:
        feed_publisher("kyero", entry, {})
    assert f"key {key!r}" in str(caught.value) and caught.value.marketplace == "kyero"


def test_a_missing_folder_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError):
        feed_publisher("kyero", {"target": "folder", "folder": str(tmp_path / "no"),
                                 "public_url": "https://cdn.example.se/k"}, {})
