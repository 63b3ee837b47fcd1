"""The final-price sync against the real store (SQLite and PostgreSQL): selection,
skip reasons, idempotency, retractions, failures resumed by the next run.

Batches run inline here (``process_batch`` as the enqueue callable) with a recording
transport; ``test_queue_sandbox.py`` runs the same through dramatiq and real HTTP.
"""

from __future__ import annotations

import time
from datetime import UTC, date, datetime
from typing import Any

import pytest
from fp_support import (
    CONTRACT,
    RecordingHemnet,
    seed,
    update_listing,
    update_office,
)
from sqlalchemy import Engine, select, text

from syndication import final_prices
from syndication.cli.final_prices import run_sync
from syndication.final_prices import process_batch
from syndication.rules import final_price as r7
from syndication.runtime import Runtime
from syndication.store import session_scope
from syndication.store.models import FinalPriceRow, TransferEventRow


def run(runtime: Runtime, *, dry_run: bool = False) -> dict[str, Any]:
    def inline(ids: list[str], run_id: str) -> None:
        process_batch(runtime, ids, run_id)

    return run_sync(runtime, None if dry_run else inline, timeout=5, show_progress=False)


def ids(entries: list[dict[str, Any]]) -> list[str]:
    return sorted(e["listing_id"] for e in entries)


def reasons(result: dict[str, Any]) -> dict[str, str]:
    return {e["listing_id"]: e["reason"] for e in result["skipped"]}


def rows(engine: Engine) -> dict[str, FinalPriceRow]:
    with session_scope(engine) as session:
        return {r.listing_id: r for r in session.scalars(select(FinalPriceRow))}


def test_selection_sends_the_eligible_and_gives_every_skip_its_reason(
    engine: Engine, hemnet: RecordingHemnet, make_runtime: Any
) -> None:
    seed(
        engine,
        [
            {"id": "OK"},
            {"id": "TOMT", "category": "tomt"},
            {"id": "LATE"},
            {"id": "NEVER"},
            {"id": "OFF", "office_id": "K2"},
            {"id": "NOAGR", "office_id": "K3"},
            {"id": "OTHER", "company_id": "C2", "broker_id": "MULTI"},
            {"id": "MAIN", "company_id": "C1", "broker_id": "MULTI"},
            {"id": "ALL", "company_id": "C2", "broker_id": "ALLCOS"},
            {"id": "NOPRICE", "final_price": None},
            {"id": "NODATE", "contract_date": None},
            {"id": "UNSOLD", "state": "for_sale"},
            {"id": "NOFLAG", "send_final_price": False},
        ],
        offices=[
            {"id": "K1", "company_id": "C1", "final_price_enabled": True,
             "hemnet_final_price_agreement": True},
            {"id": "K2", "company_id": "C1", "hemnet_final_price_agreement": True},
            {"id": "K3", "company_id": "C1", "final_price_enabled": True},
        ],
        users=[
            {"id": "MULTI", "companies": ["C1", "C2"], "main_company": "C1"},
            {"id": "ALLCOS", "companies": ["C1", "C2"], "main_company": "C1",
             "statistics_all_companies": True},
        ],
        published=["OK", "TOMT", "OFF", "NOAGR", "OTHER", "MAIN", "ALL", "NOPRICE", "NODATE",
                   "UNSOLD", "NOFLAG"],
    )
    seed(engine, [], offices=[{"id": "K9"}], published=["LATE"],
         published_at=datetime(2026, 10, 4, 8, tzinfo=UTC))
    result = run(make_runtime(engine, hemnet))
    assert ids(result["sent"]) == ["ALL", "MAIN", "OK"]
    assert sorted(hemnet.sent()) == ["ALL", "MAIN", "OK"]
    assert reasons(result) == {
        "TOMT": r7.category_reason("tomt"),
        "LATE": r7.NOT_PUBLISHED_BEFORE_SALE,
        "NEVER": r7.NOT_PUBLISHED_BEFORE_SALE,
        "OFF": r7.OFFICE_SETTING_OFF,
        "NOAGR": r7.NO_AGREEMENT,
        "OTHER": r7.company_reason("C2", "C1"),
        "NOPRICE": r7.NO_FINAL_PRICE,
        "NODATE": f"{r7.NO_CONTRACT_DATE}; {r7.NOT_PUBLISHED_BEFORE_SALE}",
        "NOFLAG": r7.FLAG_NOT_SET,
    }
    assert result["failed"] == []


