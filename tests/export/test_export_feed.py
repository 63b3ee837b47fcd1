"""Full-feed export: the right listings, a document that validates, flat memory, the CLI."""

from __future__ import annotations

import io
import tracemalloc
from pathlib import Path
from typing import Any

import factories
import pytest
from lxml import etree
from sqlalchemy import Engine

from feeds.validate import validate
from syndication import registry
from syndication.cli import main
from syndication.export import export_office
from syndication.records import UserImage
from syndication.store.db import session_scope
from syndication.store.models import ListingImageRow, ListingRow
from syndication.store.repository import record_status

ALL = ["hemnet", "blocket", "hittahem"]
ID_PATHS = {
    "hemnet": "/listingFeed/listing/externalId/text()",
    "blocket": "/annonser/annons/objektnummer/text()",
    "hittahem": "/hittahem/catalogue/property/@id",
}


def listing_row(listing_id: str, **overrides: Any) -> dict[str, Any]:
    """The factory's listing ``listing_id``, selected on every marketplace, as a store row;
    :func:`fill_store` adds its images."""
    record = factories.listing_record(listing_id, **{"marketplaces": ALL, **overrides})
    return factories.columns(record)


def fill_store(engine: Engine, count: int, extra: list[dict[str, Any]] = ()) -> None:  # type: ignore[assignment]
    rows = [listing_row(f"OBJ{n:05d}") for n in range(count)] + list(extra)
    with session_scope(engine) as session:
        session.add_all(factories.rows(
            factories.office_record(licence=ALL, logo_url="https://media.example.se/k1/logo.png",
                                    email="info@k1.example.se"),
            factories.office_record("K2", licence=ALL),
            factories.user_record(
                show_on_internet=True,
                images=(UserImage("https://media.example.se/u1.jpg", "portratt", True, 0),),
            ),
        ))
        session.flush()
        if not rows:
            return
        session.execute(ListingRow.__table__.insert(), rows)  # type: ignore[attr-defined]
        images = [
            {
                "listing_id": row["id"],
                "url": f"https://media.example.se/{row['id']}/{n}.jpg",
                "position": n,
                "caption": f"Bild {n}",
                "source": "desktop",
            }
            for row in rows
            if row["id"] != "NOIMAGES"
            for n in range(2)
        ]
        session.execute(ListingImageRow.__table__.insert(), images)  # type: ignore[attr-defined]


SPECIAL = [
    listing_row("WITHDRAWN", state="withdrawn"),
    listing_row("SOLD", state="sold"),
    listing_row("NOTSELECTED", marketplaces=["hemnet"]),
    listing_row("NOIMAGES"),
    listing_row("OTHEROFFICE", office_id="K2"),
    listing_row("PUBLISHED", category="lantbruk", orientations=["fritid"]),
]


def export_bytes(engine: Engine, marketplace: str, chunk: int = 4) -> tuple[bytes, Any]:
    out = io.BytesIO()
    report = export_office(engine, marketplace, "K1", out, chunk=chunk, progress=False)
    return out.getvalue(), report


@pytest.mark.parametrize("marketplace", ALL)
def test_export_holds_exactly_what_a_transfer_would_publish(
    engine: Engine, marketplace: str
) -> None:
    fill_store(engine, 10, SPECIAL)
    with session_scope(engine) as session:
        record_status(
            session, "PUBLISHED", marketplace, "published", action="create", marketplace_id="M-1"
        )
    document, report = export_bytes(engine, marketplace)
    validate(registry.get(marketplace).schema, document)
    ids = etree.fromstring(document).xpath(ID_PATHS[marketplace])
    expected = [f"OBJ{n:05d}" for n in range(10)] + ["PUBLISHED"]
    if marketplace == "hemnet":
        expected.append("NOTSELECTED")
    assert sorted(ids) == sorted(expected)
    assert report.written == len(expected)
    assert "images" in report.skipped["NOIMAGES"]
    assert {"WITHDRAWN", "SOLD", "NOIMAGES"} <= set(report.skipped)
    assert "OTHEROFFICE" not in ids and "OTHEROFFICE" not in report.skipped


def test_export_of_an_empty_office_is_a_valid_empty_feed(sqlite_engine: Engine) -> None:
    fill_store(sqlite_engine, 0)
    for marketplace in ALL:
        document, report = export_bytes(sqlite_engine, marketplace)
        validate(registry.get(marketplace).schema, document)
        assert report.written == 0


def peak_bytes(engine: Engine, path: Path) -> int:
    tracemalloc.start()
    try:
        with path.open("wb") as out:
            export_office(engine, "hemnet", "K1", out, chunk=50, progress=False)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_stays_flat_as_the_office_grows(tmp_path: Path) -> None:
    from syndication.store.db import make_engine, migrate

    peaks = {}
    for count in (150, 600):
        engine = make_engine(f"sqlite:///{tmp_path / f'store{count}.db'}")
        migrate(engine)
        fill_store(engine, count)
        peak_bytes(engine, tmp_path / "warm.xml")
        peaks[count] = peak_bytes(engine, tmp_path / f"feed{count}.xml")
        validate("hemnet-listing-1.0.xsd", (tmp_path / f"feed{count}.xml").read_bytes())
        engine.dispose()
    assert peaks[600] < peaks[150] * 1.5, peaks


def test_cli_writes_the_feed_file(
    sqlite_engine: Engine,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fill_store(sqlite_engine, 3, SPECIAL)
    monkeypatch.setenv("SYNDICATION_DATABASE_URL", str(sqlite_engine.url))
    (tmp_path / "out").mkdir()
    target = tmp_path / "out" / "blocket.xml"
    assert main(["export", "blocket", "--office", "K1", "-o", str(target)]) == 0
    validate("blocket-listing-1.0.xsd", target.read_bytes())
    err = capsys.readouterr().err
    assert "written to" in err and "NOIMAGES" in err
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["blocket.xml"]


def test_cli_unknown_office_is_an_error_not_a_traceback(
    sqlite_engine: Engine,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("SYNDICATION_DATABASE_URL", str(sqlite_engine.url))
    (tmp_path / "out").mkdir()
    target = tmp_path / "out" / "x.xml"
    assert main(["export", "hemnet", "--office", "NOPE", "-o", str(target)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "NOPE" in err and "Traceback" not in err
    assert list((tmp_path / "out").iterdir()) == []


def test_the_bundled_example_exports_valid_feeds(sqlite_engine: Engine) -> None:
    import json
    from importlib import resources

    from syndication.ingest import ingest_document

    raw = resources.files("examples").joinpath("records.json").read_bytes()
    ingest_document(sqlite_engine, raw)
    written = 0
    for office in json.loads(raw)["offices"]:
        for marketplace in ALL:
            out = io.BytesIO()
            report = export_office(sqlite_engine, marketplace, office["id"], out, progress=False)
            validate(registry.get(marketplace).schema, out.getvalue())
            written += report.written
            unbuildable = {
                k: v for k, v in report.skipped.items() if "validate" in v or "field" in v
            }
            assert unbuildable == {}
    assert written > 0
