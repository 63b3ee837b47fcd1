"""What keeps the sync of 100,000 listings cheap, checked for its outcome: a run's plan
decides exactly as its batches do without building their documents; HTTP deliveries
run on one event loop of the process, not a thread each; the record steps write the
same rows and history on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

from fp_support import RecordingHemnet, seed, update_listing, update_row
from sqlalchemy import Engine, select
from test_concurrent_sends import SlowHemnet, http, runtime_for, states
from test_concurrent_sends import slow_hemnet as slow_hemnet  # noqa: F401 - the fixture

from adapters.base import Delivery, Receipt
from syndication.final_price_delivery import LoopSender
from syndication.final_price_selection import plan
from syndication.final_prices import process_batch
from syndication.store import session_scope
from syndication.store.models import FinalPriceRow
from syndication.transfer import NOT_KNOWN_NOTE


def decisions(engine: Engine, *, documents: bool) -> dict[str, tuple[str, str, bool]]:
    return {p.listing_id: (p.action, p.reason, p.document is not None)
            for chunk in plan(engine, documents=documents) for p in chunk}


def set_row(engine: Engine, listing_id: str, **values: Any) -> None:
    update_row(engine, FinalPriceRow, listing_id, **values)


def test_a_plan_without_documents_decides_as_one_with_them(
    engine: Engine, hemnet: RecordingHemnet, make_runtime: Any
) -> None:
    names = ["NEW", "SAME", "CHANGED", "FAILED", "INFLIGHT", "STALE", "WITHDRAWN", "TOMT"]
    seed(engine, [{"id": n} for n in names[:-1]] + [{"id": "TOMT", "category": "tomt"}])
    runtime = make_runtime(engine, hemnet)
    process_batch(runtime, names[1:-1], "run-before")
    update_listing(engine, "CHANGED", final_price=4_400_000)
    set_row(engine, "FAILED", state="failed", sent_price=None)
    set_row(engine, "INFLIGHT", state="sending")
    set_row(engine, "STALE", state="sending", document_hash="0" * 64)
    update_listing(engine, "WITHDRAWN", send_final_price=False, state="deleted")

    full = decisions(engine, documents=True)
    lean = decisions(engine, documents=False)
    assert {k: v[:2] for k, v in lean.items()} == {k: v[:2] for k, v in full.items()}
    assert {k for k, v in lean.items() if v[2]} == {"INFLIGHT", "STALE"}
    assert full["INFLIGHT"][1] == "finishing a delivery an earlier run left in flight"
    assert full["STALE"][0] == "resend" and full["WITHDRAWN"][0] == "retract"
    assert full["SAME"][0] == "none" and full["NEW"][0] == "send"


def test_http_deliveries_run_on_one_event_loop_not_a_thread_each(
    sqlite_engine: Engine, make_runtime: Any, slow_hemnet: SlowHemnet
) -> None:
    names = [f"T{i:02}" for i in range(12)]
    seed(sqlite_engine, [{"id": name} for name in names])
    runtime = runtime_for(make_runtime, sqlite_engine, http(slow_hemnet), bound=6)
    seen: list[tuple[LoopSender, set[str]]] = []
    original = LoopSender._one

    async def watched(self: LoopSender, *args: Any) -> Any:
        seen.append((self, {t.name for t in threading.enumerate()}))
        return await original(self, *args)

    LoopSender._one = watched  # type: ignore[method-assign]
    try:
        outcome = process_batch(runtime, names, "run-loop")
    finally:
        LoopSender._one = original  # type: ignore[method-assign]
        runtime.close()
    assert outcome.states == {name: "sent" for name in names}
    assert 1 < slow_hemnet.most_in_flight <= 6
    assert len({id(sender) for sender, _ in seen}) == 1 and len(seen) == len(names)
    assert seen[0][0].loop.is_closed()
    threads = set().union(*(names for _, names in seen))
    assert "final-price-loop" in threads
    assert not any(name.startswith("final-price-send") for name in threads), threads
    assert "final-price-loop" not in {t.name for t in threading.enumerate()}
    assert states(sqlite_engine) == {name: "sent" for name in names}


class Answering(RecordingHemnet):
    """Accepts final prices and answers retractions of unknown ones with not-known."""

    def send(self, delivery: Delivery) -> Receipt:
        receipt = super().send(delivery)
        if delivery.action == "final_price_retraction" and delivery.listing_id == "GONE":
            return Receipt(message="not known", not_known=True)
        return receipt


def test_the_record_steps_write_every_row_and_event(
    engine: Engine, make_runtime: Any
) -> None:
    from syndication.store.models import TransferEventRow

    seed(engine, [{"id": "A"}, {"id": "B"}, {"id": "GONE"}, {"id": "T", "category": "tomt"}])
    hemnet = Answering()
    runtime = make_runtime(engine, hemnet)
    process_batch(runtime, ["A", "B", "GONE", "T"], "run-1")
    update_listing(engine, "GONE", send_final_price=False, state="deleted")
    hemnet.fail = {"B"}
    update_listing(engine, "B", final_price=4_500_000)
    process_batch(runtime, ["A", "B", "GONE", "T", "NOBODY"], "run-2")
    with session_scope(engine) as session:
        stored = {r.listing_id: (r.state, r.sent_price, r.attempts, r.run_id, r.error)
                  for r in session.scalars(select(FinalPriceRow))}
        events = [(e.listing_id, e.state, e.attempts, e.request_id, e.error)
                  for e in session.scalars(select(TransferEventRow)
                                           .where(TransferEventRow.action == "final_price")
                                           .order_by(TransferEventRow.id))]
        at = session.scalars(select(FinalPriceRow.at)).all()
    assert stored["A"] == ("sent", 4_250_000, 1, "run-2", None)
    assert stored["B"][:4] == ("failed", 4_250_000, 1, "run-2")
    assert "503" in (stored["B"][4] or "")
    assert stored["GONE"][:4] == ("retracted", None, 1, "run-2")
    assert stored["T"][0] == "skipped" and "tomt" in (stored["T"][4] or "")
    assert stored["NOBODY"] == ("skipped", None, 0, "run-2", "no longer a final-price candidate")
    assert sorted(e[:4] for e in events) == sorted([
        ("A", "sent", 1, "run-1"), ("B", "sent", 1, "run-1"), ("GONE", "sent", 1, "run-1"),
        ("B", "failed", 1, "run-2"), ("GONE", "deleted", 1, "run-2"),
    ])
    assert stored["GONE"][4] == NOT_KNOWN_NOTE
    assert {(e[0], e[1]) for e in events if e[4] is not None} == {
        ("B", "failed"), ("GONE", "deleted")}, events
    assert all(isinstance(value, datetime) for value in at)
    assert min(value.replace(tzinfo=UTC) for value in at) > datetime(2026, 1, 1, tzinfo=UTC)
