"""One sandbox connection on asyncio: HTTP/1.1 read with h11, answered by the marketplace.

A connection is a coroutine, not a thread, so a marketplace that takes its
``latency_ms`` to answer holds no thread while it waits (``asyncio.sleep``):
thousands of requests can be in flight at once on one event loop, which is
what a worker whose concurrency is not its thread count needs to be measured
against. The faults of :mod:`adapters.sandbox.faults` keep their meaning:

* a status fault is answered at once (after the latency);
* ``hang`` lets the call take effect and writes the answer only after that many
  seconds, then closes the connection;
* ``never`` holds the connection open without a byte while the marketplace hangs;
* ``trickle`` writes the whole answer, status line first, one byte at a time.

Requests are parsed by h11 (keep-alive, ``Content-Length`` and chunked bodies, a
malformed request answered 400); answers are serialized by h11 as well and written
whole or, for a trickle, byte by byte.
"""

from __future__ import annotations

import asyncio
import socket
from http import HTTPStatus
from typing import TYPE_CHECKING

import h11

from adapters.sandbox.marketplace import Answer, error

if TYPE_CHECKING:
    from adapters.sandbox.marketplace import SandboxMarketplace

MAX_BODY = 10 * 1024 * 1024
READ_CHUNK = 64 * 1024
CONTENT_TYPE = b"application/xml; charset=utf-8"


class _Closed(Exception):
    """The client hung up, or sent something h11 cannot read."""


async def serve_connection(
    marketplace: SandboxMarketplace, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    """Answer the requests of one connection until either side closes it."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    connection = h11.Connection(h11.SERVER, max_incomplete_event_size=64 * 1024)
    try:
        while True:
            try:
                request, body = await _read_request(connection, reader)
            except _Closed:
                return
            except h11.RemoteProtocolError:
                await _write(writer, connection, error(400, "malformed request"), close=True)
                return
            if request is None:
                answer = error(413, f"documents larger than {MAX_BODY} bytes are refused")
                close = True
            else:
                marketplace.note_arrival()
                try:
                    answer = await _answer(marketplace, request, body)
                finally:
                    marketplace.note_answered()
                close = False
            if answer.never:
                await _hold(marketplace)
                return
            if answer.hang:
                await asyncio.sleep(answer.hang)
                close = True
            if answer.trickle:
                await _write(writer, connection, answer, close=True, trickle=answer.trickle)
                return
            await _write(writer, connection, answer, close=close)
            if connection.our_state is h11.MUST_CLOSE or close:
                return
            connection.start_next_cycle()
    except (ConnectionError, OSError, h11.LocalProtocolError):
        return
    finally:
        writer.close()


async def _answer(marketplace: SandboxMarketplace, request: h11.Request, body: bytes) -> Answer:
    """The marketplace's answer, after its latency (the latency of the moment it was asked)."""
    latency = marketplace.latency_ms
    if latency > 0:
        await asyncio.sleep(latency / 1000)
    headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in request.headers}
    return marketplace.handle(
        request.method.decode("ascii"), request.target.decode("latin-1"), headers, body
    )


async def _read_request(
    connection: h11.Connection, reader: asyncio.StreamReader
) -> tuple[h11.Request | None, bytes]:
    """The next request and its body; ``(None, b"")`` for a body over :data:`MAX_BODY`
    (refused unread)."""
    request = await _next_event(connection, reader)
    if isinstance(request, h11.ConnectionClosed):
        raise _Closed
    if not isinstance(request, h11.Request):
        raise _Closed
    for name, value in request.headers:
        if name == b"content-length" and int(value) > MAX_BODY:
            return None, b""
    chunks: list[bytes] = []
    size = 0
    while True:
        event = await _next_event(connection, reader)
        if isinstance(event, h11.Data):
            size += len(event.data)
            if size > MAX_BODY:
                return None, b""
            chunks.append(bytes(event.data))
        elif isinstance(event, h11.EndOfMessage):
            return request, b"".join(chunks)
        else:
            raise _Closed


async def _next_event(connection: h11.Connection, reader: asyncio.StreamReader) -> object:
    while True:
        event = connection.next_event()
        if event is not h11.NEED_DATA:
            return event
        data = await reader.read(READ_CHUNK)
        if not data and connection.their_state is h11.IDLE:
            raise _Closed
        connection.receive_data(data)


async def _hold(marketplace: SandboxMarketplace) -> None:
    """Say nothing while the marketplace hangs (the client gave up long ago); then close."""
    while marketplace.faults.hanging:
        await asyncio.sleep(0.05)


async def _write(
    writer: asyncio.StreamWriter,
    connection: h11.Connection,
    answer: Answer,
    *,
    close: bool,
    trickle: float = 0.0,
) -> None:
    """Write ``answer`` whole, or one byte every ``trickle`` seconds."""
    headers = [
        (b"Content-Type", CONTENT_TYPE),
        (b"Content-Length", str(len(answer.body)).encode()),
        *((name.encode("latin-1"), value.encode("latin-1"))
          for name, value in answer.headers.items()),
    ]
    if close:
        headers.append((b"Connection", b"close"))
    try:
        reason = HTTPStatus(answer.status).phrase.encode()
    except ValueError:
        reason = b""
    raw = connection.send(h11.Response(status_code=answer.status, headers=headers, reason=reason))
    raw = (raw or b"") + (connection.send(h11.Data(data=answer.body)) or b"")
    raw += connection.send(h11.EndOfMessage()) or b""
    if not trickle:
        writer.write(raw)
        await writer.drain()
        return
    for index in range(len(raw)):
        writer.write(raw[index:index + 1])
        await writer.drain()
        await asyncio.sleep(trickle)
