"""The async HTTP transport against the sandbox marketplaces, over real HTTP on
127.0.0.1: the same wire protocol, retries, errors and limits as the threaded one."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from transport_helpers import TOKEN, delivery, listing

from adapters.async_http import AsyncHttpTransport
from adapters.http import HttpTransport
from adapters.retry import RetryPolicy
from syndication.errors import PermanentError, Rejected, TransientError


class AsyncSleeps:
    """Records the waits of a retry schedule instead of sleeping them."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def _transport(sandbox: Any, name: str = "hemnet", **options: Any) -> AsyncHttpTransport:
    options.setdefault("token", TOKEN)
    options.setdefault("policy", RetryPolicy.standard(max_attempts=3, initial_wait=0.1))
    options.setdefault("sleep", AsyncSleeps())
    return AsyncHttpTransport(name, sandbox.url(name), connect_timeout=1.0, **options)


def _run(transport: AsyncHttpTransport, coro: Any) -> Any:
    async def go() -> Any:
        try:
            return await coro
        finally:
            await transport.aclose()

    return asyncio.run(go())


def test_create_update_delete_round_trip(sandbox):
    transport = _transport(sandbox)

    async def flow() -> tuple[Any, ...]:
        created = await transport.send(delivery("hemnet", "create"))
        updated = await transport.send(delivery("hemnet", "update", listing(headline="Nytt")))
        remote = await transport.lookup("hemnet", "OBJ-1")
        deleted = await transport.send(delivery("hemnet", "delete", reason="sold"))
        gone = await transport.lookup("hemnet", "OBJ-1")
        return created, updated, remote, deleted, gone

    created, updated, remote, deleted, gone = _run(transport, flow())
    assert created.marketplace_id.startswith("HN") and created.published
    assert updated.marketplace_id == remote.marketplace_id == created.marketplace_id
    assert not deleted.published and gone is None
    market = sandbox["hemnet"]
    assert market.creations["OBJ-1"] == 1 and market.deletions["OBJ-1"] == 1
    assert [r.idempotency_key for r in market.documents()] == [
        delivery("hemnet", "create").idempotency_key,
        delivery("hemnet", "update", listing(headline="Nytt")).idempotency_key,
        delivery("hemnet", "delete", reason="sold").idempotency_key,
    ]


def test_a_transient_answer_is_retried_with_the_same_key_and_retry_after(sandbox):
    sleeps = AsyncSleeps()
    transport = _transport(sandbox, sleep=sleeps)
    sandbox["hemnet"].faults.fail_next(2, status=503, retry_after=7)
    receipt = _run(transport, transport.send(delivery("hemnet", "create")))
    assert receipt.marketplace_id.startswith("HN")
    assert sleeps.waits == [7.0, 7.0]
    assert sandbox["hemnet"].call_count("OBJ-1", "create") == 3
    assert sandbox["hemnet"].creations["OBJ-1"] == 1


def test_a_lost_receipt_retried_creates_once(sandbox):
    transport = _transport(sandbox, read_timeout=0.3)
    sandbox["hemnet"].faults.hang_next(1, seconds=2)
    receipt = _run(transport, transport.send(delivery("hemnet", "create")))
    assert receipt.marketplace_id.startswith("HN")
    assert sandbox["hemnet"].creations["OBJ-1"] == 1
    assert sandbox["hemnet"].replays == 1


def test_refusals_are_permanent_and_say_the_threaded_transports_words(sandbox):
    sandbox["hemnet"].reject("OBJ-1", "the price is missing")
    threaded = HttpTransport("hemnet", sandbox.url("hemnet"), token=TOKEN)
    with pytest.raises(Rejected) as same:
        threaded.send(delivery("hemnet", "create"))
    threaded.close()
    transport = _transport(sandbox)
    with pytest.raises(Rejected) as refused:
        _run(transport, transport.send(delivery("hemnet", "create")))
    assert str(refused.value) == str(same.value)
    assert "the price is missing" in str(refused.value)
    assert refused.value.listing_id == "OBJ-1" and refused.value.marketplace == "hemnet"


def test_a_wrong_token_names_the_setting(sandbox):
    transport = _transport(sandbox, token="wrong")
    with pytest.raises(Rejected, match="token_env"):
        _run(transport, transport.send(delivery("hemnet", "create")))


def test_a_trickled_answer_is_cut_at_the_deadline(sandbox):
    sandbox["hemnet"].faults.trickle_all(0.2)
    transport = _transport(sandbox, deadline=0.5, policy=RetryPolicy.standard(max_attempts=1))
    with pytest.raises(TransientError, match="deadline"):
        _run(transport, transport.send(delivery("hemnet", "create")))


def test_a_marketplace_down_cannot_be_reached(sandbox):
    sandbox.down("hemnet")
    transport = _transport(sandbox, policy=RetryPolicy.standard(max_attempts=2))
    with pytest.raises(TransientError, match="cannot connect"):
        _run(transport, transport.send(delivery("hemnet", "create")))


def test_a_hostile_receipt_is_refused(sandbox):
    sandbox["hemnet"].faults.garble_next(1, body=b'<!DOCTYPE r [<!ENTITY a "x">]><receipt/>')
    transport = _transport(sandbox)
    with pytest.raises(PermanentError):
        _run(transport, transport.send(delivery("hemnet", "create")))


def test_like_copies_the_configured_transport(sandbox):
    threaded = HttpTransport("blocket", sandbox.url("blocket"), token=TOKEN, read_timeout=4.0,
                             deadline=9.0)
    twin = AsyncHttpTransport.like(threaded)
    threaded.close()
    assert (twin.base_url, twin.deadline, twin.read_timeout) == (threaded.base_url, 9.0, 4.0)
    assert twin.policy is threaded.policy
    receipt = _run(twin, twin.send(delivery("blocket", "create")))
    assert receipt.marketplace_id.startswith("BB")


def test_many_calls_are_in_flight_at_once_on_one_loop(sandbox):
    """The sandbox answers after its latency without a thread per call, and the
    transport keeps the calls in flight together."""
    sandbox.set_latency(300)
    transport = _transport(sandbox)

    async def many() -> list[Any]:
        sends = [transport.send(delivery("hemnet", "create", listing(f"OBJ-{i}")))
                 for i in range(40)]
        return await asyncio.gather(*sends)

    receipts = _run(transport, many())
    assert len({r.marketplace_id for r in receipts}) == 40
    assert sandbox["hemnet"].max_in_flight >= 30
