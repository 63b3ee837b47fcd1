"""A Hemnet stand-in for the benchmarks: the sandbox marketplace's answers after a latency.

    python bench/hemnet_standin.py --latency-ms 30      # prints "hemnet http://127.0.0.1:PORT"

Real marketplaces answer in tens of milliseconds; loopback answers in a fraction of
one, which hides whether a client overlaps its calls. This server answers every
request exactly as the sandbox Hemnet does (:class:`adapters.sandbox.marketplace.
SandboxMarketplace`: routes, token, XSD validation, idempotency keys), but only
``--latency-ms`` after the request has arrived, and it waits on an asyncio timer,
not on a thread, so a thousand calls in flight cost it nothing but their
answers. HTTP/1.1 with kept-alive connections and ``Content-Length`` bodies, the
part of the protocol :mod:`adapters.http` speaks; it runs until terminated.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from http import HTTPStatus
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent.parent)]

from adapters.sandbox.marketplace import SandboxMarketplace  # noqa: E402

MAX_BODY = 10 * 1024 * 1024


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


async def _connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                      marketplace: SandboxMarketplace, latency: float) -> None:
    """Serve one kept-alive connection: read a request, wait ``latency``, answer; repeat."""
    try:
        while True:
            line = await reader.readline()
            if not line.strip():
                return
            method, target, _version = line.decode("latin-1").split(" ", 2)
            headers: dict[str, str] = {}
            while (header := await reader.readline()) not in (b"\r\n", b"\n", b""):
                name, _, value = header.decode("latin-1").partition(":")
                headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length") or 0)
            if length > MAX_BODY:
                return
            body = await reader.readexactly(length) if length else b""
            if latency > 0:
                await asyncio.sleep(latency)
            answer = marketplace.handle(method, target, headers, body)
            head = [f"HTTP/1.1 {answer.status} {_reason(answer.status)}",
                    "Content-Type: application/xml; charset=utf-8",
                    f"Content-Length: {len(answer.body)}",
                    *(f"{name}: {value}" for name, value in answer.headers.items())]
            writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + answer.body)
            await writer.drain()
            if headers.get("connection", "").lower() == "close":
                return
    except (ConnectionError, asyncio.IncompleteReadError, ValueError):
        return
    finally:
        writer.close()


async def serve(latency: float, port: int = 0) -> None:
    """Listen on 127.0.0.1:``port`` (0: a free one), print the address, serve until SIGTERM."""
    marketplace = SandboxMarketplace("hemnet")
    server = await asyncio.start_server(
        lambda r, w: _connection(r, w, marketplace, latency), "127.0.0.1", port, backlog=1024)
    address = server.sockets[0].getsockname()
    print(f"hemnet http://127.0.0.1:{address[1]}", flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with server:
        await stop.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--latency-ms", type=float, default=30.0,
                        help="milliseconds before each answer (default 30)")
    parser.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    args = parser.parse_args(argv)
    asyncio.run(serve(args.latency_ms / 1000, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
