"""The relay: sends what the outbox still holds until the broker accepts it.

A writer sends its own rows right after its commit
(:func:`~syndication.outbox.rows.stage`); the relay is for the rest — rows
whose writer found the broker down, or died between commit and send. It
claims rows older than :data:`GRACE_SECONDS` (so it does not race a writer's
own flush), sends them, deletes what the broker accepted, and tries again
after a short wait when the broker refused: :data:`FAILED_WAIT_SECONDS` at
most, so once Redis is back every row is on its way within about a second.

Each round the relay also runs its *sweeps*: callables that move stored work
on without a message, such as taking over a fan-out whose process stopped
(:func:`syndication.transfer.request.resume_stalled_fan_outs`).

A :class:`Relay` runs as a thread in every ``syndication worker`` process and
in the scheduler (:class:`~syndication.outbox.middleware.OutboxRelay`);
``syndication transfer`` calls :meth:`Relay.drain` for its own rows.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from datetime import timedelta

import dramatiq
from sqlalchemy import Engine

from syndication.logs import get_logger
from syndication.outbox.rows import claim, pending, send_claimed, settle_sent
from syndication.store.models import utcnow

GRACE_SECONDS = 2.0
"""Rows younger than this are left to their writer's own flush."""
IDLE_SECONDS = 1.0
"""Seconds between two rounds while nothing fails."""
FAILED_WAIT_SECONDS = 1.0
"""The longest wait after the broker or the store refused; the first waits are shorter."""

Sweep = Callable[[], object]


class Relay:
    """Sends outbox rows to ``broker``; :meth:`start` runs it on a thread of its own."""

    def __init__(
        self,
        engine: Engine,
        broker: dramatiq.Broker,
        *,
        name: str = "relay",
        sweeps: Sequence[Sweep] = (),
        grace: float = GRACE_SECONDS,
        idle: float = IDLE_SECONDS,
    ) -> None:
        self.engine = engine
        self.broker = broker
        self.name = name
        self.sweeps = list(sweeps)
        self.grace = grace
        self.idle = idle
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.log = get_logger(relay=name)

    def flush(self, *, grace: float | None = None, limit: int = 500) -> int:
        """One round: claim and send up to ``limit`` rows older than ``grace`` seconds;
        how many the broker accepted. A refusal is raised after the rest were released.
        The rows this process's writers sent are deleted first (:func:`settle_sent`)."""
        settle_sent(self.engine)
        wait = self.grace if grace is None else grace
        rows = claim(self.engine, limit=limit, owner=self.name,
                     older_than=utcnow() - timedelta(seconds=wait) if wait > 0 else None)
        if not rows:
            return 0
        return send_claimed(self.engine, self.broker, rows)

    def drain(self, timeout: float, *, sleep: Callable[[float], None] = time.sleep) -> int:
        """Flush until the outbox is empty or ``timeout`` seconds passed; the rows left."""
        deadline = time.monotonic() + timeout
        wait = 0.05
        while True:
            try:
                while self.flush(grace=0):
                    wait = 0.05
                if pending(self.engine) == 0:
                    return 0
            except Exception as exc:  # noqa: BLE001 - the broker or store is down: wait, try again
                self.log.info("outbox.relay_waiting", error=str(exc))
            if time.monotonic() >= deadline:
                return pending(self.engine)
            sleep(wait)
            wait = min(wait * 2, FAILED_WAIT_SECONDS)

    def round(self) -> bool:
        """One relay round and every sweep; ``False`` when something refused."""
        ok = True
        try:
            while self.flush() > 0 and not self._stop.is_set():
                pass
        except Exception as exc:  # noqa: BLE001 - logged; the next round tries again
            self.log.info("outbox.relay_waiting", error=str(exc))
            ok = False
        for sweep in self.sweeps:
            try:
                sweep()
            except Exception as exc:  # noqa: BLE001 - a sweep's failure must not stop the relay
                self.log.warning("outbox.sweep_failed", sweep=getattr(sweep, "__name__", "?"),
                                 error=str(exc))
                ok = False
        return ok

    def run(self) -> None:
        """Rounds until :meth:`stop`: every ``idle`` seconds, sooner after a refusal."""
        wait = 0.1
        while not self._stop.is_set():
            if self.round():
                wait = 0.1
                self._stop.wait(self.idle)
            else:
                self._stop.wait(wait)
                wait = min(wait * 2, FAILED_WAIT_SECONDS)

    def start(self) -> Relay:
        self._stop.clear()
        self._thread = threading.Thread(target=self.run, name=f"outbox-{self.name}", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
