"""The HTTP transport's hard edges: an overall deadline per exchange, redirects never
followed, and no token over plain ``http://`` to anything but loopback."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from transport_helpers import TOKEN, delivery

from adapters.config import load_marketplaces
from adapters.http import HttpTransport
from adapters.retry import RetryPolicy
from syndication.errors import ConfigurationError, PermanentError, TransientError
from syndication.settings import Settings


def once(sandbox, name: str = "hemnet", **options: float) -> HttpTransport:
    """A transport making exactly one attempt per call."""
    return HttpTransport(name, sandbox.url(name), token=TOKEN,
                         policy=RetryPolicy.standard(max_attempts=1), **options)


def test_a_trickling_marketplace_is_cut_at_the_deadline(sandbox):
    sandbox["hemnet"].faults.trickle_all(1.0)
    transport = once(sandbox, connect_timeout=1.0, read_timeout=5.0, deadline=2.0)
    began = time.monotonic()
    with pytest.raises(TransientError, match=r"no complete answer within the 2 s deadline"):
        transport.send(delivery("hemnet"))
    took = time.monotonic() - began
    assert 1.9 <= took < 3.5, took
    transport.close()


def test_a_hung_marketplace_is_cut_at_the_deadline_before_the_read_timeout(sandbox):
    sandbox["blocket"].faults.hang_all()
    transport = once(sandbox, "blocket", connect_timeout=1.0, read_timeout=30.0, deadline=1.0)
    began = time.monotonic()
    with pytest.raises(TransientError, match="deadline"):
        transport.send(delivery("blocket"))
    assert time.monotonic() - began < 2.5
    sandbox["blocket"].faults.clear()
    transport.close()


def test_a_call_within_its_deadline_is_untouched_and_the_deadline_does_not_linger(sandbox):
    transport = once(sandbox, deadline=0.5)
    for _ in range(3):
        receipt = transport.send(delivery("hemnet"))
        assert receipt.marketplace_id
    time.sleep(0.7)
    assert transport.send(delivery("hemnet")).marketplace_id
    assert sandbox["hemnet"].creations[delivery("hemnet").listing_id] == 1
    transport.close()


def test_the_deadlines_of_many_calls_start_no_thread_per_call(sandbox, monkeypatch):
    """One watchdog thread serves every deadline of the process; a thread per call cost
    more CPU than the call itself."""
    transport = once(sandbox, deadline=5.0)
    transport.send(delivery("hemnet"))
    starts: list[str] = []
    real_start = threading.Thread.start

    def counted(thread: threading.Thread) -> None:
        starts.append(thread.name)
        real_start(thread)

    monkeypatch.setattr(threading.Thread, "start", counted)
    for _ in range(20):
        assert transport.send(delivery("hemnet")).marketplace_id
    assert starts == []
    transport.close()


@pytest.fixture
def redirector(sandbox) -> Iterator[tuple[str, list[str]]]:
    """A server that answers every call with 307 to the sandbox's Hemnet; its calls."""
    calls: list[str] = []
    target = sandbox.url("hemnet")

    class Redirect(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            calls.append(f"{self.command} {self.path}")
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            self.send_response(307)
            self.send_header("Location", target + self.path)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_GET = do_POST = do_PUT = do_DELETE = _answer

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", calls
    server.shutdown()
    server.server_close()


def test_a_redirect_is_a_failure_naming_status_and_location_and_nothing_is_resent(
    sandbox, redirector
):
    url, calls = redirector
    transport = HttpTransport("hemnet", url, token=TOKEN,
                              policy=RetryPolicy.standard(max_attempts=3, initial_wait=0.01))
    with pytest.raises(PermanentError) as caught:
        transport.send(delivery("hemnet"))
    message = str(caught.value)
    assert "307" in message and sandbox.url("hemnet") + "/listings/" in message, message
    assert "not followed" in message
    assert len(calls) == 1, calls
    assert sandbox["hemnet"].call_count() == 0
    assert sandbox["hemnet"].creations == {}
    transport.close()


def settings_for(tmp_path: Path, table: str) -> Settings:
    path = tmp_path / "marketplaces.toml"
    path.write_text(table, encoding="utf-8")
    return Settings(marketplaces_file=path, outbox=tmp_path / "out", environ={"TOK": "t0k3n"})


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        (
            "[marketplaces.hemnet]\ntransport = 'http'\nurl = 'http://feeds.hemnet.example'\n"
            "token_env = 'TOK'\n",
            r"marketplace 'hemnet', key 'url': the token of TOK would travel unencrypted "
            r"over plain http:// to 'feeds.hemnet.example'",
        ),
        (
            "[marketplaces.blocket]\ntransport = 'http'\nurl = 'http://10.0.0.7:8080/api'\n"
            "token_env = 'TOK'\n",
            r"marketplace 'blocket', key 'url': .* plain http://",
        ),
        (
            "[marketplaces.kyero]\ntransport = 'feed'\ntarget = 'http'\n"
            "url = 'http://store.example/feeds'\ntoken_env = 'TOK'\n"
            "public_url = 'https://feeds.example/kyero'\n",
            r"feed of 'kyero', key 'url': .* plain http://",
        ),
    ],
)
def test_a_token_over_plain_http_to_another_host_is_refused_at_start(tmp_path, table, expected):
    with pytest.raises(ConfigurationError, match=expected) as caught:
        load_marketplaces(settings_for(tmp_path, table))
    assert "t0k3n" not in str(caught.value)


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:9", "http://localhost:9", "http://[::1]:9", "https://feeds.example"],
)
def test_a_token_goes_over_https_or_to_loopback(tmp_path, url):
    table = f"[marketplaces.hemnet]\ntransport = 'http'\nurl = '{url}'\ntoken_env = 'TOK'\n"
    assert load_marketplaces(settings_for(tmp_path, table))["hemnet"].kind == "http"


def test_plain_http_without_a_token_is_allowed(tmp_path):
    table = "[marketplaces.hemnet]\ntransport = 'http'\nurl = 'http://feeds.example'\n"
    assert load_marketplaces(settings_for(tmp_path, table))["hemnet"].url == "http://feeds.example"


def test_the_deadline_comes_from_the_file(tmp_path):
    table = ("[defaults]\ndeadline = 7.5\n[marketplaces.hemnet]\ntransport = 'http'\n"
             "url = 'https://feeds.example'\n")
    transport = load_marketplaces(settings_for(tmp_path, table))["hemnet"].transport
    assert isinstance(transport, HttpTransport) and transport.deadline == 7.5
