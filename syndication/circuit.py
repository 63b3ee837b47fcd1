"""The circuit breaker per marketplace: stop calling a marketplace that keeps failing.

A marketplace's circuit is in one of three phases, decided by :func:`phase`
from its stored :class:`CircuitState` and the clock:

=========== ======================================== ==========================================
phase       when                                     a call
=========== ======================================== ==========================================
closed      fewer than ``threshold`` failures in a   goes through
            row (or none)
open        ``threshold`` failures in a row, the     is not made: :class:`CircuitOpen`, with
            last less than ``cooldown`` ago          the last failure as the reason
half_open   open, and ``cooldown`` has passed        one call goes through as the probe (the
                                                     first to claim it); the others as open
=========== ======================================== ==========================================

A failure is a :class:`~syndication.errors.TransientError` of a call: a
timeout, the deadline, a connection error, a 5xx or a 429. Any other answer —
a 4xx rejection of one listing included — shows the marketplace answering,
so it closes the circuit like a success. A probe that fails opens it again
for a whole cool-down; one that answers closes it, so the circuit closes on
its own when the marketplace is back, and no person resets anything.

The state lives in Redis when the worker runs on Redis (:class:`RedisCircuits`),
so every worker process shares what one of them learnt; when Redis cannot be
reached, :class:`FallbackCircuits` keeps deciding from this process's own
memory (:class:`MemoryCircuits`) until it can.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from syndication.errors import SyndicationError, TransientError
from syndication.logs import get_logger
from syndication.registry import title


@dataclass(frozen=True, slots=True)
class CircuitState:
    """What is stored per marketplace: consecutive failures, when the circuit last
    opened (epoch seconds; ``None``: closed) and the last failure's message."""

    failures: int = 0
    opened_at: float | None = None
    reason: str | None = None


CLEAN = CircuitState()
"""A closed circuit without failures: nothing to reset after an answer."""


def phase(state: CircuitState, now: float, cooldown: float) -> str:
    """``closed``, ``open`` or ``half_open``: the table of the module doc."""
    if state.opened_at is None:
        return "closed"
    return "open" if now < state.opened_at + cooldown else "half_open"


class CircuitOpen(TransientError):
    """A call not made because the marketplace's circuit is open.

    Transient: the job is tried again later, when the circuit may have closed.
    :attr:`waiting_note` is what the pair's status shows meanwhile.
    """

    def __init__(self, marketplace: str, state: CircuitState, retry_after: float) -> None:
        reason = state.reason or "it did not answer"
        super().__init__(
            f"{title(marketplace)} failed {state.failures} times in a row and is not called "
            f"until it answers again (last failure: {reason})",
            marketplace=marketplace, retry_after=retry_after,
        )
        self.waiting_note = (
            f"väntar på {title(marketplace)}: {reason} (waiting for the marketplace: "
            f"{state.failures} failures in a row; tried again by itself)"
        )


class Circuits(Protocol):
    """Where circuit states are kept; every method is one atomic step."""

    def read(self, marketplace: str) -> CircuitState: ...

    def failed(self, marketplace: str, reason: str, now: float, threshold: int) -> CircuitState:
        """Count a failure; open (again) at ``threshold`` failures in a row."""

    def answered(self, marketplace: str) -> None:
        """Close the circuit: the marketplace answered."""

    def claim_probe(self, marketplace: str, hold: float) -> bool:
        """True for the one caller that may probe a half-open circuit for ``hold`` s."""