def test_published_on_the_contract_day_counts_as_before_the_sale(
    engine: Engine, hemnet: RecordingHemnet, make_runtime: Any
) -> None:
    seed(engine, [{"id": "SAMEDAY"}], published_at=datetime(2026, 10, 3, 21, tzinfo=UTC))
    assert ids(run(make_runtime(engine, hemnet))["sent"]) == ["SAMEDAY"]


def test_a_failed_listing_transfer_is_not_a_publication(
    sqlite_engine: Engine, hemnet: RecordingHemnet, make_runtime: Any
) -> None:
    seed(sqlite_engine, [{"id": "F"}], published=[])
    with session_scope(sqlite_engine) as session:
        from syndication.store.repository import record_status

        record_status(session, "F", "hemnet", "failed", action="create", error="503",
                      at=datetime(2026, 9, 1, tzinfo=UTC))
    assert reasons(run(make_runtime(sqlite_engine, hemnet))) == {"F": r7.NOT_PUBLISHED_BEFORE_SALE}


def test_idempotent_runs_resend_changes_and_retract_withdrawn_consent(
    engine: Engine, hemnet: RecordingHemnet, make_runtime: Any
) -> None:
    seed(engine, [{"id": "A"}, {"id": "B"}, {"id": "C"}, {"id": "D"}])
    runtime = make_runtime(engine, hemnet)
    assert ids(run(runtime)["sent"]) == ["A", "B", "C", "D"]

    second = run(runtime)
    assert second["sent"] == [] and hemnet.calls == 4
    assert set(reasons(second).values()) == {r7.ALREADY_SENT}

    update_listing(engine, "A", final_price=4_300_000)
    update_listing(engine, "B", send_final_price=False)
    update_office(engine, "K1", final_price_enabled=True)
    third = run(runtime)
    assert [(e["listing_id"], e["action"]) for e in sorted(third["sent"], key=str)] == [
        ("A", "resend"), ("B", "retract")
    ]
    assert hemnet.sent() == ["A", "B", "C", "D", "A"]
    assert hemnet.sent("final_price_retraction") == ["B"]
    stored = rows(engine)
    assert (stored["A"].state, stored["A"].sent_price) == ("sent", 4_300_000)
    assert (stored["B"].state, stored["B"].sent_price) == ("retracted", None)

    assert run(runtime)["sent"] == [] and hemnet.calls == 6

    update_listing(engine, "B", send_final_price=True)
    assert ids(run(runtime)["sent"]) == ["B"]
    assert rows(engine)["B"].state == "sent"


def test_turning_the_office_setting_off_retracts_what_was_sent(
    engine: Engine, hemnet: RecordingHemnet, make_runtime: Any
) -> None:
    seed(engine, [{"id": "A"}, {"id": "B", "state": "deleted"}])
    runtime = make_runtime(engine, hemnet)
    run(runtime)
    update_office(engine, "K1", final_price_enabled=False)
    result = run(runtime)
    assert [(e["listing_id"], e["action"]) for e in result["sent"]] == [("A", "retract")]
    assert run(runtime)["sent"] == []


def test_a_hemnet_failure_is_recorded_and_resumed_by_the_next_run(
    engine: Engine, hemnet: RecordingHemnet, make_runtime: Any
) -> None:
    seed(engine, [{"id": f"L{i}"} for i in range(5)])
    runtime = make_runtime(engine, hemnet)
    hemnet.fail = {"L1", "L3"}
    first = run(runtime)
    assert ids(first["failed"]) == ["L1", "L3"]
    assert "503" in first["failed"][0]["error"]
    assert rows(engine)["L1"].state == "failed"

    hemnet.fail = set()
    second = run(runtime)
    assert ids(second["sent"]) == ["L1", "L3"] and second["failed"] == []
    assert sorted(hemnet.sent()) == [f"L{i}" for i in range(5)]
    with session_scope(engine) as session:
        events = session.scalars(
            select(TransferEventRow).where(TransferEventRow.action == "final_price")
            .where(TransferEventRow.listing_id == "L1").order_by(TransferEventRow.id)
        ).all()
    assert [(e.state, e.attempts) for e in events] == [("failed", 1), ("sent", 2)]


