"""The overall deadline of one HTTP exchange, for :mod:`adapters.http`.

requests' read timeout applies to each read alone, so a server that sends a
byte before every timeout keeps an exchange going for ever, headers included.
:class:`Deadline` bounds the whole exchange with a clock outside the reads;
:class:`WatchedAdapter` is requests' adapter over connection pools that hand
each connection they give out to the deadline of the calling thread.
"""

from __future__ import annotations

import socket
import threading
from typing import Any

from requests.adapters import HTTPAdapter
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

_watch = threading.local()


class Deadline:
    """Cuts one HTTP exchange at ``seconds``: a timer shuts the sockets of the
    connections the exchange took from the pool (:class:`_WatchedPool` registers
    them), which wakes whatever read is blocked on them.

    requests' read timeout applies to each read alone; a server that sends a
    byte before every timeout keeps a read going for ever, headers included,
    so only a clock outside the reads can bound the whole exchange.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expired = False
        self.connections: list[Any] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def __enter__(self) -> Deadline:
        _watch.current = self
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()
        _watch.current = None

    def add(self, connection: Any) -> None:
        with self._lock:
            self.connections.append(connection)
            expired = self.expired
        if expired:
            _shut(connection)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            connections = list(self.connections)
        for connection in connections:
            _shut(connection)


def _shut(connection: Any) -> None:
    sock = getattr(connection, "sock", None)
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class _WatchedPool(HTTPConnectionPool):
    """A connection pool that hands each connection it gives out to the current
    :class:`Deadline` of this thread."""

    def _get_conn(self, timeout: float | None = None) -> Any:
        connection = super()._get_conn(timeout)
        deadline = getattr(_watch, "current", None)
        if deadline is not None:
            deadline.add(connection)
        return connection


class _WatchedHTTPSPool(HTTPSConnectionPool, _WatchedPool):
    pass


class WatchedAdapter(HTTPAdapter):
    """requests' adapter over :class:`_WatchedPool`, so :class:`Deadline` can cut its calls."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {  # type: ignore[assignment]
            "http": _WatchedPool,
            "https": _WatchedHTTPSPool,
        }
