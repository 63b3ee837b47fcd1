"""One translation of HTTP failures for every client of ``adapters/``.

:func:`adapters.http.request_error` and :func:`adapters.http.answer_error` are
checked against the table of their docstrings; then the marketplaces' HTTP
transport and the photo-portal client meet the same misbehaving server on
loopback (a redirect, never followed, a body that does not decode, a chunked answer that
breaks off, a token that cannot be a header) and must raise the same class of
error, retried or not alike.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from requests import exceptions as rex
from transport_helpers import SleepRecorder, delivery

from adapters.http import HttpTransport, answer_error, request_error
from adapters.photo_portal import NotFound, PhotoPortalClient
from adapters.retry import RetryPolicy
from syndication.errors import PermanentError, Rejected, TransientError

ATTEMPTS = 3
SECRET = "tok-9d2e41\nX-Injected: 1"
"""A token with a line break: requests refuses it as a header and quotes it in the error."""


@pytest.mark.parametrize(
    ("raised", "expected", "wording"),
    [
        (rex.Timeout("slow"), TransientError, " timed out"),
        (rex.ConnectTimeout("slow"), TransientError, " timed out"),
        (rex.ReadTimeout("slow"), TransientError, " timed out"),
        (rex.ConnectionError("refused"), TransientError, ": cannot connect"),
        (rex.SSLError("handshake"), TransientError, ": cannot connect"),
        (rex.ProxyError("proxy down"), TransientError, ": cannot connect"),
        (rex.ChunkedEncodingError("cut"), TransientError, ": the answer broke off"),
        (rex.TooManyRedirects("loop"), PermanentError, " failed: TooManyRedirects"),
        (rex.InvalidURL("bad"), PermanentError, " failed: InvalidURL"),
        (rex.MissingSchema("no scheme"), PermanentError, " failed: MissingSchema"),
        (rex.InvalidHeader("bad"), PermanentError, " failed: InvalidHeader"),
        (rex.InvalidJSONError("bad"), PermanentError, " failed: InvalidJSONError"),
        (rex.ContentDecodingError("bad"), PermanentError, " failed: ContentDecodingError"),
        (rex.RequestException("something"), PermanentError, " failed: RequestException"),
    ],
)
def test_request_errors_translate_as_the_docstring_table_says(
    raised: requests.RequestException, expected: type[Exception], wording: str
) -> None:
    error = request_error(raised, "GET http://m.test/x", listing_id="O1", marketplace="hemnet")
    assert type(error) is expected
    assert error.message.startswith(f"GET http://m.test/x{wording}")
    assert (error.listing_id, error.marketplace) == ("O1", "hemnet")


def test_an_invalid_header_never_repeats_the_header_value() -> None:
    error = request_error(rex.InvalidHeader(f"bad value {SECRET!r}"), "GET /x")
    assert "tok-9d2e41" not in error.message


@pytest.mark.parametrize(
    ("status", "expected"),
    [(429, TransientError), (500, TransientError), (503, TransientError), (599, TransientError),
     (400, Rejected), (401, Rejected), (404, Rejected), (409, Rejected), (422, Rejected)],
)
def test_answers_translate_by_status(status: int, expected: type[Exception]) -> None:
    error = answer_error(status, f"answered {status}", retry_after=4.0, marketplace="blocket")
    assert type(error) is expected and error.marketplace == "blocket"
    if expected is TransientError:
        assert isinstance(error, TransientError) and error.retry_after == 4.0


def test_a_client_names_its_own_refusal() -> None:
    assert type(answer_error(404, "gone", refusal=NotFound)) is NotFound
    assert type(answer_error(503, "busy", refusal=NotFound)) is TransientError


class Misbehaving(BaseHTTPRequestHandler):
    """Answers every request with the server's current ``fault``."""

    protocol_version = "HTTP/1.1"
    server: MisbehavingServer

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self.server.requests[self.server.fault] += 1
        getattr(self, f"_{self.server.fault}")()

    do_GET = do_POST = do_PUT = do_DELETE = _answer  # noqa: N815 - http.server's names

    def _redirect_loop(self) -> None:
        self.send_response(302)
        self.send_header("Location", self.path)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _bad_gzip(self) -> None:
        body = b"this is not gzip at all"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _broken_chunks(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.write(b"5\r\n{\"ass\r\nzz\r\n")
        self.wfile.flush()
        self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        return


class MisbehavingServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Misbehaving)
        self.fault = "redirect_loop"
        self.requests: Counter[str] = Counter()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture
def server() -> Iterator[MisbehavingServer]:
    running = MisbehavingServer()
    thread = threading.Thread(target=running.serve_forever, daemon=True)
    thread.start()
    yield running
    running.shutdown()
    running.server_close()
    thread.join(timeout=5)


Call = Callable[[], object]


def transport_call(url: str, waits: SleepRecorder, token: str = "t0ken") -> Call:
    transport = HttpTransport(
        "hemnet", url, token=token, connect_timeout=1.0, read_timeout=2.0,
        policy=RetryPolicy.standard(max_attempts=ATTEMPTS, initial_wait=0.1, max_wait=1),
        sleep=waits,
    )
    return lambda: transport.send(delivery("hemnet"))


def photo_call(url: str, waits: SleepRecorder, token: str = "t0ken") -> Call:
    client = PhotoPortalClient(
        url, token, timeout=(1.0, 2.0),
        policy=RetryPolicy.standard(max_attempts=ATTEMPTS, initial_wait=0.1, max_wait=1),
        sleep=waits,
    )
    return client.ready_assignments


CLIENTS = {"http_transport": transport_call, "photo_portal": photo_call}


@pytest.mark.parametrize("client", sorted(CLIENTS))
@pytest.mark.parametrize(
    ("fault", "expected", "named"),
    [
        ("redirect_loop", PermanentError, "answered 302 (a redirect to /"),
        ("bad_gzip", PermanentError, "ContentDecodingError"),
        ("broken_chunks", TransientError, "ChunkedEncodingError"),
    ],
)
def test_both_clients_translate_the_same_failure_alike(
    server: MisbehavingServer, client: str, fault: str, expected: type[Exception], named: str
) -> None:
    server.fault = fault
    waits = SleepRecorder()
    call = CLIENTS[client](server.url, waits)
    with pytest.raises((PermanentError, TransientError)) as caught:
        call()
    assert type(caught.value) is expected
    assert named in str(caught.value)
    retried = expected is TransientError
    assert len(waits) == (ATTEMPTS - 1 if retried else 0)
    assert server.requests[fault] == (ATTEMPTS if retried else 1)  # a redirect is not followed


@pytest.mark.parametrize("client", sorted(CLIENTS))
def test_a_token_that_cannot_be_a_header_is_permanent_and_not_repeated(
    server: MisbehavingServer, client: str
) -> None:
    waits = SleepRecorder()
    call = CLIENTS[client](server.url, waits, token=SECRET)
    with pytest.raises(PermanentError) as caught:
        call()
    assert "InvalidHeader" in str(caught.value) and "tok-9d2e41" not in str(caught.value)
    assert waits == [] and sum(server.requests.values()) == 0
