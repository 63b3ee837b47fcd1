"""Retries, timeouts and refused connections of the HTTP transport, against the
sandbox over real HTTP. Waits are recorded by an injected sleep, so each retry
schedule runs in microseconds and is asserted on exactly."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from tenacity import stop_after_attempt, wait_fixed
from transport_helpers import delivery, listing

from adapters.retry import RetryPolicy, parse_retry_after
from syndication.errors import PermanentError, Rejected, TransientError


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_5xx_is_retried_until_it_succeeds(sandbox, make_transport, waits, status):
    sandbox["hemnet"].faults.fail_next(2, status=status)
    receipt = make_transport("hemnet").send(delivery("hemnet"))
    assert receipt.marketplace_id.startswith("HN")
    assert len(waits) == 2
    assert sandbox["hemnet"].call_count("OBJ-1", "create") == 3
    assert sandbox["hemnet"].creations["OBJ-1"] == 1


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_is_honoured(sandbox, make_transport, waits, status):
    sandbox["blocket"].faults.fail_next(2, status=status, retry_after=7)
    make_transport("blocket").send(delivery("blocket"))
    assert waits == [7.0, 7.0]


def test_backoff_grows_exponentially_with_jitter(sandbox, make_transport, waits):
    sandbox["hemnet"].faults.fail_next(4, status=503)
    policy = RetryPolicy.standard(max_attempts=5, initial_wait=1, max_wait=60, jitter=0.5)
    make_transport("hemnet", policy=policy).send(delivery("hemnet"))
    assert len(waits) == 4
    for n, wait in enumerate(waits):
        assert 2**n <= wait <= 2**n + 0.5


def test_giving_up_raises_the_last_transient_error(sandbox, make_transport, waits):
    sandbox["hittahem"].faults.fail_next(10, status=503, retry_after=2)
    with pytest.raises(TransientError) as caught:
        make_transport("hittahem", attempts=3).send(delivery("hittahem"))
    error = caught.value
    assert (error.listing_id, error.marketplace, error.retry_after) == ("OBJ-1", "hittahem", 2.0)
    assert "503" in error.message
    assert sandbox["hittahem"].call_count() == 3 and waits == [2.0, 2.0]


def test_a_retry_after_beyond_the_budget_stops_at_once(sandbox, make_transport, waits):
    """``stop_before_delay``: rather than sleep an hour inside a job, give up and
    hand the ``retry_after`` to the queue."""
    sandbox["hemnet"].faults.fail_next(1, status=429, retry_after=3600)
    policy = RetryPolicy.standard(max_attempts=5, max_delay=60)
    with pytest.raises(TransientError) as caught:
        make_transport("hemnet", policy=policy).send(delivery("hemnet"))
    assert caught.value.retry_after == 3600
    assert waits == [] and sandbox["hemnet"].call_count() == 1


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 410, 422])
def test_other_4xx_are_never_retried(sandbox, make_transport, waits, status):
    sandbox["hemnet"].faults.fail_next(1, status=status)
    with pytest.raises(Rejected, match=f"hemnet answered {status}: sandbox fault {status}"):
        make_transport("hemnet").send(delivery("hemnet"))
    assert waits == [] and sandbox["hemnet"].call_count() == 1


def test_a_call_that_hangs_past_the_read_timeout_is_retried_and_replayed(
    sandbox, make_transport, waits
):
    """The first call takes effect but its answer is lost to the timeout; the
    retry, with the same Idempotency-Key, gets the first answer replayed."""
    sandbox["hemnet"].faults.hang_next(1, seconds=3)
    receipt = make_transport("hemnet", read_timeout=0.2).send(delivery("hemnet"))
    market = sandbox["hemnet"]
    assert receipt.marketplace_id == market.marketplace_id("OBJ-1")
    assert market.creations["OBJ-1"] == 1 and market.replays == 1
    assert len(waits) == 1


def test_a_timeout_on_the_last_attempt_is_transient(sandbox, make_transport):
    sandbox["blocket"].faults.hang_next(1, seconds=3)
    with pytest.raises(TransientError, match="timed out") as caught:
        make_transport("blocket", attempts=1, read_timeout=0.2).send(delivery("blocket"))
    assert caught.value.listing_id == "OBJ-1"


def test_a_refused_connection_is_transient_and_retried(sandbox, make_transport, waits):
    transport = make_transport("hittahem", attempts=4)
    transport.send(delivery("hittahem"))
    sandbox.down("hittahem")
    update = delivery("hittahem", "update", listing(headline="Ny rubrik"))
    with pytest.raises(TransientError, match="cannot connect") as caught:
        transport.send(update)
    assert (caught.value.listing_id, caught.value.marketplace) == ("OBJ-1", "hittahem")
    assert len(waits) == 3
    sandbox.up("hittahem")
    assert transport.send(update).marketplace_id == sandbox["hittahem"].marketplace_id("OBJ-1")


def test_a_request_error_other_than_timeout_or_connection_is_permanent(
    sandbox, make_transport, waits
):
    """requests' ``InvalidHeader`` (a token with a line break) is what
    :func:`adapters.http.request_error` makes of it for the photo portal too:
    permanent, not retried, and without the header's value."""
    transport = make_transport("hemnet", token="sandbox-secret\nX-Injected: 1")
    with pytest.raises(PermanentError, match="failed: InvalidHeader") as caught:
        transport.send(delivery("hemnet"))
    assert not isinstance(caught.value, TransientError)
    assert "sandbox-secret" not in str(caught.value)
    assert waits == [] and sandbox["hemnet"].call_count() == 0


def test_lookups_are_retried_too(sandbox, make_transport, waits):
    transport = make_transport("hemnet")
    transport.send(delivery("hemnet"))
    sandbox["hemnet"].faults.fail_next(2, status=502)
    assert transport.lookup("hemnet", "OBJ-1").marketplace_id.startswith("HN")
    sandbox["hemnet"].faults.fail_next(1, status=503)
    assert len(transport.inventory("hemnet", "KTR-TEST")) == 1
    assert len(waits) == 3


def test_a_third_of_calls_failing_still_delivers_everything_once(sandbox, make_transport):
    """5xx and timeouts at random (seeded); every listing ends on the
    marketplace exactly once."""
    sandbox["blocket"].faults.fail_fraction(
        0.33, seed=7, timeout_share=0.3, hang=1.0, statuses=(500, 503)
    )
    policy = RetryPolicy(stop=stop_after_attempt(12), wait=wait_fixed(0))
    transport = make_transport("blocket", policy=policy, read_timeout=0.15)
    ids = [f"OBJ-{n}" for n in range(30)]
    receipts = {i: transport.send(delivery("blocket", feed_input=listing(i))) for i in ids}
    market = sandbox["blocket"]
    assert all(market.creations[i] == 1 for i in ids)
    assert {i: r.marketplace_id for i, r in receipts.items()} == {
        i: market.marketplace_id(i) for i in ids
    }
    assert market.call_count() > len(ids)


def test_an_unknown_action_is_permanent(make_transport):
    from dataclasses import replace

    with pytest.raises(PermanentError, match="unknown delivery action"):
        make_transport("hemnet").send(replace(delivery("hemnet"), action="publish"))


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("", None),
        ("120", 120.0),
        ("Wed, 21 Oct 2026 07:28:30 GMT", 30.0),
        ("Wed, 21 Oct 2026 07:27:00 GMT", 0.0),
        ("soon", None),
    ],
)
def test_retry_after_header_values(header, expected):
    now = datetime(2026, 10, 21, 7, 28, 0, tzinfo=UTC)
    assert parse_retry_after(header, now=lambda: now) == expected
