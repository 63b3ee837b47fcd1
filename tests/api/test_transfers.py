"""``POST /transfers`` and ``GET /transfers/{id}``: queued, followed, made safe to repeat."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import factories
import pytest
from api_data import seed
from api_service import Api, free_port, served_api, service_context
from sqlalchemy import Engine, func, select

from syndication.broker import setup_broker
from syndication.runtime import Runtime
from syndication.store.db import session_scope
from syndication.store.models import OutboxRow, TransferEventRow, TransferRequestRow


def requests_stored(api: Api) -> int:
    with session_scope(api.engine) as session:
        return int(session.scalar(select(func.count()).select_from(TransferRequestRow)) or 0)


def follow(api: Api, status_url: str, who: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        response = api.http.get(status_url, headers=api.auth(who))
        assert response.status_code == 200, response.text
        progress = response.json()
        if progress["finished"] or time.monotonic() > deadline:
            return progress
        time.sleep(0.1)


def test_a_transfer_is_accepted_at_once_and_followed_to_its_outcome(api: Api) -> None:
    response = api.call("POST", "/transfers", "key:K1", json={"object_id": "O1"})
    assert response.status_code == 202
    accepted = response.json()
    assert accepted["status_url"] == f"/api/v1/transfers/{accepted['request_id']}"
    assert (accepted["scope"], accepted["listings"]) == ("object:O1", 1)
    progress = follow(api, accepted["status_url"], "key:K1")
    assert progress["finished"] and progress["outcome"] == "done", progress
    assert progress["total"] == progress["done"] == sum(progress["counts"].values())
    assert progress["failures"] == []


@pytest.mark.parametrize("body", [{}, {"object_id": "O1", "office_id": "K1"},
                                  {"object_id": "O1", "extra": 1}, {"object_id": "bad id"}])
def test_a_transfer_names_exactly_one_scope(api: Api, body: dict[str, Any]) -> None:
    response = api.call("POST", "/transfers", "agent", json=body)
    assert response.status_code == 422
    assert response.json()["record"] == "request body" and response.json()["field"]
    assert requests_stored(api) == 0


def test_a_repeat_with_the_same_key_gets_the_first_answer(api: Api) -> None:
    key = {"Idempotency-Key": "desk-2026-11-30-0001"}
    first = api.call("POST", "/transfers", "agent", json={"office_id": "K1"}, headers=key)
    again = api.call("POST", "/transfers", "agent", json={"office_id": "K1"}, headers=key)
    assert first.status_code == again.status_code == 202
    assert first.json() == again.json()
    assert requests_stored(api) == 1
    other = api.call("POST", "/transfers", "agent", json={"object_id": "O1"}, headers=key)
    assert other.status_code == 422
    assert other.json()["field"] == "Idempotency-Key"
    someone_else = api.call("POST", "/transfers", "key:K1", json={"office_id": "K1"},
                            headers=key)
    assert someone_else.status_code == 202
    assert someone_else.json()["request_id"] != first.json()["request_id"]
    assert requests_stored(api) == 2


def test_a_refused_request_does_not_use_up_its_key(api: Api) -> None:
    key = {"Idempotency-Key": "desk-new-listing"}
    missing = api.call("POST", "/transfers", "agent", json={"object_id": "O5"}, headers=key)
    assert missing.status_code == 404
    pushed = api.call("PUT", "/records", "agent", json={"offices": [], "users": [], "listings": [
        factories.listing("O5", office_id="K1", broker_id="agent")]})
    assert pushed.json()["accepted"] == 1
    found = api.call("POST", "/transfers", "agent", json={"object_id": "O5"}, headers=key)
    assert found.status_code == 202


def test_an_unusable_key_is_422_naming_the_header(api: Api) -> None:
    response = api.call("POST", "/transfers", "agent", json={"object_id": "O1"},
                        headers={"Idempotency-Key": "two words"})
    assert response.status_code == 422
    assert response.json()["field"] == "Idempotency-Key"


def test_an_unknown_request_is_404(api: Api) -> None:
    response = api.call("GET", "/transfers/" + "0" * 32, "admin")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


@pytest.fixture
def api_without_queue(sqlite_engine: Engine, tmp_path: Path) -> Iterator[Api]:
    """The API on a Redis broker whose server is not there."""
    tenants = seed(sqlite_engine)
    context = service_context(sqlite_engine, tmp_path,
                              broker_url=f"redis://127.0.0.1:{free_port()}/0")
    broker = setup_broker(context.settings, Runtime(settings=context.settings,
                                                    engine=sqlite_engine))
    with served_api(service_context(sqlite_engine, tmp_path, broker=broker), tenants) as api:
        yield api


def test_a_queue_that_cannot_be_reached_still_takes_the_request_into_the_outbox(
    api_without_queue: Api,
) -> None:
    """With Redis away the request is stored with its messages in the outbox (a worker's
    relay sends them when Redis answers), so the answer is the 202 of an accepted request
    and a repeat of the key gets that same answer, not a second request."""
    key = {"Idempotency-Key": "while-redis-is-down"}
    answers = [
        api_without_queue.call("POST", "/transfers", "agent", json={"object_id": "O1"},
                               headers=key)
        for _ in range(2)
    ]
    assert [answer.status_code for answer in answers] == [202, 202]
    assert answers[0].json() == answers[1].json()
    assert requests_stored(api_without_queue) == 1
    with session_scope(api_without_queue.engine) as session:
        waiting = session.exec(select(func.count()).select_from(OutboxRow)).one()
    assert waiting[0] >= 1, "the request's messages wait in the outbox"


def test_simultaneous_repeats_queue_one_request(api: Api) -> None:
    from concurrent.futures import ThreadPoolExecutor

    key = {"Idempotency-Key": "pressed-twice-at-once"}

    def press(_: int) -> tuple[int, str]:
        response = api.call("POST", "/transfers", "agent", json={"office_id": "K1"},
                            headers=key)
        return response.status_code, response.text

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(press, range(8)))
    assert {status for status, _ in answers} <= {202, 409}
    accepted = {text for status, text in answers if status == 202}
    assert len(accepted) == 1
    assert requests_stored(api) == 1


def test_a_transfer_to_one_marketplace_queues_that_marketplace_alone(api: Api) -> None:
    with session_scope(api.engine) as session:
        before = {(e.marketplace, e.id) for e in session.exec(select(TransferEventRow)).scalars()
                  if e.listing_id == "O1"}
    response = api.call("POST", "/transfers", "agent",
                        json={"object_id": "O1", "marketplace": "blocket"})
    assert response.status_code == 202, response.text
    accepted = response.json()
    assert (accepted["scope"], accepted["listings"], accepted["jobs"]) == (
        "object:O1 marketplace:blocket", 1, 1)
    progress = follow(api, accepted["status_url"], "agent")
    assert progress["finished"] and progress["total"] == 1, progress
    assert progress["scope"] == "object:O1 marketplace:blocket"
    with session_scope(api.engine) as session:
        after = {(e.marketplace, e.id) for e in session.exec(select(TransferEventRow)).scalars()
                 if e.listing_id == "O1"}
    assert {marketplace for marketplace, _ in after - before} == {"blocket"}
    assert api.call("GET", accepted["status_url"].removeprefix("/api/v1"),
                    "agent9").status_code == 404, "another tenant cannot follow it"


def test_an_unknown_marketplace_is_422_naming_the_field(api: Api) -> None:
    response = api.call("POST", "/transfers", "agent",
                        json={"office_id": "K1", "marketplace": "finn"})
    assert response.status_code == 422
    assert (response.json()["record"], response.json()["field"]) == ("request body",
                                                                     "marketplace")
    assert requests_stored(api) == 0


def test_the_openapi_document_lists_the_marketplaces_a_transfer_may_name(
    sqlite_api: Api,
) -> None:
    from syndication import registry

    document = sqlite_api.http.get("/api/v1/openapi.json").json()
    field = document["components"]["schemas"]["TransferBody"]["properties"]["marketplace"]
    names = [choice.get("enum") for choice in field["anyOf"] if "enum" in choice]
    assert names == [list(registry.names())] and field["description"]
