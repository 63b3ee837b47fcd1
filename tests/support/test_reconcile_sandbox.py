"""R13 against the real sandbox marketplaces over loopback HTTP, through the CLI.

The store is a real SQLite file, the queue dramatiq's in-process broker with
worker threads (the CLI's default without Redis), the transports the HTTP
ones from a marketplaces file. Drift is made the way it happens: a listing
removed by hand on Hemnet, a delete whose receipt was lost, a listing the
store lost, a stored document hash that no longer matches.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import factories
import pytest
from sqlalchemy import Engine, delete

from adapters.sandbox import Sandbox
from syndication.cli import main
from syndication.ingest import ingest_document
from syndication.store.db import make_engine, migrate, session_scope
from syndication.store.models import ListingRow, TransferRequestRow, TransferStatusRow
from syndication.store.repository import get_statuses, history, record_status

TOKEN = "sandbox-token-for-reconcile-tests"


listing = partial(factories.listing, broker_id=None, marketplaces=["hemnet", "hittahem"])
"""The factory's listing without a broker, selected on Hemnet and HittaHem."""


def ingest(engine: Engine, **document: Any) -> None:
    report = ingest_document(engine, json.dumps(document).encode())
    assert report.ok, report.errors


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Sandbox, Engine]]:
    with Sandbox(token=TOKEN) as sandbox:
        url = f"sqlite:///{tmp_path / 'store.db'}"
        engine = make_engine(url)
        migrate(engine)
        marketplaces = sandbox.write_marketplaces_file(
            tmp_path / "marketplaces.toml", token_env="SANDBOX_TOKEN", max_attempts=2
        )
        for name, value in {
            "SYNDICATION_DATABASE_URL": url, "SYNDICATION_MARKETPLACES": str(marketplaces),
            "SANDBOX_TOKEN": TOKEN, "SYNDICATION_OUTBOX": str(tmp_path / "outbox"),
            "SYNDICATION_LOG_FORMAT": "json", "SYNDICATION_CONFIRM_DELAY_MS": "50",
        }.items():
            monkeypatch.setenv(name, value)
        monkeypatch.delenv("SYNDICATION_BROKER_URL", raising=False)
        yield sandbox, engine
        engine.dispose()


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def lines_about(out: str, listing_id: str) -> list[str]:
    return [line for line in out.splitlines() if f" {listing_id} " in line]


def test_reconcile_reports_and_repairs_drift(
    world: tuple[Sandbox, Engine], capsys: pytest.CaptureFixture[str]
) -> None:
    sandbox, engine = world
    hemnet = sandbox["hemnet"]
    ingest(engine, offices=[factories.office(licence=["hemnet", "hittahem"])],
           users=[], listings=[listing(lid) for lid in ("O1", "O2", "O3", "GHOST", "OK")])
    code, out, _ = run(capsys, "transfer", "--office", "K1", "--wait")
    assert code == 0, out
    assert all(hemnet.holds(lid) for lid in ("O1", "O2", "O3", "GHOST", "OK"))
    code, out, _ = run(capsys, "reconcile", "--office", "K1")
    assert code == 0 and "0 difference(s)" in out

    hemnet.remove_by_hand("O1")
    ingest(engine, offices=[], users=[], listings=[listing("O2", state="withdrawn")])
    with session_scope(engine) as session:
        record_status(session, "O2", "hemnet", "deleted", action="delete")
        record_status(session, "O3", "hemnet", "published", document_hash="0" * 64)
        session.execute(delete(TransferStatusRow).where(TransferStatusRow.listing_id == "GHOST"))
        session.execute(delete(ListingRow).where(ListingRow.id == "GHOST"))

    code, out, _ = run(capsys, "reconcile", "--office", "K1", "--marketplace", "hemnet")
    assert code == 1
    assert "Hemnet: 4 listing(s) held there, 4 difference(s)" in out
    assert "missing_there" in lines_about(out, "O1")[0]
    assert "would send" in lines_about(out, "O1")[0]
    assert "unknown_here" in lines_about(out, "O2")[0]
    assert "would delete (withdrawn)" in lines_about(out, "O2")[0]
    assert "stale_there" in lines_about(out, "O3")[0]
    assert "would delete (deleted)" in lines_about(out, "GHOST")[0]
    assert lines_about(out, "OK") == []
    assert not hemnet.holds("O1") and hemnet.holds("O2") and hemnet.holds("GHOST")

    sent_before = len(hemnet.documents(listing_id="O3"))
    code, out, err = run(capsys, "reconcile", "--office", "K1", "--repair")
    assert code == 0, out + err
    assert hemnet.holds("O1"), "a listing removed by hand must be sent again"
    assert not hemnet.holds("O2") and hemnet.delete_reasons["O2"] == "withdrawn"
    assert not hemnet.holds("GHOST") and hemnet.delete_reasons["GHOST"] == "deleted"
    assert len(hemnet.documents(listing_id="O3")) == sent_before + 1
    assert hemnet.creations["O3"] == 1 and hemnet.creations["OK"] == 1
    with session_scope(engine) as session:
        assert get_statuses(session, "O2")["hemnet"].state == "deleted"
        assert get_statuses(session, "O1")["hemnet"].state in ("sent", "published")
        last = history(session, "O1", "hemnet")[-1]
        request = session.get(TransferRequestRow, last.request_id)
        assert request is not None and request.scope == "reconcile:K1"
        assert (last.action, last.marketplace_id) == ("create", hemnet.marketplace_id("O1"))
        deleted = history(session, "O2", "hemnet")
        assert any((e.error or "").startswith("reconciliation: Hemnet still holds it")
                   for e in deleted)
    assert hemnet.creations["O1"] == 2

    code, out, _ = run(capsys, "reconcile", "--office", "K1")
    assert code == 0, out
    assert "Hemnet: 3 listing(s) held there, 0 difference(s)" in out
    assert "HittaHem: 3 listing(s) held there, 0 difference(s)" in out


def test_reconcile_usage_and_unreachable_marketplace(
    world: tuple[Sandbox, Engine], capsys: pytest.CaptureFixture[str]
) -> None:
    sandbox, engine = world
    assert run(capsys, "reconcile", "--office", "NOPE")[0] == 2
    ingest(engine, offices=[{"id": "K1", "name": "K1", "licence": ["hemnet"]}], users=[],
           listings=[])
    sandbox.down("hemnet")
    code, out, err = run(capsys, "reconcile", "--office", "K1")
    assert code == 1 and "Hemnet: could not ask for the inventory" in err
    assert TOKEN not in out + err
