"""The overall deadline of one HTTP exchange, for :mod:`adapters.http`.

requests' read timeout applies to each read alone, so a server that sends a
byte before every timeout keeps an exchange going for ever, headers included.
:class:`Deadline` bounds the whole exchange with a clock outside the reads;
:class:`WatchedAdapter` is requests' adapter over connection pools that hand
each connection they give out to the deadline of the calling thread.
"""

from __future__ import annotations

import heapq
import itertools
import os
import socket
import threading
import time
from typing import Any

from requests.adapters import HTTPAdapter
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

_watch = threading.local()


class Deadline:
    """Cuts one HTTP exchange at ``seconds``: once it is due, the sockets of the
    connections the exchange took from the pool (:class:`_WatchedPool` registers
    them) are shut, which wakes whatever read is blocked on them.

    requests' read timeout applies to each read alone; a server that sends a
    byte before every timeout keeps a read going for ever, headers included,
    so only a clock outside the reads can bound the whole exchange. That clock
    is one watchdog thread per process (:class:`_Watchdog`), not a timer thread
    per exchange: starting a thread for every call cost more CPU than the call.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expired = False
        self.done = False
        self.connections: list[Any] = []
        self._lock = threading.Lock()

    def __enter__(self) -> Deadline:
        _watch.current = self
        _WATCHDOG.watch(self, time.monotonic() + self.seconds)
        return self

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self.done = True
            self.connections = []
        _watch.current = None

    def add(self, connection: Any) -> None:
        with self._lock:
            self.connections.append(connection)
            expired = self.expired
        if expired:
            _shut(connection)

    def _expire(self) -> None:
        with self._lock:
            if self.done:
                return
            self.expired = True
            connections = list(self.connections)
        for connection in connections:
            _shut(connection)


class _Watchdog:
    """The one thread that expires every :class:`Deadline` of this process when it is due.

    Deadlines wait in a heap by due time; one that ended before it was due is
    dropped when it reaches the top. The thread starts on first use (again in a
    forked child, whose copy of the parent's thread does not run).
    """

    def __init__(self) -> None:
        self._wake = threading.Condition()
        self._due: list[tuple[float, int, Deadline]] = []
        self._order = itertools.count()
        self._thread: threading.Thread | None = None
        self._pid = 0

    def watch(self, deadline: Deadline, due: float) -> None:
        with self._wake:
            if self._thread is None or self._pid != os.getpid():
                self._pid = os.getpid()
                self._due = []
                self._thread = threading.Thread(target=self._run, name="http-deadlines",
                                                daemon=True)
                self._thread.start()
            heapq.heappush(self._due, (due, next(self._order), deadline))
            if self._due[0][2] is deadline:
                self._wake.notify()

    def _run(self) -> None:
        while True:
            expired: list[Deadline] = []
            with self._wake:
                now = time.monotonic()
                while self._due and (self._due[0][0] <= now or self._due[0][2].done):
                    _, _, deadline = heapq.heappop(self._due)
                    if not deadline.done:
                        expired.append(deadline)
                if not expired:
                    self._wake.wait(self._due[0][0] - now if self._due else None)
            for deadline in expired:
                deadline._expire()


_WATCHDOG = _Watchdog()


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
