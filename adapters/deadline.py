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
import socket
import threading
import time
from typing import Any

from requests.adapters import HTTPAdapter
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

_watch = threading.local()
SWEEP_AFTER = 1024
"""Finished exchanges counted before the watchdog considers sweeping them out of its heap."""


class Deadline:
    """Cuts one HTTP exchange at ``seconds``: the process's :class:`_Watchdog` shuts
    the sockets of the connections the exchange took from the pool
    (:class:`_WatchedPool` registers them), which wakes whatever read is blocked on them.

    requests' read timeout applies to each read alone; a server that sends a
    byte before every timeout keeps a read going for ever, headers included,
    so only a clock outside the reads can bound the whole exchange. That clock
    is one thread for every exchange of the process, not a timer thread per
    exchange: starting a thread costs more than a kept-alive call on loopback.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expired = False
        self.connections: list[Any] = []
        self._lock = threading.Lock()
        self._done = False

    def __enter__(self) -> Deadline:
        _watch.current = self
        _WATCHDOG.watch(self, time.monotonic() + self.seconds)
        return self

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._done = True
        _watch.current = None
        _WATCHDOG.release()

    def add(self, connection: Any) -> None:
        with self._lock:
            self.connections.append(connection)
            expired = self.expired
        if expired:
            _shut(connection)

    def _expire(self) -> None:
        with self._lock:
            if self._done:
                return
            self.expired = True
            connections = list(self.connections)
        for connection in connections:
            _shut(connection)


class _Watchdog:
    """One daemon thread that expires the deadlines of a process when they fall due.

    Deadlines wait in a heap by due time; a finished exchange stays there until its
    time comes (``Deadline._done``: then nothing happens) or until finished ones
    make up half the heap and are swept out, so entering and leaving a deadline
    costs a heap push and two locks, the heap stays within twice the exchanges
    in progress (plus :data:`SWEEP_AFTER`), and the thread wakes only for the earliest.
    """

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Deadline]] = []
        self._order = itertools.count()
        self._wake = threading.Condition(threading.Lock())
        self._thread: threading.Thread | None = None
        self._released = 0

    def watch(self, deadline: Deadline, due: float) -> None:
        with self._wake:
            heapq.heappush(self._heap, (due, next(self._order), deadline))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="http-deadlines",
                                                daemon=True)
                self._thread.start()
            elif self._heap[0][2] is deadline:
                self._wake.notify()

    def release(self) -> None:
        """Count one finished exchange; sweep the finished ones out when they are many."""
        with self._wake:
            self._released += 1
            if self._released > SWEEP_AFTER and self._released * 2 > len(self._heap):
                self._heap = [entry for entry in self._heap if not entry[2]._done]  # noqa: SLF001
                heapq.heapify(self._heap)
                self._released = 0

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._heap or self._heap[0][0] > time.monotonic():
                    timeout = self._heap[0][0] - time.monotonic() if self._heap else None
                    self._wake.wait(timeout)
                _, _, deadline = heapq.heappop(self._heap)
            deadline._expire()  # noqa: SLF001 - the watchdog is the deadline's clock


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
