"""The agency desktop's flow end to end, as one test, on SQLite and PostgreSQL.

Log in, push records, press "marknadsplatsöverföring", poll the request until
it is done, read the listing's status: published on every marketplace it
selected. Nothing is faked: uvicorn on loopback, the test Redis with dramatiq's
Redis broker and a real dramatiq worker, the sandbox marketplaces over HTTP.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import factories
import pytest
from api_data import PASSWORD, seed
from api_service import Api, served_api, service_context

from adapters.sandbox import Sandbox
from syndication.broker import in_process_worker, setup_broker
from syndication.runtime import Runtime
from syndication.settings import Settings

pytestmark = pytest.mark.redis


@pytest.fixture(params=["sqlite", "postgres"])
def desktop_api(request: pytest.FixtureRequest, redis_url: str, tmp_path: Path
                ) -> Iterator[tuple[Api, Sandbox]]:
    url = (f"sqlite:///{tmp_path / 'store.db'}" if request.param == "sqlite"
           else str(request.getfixturevalue("postgres_url")))
    sandbox = Sandbox(publish_delay=0.2).start()
    settings = Settings(
        database_url=url, broker_url=redis_url, outbox=tmp_path / "outbox",
        marketplaces_file=sandbox.write_marketplaces_file(
            tmp_path / "marketplaces.toml", read_timeout=10.0, max_attempts=2),
        max_retries=2, min_backoff_ms=100, confirm_delay_ms=300,
    )
    runtime = Runtime.from_settings(settings)
    broker = setup_broker(settings, runtime)
    try:
        tenants = seed(runtime.engine)
        context = service_context(runtime.engine, tmp_path, broker=broker,
                                  broker_url=redis_url)
        with in_process_worker(broker, 4), served_api(context, tenants, log_in=False) as api:
            yield api, sandbox
    finally:
        sandbox.stop()
        runtime.close()


def poll(check: Any, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


def test_log_in_push_transfer_poll_and_read_published(desktop_api: tuple[Api, Sandbox]) -> None:
    api, sandbox = desktop_api
    login = api.call("POST", "/sessions", json={"user": "agent", "password": PASSWORD})
    assert login.status_code == 201
    bearer = {"Authorization": f"Bearer {login.json()['token']}"}

    pushed = api.call("PUT", "/records", headers=bearer, json={
        "offices": [], "users": [],
        "listings": [factories.listing("O7", office_id="K1", broker_id="agent",
                                       headline="Villa vid sjön")]})
    assert pushed.status_code == 200
    assert pushed.json()["created_listings"] == ["O7"]

    started = api.call("POST", "/transfers", headers={**bearer, "Idempotency-Key": "o7-first"},
                       json={"object_id": "O7"})
    assert started.status_code == 202
    status_url = started.json()["status_url"]

    def finished() -> dict[str, Any] | None:
        progress = api.http.get(status_url, headers=bearer).json()
        return progress if progress["finished"] else None

    progress = poll(finished)
    assert progress and progress["outcome"] == "done", progress
    assert progress["failures"] == []

    selected = set(factories.VILLA_DEFAULTS)

    def published() -> dict[str, Any] | None:
        status = api.call("GET", "/listings/O7/status", headers=bearer).json()
        states = {row["marketplace"]: row for row in status["marketplaces"]}
        done = all(states[name]["state"] == "published" for name in selected)
        return status if done else None

    status = poll(published)
    assert status, api.call("GET", "/listings/O7/status", headers=bearer).json()
    rows = {row["marketplace"]: row for row in status["marketplaces"]}
    for name in selected:
        assert rows[name]["marketplace_id"], rows[name]
        assert rows[name]["action"] == "create"
    assert rows["hittahem"]["state"] == "not_selected"
    assert sandbox["hemnet"].creations["O7"] == 1
    history = api.call("GET", "/listings/O7/status?history=true", headers=bearer).json()
    assert [e["state"] for e in history["history"] if e["marketplace"] == "hemnet"][-1] == \
        "published"
    assert api.call("DELETE", "/sessions/current", headers=bearer).status_code == 204
