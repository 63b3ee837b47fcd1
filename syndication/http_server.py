"""How the HTTP service is served: uvicorn, bounded, with a deadline for reading each request.

:func:`build_server` gives a :class:`uvicorn.Server` configured as ``syndication
serve`` runs it and the tests serve it; :func:`serve` runs it with the thread
pool of sync routes bounded. The bounds, and why:

* ``threads`` — FastAPI runs sync route functions on anyio's default thread
  limiter; :func:`serve` sets its size, so at most ``threads`` requests touch
  the store at once (keep it at or below the database pool, 10 connections
  plus 10 overflow) and the rest wait their turn without holding one.
* ``limit_concurrency`` — uvicorn answers 503 at once when this many
  connections or requests are open, instead of queueing without end.
* ``timeout_keep_alive`` — an idle keep-alive connection is closed after it.
* ``h11_max_incomplete_event_size`` — h11 buffers no more of a request line
  and headers still arriving (431); the guards check the same size of
  headers that arrived in one read.
* ``request_timeout`` — the slow-loris guard, :class:`DeadlineH11Protocol`.
  uvicorn itself starts no timer while a request is being read: its
  keep-alive timer runs only after a response and is cancelled by any byte
  received (``H11Protocol.data_received``), so a client sending its headers a
  byte a second keeps its connection, and counts against
  ``limit_concurrency``, for ever. The subclass arms a deadline when a
  connection opens and after each response, and closes the connection when
  the request (headers and body) has not arrived by then.

uvicorn's own loggers are routed into structlog (:class:`ToStructlog`) so
the redaction of secrets applies to them too; uvicorn's access log is off,
since :mod:`syndication.http_guards` writes one structured line per request.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from dataclasses import dataclass
from typing import Any

import anyio.to_thread
import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from syndication.http_guards import HEADER_LIMIT
from syndication.logs import get_logger


@dataclass(frozen=True)
class ServerLimits:
    """The bounds of one served process (see the module's docstring)."""

    threads: int = 8
    limit_concurrency: int = 512
    timeout_keep_alive: int = 5
    request_timeout: float = 10.0
    max_header_bytes: int = HEADER_LIMIT
    backlog: int = 512


class DeadlineH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline for reading each request.

    The deadline is armed when the connection opens and again whenever a
    response is complete and the client may send another request; it is
    cancelled once h11 has the whole request (``their_state`` is ``DONE``).
    When it fires the connection is closed; a route still waiting for the body
    sees the client as disconnected.
    """

    request_timeout: float = ServerLimits.request_timeout

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._deadline: asyncio.TimerHandle | None = None
        super().connection_made(transport)
        self._arm_deadline()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE and self.conn.their_state is not h11.SEND_BODY:
            self._cancel_deadline()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
            self._arm_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_deadline()
        super().connection_lost(exc)

    def _arm_deadline(self) -> None:
        self._cancel_deadline()
        self._deadline = self.loop.call_later(self.request_timeout, self._deadline_passed)

    def _cancel_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _deadline_passed(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        get_logger().info("http_request_too_slow", timeout_s=self.request_timeout)
        self.transport.close()


class ToStructlog(logging.Handler):
    """A logging handler that hands uvicorn's records to structlog (so to the redaction)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            message = str(record.msg)
        method = {logging.ERROR: "error", logging.WARNING: "warning"}.get(record.levelno, "info")
        if record.levelno >= logging.CRITICAL:
            method = "error"
        extra = {"exc_info": record.exc_info} if record.exc_info else {}
        getattr(get_logger(source=record.name), method)("http_server", message=message, **extra)


def route_uvicorn_logs() -> None:
    """Send ``uvicorn.error`` through structlog and silence ``uvicorn.access``."""
    error = logging.getLogger("uvicorn.error")
    if not any(isinstance(handler, ToStructlog) for handler in error.handlers):
        error.addHandler(ToStructlog())
    error.setLevel(logging.INFO)
    error.propagate = False
    access = logging.getLogger("uvicorn.access")
    access.handlers.clear()
    access.propagate = False
    access.disabled = True


def listen(host: str, port: int, backlog: int = ServerLimits.backlog) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0: a free one); raises ``OSError``."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(backlog)
    except BaseException:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def build_server(app: Any, limits: ServerLimits = ServerLimits()) -> uvicorn.Server:
    """A uvicorn server of ``app`` with ``limits``; it listens on the socket given to
    :func:`serve`."""
    if limits.threads < 1:
        raise ValueError(f"threads must be at least 1, not {limits.threads}")
    protocol = type("BoundedH11Protocol", (DeadlineH11Protocol,),
                    {"request_timeout": limits.request_timeout})
    route_uvicorn_logs()
    config = uvicorn.Config(
        app,
        http=protocol,
        ws="none",
        lifespan="auto",
        access_log=False,
        log_config=None,
        server_header=False,
        date_header=True,
        limit_concurrency=limits.limit_concurrency,
        timeout_keep_alive=limits.timeout_keep_alive,
        h11_max_incomplete_event_size=limits.max_header_bytes,
        backlog=limits.backlog,
    )
    return uvicorn.Server(config)


async def serve(server: uvicorn.Server, sock: socket.socket, threads: int) -> None:
    """Run ``server`` on ``sock`` until it is told to exit, with at most ``threads``
    sync routes running at once (anyio's default limiter of this event loop)."""
    anyio.to_thread.current_default_thread_limiter().total_tokens = threads
    await server.serve(sockets=[sock])