class MemoryCircuits:
    """Circuit states in this process's memory."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._states: dict[str, CircuitState] = {}
        self._probes: dict[str, float] = {}
        self._lock = threading.Lock()
        self._clock = clock

    def read(self, marketplace: str) -> CircuitState:
        with self._lock:
            return self._states.get(marketplace, CircuitState())

    def failed(self, marketplace: str, reason: str, now: float, threshold: int) -> CircuitState:
        with self._lock:
            old = self._states.get(marketplace, CircuitState())
            failures = old.failures + 1
            opened = now if failures >= threshold else old.opened_at
            state = CircuitState(failures, opened, reason)
            self._states[marketplace] = state
            self._probes.pop(marketplace, None)
            return state

    def answered(self, marketplace: str) -> None:
        with self._lock:
            self._states.pop(marketplace, None)
            self._probes.pop(marketplace, None)

    def claim_probe(self, marketplace: str, hold: float) -> bool:
        with self._lock:
            now = self._clock()
            if self._probes.get(marketplace, 0.0) > now:
                return False
            self._probes[marketplace] = now + hold
            return True


_FAILED = """
local failures = redis.call('hincrby', KEYS[1], 'failures', 1)
redis.call('hset', KEYS[1], 'reason', ARGV[1])
if failures >= tonumber(ARGV[3]) then redis.call('hset', KEYS[1], 'opened_at', ARGV[2]) end
redis.call('del', KEYS[2])
return redis.call('hmget', KEYS[1], 'failures', 'opened_at', 'reason')
"""


class RedisCircuits:
    """Circuit states in Redis, shared by every worker process: a hash per marketplace
    (``failures``, ``opened_at``, ``reason``) and a probe key that expires."""

    def __init__(self, client: redis.Redis, namespace: str = "syndication") -> None:
        self.client = client
        self.namespace = namespace
        self._failed = client.register_script(_FAILED)

    def _keys(self, marketplace: str) -> tuple[str, str]:
        base = f"{self.namespace}:circuit:{marketplace}"
        return base, base + ":probe"

    def read(self, marketplace: str) -> CircuitState:
        values = self.client.hmget(self._keys(marketplace)[0], "failures", "opened_at", "reason")
        return _state(values)

    def failed(self, marketplace: str, reason: str, now: float, threshold: int) -> CircuitState:
        values = self._failed(keys=self._keys(marketplace), args=[reason[:500], now, threshold])
        return _state(values)

    def answered(self, marketplace: str) -> None:
        self.client.delete(*self._keys(marketplace))

    def claim_probe(self, marketplace: str, hold: float) -> bool:
        probe = self._keys(marketplace)[1]
        return bool(self.client.set(probe, "1", nx=True, px=max(1, int(hold * 1000))))


def _state(values: Any) -> CircuitState:
    failures, opened_at, reason = (_text(v) for v in values)
    return CircuitState(
        failures=int(failures or 0),
        opened_at=float(opened_at) if opened_at else None,
        reason=reason,
    )


def _text(value: Any) -> str | None:
    return value.decode() if isinstance(value, bytes) else value


class FallbackCircuits:
    """Redis first; this process's memory while Redis cannot be reached.

    A worker that loses Redis still stops calling a marketplace that keeps
    failing, from what it saw itself; what it learnt alone is not written back.
    """

    def __init__(
        self,
        primary: Circuits,
        fallback: Circuits | None = None,
        *,
        pause: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.primary = primary
        self.fallback = fallback or MemoryCircuits()
        self.pause = pause
        self._clock = clock
        self._skip_until = 0.0
        self._log = get_logger()

    def _either(self, method: str, *args: Any) -> Any:
        """The primary's answer; after it failed, the fallback's for ``pause`` seconds,
        so calls do not each wait for an unreachable Redis to time out."""
        if self._clock() >= self._skip_until:
            try:
                return getattr(self.primary, method)(*args)
            except redis.RedisError as exc:
                self._skip_until = self._clock() + self.pause
                self._log.warning("circuit.store_unreachable", error=str(exc))
        return getattr(self.fallback, method)(*args)

    def read(self, marketplace: str) -> CircuitState:
        return self._either("read", marketplace)  # type: ignore[no-any-return]

    def failed(self, marketplace: str, reason: str, now: float, threshold: int) -> CircuitState:
        state: CircuitState = self._either("failed", marketplace, reason, now, threshold)
        return state

    def answered(self, marketplace: str) -> None:
        self._either("answered", marketplace)

    def claim_probe(self, marketplace: str, hold: float) -> bool:
        return bool(self._either("claim_probe", marketplace, hold))


class CircuitBreaker:
    """Decides per call whether a marketplace is called, and learns from the outcome.

    ``threshold`` failures in a row open a circuit for ``cooldown`` seconds;
    ``probe_hold`` is how long one probe may take before another caller may
    probe instead (the probe's worker may have died). A marketplace found closed
    without failures is taken as such for ``fresh_for`` seconds without asking
    the store again (one Redis round trip less per call); a failure of this
    process's own ends that at once, another process's is seen within it.
    """

    def __init__(
        self,
        circuits: Circuits | None = None,
        *,
        threshold: int = 5,
        cooldown: float = 30.0,
        probe_hold: float = 60.0,
        fresh_for: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.circuits = circuits or MemoryCircuits(clock)
        self.threshold = threshold
        self.cooldown = cooldown
        self.probe_hold = probe_hold
        self.fresh_for = fresh_for
        self.clock = clock
        self._clean_until: dict[str, float] = {}

    def phase(self, marketplace: str) -> str:
        """The marketplace's phase now (for status and tests)."""
        return phase(self.circuits.read(marketplace), self.clock(), self.cooldown)

    def before_call(self, marketplace: str) -> CircuitState:
        """Raise :class:`CircuitOpen` unless a call to ``marketplace`` may be made now;
        the state it was decided from."""
        now = self.clock()
        if self._clean_until.get(marketplace, 0.0) > now:
            return CLEAN
        state = self.circuits.read(marketplace)
        current = phase(state, now, self.cooldown)
        if current == "closed":
            if state == CLEAN:
                self._clean_until[marketplace] = now + self.fresh_for
            return state
        if current == "half_open" and self.circuits.claim_probe(marketplace, self.probe_hold):
            get_logger(marketplace=marketplace).info("circuit.probe")
            return state
        opened = state.opened_at or now
        raise CircuitOpen(marketplace, state, retry_after=max(0.0, opened + self.cooldown - now))

    def after_call(
        self, marketplace: str, error: BaseException | None, seen: CircuitState | None = None
    ) -> None:
        """Learn from one call: a transient error is a failure; anything else an answer.

        An answer resets the stored state, unless ``seen`` (the state the call was let
        through on) had nothing to reset: the common call then writes nothing, and a
        failure another process stored meanwhile is reset by the next call that sees it.
        """
        if isinstance(error, TransientError):
            self._clean_until.pop(marketplace, None)
            state = self.circuits.failed(marketplace, str(error), self.clock(), self.threshold)
            if state.failures == self.threshold:
                get_logger(marketplace=marketplace).warning(
                    "circuit.opened", failures=state.failures, reason=state.reason
                )
            return
        if error is None or isinstance(error, SyndicationError):
            if seen == CLEAN:
                return
            self.circuits.answered(marketplace)

    @contextmanager
    def guard(self, marketplace: str) -> Iterator[None]:
        """Make the call in the block only if the circuit lets it, and learn from it."""
        seen = self.before_call(marketplace)
        try:
            yield
        except BaseException as exc:
            self.after_call(marketplace, exc, seen)
            raise
        self.after_call(marketplace, None, seen)


def breaker_from_settings(settings: Any) -> CircuitBreaker:
    """The breaker a worker runs with: shared through Redis when the broker is Redis."""
    circuits: Circuits | None = None
    if settings.broker_url and settings.broker_url.startswith(("redis://", "rediss://", "unix://")):
        client = redis.Redis.from_url(settings.broker_url, socket_timeout=2,
                                      socket_connect_timeout=2, retry=Retry(NoBackoff(), 0))
        circuits = FallbackCircuits(RedisCircuits(client))
    return CircuitBreaker(
        circuits,
        threshold=settings.circuit_threshold,
        cooldown=settings.circuit_cooldown_ms / 1000,
    )
