"""The final-price report explains every sold listing (R7), a file drop is no Hemnet
publication, and a migrating operator seeds the Hemnet history from a CSV file."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fp_support import RecordingHemnet, seed
from sqlalchemy import Engine

from adapters.base import Delivery
from adapters.filedrop import FileDropTransport, local_id
from syndication.cli.final_prices import print_text, run_sync
from syndication.final_prices import process_batch
from syndication.hemnet_history import REQUEST_ID, seed_hemnet_history
from syndication.rules import final_price as r7
from syndication.runtime import Runtime
from syndication.store import session_scope
from syndication.store.models import TransferStatusRow
from syndication.store.repository import history, record_status


def dry_run(runtime: Runtime) -> dict[str, Any]:
    return run_sync(runtime, None, timeout=5, show_progress=False)


def outcomes(result: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {e["listing_id"]: (e["outcome"], e["reason"])
            for section in ("sent", "skipped", "failed") for e in result[section]}


def test_every_sold_listing_has_its_outcome_and_the_rule_that_stopped_it(
    engine: Engine, hemnet: RecordingHemnet, make_runtime: Any
) -> None:
    seed(engine, [{"id": "OK"}, {"id": "NOCONSENT", "send_final_price": False},
                  {"id": "EARLY"}, {"id": "UNSOLD", "state": "for_sale"}],
         published=["OK", "NOCONSENT", "UNSOLD"])
    runtime = make_runtime(engine, hemnet)
    result = dry_run(runtime)
    assert outcomes(result) == {
        "OK": ("would_send", "eligible; not sent before"),
        "NOCONSENT": ("skipped", r7.FLAG_NOT_SET),
        "EARLY": ("skipped", r7.NOT_PUBLISHED_BEFORE_SALE),
    }
    assert "seller and buyer have not consented" in r7.FLAG_NOT_SET
    assert r7.NOT_PUBLISHED_BEFORE_SALE.startswith("sold before it was published on Hemnet")
    assert all(e["office_id"] == "K1" for e in result["sent"] + result["skipped"])
    out = io.StringIO()
    print_text(result, out)
    assert "would send 1, skipped 2" in out.getvalue()
    assert f"NOCONSENT  {r7.FLAG_NOT_SET}" in out.getvalue()

    sent = run_sync(runtime, lambda ids, run_id: (process_batch(runtime, ids, run_id), None)[1],
                    timeout=5, show_progress=False)
    assert outcomes(sent)["OK"] == ("sent", "eligible; not sent before")
    assert outcomes(dry_run(runtime))["OK"] == ("skipped", r7.ALREADY_SENT)


def test_a_file_drop_delivery_is_not_a_publication_on_hemnet(
    engine: Engine, hemnet: RecordingHemnet, make_runtime: Any, tmp_path: Path
) -> None:
    seed(engine, [{"id": "DROPPED"}], published=[])
    receipt = FileDropTransport(tmp_path / "drop").send(Delivery(
        marketplace="hemnet", listing_id="DROPPED", office_id="K1", action="create",
        document=b"<listing/>", idempotency_key="k"))
    assert receipt.marketplace_id == local_id("hemnet", "DROPPED")
    with session_scope(engine) as session:
        record_status(session, "DROPPED", "hemnet", "sent", action="create",
                      marketplace_id=receipt.marketplace_id,
                      at=datetime(2026, 9, 1, tzinfo=UTC))
    assert outcomes(dry_run(make_runtime(engine, hemnet)))["DROPPED"] == (
        "skipped", r7.NOT_PUBLISHED_BEFORE_SALE)


def test_a_migrating_operator_seeds_the_hemnet_history(
    engine: Engine, hemnet: RecordingHemnet, make_runtime: Any, tmp_path: Path
) -> None:
    seed(engine, [{"id": "OLD"}, {"id": "LATER"}, {"id": "KEPT"}], published=[])
    with session_scope(engine) as session:
        record_status(session, "KEPT", "hemnet", "failed", action="update", error="503",
                      at=datetime(2026, 9, 20, tzinfo=UTC))
    csv = tmp_path / "hemnet.csv"
    csv.write_text(
        "listing_id,hemnet_id,published_on,public_url\n"
        "OLD,H-9001,2026-08-30,https://hemnet.example/9001\n"
        "KEPT,H-9002,2026-09-01T10:00:00+02:00,\n"
        "LATER,H-9003,2026-11-01,\n"
        "NOSUCH,H-1,2026-08-30,\n"
        f"OLD,{local_id('hemnet', 'OLD')},2026-08-30,\n"
        "OLD,H-9001,yesterday,\n",
        encoding="utf-8",
    )
    result = seed_hemnet_history(engine, csv)
    assert result.seeded == 3
    assert [r.split(": ", 1)[1] for r in result.refused] == [
        "listing 'NOSUCH': listing_id: no such listing",
        f"listing 'OLD': hemnet_id: '{local_id('hemnet', 'OLD')}' is a file drop's receipt "
        "id, not a publication on Hemnet",
        "listing 'OLD': published_on: Invalid isoformat string: 'yesterday'",
    ]
    with session_scope(engine) as session:
        old = session.get(TransferStatusRow, ("OLD", "hemnet"))
        kept = session.get(TransferStatusRow, ("KEPT", "hemnet"))
        assert old is not None and kept is not None
        assert (old.state, old.marketplace_id, old.public_url) == (
            "published", "H-9001", "https://hemnet.example/9001")
        assert kept.state == "failed", "a pair with a status keeps it; only history is added"
        assert [e.request_id for e in history(session, "KEPT", "hemnet")][-1] == REQUEST_ID
    assert outcomes(dry_run(make_runtime(engine, hemnet))) == {
        "OLD": ("would_send", "eligible; not sent before"),
        "KEPT": ("would_send", "eligible; not sent before"),
        "LATER": ("skipped", r7.NOT_PUBLISHED_BEFORE_SALE),
    }


def test_a_csv_without_the_columns_is_refused_whole(sqlite_engine: Engine,
                                                    tmp_path: Path) -> None:
    csv = tmp_path / "bad.csv"
    csv.write_text("id,published\nOLD,2026-08-30\n", encoding="utf-8")
    result = seed_hemnet_history(sqlite_engine, csv)
    assert result.seeded == 0
    assert result.refused == [f"{csv}: header lacks listing_id, hemnet_id, published_on"]
