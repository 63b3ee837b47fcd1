"""R13 on a schedule and R15 against it: the nightly reconciliation through
``syndication scheduler --once reconcile``, over the sandbox marketplaces on loopback
HTTP, on a real SQLite file and a real PostgreSQL database; its report through
``syndication reconcile --last``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import factories
import pytest
from sqlalchemy import Engine
from sqlmodel import select

from adapters.sandbox import Sandbox
from syndication import holds
from syndication.cli import main
from syndication.ingest import ingest_document
from syndication.store.db import make_engine, migrate, session_scope
from syndication.store.guard_models import ReconcileResultRow
from syndication.store.repository import get_statuses, record_status

TOKEN = "sandbox-token-for-nightly-reconcile"
listing = partial(factories.listing, broker_id=None, marketplaces=["hemnet"])


@pytest.fixture(params=["sqlite", "postgres"])
def world(request: pytest.FixtureRequest, tmp_path: Path,
          monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Sandbox, Engine]]:
    url = (f"sqlite:///{tmp_path / 'store.db'}" if request.param == "sqlite"
           else request.getfixturevalue("postgres_url"))
    with Sandbox(token=TOKEN) as sandbox:
        engine = make_engine(url)
        migrate(engine)
        marketplaces = sandbox.write_marketplaces_file(
            tmp_path / "marketplaces.toml", token_env="SANDBOX_TOKEN", max_attempts=2)
        for name, value in {
            "SYNDICATION_DATABASE_URL": url, "SYNDICATION_MARKETPLACES": str(marketplaces),
            "SANDBOX_TOKEN": TOKEN, "SYNDICATION_OUTBOX": str(tmp_path / "outbox"),
            "SYNDICATION_LOG_FORMAT": "json", "SYNDICATION_CONFIRM_DELAY_MS": "50",
        }.items():
            monkeypatch.setenv(name, value)
        monkeypatch.delenv("SYNDICATION_BROKER_URL", raising=False)
        yield sandbox, engine
        engine.dispose()


def ingest(engine: Engine, listings: list[dict[str, Any]], **extra: Any) -> list[str]:
    report = ingest_document(engine, json.dumps(
        {"offices": extra.get("offices", []), "users": [], "listings": listings}).encode())
    assert report.ok, report.errors
    return report.holds


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out + err


def last_report(capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    code = main(["reconcile", "--last", "--json"])
    out = capsys.readouterr().out
    assert code == 0, out
    report: dict[str, Any] = json.loads(out)
    return report


def test_the_nightly_run_resends_what_is_missing_and_reports_the_rest(
        world: tuple[Sandbox, Engine], capsys: pytest.CaptureFixture[str]) -> None:
    sandbox, engine = world
    hemnet = sandbox["hemnet"]
    assert run(capsys, "reconcile", "--last")[0] == 2, "nothing recorded yet"
    ingest(engine, [listing(lid) for lid in ("O1", "O2", "O3", "O4")],
           offices=[factories.office(licence=["hemnet"])])
    assert run(capsys, "transfer", "--office", "K1", "--wait")[0] == 0
    hemnet.remove_by_hand("O1")
    ingest(engine, [listing("O2", state="sold")])
    with session_scope(engine) as session:
        record_status(session, "O2", "hemnet", "deleted", action="delete")

    code, out = run(capsys, "scheduler", "--once", "reconcile")
    assert code == 0 and "reconcile: enqueued" in out, out
    assert hemnet.holds("O1"), "a listing missing there is sent again"
    assert hemnet.holds("O2"), "the nightly run deletes nothing"
    assert "O2" not in hemnet.delete_reasons

    report = last_report(capsys)
    assert report["trigger"] == "nightly" and report["run_id"].startswith("nightly-")
    (result,) = report["results"]
    assert (result["office_id"], result["marketplace"], result["held_there"]) == (
        "K1", "hemnet", 3)
    found = {d["listing_id"]: d for d in result["differences"]}
    assert set(found) == {"O1", "O2"} and result["repaired"] == 1
    assert (found["O1"]["kind"], found["O1"]["repair"], found["O1"]["repaired"]) == (
        "missing_there", "resend", True)
    assert (found["O2"]["kind"], found["O2"]["repair"], found["O2"]["reason"],
            found["O2"]["repaired"]) == ("unknown_here", "delete", "sold", False)
    code, text = run(capsys, "reconcile", "--last", "--office", "K1")
    assert code == 0 and "K1 on hemnet: 3 held there, 2 difference(s), 1 repaired" in text
    assert "left for a person" in text and TOKEN not in text
    code, _out = run(capsys, "scheduler", "--once", "reconcile")
    assert code == 0 and "already claimed" in _out, "one run per night"


def test_the_nightly_run_does_not_bypass_a_held_mass_deletion(
        world: tuple[Sandbox, Engine], capsys: pytest.CaptureFixture[str]) -> None:
    sandbox, engine = world
    hemnet = sandbox["hemnet"]
    ids = [f"O{n}" for n in range(6)]
    ingest(engine, [listing(lid) for lid in ids], offices=[factories.office(licence=["hemnet"])])
    assert run(capsys, "transfer", "--office", "K1", "--wait")[0] == 0
    (hold_id,) = ingest(engine, [listing(lid, state="withdrawn") for lid in ids])
    assert run(capsys, "transfer", "--office", "K1", "--wait")[0] == 0
    hemnet.remove_by_hand("O0")
    with session_scope(engine) as session:
        record_status(session, "O1", "hemnet", "published", document_hash="0" * 64)

    assert run(capsys, "scheduler", "--once", "reconcile")[0] == 0
    assert all(hemnet.holds(lid) for lid in ids[1:]) and hemnet.delete_reasons == {}
    with session_scope(engine) as session:
        (hold,) = holds.list_holds(session)
        assert hold.id == hold_id and hold.state == "held"
        assert get_statuses(session, "O3")["hemnet"].state == "published"
        assert len(session.exec(select(ReconcileResultRow)).all()) == 1
    (result,) = last_report(capsys)["results"]
    assert {d["listing_id"]: d["repaired"] for d in result["differences"]} == {
        "O0": False, "O1": False}
    held_back = {d["listing_id"]: d for d in result["differences"]}["O1"]
    assert held_back["repair"] == "none" and "held for confirmation" in held_back["detail"]

    code, out = run(capsys, "reconcile", "--office", "K1", "--repair")
    assert code == 1 and "held for confirmation" in out, "a person's repair leaves it too"
    assert all(hemnet.holds(lid) for lid in ids[1:]) and hemnet.delete_reasons == {}
