"""The one HTTP service tried as a client and an attacker would, over real HTTP on 127.0.0.1.

Slow-loris clients are cut off at the request deadline and never keep a
normal client waiting; a burst of failed logins leaves other users' pages
answering at once; bodies are capped; the access log is one JSON line per
request without query, cookie or token; the OpenAPI document lists no page of
the web view.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from sqlalchemy import Engine
from store_states import free_port
from web_server import PASSWORD, Served, csrf_of, login, serve

from syndication.http_guards import BODY_LIMIT, SECURITY_HEADERS
from syndication.http_server import ServerLimits

SLOW_CLIENTS = 200
DEADLINE = 3.0


@pytest.fixture
def served(seeded: Engine) -> Iterator[Served]:
    with serve(seeded) as running:
        yield running


def open_slow_clients(served: Served, count: int) -> list[socket.socket]:
    clients = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", served.running.port), timeout=10)
        sock.sendall(b"GET /login HTTP/1.1\r\n")
        clients.append(sock)
    return clients


def test_slow_loris_clients_are_cut_off_and_never_block_a_normal_client(seeded: Engine) -> None:
    """200 connections sending their headers a byte a second: a normal client still gets
    its page at once, and each slow connection is closed by the server at the deadline."""
    limits = ServerLimits(threads=4, request_timeout=DEADLINE)
    with serve(seeded, limits) as served:
        started = time.monotonic()
        clients = open_slow_clients(served, SLOW_CLIENTS)
        stop = threading.Event()
        header = b"X-Slow: " + b"a" * 100

        def drip() -> None:
            for position in range(len(header)):
                for sock in clients:
                    try:
                        sock.send(header[position:position + 1])
                    except OSError:
                        pass
                if stop.wait(1.0):
                    return

        dripper = threading.Thread(target=drip, daemon=True)
        dripper.start()
        try:
            time.sleep(1.5)
            for _ in range(3):
                began = time.monotonic()
                answer = requests.get(served.url("/login"), timeout=10)
                assert answer.status_code == 200
                assert time.monotonic() - began < 2.0
            closed_at = []
            for sock in clients:
                sock.settimeout(DEADLINE + 10)
                try:
                    assert sock.recv(1024) == b""
                except ConnectionResetError:
                    pass
                closed_at.append(time.monotonic() - started)
            assert max(closed_at) < DEADLINE + 8, max(closed_at)
            assert min(closed_at) >= DEADLINE - 0.5, min(closed_at)
        finally:
            stop.set()
            dripper.join(timeout=5)
            for sock in clients:
                sock.close()
        assert requests.get(served.url("/login"), timeout=10).status_code == 200


def test_a_request_sent_whole_in_time_is_not_cut_off(seeded: Engine) -> None:
    """The deadline is for reading the request: a slow route and a kept-alive connection
    that sends its next request in time are served."""
    with serve(seeded, ServerLimits(threads=4, request_timeout=DEADLINE)) as served:
        with socket.create_connection(("127.0.0.1", served.running.port), timeout=10) as sock:
            for _ in range(2):
                sock.sendall(b"GET /login HTTP/1.1\r\nHost: x\r\n\r\n")
                reply = b""
                while b"</html>" not in reply:
                    chunk = sock.recv(65536)
                    assert chunk, reply
                    reply += chunk
                assert reply.startswith(b"HTTP/1.1 200 ")
                time.sleep(DEADLINE / 2)


def test_a_burst_of_failed_logins_keeps_other_users_answered_at_once(served: Served) -> None:
    staff, answer = login(served)
    assert answer.status_code == 302
    forms = []
    for _ in range(20):
        http = requests.Session()
        forms.append((http, csrf_of(http.get(served.url("/login"), timeout=10).text)))
    gate = threading.Barrier(21)

    def guess(k: int) -> int:
        http, csrf = forms[k]
        gate.wait()
        return http.post(served.url("/login"), allow_redirects=False, timeout=30,
                         data={"csrf_token": csrf, "username": "nobody-at-all",
                               "password": f"guess-{k}"}).status_code

    with ThreadPoolExecutor(max_workers=20) as pool:
        guesses = [pool.submit(guess, k) for k in range(20)]
        gate.wait()
        slowest = 0.0
        for path in ("/", "/listings/PUB", "/offices/OFF1", "/?q=PUB") * 3:
            began = time.monotonic()
            assert staff.get(served.url(path), timeout=10).status_code == 200, path
            slowest = max(slowest, time.monotonic() - began)
        statuses = sorted(future.result() for future in guesses)
    assert set(statuses) <= {401, 429} and statuses.count(401) <= 3
    assert slowest < 2.0, slowest
    http, answer = login(served, "anna", PASSWORD, requests.Session())
    assert answer.status_code == 302


def test_bodies_are_capped_but_the_records_route_caps_its_own(served: Served) -> None:
    http = requests.Session()
    csrf = csrf_of(http.get(served.url("/login"), timeout=10).text)
    big = {"csrf_token": csrf, "username": "anna", "password": "x" * (BODY_LIMIT + 1)}
    answer = http.post(served.url("/login"), data=big, allow_redirects=False, timeout=10)
    assert answer.status_code == 413 and "larger than 65536 bytes" in answer.text

    def chunks() -> Iterator[bytes]:
        yield f"csrf_token={csrf}&username=anna&password=".encode()
        for _ in range(BODY_LIMIT // 1024 + 2):
            yield b"y" * 1024

    chunked = http.post(served.url("/login"), data=chunks(), allow_redirects=False, timeout=10,
                        headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert chunked.status_code == 413
    api = requests.post(served.url("/api/v1/transfers"), data=b"{" + b" " * BODY_LIMIT + b"}",
                        headers={"Content-Type": "application/json"}, timeout=10)
    assert api.status_code == 413 and "larger than" in api.json()["message"]
    def echo(document: dict[str, int]) -> dict[str, int]:
        return document

    served.app.add_api_route("/api/v1/echo", echo, methods=["POST"])
    assert requests.post(served.url("/api/v1/echo"), json={"a": 1}, timeout=10).json() == {"a": 1}

    def json_chunks() -> Iterator[bytes]:
        yield b'{"a": 1'
        for _ in range(BODY_LIMIT // 1024 + 2):
            yield b" " * 1024
        yield b"}"

    streamed = requests.post(served.url("/api/v1/echo"), data=json_chunks(), timeout=10,
                             headers={"Content-Type": "application/json"})
    assert streamed.status_code == 413 and "larger than" in streamed.json()["message"]
    records = requests.put(served.url("/api/v1/records"), data=b" " * (BODY_LIMIT + 1),
                           headers={"Content-Type": "application/json"}, timeout=10)
    assert records.status_code != 413
    assert http.post(served.url("/login"), allow_redirects=False, timeout=10,
                     data={"csrf_token": csrf, "username": "anna",
                           "password": PASSWORD}).status_code == 302


def test_the_openapi_document_lists_the_api_alone(served: Served) -> None:
    answer = requests.get(served.url("/api/v1/openapi.json"), timeout=10)
    assert answer.status_code == 200
    document = answer.json()
    assert document["openapi"].startswith("3.")
    assert all(path.startswith("/api/v1/") for path in document.get("paths", {}))
    for page in ("/", "/login", "/logout", "/listings/{listing_id}", "/offices/{office_id}"):
        assert page not in document.get("paths", {})
    for header, value in SECURITY_HEADERS.items():
        assert answer.headers[header] == value
    unknown = requests.get(served.url("/api/v1/no-such-route"), allow_redirects=False,
                           timeout=10)
    assert unknown.status_code == 404 and unknown.headers["Content-Type"] == "application/json"


def test_the_access_log_is_one_json_line_per_request_without_secrets(
    seeded: Engine, tmp_path: Path
) -> None:
    """``syndication serve`` under ``SYNDICATION_LOG_FORMAT=json``: each request is one
    JSON line with method, path, status and duration, and no query, cookie or token."""
    from web_server import MovableClock, give_password

    give_password(seeded, "anna", MovableClock())
    port = free_port()
    env = {key: value for key, value in os.environ.items()
           if not key.startswith("SYNDICATION_")}
    env.update(SYNDICATION_DATABASE_URL=str(seeded.url), SYNDICATION_LOG_FORMAT="json",
               SYNDICATION_WEB_SECRET="s" * 40)
    server = subprocess.Popen(
        [sys.executable, "-m", "syndication", "serve", "--port", str(port), "--threads", "2"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        assert server.stdout is not None
        assert base in server.stdout.readline()
        http = requests.Session()
        form = http.get(f"{base}/login?next=/listings/PUB&token=query-secret", timeout=10)
        answer = http.post(f"{base}/login", allow_redirects=False, timeout=30,
                           data={"csrf_token": csrf_of(form.text), "username": "anna",
                                 "password": PASSWORD})
        assert answer.status_code == 302
        cookie = http.cookies["syndication_session"]
        payload = cookie.split(".")[0]
        token = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["token"]
        assert http.get(f"{base}/?q=hemlig-fraga", timeout=10).status_code == 200
    finally:
        server.terminate()
        _, err = server.communicate(timeout=60)
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    requests_logged = [line for line in lines if line["event"] == "http_request"]
    assert [(line["method"], line["path"], line["status"]) for line in requests_logged] == [
        ("GET", "/login", 200), ("POST", "/login", 302), ("GET", "/", 200)]
    for line in requests_logged:
        assert set(line) == {"event", "level", "timestamp", "method", "path", "status",
                             "duration_ms"}
        assert isinstance(line["duration_ms"], int | float) and line["duration_ms"] >= 0
    assert token.startswith("st_")
    for secret in ("query-secret", "hemlig-fraga", "next=", cookie, payload[:20], PASSWORD,
                   token, token.split("_")[1]):
        assert secret not in err


def test_sync_routes_run_at_most_threads_at_once(seeded: Engine) -> None:
    """``--threads`` bounds the thread pool: six slow requests at once, two at a time."""
    with serve(seeded, ServerLimits(threads=2)) as served:
        lock = threading.Lock()
        running = [0]
        peak = [0]

        def slow() -> dict[str, int]:
            with lock:
                running[0] += 1
                peak[0] = max(peak[0], running[0])
            time.sleep(0.4)
            with lock:
                running[0] -= 1
            return {"ok": 1}

        served.app.add_api_route("/api/v1/slow", slow)
        with ThreadPoolExecutor(max_workers=6) as pool:
            answers = list(pool.map(
                lambda _: requests.get(served.url("/api/v1/slow"), timeout=30).status_code,
                range(6)))
        assert answers == [200] * 6
        assert peak[0] == 2


def test_a_body_sent_too_slowly_is_cut_off_at_the_deadline(seeded: Engine) -> None:
    with serve(seeded, ServerLimits(threads=2, request_timeout=DEADLINE)) as served:
        began = time.monotonic()
        with socket.create_connection(("127.0.0.1", served.running.port), timeout=10) as sock:
            sock.sendall(b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n"
                         b"Content-Type: application/x-www-form-urlencoded\r\n\r\nu")
            sock.settimeout(DEADLINE + 10)
            while True:
                try:
                    chunk = sock.recv(1024)
                except ConnectionResetError:
                    break
                if not chunk:
                    break
                if time.monotonic() - began < DEADLINE - 0.5:
                    sock.send(b"x")
        assert DEADLINE - 0.5 <= time.monotonic() - began < DEADLINE + 8


def test_headers_past_the_size_limit_are_refused(served: Served) -> None:
    answer = requests.get(served.url("/login"), headers={"X-Big": "b" * (20 * 1024)}, timeout=10)
    assert answer.status_code == 431 and "larger than 16384 bytes" in answer.text
    api = requests.get(served.url("/api/v1/openapi.json"), timeout=10,
                       headers={f"X-Many-{n}": "v" * 100 for n in range(200)})
    assert api.status_code == 431 and "larger than" in api.json()["message"]
    assert requests.get(served.url("/login"), timeout=10).status_code == 200
