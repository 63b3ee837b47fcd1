"""The sandbox marketplaces on loopback: one HTTP server per marketplace, on one event loop.

:class:`Sandbox` serves each marketplace on ``127.0.0.1`` (port 0 picks a free
port) in front of a :class:`SandboxMarketplace`. Tests, ``syndication demo``
and an agency's test set-up use it the same way::

    with Sandbox(token="s3cret") as sandbox:
        sandbox.write_marketplaces_file(path, token_env="SANDBOX_TOKEN")
        sandbox["hemnet"].faults.fail_next(2, status=503, retry_after=1)
        ...
        assert sandbox["hemnet"].creations["OBJ1"] == 1

``down(name)`` closes a marketplace's socket (and its open connections) so
calls are refused; ``up(name)`` opens it again on the same port.

Every server runs on one asyncio event loop on a background thread
(:mod:`adapters.sandbox.connection` answers each connection as a coroutine), so a
marketplace answering after ``latency_ms`` (:meth:`Sandbox.set_latency`, or
``latency_ms=`` per marketplace) holds no thread while it waits: the sandbox is not
what bounds a worker that keeps hundreds of calls in flight.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterable, Mapping
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from adapters.sandbox.connection import serve_connection
from adapters.sandbox.marketplace import SandboxMarketplace
from syndication import registry


class _Loop:
    """The event loop thread every marketplace of one :class:`Sandbox` is served on."""

    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        if self.loop is not None:
            return
        loop = asyncio.new_event_loop()
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.call_soon(ready.set)
            loop.run_forever()
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

        self.thread = threading.Thread(target=run, name="sandbox", daemon=True)
        self.thread.start()
        ready.wait()
        self.loop = loop

    def run(self, coro: Any) -> Any:
        """Run ``coro`` on the loop and wait for its result."""
        assert self.loop is not None, "the sandbox is not started"
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return future.result(timeout=10)

    def stop(self) -> None:
        loop, self.loop = self.loop, None
        if loop is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        if self.thread is not None:
            self.thread.join(timeout=5)


class _Runner:
    """One marketplace's server, which can be taken down and brought up on its port."""

    def __init__(self, marketplace: SandboxMarketplace, port: int, loop: _Loop) -> None:
        self.marketplace = marketplace
        self.port = port
        self.loop = loop
        self.server: asyncio.base_events.Server | None = None
        self.connections: set[asyncio.Task[None]] = set()

    def up(self) -> None:
        if self.server is None:
            self.loop.run(self._open())

    def down(self) -> None:
        if self.server is not None:
            self.loop.run(self._close())

    async def _open(self) -> None:
        self.server = await asyncio.start_server(
            self._connected, "127.0.0.1", self.port, reuse_address=True, backlog=1024,
            limit=64 * 1024,
        )
        self.port = self.server.sockets[0].getsockname()[1]

    async def _connected(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.connections.add(task)
        try:
            await serve_connection(self.marketplace, reader, writer)
        except asyncio.CancelledError:
            writer.transport.abort()
        finally:
            self.connections.discard(task)

    async def _close(self) -> None:
        """Stop listening and break every open connection, hanging answers included."""
        server, self.server = self.server, None
        if server is None:
            return
        server.close()
        connections = list(self.connections)
        for task in connections:
            task.cancel()
        if connections:
            await asyncio.wait(connections, timeout=5)
        await server.wait_closed()


class Sandbox:
    """Loopback sandbox marketplaces, one HTTP server each.

    ``token`` (if given) is required as ``Authorization: Bearer …`` by every
    marketplace; ``ports`` maps names to fixed ports (default: free ports);
    ``latency_ms`` is how long every marketplace takes to answer (a number), or
    per marketplace (a mapping of names to numbers).
    """

    def __init__(
        self,
        names: Iterable[str] | None = None,
        *,
        token: str | None = None,
        publish_delay: float = 0.0,
        ports: dict[str, int] | None = None,
        seed: int = 0,
        latency_ms: float | Mapping[str, float] = 0.0,
    ) -> None:
        self.token = token
        self.marketplaces = {
            name: SandboxMarketplace(name, token=token, publish_delay=publish_delay, seed=seed)
            for name in (names if names is not None else registry.names(transport="http"))
        }
        self.set_latency(latency_ms)
        ports = ports or {}
        self._loop = _Loop()
        self._runners = {
            name: _Runner(mp, ports.get(name, 0), self._loop)
            for name, mp in self.marketplaces.items()
        }

    def start(self) -> Sandbox:
        """Start every marketplace; returns ``self``."""
        self._loop.start()
        for runner in self._runners.values():
            runner.up()
        return self

    def stop(self) -> None:
        """Stop every marketplace and wake any hanging answer; unsent callbacks are dropped."""
        if self._loop.loop is not None:
            for runner in self._runners.values():
                runner.down()
        self._loop.stop()
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

    def set_latency(self, latency_ms: float | Mapping[str, float]) -> None:
        """Every marketplace (a number), or those named (a mapping), answers after
        ``latency_ms`` milliseconds from now on."""
        if isinstance(latency_ms, Mapping):
            unknown = sorted(set(latency_ms) - set(self.marketplaces))
            if unknown:
                raise ValueError(f"latency_ms names unknown marketplaces: {', '.join(unknown)}")
            for name, value in latency_ms.items():
                self.marketplaces[name].latency_ms = float(value)
            return
        for marketplace in self.marketplaces.values():
            marketplace.latency_ms = float(latency_ms)

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