def test_a_run_that_dies_after_sending_is_finished_without_a_second_price(
    sqlite_engine: Engine,
    hemnet: RecordingHemnet,
    make_runtime: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seed(sqlite_engine, [{"id": f"L{i}"} for i in range(4)])
    runtime = make_runtime(sqlite_engine, hemnet)

    def die(*_args: Any) -> None:
        raise KeyboardInterrupt("worker killed")

    with monkeypatch.context() as patch:
        patch.setattr(final_prices, "_record_after", die)
        with pytest.raises(KeyboardInterrupt):
            run(runtime)
    assert {r.state for r in rows(sqlite_engine).values()} == {"sending"}
    assert len(hemnet.deliveries) == 4

    result = run(runtime)
    assert ids(result["sent"]) == [f"L{i}" for i in range(4)]
    assert {r.state for r in rows(sqlite_engine).values()} == {"sent"}
    assert len(hemnet.deliveries) == 4 and len(hemnet.keys) == 4
    assert run(runtime)["sent"] == []


def test_a_dry_run_sends_and_records_nothing(
    sqlite_engine: Engine, hemnet: RecordingHemnet, make_runtime: Any
) -> None:
    seed(sqlite_engine, [{"id": "A"}, {"id": "T", "category": "tomt"}])
    result = run(make_runtime(sqlite_engine, hemnet), dry_run=True)
    assert result["dry_run"] and ids(result["sent"]) == ["A"] and ids(result["skipped"]) == ["T"]
    assert hemnet.calls == 0 and rows(sqlite_engine) == {}


def test_a_batch_delivered_twice_sends_once(
    sqlite_engine: Engine, hemnet: RecordingHemnet, make_runtime: Any
) -> None:
    seed(sqlite_engine, [{"id": "A"}, {"id": "B"}])
    runtime = make_runtime(sqlite_engine, hemnet)
    process_batch(runtime, ["A", "B"], "run-1")
    process_batch(runtime, ["A", "B"], "run-1")
    assert hemnet.calls == 2 and rows(sqlite_engine)["A"].sent_contract_date == CONTRACT


def test_the_selection_uses_the_final_price_index(sqlite_engine: Engine) -> None:
    query = final_prices.selections(sqlite_engine)[0]
    compiled = query.compile(sqlite_engine, compile_kwargs={"literal_binds": True})  # type: ignore[attr-defined]
    with sqlite_engine.connect() as conn:
        plan = " ".join(str(r[-1]) for r in conn.execute(text(f"EXPLAIN QUERY PLAN {compiled}")))
    assert "ix_listing_final_price" in plan, plan
    assert "ix_transfer_event_listing" in plan, plan


def test_contract_dates_round_trip(engine: Engine, hemnet: RecordingHemnet,
                                   make_runtime: Any) -> None:
    seed(engine, [{"id": "A", "contract_date": date(2026, 12, 31)}],
         published_at=datetime(2026, 12, 31, 23, 59, tzinfo=UTC))
    run(make_runtime(engine, hemnet))
    assert rows(engine)["A"].sent_contract_date == date(2026, 12, 31)


def test_a_listing_whose_document_cannot_be_built_fails_alone_with_the_reason(
    sqlite_engine: Engine, hemnet: RecordingHemnet, make_runtime: Any
) -> None:
    seed(sqlite_engine, [{"id": "GOOD"}, {"id": "BAD\x01ID"}, {"id": " PADDED "}])
    result = run(make_runtime(sqlite_engine, hemnet))
    assert ids(result["sent"]) == ["GOOD"] and hemnet.sent() == ["GOOD"]
    errors = {e["listing_id"]: e["error"] for e in result["failed"]}
    assert "XML cannot carry" in errors["BAD\x01ID"]
    assert "does not validate" in errors[" PADDED "]
    assert rows(sqlite_engine)["BAD\x01ID"].state == "failed"


def test_waiting_for_batches_nobody_runs_ends_with_a_clear_error(
    sqlite_engine: Engine, hemnet: RecordingHemnet, make_runtime: Any
) -> None:
    from syndication.cli.final_prices import RunTimeout, wait_for_run

    waits: list[float] = []
    with pytest.raises(RunTimeout, match="3 of 3 listings not finished"):
        wait_for_run(make_runtime(sqlite_engine, hemnet), "run-x", 3, timeout=0.05,
                     sleep=lambda s: (waits.append(s), time.sleep(0.01)))
    assert waits and waits[0] == 0.02 and max(waits) <= 0.5
