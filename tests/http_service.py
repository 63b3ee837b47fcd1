"""Serve an ASGI app over real HTTP on 127.0.0.1, on a free port, in a thread.

:func:`serve_app` runs the app exactly as ``syndication serve`` does
(:func:`syndication.http_server.build_server` and
:func:`~syndication.http_server.serve`, so the same uvicorn protocol, limits
and thread pool), in a thread of the test process so the test shares its
store and clock with the app. It yields a :class:`Running` with the base
address and stops the server afterwards.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import uvicorn

from syndication.http_server import ServerLimits, build_server, listen, serve

TEST_LIMITS = ServerLimits(threads=8, limit_concurrency=512, request_timeout=10.0)
"""The production bounds, with as many threads as the default of ``serve``."""


@dataclass
class Running:
    """A served app: its base address (``http://127.0.0.1:PORT``) and the uvicorn server."""

    base: str
    port: int
    server: uvicorn.Server

    def url(self, path: str) -> str:
        return self.base + path


@contextmanager
def serve_app(app: Any, limits: ServerLimits = TEST_LIMITS) -> Iterator[Running]:
    """``app`` served on a free loopback port until the block ends."""
    sock = listen("127.0.0.1", 0)
    port = int(sock.getsockname()[1])
    server = build_server(app, limits)
    failure: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(serve(server, sock, limits.threads))
        except BaseException as exc:  # noqa: BLE001 - reported to the test below
            failure.append(exc)

    thread = threading.Thread(target=run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if failure or not thread.is_alive():
            raise RuntimeError(f"the test server did not start: {failure!r}")
        if time.monotonic() > deadline:
            raise TimeoutError("the test server did not start within 15 s")
        time.sleep(0.01)
    try:
        yield Running(f"http://127.0.0.1:{port}", port, server)
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()
        assert not thread.is_alive(), "the test server did not stop"
