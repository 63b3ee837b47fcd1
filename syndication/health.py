"""Liveness and readiness, for the HTTP service, the workers and the scheduler alike.

``/healthz`` answers 200 while the process runs and touches nothing. ``/readyz``
answers 200 only when :func:`readiness` finds nothing wrong: the store answers and is
at the newest migration, and Redis answers when a broker URL is configured; else 503
with one line per problem. The HTTP service has these routes itself
(:mod:`syndication.app`); ``syndication worker`` and ``syndication scheduler`` take
``--health-port`` and serve them with :class:`HealthServer`.

A port, not a file touched while ready: a port answers the question when it is
asked (a file says only that the process was ready when it last wrote it, and
needs a clock to judge staleness), it is what a container orchestrator's
``httpGet`` probe and a load balancer expect, and the same handler serves
``/metrics``. For systemd each process also tells the service manager when it is
first ready with ``sd_notify`` over the plain socket protocol (:func:`notify`),
so a unit of ``Type=notify`` is started only once it is ready.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from sqlalchemy import Engine

from syndication.logs import get_logger

Problems = list[str]


def readiness(engine: Engine, broker_url: str | None) -> Problems:
    """What keeps this process from doing its work now (empty: ready)."""
    from syndication.store.schema import schema_state

    problems: Problems = []
    try:
        state = schema_state(engine)
    except Exception as exc:  # noqa: BLE001 - any failure of the store is the answer
        problems.append(f"store: does not answer ({type(exc).__name__})")
    else:
        if not state.is_current:
            problems.append(f"store: at migration {state.describe()}, not {state.newest} "
                            "(run syndication migrate)")
    if broker_url and broker_url.startswith(("redis://", "rediss://", "unix://")):
        import redis

        client = redis.Redis.from_url(broker_url, socket_timeout=1, socket_connect_timeout=1)
        try:
            client.ping()
        except redis.RedisError as exc:
            problems.append(f"redis: does not answer ({type(exc).__name__})")
        finally:
            client.close()
    return problems


def notify(state: str, environ: dict[str, str] | None = None) -> bool:
    """Send ``state`` (``READY=1``, ``STOPPING=1``) to systemd's ``NOTIFY_SOCKET``, if any.

    The plain datagram protocol of ``sd_notify(3)``; an address starting with ``@``
    is in the abstract namespace. Returns whether a message was sent.
    """
    address = (environ if environ is not None else os.environ).get("NOTIFY_SOCKET")
    if not address:
        return False
    target = "\0" + address[1:] if address.startswith("@") else address
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        try:
            sock.sendto(state.encode(), target)
        except OSError as exc:
            get_logger().warning("sd_notify_failed", error=str(exc))
            return False
    return True


class HealthServer:
    """``/healthz``, ``/readyz`` and ``/metrics`` on a port of their own, on a thread.

    ``check`` returns the problems (:func:`readiness`); ``metrics`` the exposition.
    """

    def __init__(self, host: str, port: int, check: Callable[[], Problems],
                 metrics: Callable[[], bytes] | None = None) -> None:
        handler = _handler(check, metrics)
        self.server = ThreadingHTTPServer((host, port), handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, name="health",
                                       daemon=True)

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def start(self) -> HealthServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> HealthServer:
        return self.start()

    def __exit__(self, *_exc: Any) -> None:
        self.stop()


def _handler(check: Callable[[], Problems],
             metrics: Callable[[], bytes] | None) -> type[BaseHTTPRequestHandler]:
    from syndication.metrics import CONTENT_TYPE

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            path = self.path.split("?", 1)[0]
            if path == "/healthz":
                self._answer(200, b"ok\n")
            elif path == "/readyz":
                problems = check()
                body = "\n".join(problems or ["ready"]).encode() + b"\n"
                self._answer(503 if problems else 200, body)
            elif path == "/metrics" and metrics is not None:
                self._answer(200, metrics(), CONTENT_TYPE)
            else:
                self._answer(404, b"not found\n")

        def _answer(self, status: int, body: bytes,
                    content_type: str = "text/plain; charset=utf-8") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            return

    return Handler


def wait_ready_then_notify(check: Callable[[], Problems], stop: threading.Event,
                           interval: float = 1.0) -> None:
    """Tell systemd ``READY=1`` once ``check`` first finds nothing wrong."""
    while not stop.is_set():
        if not check():
            notify("READY=1")
            return
        stop.wait(interval)


HEALTH_HOST_ENV = "SYNDICATION_HEALTH_HOST"
HEALTH_PORT_ENV = "SYNDICATION_HEALTH_PORT"


def worker_health_fork() -> int:
    """dramatiq's fork function for ``syndication worker --health-port``.

    dramatiq's CLI starts it in a process of its own once every worker process has
    booted (``--fork-function``) and stops it with them, so it answers for the whole
    worker: a worker process that dies stops dramatiq, and with it this server.
    """
    from syndication.settings import Settings
    from syndication.store.db import make_engine

    settings = Settings.from_env()
    engine = make_engine(settings.database_url, pool_pre_ping=True)
    host = os.environ.get(HEALTH_HOST_ENV, "127.0.0.1")
    port = int(os.environ[HEALTH_PORT_ENV])
    stop = threading.Event()

    def check() -> Problems:
        return readiness(engine, settings.broker_url)

    server = HealthServer(host, port, check)
    threading.Thread(target=wait_ready_then_notify, args=(check, stop), daemon=True).start()
    try:
        server.server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        server.server.server_close()
        engine.dispose()
    return 0
