"""The sandbox marketplaces on loopback: one HTTP server per marketplace.

:class:`Sandbox` starts a :class:`~http.server.ThreadingHTTPServer` for each
marketplace on ``127.0.0.1`` (port 0 picks a free port), each in a background
thread, in front of a :class:`SandboxMarketplace`. Tests, ``syndication demo``
and an agency's test set-up use it the same way::

    with Sandbox(token="s3cret") as sandbox:
        sandbox.write_marketplaces_file(path, token_env="SANDBOX_TOKEN")
        sandbox["hemnet"].faults.fail_next(2, status=503, retry_after=1)
        ...
        assert sandbox["hemnet"].creations["OBJ1"] == 1

``down(name)`` closes a marketplace's socket (and its open connections) so
calls are refused; ``up(name)`` opens it again on the same port.
"""

from __future__ import annotations

import socket
import socketserver
import sys
import threading
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from adapters.sandbox.marketplace import SandboxMarketplace, error
from syndication import registry

MAX_BODY = 10 * 1024 * 1024


class _Handler(BaseHTTPRequestHandler):
    """Reads one request, lets the marketplace answer, writes the answer."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, add=False)

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            answer = error(413, f"documents larger than {MAX_BODY} bytes are refused")
            self.close_connection = True
        else:
            body = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            answer = self.server.marketplace.handle(self.command, self.path, headers, body)
        if answer.never:
            self._never_answer()
            return
        if answer.hang:
            self.close_connection = True
            if self.server.stopping.wait(answer.hang):
                return
        if answer.trickle:
            self._trickle(answer)
            return
        self.send_response(answer.status)
        self.send_header("Content-Type", "application/xml; charset=utf-8")
        self.send_header("Content-Length", str(len(answer.body)))
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(answer.body)

    do_GET = do_POST = do_PUT = do_DELETE = _serve

    def _never_answer(self) -> None:
        """Hold the connection open without a byte of answer while the marketplace
        hangs; then close it (the client gave up long ago)."""
        self.close_connection = True
        faults = self.server.marketplace.faults
        while faults.hanging and not self.server.stopping.wait(0.05):
            pass

    def _trickle(self, answer: Any) -> None:
        """Write the whole answer, status line first, one byte every ``answer.trickle`` s."""
        self.close_connection = True
        head = [f"HTTP/1.1 {answer.status} {self.responses.get(answer.status, ('',))[0]}",
                "Content-Type: application/xml; charset=utf-8",
                f"Content-Length: {len(answer.body)}",
                *(f"{name}: {value}" for name, value in answer.headers.items())]
        raw = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + answer.body
        for index in range(len(raw)):
            self.wfile.write(raw[index:index + 1])
            self.wfile.flush()
            if self.server.stopping.wait(answer.trickle):
                return

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        """Silent: the marketplace logs what matters, and headers hold the token."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, port: int, marketplace: SandboxMarketplace, stopping: threading.Event):
        self.marketplace = marketplace
        self.stopping = stopping
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(("127.0.0.1", port), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up (it timed out, or the marketplace went down) is
        not an error of the sandbox; anything else is reported as usual."""
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)

    def server_bind(self) -> None:
        """Bind without ``HTTPServer``'s reverse DNS lookup of the address."""
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = "127.0.0.1", self.server_address[1]

    def track(self, connection: socket.socket, *, add: bool) -> None:
        with self._connections_lock:
            (self._connections.add if add else self._connections.discard)(connection)

    def drop_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _Runner:
    """One marketplace's server thread, which can be taken down and brought up."""

    def __init__(self, marketplace: SandboxMarketplace, port: int) -> None:
        self.marketplace = marketplace
        self.port = port
        self.stopping = threading.Event()
        self.server: _Server | None = None
        self.thread: threading.Thread | None = None

    def up(self) -> None:
        if self.server is not None:
            return
        self.stopping.clear()
        self.server = _Server(self.port, self.marketplace, self.stopping)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(
            target=self.server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"sandbox-{self.marketplace.name}",
            daemon=True,
        )
        self.thread.start()

    def down(self) -> None:
        server, self.server = self.server, None
        if server is None:
            return
        self.stopping.set()
        server.shutdown()
        server.server_close()
        server.drop_connections()
        if self.thread is not None:
            self.thread.join(timeout=5)


class Sandbox:
    """Loopback sandbox marketplaces, one HTTP server each.

    ``token`` (if given) is required as ``Authorization: Bearer …`` by every
    marketplace; ``ports`` maps names to fixed ports (default: free ports).
    """

    def __init__(
        self,
        names: Iterable[str] | None = None,
        *,
        token: str | None = None,
        publish_delay: float = 0.0,
        ports: dict[str, int] | None = None,
        seed: int = 0,
    ) -> None:
        self.token = token
        self.marketplaces = {
            name: SandboxMarketplace(name, token=token, publish_delay=publish_delay, seed=seed)
            for name in (names if names is not None else registry.names(transport="http"))
        }
        ports = ports or {}
        self._runners = {
            name: _Runner(mp, ports.get(name, 0)) for name, mp in self.marketplaces.items()
        }

    def start(self) -> Sandbox:
        """Start every marketplace; returns ``self``."""
        for runner in self._runners.values():
            runner.up()
        return self

    def stop(self) -> None:
        """Stop every marketplace and wake any hanging answer; unsent callbacks are dropped."""
        for runner in self._runners.values():
            runner.down()
        for marketplace in self.marketplaces.values():
            if marketplace.callbacks is not None:
                marketplace.callbacks.cancel()

    def call_back(self, service_url: str, secret: bytes) -> None:
        """Every marketplace calls back ``service_url``/hooks/<name>, signed with ``secret``,
        when it publishes a listing after its delay (R16)."""
        for name, marketplace in self.marketplaces.items():
            marketplace.configure_callbacks(f"{service_url.rstrip('/')}/hooks/{name}", secret)

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __getitem__(self, name: str) -> SandboxMarketplace:
        return self.marketplaces[name]

    def set_publish_delay(self, seconds: float) -> None:
        """Every marketplace publishes accepted listings after ``seconds``."""
        for marketplace in self.marketplaces.values():
            marketplace.set_publish_delay(seconds)

    def url(self, name: str) -> str:
        """The base address of marketplace ``name`` (``http://127.0.0.1:PORT``)."""
        return f"http://127.0.0.1:{self._runners[name].port}"

    def down(self, name: str) -> None:
        """Close the marketplace's socket and connections: calls are refused."""
        self._runners[name].down()

    def up(self, name: str) -> None:
        """Serve the marketplace again, on the same port."""
        self._runners[name].up()

    def write_marketplaces_file(
        self,
        path: Path | str,
        token_env: str | None = None,
        *,
        connect_timeout: float = 1.0,
        read_timeout: float = 5.0,
        deadline: float | None = None,
        max_attempts: int = 5,
        max_delay: float = 30.0,
        initial_wait: float = 0.05,
        max_wait: float = 1.0,
        callback_secret_env: str | None = None,
        callback_check_delay: float | None = None,
    ) -> Path:
        """Write a marketplaces file (TOML) pointing every marketplace at this
        sandbox. ``token_env`` names the environment variable that will hold
        :attr:`token`; the token itself is never written, nor the callback secret
        (``callback_secret_env`` names its variable)."""
        lines = [
            "# Sandbox marketplaces on loopback (written by adapters.sandbox).",
            "[defaults]",
            f"connect_timeout = {connect_timeout!r}",
            f"read_timeout = {read_timeout!r}",
            *([f"deadline = {deadline!r}"] if deadline is not None else []),
            f"max_attempts = {max_attempts}",
            f"max_delay = {max_delay!r}",
            f"initial_wait = {initial_wait!r}",
            f"max_wait = {max_wait!r}",
        ]
        for name in self.marketplaces:
            lines += [
                "",
                f"[marketplaces.{name}]",
                'transport = "http"',
                f'url = "{self.url(name)}"',
            ]
            if token_env:
                lines.append(f'token_env = "{token_env}"')
            if callback_secret_env:
                lines.append(f'callback_secret_env = "{callback_secret_env}"')
                if callback_check_delay is not None:
                    lines.append(f"callback_check_delay = {callback_check_delay!r}")
        path = Path(path)
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return path
