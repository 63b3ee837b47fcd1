"""Fixtures of the transport tests: sandbox marketplaces on loopback, HTTP
transports whose retry waits are recorded instead of slept, and a listing
whose documents validate on every marketplace."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from transport_helpers import TOKEN, SleepRecorder

from adapters.http import HttpTransport
from adapters.retry import RetryPolicy
from adapters.sandbox import Sandbox


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(token=TOKEN) as running:
        yield running


@pytest.fixture
def waits() -> SleepRecorder:
    return SleepRecorder()


@pytest.fixture
def make_transport(
    sandbox: Sandbox, waits: SleepRecorder
) -> Iterator[Callable[..., HttpTransport]]:
    """``make_transport(name, attempts=5, read_timeout=2.0, token=TOKEN, policy=None)``."""
    made: list[HttpTransport] = []

    def make(
        name: str = "hemnet",
        *,
        attempts: int = 5,
        read_timeout: float = 2.0,
        token: str | None = TOKEN,
        policy: RetryPolicy | None = None,
    ) -> HttpTransport:
        transport = HttpTransport(
            name,
            sandbox.url(name),
            token=token,
            connect_timeout=1.0,
            read_timeout=read_timeout,
            policy=policy
            or RetryPolicy.standard(max_attempts=attempts, initial_wait=0.1, max_wait=2),
            sleep=waits,
        )
        made.append(transport)
        return transport

    yield make
    for transport in made:
        transport.close()
