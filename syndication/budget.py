"""One retry budget per marketplace: how many calls and how long one transfer message may take.

Two layers retry a delivery, and their budgets multiply, so they are stated
together here, computed from the settings and the marketplaces file, and
nowhere else (``docs/reliability.md`` "Bulkheads" quotes the defaults, and a
test recomputes them so the page cannot drift):

* a **try** is one run of the job: the HTTP transport's tenacity policy makes
  up to ``max_attempts`` calls, each cut at ``deadline`` seconds, and never
  sleeps past ``max_delay`` seconds from the first — so a try lasts at most
  ``max_delay + deadline`` (the last call may start just before
  ``max_delay``), whatever ``Retry-After`` a marketplace sends;
* a **message** gets ``1 + SYNDICATION_MAX_RETRIES`` tries, with dramatiq's
  backoff before each retry: ``min_backoff × 2^r``, jittered up to twice that,
  never more than :data:`~syndication.broker.MAX_BACKOFF_MS`.

Worst case per message = tries × (``max_delay`` + ``deadline``) + the sum of the
longest backoffs; calls per message = tries × ``max_attempts``. The circuit
breaker (:mod:`syndication.circuit`) cuts both for a marketplace that keeps
failing: once its circuit is open a try makes no call and lasts no time, so
a message then only waits out its backoffs. Time spent waiting for a free
thread of the marketplace (:mod:`syndication.bulkheads`) is queueing, like
time in the queue, and not part of the budget.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from syndication.settings import Settings

DEFAULT_ATTEMPTS = 5
"""``max_attempts`` of a marketplace whose table does not set it (adapters/config.py)."""


@dataclass(frozen=True, slots=True)
class MessageBudget:
    """The budget of one transfer message to one marketplace."""

    marketplace: str
    tries: int
    attempts_per_try: int
    try_seconds: float
    backoff_seconds: tuple[float, ...]

    @property
    def calls(self) -> int:
        """The most HTTP calls one message may make."""
        return self.tries * self.attempts_per_try

    @property
    def worst_case_seconds(self) -> float:
        """The longest one message may take, from its first start to its last outcome."""
        return self.tries * self.try_seconds + sum(self.backoff_seconds)

    def describe(self) -> str:
        return (
            f"{self.marketplace}: {self.tries} tries × {self.attempts_per_try} calls = "
            f"{self.calls} calls, at most {self.worst_case_seconds:.0f} s"
        )


def message_budget(
    settings: Settings, marketplace: str, values: dict[str, Any] | None = None
) -> MessageBudget:
    """The budget of ``marketplace`` under ``settings`` and its marketplaces-file table
    ``values`` (merged over ``[defaults]``; empty: the built-in defaults)."""
    from adapters.config import NUMBER_KEYS
    from syndication.broker import MAX_BACKOFF_MS

    table = {**NUMBER_KEYS, "max_attempts": DEFAULT_ATTEMPTS, **(values or {})}
    backoffs = tuple(
        min(2 * settings.min_backoff_ms * 2**retry, MAX_BACKOFF_MS) / 1000
        for retry in range(settings.max_retries)
    )
    return MessageBudget(
        marketplace=marketplace,
        tries=1 + settings.max_retries,
        attempts_per_try=int(table["max_attempts"]),
        try_seconds=float(table["max_delay"]) + float(table["deadline"]),
        backoff_seconds=backoffs,
    )


def budgets(settings: Settings) -> dict[str, MessageBudget]:
    """The budget of every push marketplace, from the settings and the marketplaces file."""
    from adapters.config import marketplace_tables
    from syndication import registry

    tables = marketplace_tables(settings)
    return {
        name: message_budget(settings, name, tables.get(name))
        for name in registry.names(transport="http")
    }
