"""Faults a test can order from a sandbox marketplace.

Each call draws at most one fault: first a standing mode (``hang_all``: every
call is read and never answered, the marketplace hung; ``trickle_all``:
every call takes effect and its answer comes a byte at a time, status line
included), then the queued ones (``fail_next``,
``hang_next``), then the random share (``fail_fraction``, seeded so a run can
be repeated). A status fault answers at once without touching the
marketplace; a hang fault lets the call take effect and then holds the answer
back longer than the client waits — the lost receipt that only an
idempotency key makes safe to retry.
"""

from __future__ import annotations

import random
import threading
from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True)
class Fault:
    """``status`` set: answer with it (and ``retry_after``) without taking effect.
    Otherwise the call takes effect, then the answer waits ``hang`` seconds and,
    when ``body`` is set, carries that body instead of the receipt. ``never``: the
    call is read and not answered at all; ``trickle``: the answer is written one
    byte every ``trickle`` seconds."""

    status: int | None = None
    retry_after: float | None = None
    hang: float = 0.0
    body: bytes | None = None
    never: bool = False
    trickle: float = 0.0


class Faults:
    """The fault plan of one marketplace; thread-safe."""

    def __init__(self, seed: int = 0) -> None:
        self._lock = threading.Lock()
        self._queue: deque[Fault] = deque()
        self._fraction = 0.0
        self._statuses: tuple[int, ...] = (500, 502, 503)
        self._timeout_share = 0.0
        self._hang = 0.0
        self._retry_after: float | None = None
        self._random = random.Random(seed)
        self._mode: Fault | None = None

    def hang_all(self) -> None:
        """Every call from now on is read and never answered (until :meth:`clear`)."""
        with self._lock:
            self._mode = Fault(never=True)

    def trickle_all(self, interval: float = 1.0) -> None:
        """Every call from now on takes effect and is answered one byte every
        ``interval`` seconds (until :meth:`clear`)."""
        with self._lock:
            self._mode = Fault(trickle=interval)

    @property
    def hanging(self) -> bool:
        """True while :meth:`hang_all` is in force."""
        with self._lock:
            return self._mode is not None and self._mode.never

    def fail_next(
        self,
        n: int = 1,
        status: int = 503,
        retry_after: float | None = None,
        body: bytes | None = None,
    ) -> None:
        """The next ``n`` calls answer ``status`` (with ``Retry-After`` when given,
        and ``body`` instead of the usual ``<error>``)."""
        with self._lock:
            fault = Fault(status=status, retry_after=retry_after, body=body)
            self._queue.extend(fault for _ in range(n))

    def hang_next(self, n: int = 1, seconds: float = 5.0) -> None:
        """The next ``n`` calls take effect but answer only after ``seconds``."""
        with self._lock:
            self._queue.extend(Fault(hang=seconds) for _ in range(n))

    def garble_next(self, n: int = 1, body: bytes = b"<receipt") -> None:
        """The next ``n`` calls take effect but answer with ``body`` (a broken
        or hostile receipt, e.g. a billion-laughs document)."""
        with self._lock:
            self._queue.extend(Fault(body=body) for _ in range(n))

    def fail_fraction(
        self,
        fraction: float,
        *,
        seed: int | None = None,
        statuses: tuple[int, ...] = (500, 502, 503),
        timeout_share: float = 0.0,
        hang: float = 5.0,
        retry_after: float | None = None,
    ) -> None:
        """Fail about ``fraction`` of calls: ``timeout_share`` of those by hanging
        ``hang`` seconds, the rest with a status drawn from ``statuses``."""
        if not 0.0 <= fraction <= 1.0 or not 0.0 <= timeout_share <= 1.0:
            raise ValueError("fraction and timeout_share are shares between 0 and 1")
        with self._lock:
            self._fraction = fraction
            self._statuses = statuses
            self._timeout_share = timeout_share
            self._hang = hang
            self._retry_after = retry_after
            if seed is not None:
                self._random.seed(seed)

    def clear(self) -> None:
        """No more faults."""
        with self._lock:
            self._mode = None
            self._queue.clear()
            self._fraction = 0.0

    def draw(self) -> Fault | None:
        """The fault for the call being answered, if any."""
        with self._lock:
            if self._mode is not None:
                return self._mode
            if self._queue:
                return self._queue.popleft()
            if self._fraction and self._random.random() < self._fraction:
                if self._random.random() < self._timeout_share:
                    return Fault(hang=self._hang)
                return Fault(
                    status=self._random.choice(self._statuses), retry_after=self._retry_after
                )
        return None
