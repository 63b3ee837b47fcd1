"""Retry policy of every HTTP client of :mod:`adapters`, composed from tenacity's parts.

The marketplaces' HTTP transport and the photo-portal client both retry
through a :class:`RetryPolicy`, with the errors :mod:`adapters.http` translated.

A policy says when to stop (``stop_after_attempt(n) | stop_before_delay(s)``)
and how long to wait between attempts (exponential backoff with jitter, or the
marketplace's ``Retry-After`` when it gives one). Only
:class:`~syndication.errors.TransientError` is retried; a permanent error ends
the call at once. The sleep function is passed in, so tests run a whole retry
schedule in microseconds and assert on the waits.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Any, TypeVar

from tenacity import (
    AsyncRetrying,
    DoAttempt,
    DoSleep,
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_before_delay,
    wait_exponential,
    wait_random,
)
from tenacity.stop import stop_base
from tenacity.wait import wait_base

from syndication.errors import TransientError

T = TypeVar("T")
ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]


class wait_retry_after(wait_base):  # noqa: N801 - named like tenacity's own waits
    """Wait what the marketplace asked for (``Retry-After``), else ``fallback``.

    A server's ``Retry-After`` is the best estimate of when a retry can
    succeed, so it replaces the backoff rather than being mixed into it; the
    policy's stop condition still bounds the total (``stop_before_delay``
    gives up rather than sleep past the budget).
    """

    def __init__(self, fallback: wait_base) -> None:
        self.fallback = fallback

    def __call__(self, retry_state: RetryCallState) -> float:
        outcome = retry_state.outcome
        error = outcome.exception() if outcome is not None and outcome.failed else None
        if isinstance(error, TransientError) and error.retry_after is not None:
            return max(0.0, float(error.retry_after))
        return float(self.fallback(retry_state))


@dataclass(frozen=True)
class RetryPolicy:
    """When to give up and how long to wait: two tenacity parts.

    Build the usual one with :meth:`standard`; tests and special marketplaces
    may pass any tenacity ``stop``/``wait`` (``stop_after_attempt(3)``,
    ``wait_fixed(0)``, …).
    """

    stop: stop_base
    wait: wait_base

    @classmethod
    def standard(
        cls,
        *,
        max_attempts: int = 5,
        max_delay: float = 120.0,
        initial_wait: float = 0.5,
        max_wait: float = 30.0,
        jitter: float = 1.0,
    ) -> RetryPolicy:
        """Exponential backoff with jitter, honouring ``Retry-After``; at most
        ``max_attempts`` calls, never sleeping past ``max_delay`` seconds in all."""
        return cls(
            stop=stop_after_attempt(max_attempts) | stop_before_delay(max_delay),
            wait=wait_retry_after(
                wait_exponential(multiplier=initial_wait, max=max_wait) + wait_random(0, jitter)
            ),
        )

    def retrying(
        self,
        sleep: Callable[[float], Any] = time.sleep,
        before_sleep: Callable[[RetryCallState], Any] | None = None,
    ) -> Retrying:
        """A tenacity ``Retrying`` that retries transient errors only and, when it
        gives up, re-raises the last one (with its ``retry_after``)."""
        return Retrying(
            stop=self.stop,
            wait=self.wait,
            retry=retry_if_exception_type(TransientError),
            sleep=sleep,
            before_sleep=before_sleep,
            reraise=True,
        )

    def async_retrying(
        self,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        before_sleep: Callable[[RetryCallState], Any] | None = None,
    ) -> AsyncRetrying:
        """The same policy for a coroutine (the async transport): tenacity's
        ``AsyncRetrying``, waiting with an awaited ``sleep``."""
        return AsyncRetrying(
            stop=self.stop,
            wait=self.wait,
            retry=retry_if_exception_type(TransientError),
            sleep=sleep,
            before_sleep=before_sleep,
            reraise=True,
        )

    async def call_async(
        self,
        attempt: Callable[[], Awaitable[T]],
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        before_sleep: Callable[[], Callable[[RetryCallState], Any]] | None = None,
    ) -> T:
        """Await ``attempt()`` under this policy, as :meth:`async_retrying` would.

        The first attempt is awaited directly: tenacity's machinery (a
        ``RetryCallState`` and the action chain of each ``iter``) costs more CPU
        than a kept-alive request of its own, and nearly every call succeeds at
        once. Only a :class:`~syndication.errors.TransientError` enters tenacity,
        with that attempt counted and the call's own start time
        (:meth:`retry_after_first`), so the stop, the waits and the retries are
        exactly tenacity's. ``before_sleep`` makes the hook only when there is a
        retry to report (a logger bound for nothing costs as much as a request).
        """
        started = time.monotonic()
        try:
            return await attempt()
        except TransientError:
            failed: Any = sys.exc_info()
        hook = before_sleep() if before_sleep is not None else None
        return await self.retry_after_first(attempt, failed, started, sleep, hook)

    async def retry_after_first(
        self,
        attempt: Callable[[], Awaitable[T]],
        failed: ExcInfo,
        started: float,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        before_sleep: Callable[[RetryCallState], Any] | None = None,
    ) -> T:
        """The rest of a call whose first attempt, begun at ``started`` (monotonic), raised
        ``failed``: tenacity's own loop (``AsyncRetrying.__call__``), entered after its
        first attempt."""
        retrying = self.async_retrying(sleep, before_sleep)
        retrying.begin()
        retrying.statistics["start_time"] = started
        state = RetryCallState(retry_object=retrying, fn=attempt, args=(), kwargs={})
        state.start_time = started
        state.set_exception(failed)
        while True:
            do = await retrying.iter(retry_state=state)
            if isinstance(do, DoAttempt):
                try:
                    result = await attempt()
                except BaseException:  # noqa: BLE001 - tenacity decides, as in its own loop
                    state.set_exception(sys.exc_info())  # type: ignore[arg-type]
                else:
                    state.set_result(result)
            elif isinstance(do, DoSleep):
                state.prepare_for_next_attempt()
                await retrying.sleep(do)  # type: ignore[misc]
            else:
                return do  # type: ignore[no-any-return]


def log_retries(log: Any, event: str) -> Callable[[RetryCallState], None]:
    """A ``before_sleep`` hook that logs ``event`` with the attempt, the wait
    and the error that is about to be retried."""

    def before_sleep(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        log.warning(
            event,
            attempt=state.attempt_number,
            wait=round(state.upcoming_sleep, 3),
            error=str(error),
        )

    return before_sleep


def parse_retry_after(value: str | None, now: Callable[[], datetime] | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP
    date); ``None`` when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = now() if now is not None else datetime.now(UTC)
    return max(0.0, (when - current).total_seconds())
