"""`syndication export kyero --office ID`: one Kyero feed of the office's homes abroad,
valid against our schema, with the header once and the listings Kyero cannot show left out."""

from __future__ import annotations

import io
import json
import random
from pathlib import Path
from typing import Any

import bench_common
import pytest
from lxml import etree
from sqlalchemy import Engine

from feeds.validate import validate
from syndication.cli import main
from syndication.export import export_office
from syndication.ingest import ingest_document

OFFICE = "KTR-SOL"


def fill(engine: Engine, count: int = 7) -> list[str]:
    rng = random.Random(11)
    abroad = [
        bench_common.abroad_listing(f"OBJ-ES-{n:03d}", OFFICE, "U-MARIA", rng)
        for n in range(count)
    ]
    swedish = bench_common.listing("OBJ-SE-001", OFFICE, "U-MARIA", rng)
    swedish["marketplaces"] = ["kyero"]
    withdrawn = {**abroad[0], "id": "OBJ-ES-GONE", "state": "withdrawn"}
    document: dict[str, Any] = {
        "offices": [bench_common.office(OFFICE, licence=("hemnet", "kyero"))],
        "users": [bench_common.broker("U-MARIA", OFFICE)],
        "listings": [*abroad, swedish, withdrawn],
    }
    report = ingest_document(engine, json.dumps(document, ensure_ascii=False).encode())
    assert report.ok, [str(e) for e in report.errors]
    return [record["id"] for record in abroad]


def test_the_office_feed_holds_its_homes_abroad_and_validates(engine: Engine) -> None:
    expected = fill(engine)
    out = io.BytesIO()
    report = export_office(engine, "kyero", OFFICE, out, chunk=3, progress=False)
    document = out.getvalue()
    validate("kyero-3.0.xsd", document)
    root = etree.fromstring(document)
    assert root.xpath("/root/kyero/feed_version/text()") == ["3"]
    assert len(root.findall("kyero")) == 1 and root[0].tag == "kyero"
    assert root.xpath("/root/property/id/text()") == sorted(expected)
    assert report.written == len(expected)
    assert "currency" in report.skipped["OBJ-SE-001"]
    assert "OBJ-ES-GONE" in report.skipped


def test_the_cli_writes_the_kyero_feed_file(
    sqlite_engine: Engine,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    expected = fill(sqlite_engine, 4)
    monkeypatch.setenv("SYNDICATION_DATABASE_URL", str(sqlite_engine.url))
    target = tmp_path / "kyero-KTR-SOL.xml"
    assert main(["export", "kyero", "--office", OFFICE, "-o", str(target)]) == 0
    validate("kyero-3.0.xsd", target.read_bytes())
    ids = etree.fromstring(target.read_bytes()).xpath("/root/property/id/text()")
    assert ids == sorted(expected)
    err = capsys.readouterr().err
    assert "written to" in err and "OBJ-SE-001" in err
