"""``RetryPolicy.call_async``: the first attempt outside tenacity, the rest exactly
tenacity's (attempts, waits, the stop by delay from the call's own start, the hook)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from tenacity import RetryCallState, stop_after_attempt, stop_before_delay, wait_fixed

from adapters.retry import RetryPolicy
from syndication.errors import PermanentError, TransientError


class Flaky:
    """Fails ``failures`` times with ``error``, taking ``seconds`` per attempt, then answers."""

    def __init__(self, failures: int, error: type[Exception] = TransientError,
                 seconds: float = 0.0) -> None:
        self.failures, self.error, self.seconds = failures, error, seconds
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.seconds:
            await asyncio.sleep(self.seconds)
        if self.calls <= self.failures:
            raise self.error(f"attempt {self.calls} failed")
        return f"answered at {self.calls}"


def _both(policy: RetryPolicy, failures: int, error: type[Exception] = TransientError,
          seconds: float = 0.0) -> list[tuple[Any, int, list[float], list[int]]]:
    """The outcome, attempts, waits and hooked attempt numbers of tenacity's own loop and
    of ``call_async``, for the same attempt function."""
    results = []
    for fast in (False, True):
        waits: list[float] = []
        hooked: list[int] = []

        async def sleep(seconds: float, waits: list[float] = waits) -> None:
            waits.append(seconds)

        def hook(state: RetryCallState, hooked: list[int] = hooked) -> None:
            hooked.append(state.attempt_number)

        flaky = Flaky(failures, error, seconds)

        async def go(flaky: Flaky = flaky, sleep: Any = sleep, hook: Any = hook,
                     fast: bool = fast) -> Any:
            if fast:
                return await policy.call_async(flaky, sleep, lambda: hook)
            return await policy.async_retrying(sleep, hook)(flaky)

        try:
            outcome: Any = asyncio.run(go())
        except Exception as exc:  # noqa: BLE001 - compared below
            outcome = (type(exc), str(exc))
        results.append((outcome, flaky.calls, waits, hooked))
    return results


@pytest.mark.parametrize("failures", [0, 1, 2, 4, 9])
def test_the_same_attempts_waits_and_outcome_as_tenacity(failures):
    policy = RetryPolicy(stop=stop_after_attempt(5), wait=wait_fixed(0.25))
    tenacity_loop, first_outside = _both(policy, failures)
    assert first_outside == tenacity_loop
    assert first_outside[1] == min(failures + 1, 5)


def test_a_permanent_error_is_raised_at_once():
    policy = RetryPolicy.standard()
    tenacity_loop, first_outside = _both(policy, 3, PermanentError)
    assert first_outside == tenacity_loop
    assert first_outside[:3] == ((PermanentError, "attempt 1 failed"), 1, [])


def test_the_stop_by_delay_counts_the_first_attempt():
    """The first attempt took 0.3 s; a retry after 0.3 s more would pass the 0.5 s budget,
    so there is none: the call's start is the first attempt's, not tenacity's entry."""
    policy = RetryPolicy(stop=stop_after_attempt(5) | stop_before_delay(0.5),
                         wait=wait_fixed(0.3))
    tenacity_loop, first_outside = _both(policy, 3, seconds=0.3)
    assert first_outside[1] == tenacity_loop[1] == 1
    assert first_outside[0] == tenacity_loop[0]


def test_the_hook_is_made_only_for_a_retry():
    made: list[str] = []

    def factory() -> Any:
        made.append("hook")
        return lambda state: None

    policy = RetryPolicy(stop=stop_after_attempt(3), wait=wait_fixed(0))
    assert asyncio.run(policy.call_async(Flaky(0), before_sleep=factory)) == "answered at 1"
    assert made == []
    assert asyncio.run(policy.call_async(Flaky(1), before_sleep=factory)) == "answered at 2"
    assert made == ["hook"]
