"""``syndication transfer --marketplace NAME``: the listing goes to that marketplace only.

Against the sandbox marketplaces over HTTP, in-process broker: the other
marketplace of the listing is not sent to and gets no status row or history.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from adapters.sandbox import Sandbox
from syndication.cli import main
from syndication.ingest import ingest_document
from syndication.store.db import make_engine, migrate
from syndication.store.repository import get_statuses, history


def records() -> bytes:
    listing = {
        "id": "O1", "office_id": "K1", "category": "villa", "state": "for_sale",
        "price": 3_950_000, "living_area": 142, "rooms": 5,
        "address": {"street": "Storgatan 1", "postal_code": "123 45", "city": "Uppsala",
                    "municipality": "Uppsala"},
        "headline": "Villa vid ån", "description": "Ljus villa med trädgård.",
        "images": [{"url": "https://img.example.se/O1/1.jpg", "order": 0}],
        "marketplaces": ["hemnet", "hittahem"],
    }
    office = {"id": "K1", "name": "Mäklarbyrån K1", "licence": ["hemnet", "hittahem"]}
    return json.dumps({"offices": [office], "users": [], "listings": [listing]}).encode()


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Sandbox, Engine]]:
    with Sandbox() as sandbox:
        url = f"sqlite:///{tmp_path / 'store.db'}"
        engine = make_engine(url)
        migrate(engine)
        marketplaces = sandbox.write_marketplaces_file(tmp_path / "mp.toml", max_attempts=2)
        for name, value in {
            "SYNDICATION_DATABASE_URL": url, "SYNDICATION_MARKETPLACES": str(marketplaces),
            "SYNDICATION_OUTBOX": str(tmp_path / "outbox"), "SYNDICATION_LOG_FORMAT": "json",
            "SYNDICATION_CONFIRM_DELAY_MS": "50",
        }.items():
            monkeypatch.setenv(name, value)
        monkeypatch.delenv("SYNDICATION_BROKER_URL", raising=False)
        assert ingest_document(engine, records()).ok
        yield sandbox, engine
        engine.dispose()


def test_a_transfer_to_one_marketplace_sends_nothing_to_the_others(
    world: tuple[Sandbox, Engine], capsys: pytest.CaptureFixture[str],
) -> None:
    sandbox, engine = world
    assert main(["transfer", "--object", "O1", "--marketplace", "hittahem", "--wait"]) == 0
    assert "1 job(s) queued" in capsys.readouterr().out
    assert sandbox["hittahem"].holds("O1") and not sandbox["hemnet"].holds("O1")
    with Session(engine) as session:
        assert set(get_statuses(session, "O1")) == {"hittahem"}
        assert {e.marketplace for e in history(session, "O1")} == {"hittahem"}


def test_an_unknown_marketplace_is_a_usage_error_naming_the_known_ones(
    world: tuple[Sandbox, Engine], capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["transfer", "--object", "O1", "--marketplace", "finn"])
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'finn'" in err and "'hemnet'" in err
