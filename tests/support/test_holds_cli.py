"""``syndication holds list|confirm|cancel`` (R15) against the sandbox marketplaces over
loopback HTTP, on SQLite and PostgreSQL: confirm sends the held deletes with their reason,
cancel restores the listings and sends nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from test_reconcile_nightly import ingest, listing, world  # noqa: F401  (the fixture)

from adapters.sandbox import Sandbox
from syndication.cli import main
from syndication.store.db import session_scope
from syndication.store.models import ListingRow

IDS = [f"O{n}" for n in range(6)]


def held(sandbox: Sandbox, engine: Engine, capsys: pytest.CaptureFixture[str]) -> str:
    import factories

    ingest(engine, [listing(lid) for lid in IDS], offices=[factories.office(licence=["hemnet"])])
    assert main(["transfer", "--office", "K1", "--wait"]) == 0
    (hold_id,) = ingest(engine, [listing(lid, state="withdrawn") for lid in IDS])
    assert main(["transfer", "--office", "K1", "--wait"]) == 0
    assert all(sandbox["hemnet"].holds(lid) for lid in IDS)
    capsys.readouterr()
    return hold_id


def out_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any]:
    code = main(list(argv))
    return code, json.loads(capsys.readouterr().out)


def test_list_then_confirm_sends_the_deletes_with_their_reason(
        world: tuple[Sandbox, Engine], capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    sandbox, engine = world
    assert main(["holds", "list"]) == 1
    hold_id = held(sandbox, engine, capsys)
    code, listed = out_json(capsys, "holds", "list", "--json")
    (hold,) = listed["holds"]
    assert code == 0 and hold["hold_id"] == hold_id and hold["deletes"] == 6
    assert hold["counts"] == {"hemnet": {"removing": 6, "published": 6}}
    assert main(["holds", "list"]) == 0
    text = capsys.readouterr().out
    assert f"hold {hold_id} · office K1 · held · 6 delete(s)" in text
    assert "6 of 6 on Hemnet" in text
    code, _ = out_json(capsys, "holds", "confirm", hold_id, "--json")
    assert code == 0
    hemnet = sandbox["hemnet"]
    assert not any(hemnet.holds(lid) for lid in IDS)
    assert all(hemnet.delete_reasons[lid] == "withdrawn" for lid in IDS)
    assert main(["holds", "confirm", hold_id]) == 2, "decided already"
    assert main(["holds", "list"]) == 1


def test_cancel_restores_and_sends_nothing(
        world: tuple[Sandbox, Engine], capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    sandbox, engine = world
    hold_id = held(sandbox, engine, capsys)
    code, cancelled = out_json(capsys, "holds", "cancel", hold_id, "--json")
    assert code == 0 and cancelled["restored"] == IDS and cancelled["left"] == []
    with session_scope(engine) as session:
        assert {session.get(ListingRow, lid).state for lid in IDS} == {"for_sale"}  # type: ignore[union-attr]
    assert main(["transfer", "--office", "K1", "--wait"]) == 0
    assert all(sandbox["hemnet"].holds(lid) for lid in IDS)
    assert sandbox["hemnet"].delete_reasons == {}
    assert main(["holds", "cancel", "no-such-hold"]) == 2


def test_the_ingest_command_says_the_deletes_are_held(
        world: tuple[Sandbox, Engine], capsys: pytest.CaptureFixture[str],  # noqa: F811
        tmp_path: Path) -> None:
    import factories

    sandbox, engine = world
    ingest(engine, [listing(lid) for lid in IDS], offices=[factories.office(licence=["hemnet"])])
    assert main(["transfer", "--office", "K1", "--wait"]) == 0
    document = tmp_path / "records.json"
    document.write_text(json.dumps({"offices": [], "users": [], "listings": [
        listing(lid, marketplaces=[]) for lid in IDS]}))
    capsys.readouterr()
    assert main(["ingest", str(document)]) == 0
    out = capsys.readouterr().out
    assert "held: a mass deletion is waiting for confirmation (hold " in out
    code, listed = out_json(capsys, "holds", "list", "--json")
    assert [p["reason"] for p in listed["holds"][0]["pairs"]] == ["deselected"] * 6
