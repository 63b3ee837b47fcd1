"""Reconciliation on a schedule (R13): every office, every night, recorded and reported.

:func:`run_reconciliation` is what the nightly run does (the scheduler sends
``reconcile_offices`` after the final-price sync): for each office and each
marketplace of its licence it asks the marketplace for its inventory, compares
it with the store (:func:`syndication.reconcile.compare`) and repairs only
what is safe without a person: a listing the store holds as published that
the marketplace lacks, and that is still wanted there, is sent again
(:data:`SAFE_REPAIRS`). Nothing is ever deleted by it — a listing the
marketplace holds that the store would delete is reported, and so is a pair
whose delete the mass-deletion guard holds (R15): the guard keeps its pairs'
rows as they were, so the comparison finds nothing to delete there and the
fan-out would send none of their deletes anyway.

Each office and marketplace of a run is one
:class:`~syndication.store.guard_models.ReconcileResultRow` with every difference,
whether the run repaired it, and the marketplace's error when it could not be
asked. :func:`latest_report` is what ``syndication reconcile --last`` and the
office page show.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from syndication.errors import SyndicationError
from syndication.logs import get_logger
from syndication.reconcile import Difference, compare, load_view, repair
from syndication.rules.licence import licensed_marketplaces
from syndication.runtime import Runtime
from syndication.store.db import session_scope
from syndication.store.guard_models import ReconcileResultRow
from syndication.store.models import OfficeRow
from syndication.transfer import Scheduler

SAFE_REPAIRS = frozenset({("missing_there", "resend")})
"""(kind, repair) pairs the nightly run carries out; every other difference is reported."""


def safe(difference: Difference) -> bool:
    """Whether the nightly run may repair ``difference`` without a person."""
    return (difference.kind, difference.repair) in SAFE_REPAIRS and difference.in_store


@dataclass
class RunSummary:
    """What one run found and did, over every office."""

    run_id: str
    offices: int = 0
    differences: int = 0
    repaired: int = 0
    unasked: int = 0
    errors: list[str] = field(default_factory=list)


def _as_dict(difference: Difference, repaired: bool) -> dict[str, Any]:
    return {**asdict(difference), "repaired": repaired}


def reconcile_office(runtime: Runtime, office_id: str, run_id: str, trigger: str,
                     scheduler: Scheduler, summary: RunSummary) -> None:
    """Compare, safely repair and record one office on every marketplace of its licence."""
    with session_scope(runtime.engine) as session:
        view = load_view(session, office_id)
    if view is None:
        return
    summary.offices += 1
    log = get_logger(component="reconcile", run_id=run_id, office_id=office_id)
    for name in licensed_marketplaces(view.office):
        result = ReconcileResultRow(run_id=run_id, trigger=trigger, office_id=office_id,
                                    marketplace=name, at=runtime.clock())
        try:
            held = runtime.transport(name).inventory(name, office_id)
        except SyndicationError as exc:
            held, result.error = None, f"could not ask for the inventory: {exc}"
        if held is None:
            result.error = result.error or "its transport cannot list what it holds (file drop)"
            summary.unasked += 1
        else:
            found = compare(view, name, held)
            to_repair = [d for d in found if safe(d)]
            report = repair(runtime, view.office, to_repair, scheduler) if to_repair else None
            failed = {error.split(" on ")[0] for error in (report.errors if report else [])}
            repaired = {d.listing_id for d in to_repair if d.listing_id not in failed}
            result.held_there = len(held)
            result.differences = [_as_dict(d, d.listing_id in repaired and safe(d))
                                  for d in found]
            result.repaired = len(repaired)
            summary.differences += len(found)
            summary.repaired += len(repaired)
            if report and report.errors:
                summary.errors.extend(report.errors)
                result.error = "; ".join(report.errors)[:2000]
        with session_scope(runtime.engine) as session:
            session.add(result)
        log.info("reconcile.marketplace_done", marketplace=name, held_there=result.held_there,
                 differences=len(result.differences), repaired=result.repaired,
                 error=result.error)


def run_reconciliation(runtime: Runtime, run_id: str, scheduler: Scheduler, *,
                       trigger: str = "nightly",
                       office_ids: Sequence[str] | None = None) -> RunSummary:
    """Reconcile every office (or ``office_ids``) and record the run; see the module doc."""
    if office_ids is None:
        with session_scope(runtime.engine) as session:
            office_ids = list(session.exec(select(OfficeRow.id).order_by(col(OfficeRow.id))))
    summary = RunSummary(run_id)
    for office_id in office_ids:
        reconcile_office(runtime, office_id, run_id, trigger, scheduler, summary)
    get_logger(component="reconcile", run_id=run_id).info(
        "reconcile.run_done", offices=summary.offices, differences=summary.differences,
        repaired=summary.repaired, unasked=summary.unasked)
    return summary


def latest_run_id(session: Session, office_id: str | None = None) -> str | None:
    """The run id of the newest recorded run (of ``office_id``, when given)."""
    query = select(ReconcileResultRow.run_id).order_by(col(ReconcileResultRow.at).desc(),
                                                       col(ReconcileResultRow.id).desc())
    if office_id is not None:
        query = query.where(col(ReconcileResultRow.office_id) == office_id)
    return session.exec(query.limit(1)).first()


def latest_report(engine: Engine, office_id: str | None = None) -> dict[str, Any] | None:
    """The newest run as JSON (``reconcile --last --json``): its id, trigger, time and one
    entry per office and marketplace; ``None`` before the first run."""
    with session_scope(engine) as session:
        run_id = latest_run_id(session, office_id)
        if run_id is None:
            return None
        query = select(ReconcileResultRow).where(col(ReconcileResultRow.run_id) == run_id)
        if office_id is not None:
            query = query.where(col(ReconcileResultRow.office_id) == office_id)
        rows = list(session.exec(query.order_by(col(ReconcileResultRow.office_id),
                                                col(ReconcileResultRow.marketplace))))
    return {
        "run_id": run_id, "trigger": rows[0].trigger,
        "at": min(row.at for row in rows).isoformat(),
        "results": [{"office_id": row.office_id, "marketplace": row.marketplace,
                     "held_there": row.held_there, "repaired": row.repaired,
                     "error": row.error, "differences": row.differences} for row in rows],
    }


def format_report(report: dict[str, Any] | None) -> str:
    """The newest run as lines for a terminal."""
    if report is None:
        return "no reconciliation has been recorded yet"
    lines = [f"reconciliation {report['run_id']} ({report['trigger']}) at {report['at'][:19]}"]
    for result in report["results"]:
        where = f"{result['office_id']} on {result['marketplace']}"
        if result["held_there"] is None:
            lines.append(f"{where}: not asked: {result['error']}")
            continue
        lines.append(f"{where}: {result['held_there']} held there, "
                     f"{len(result['differences'])} difference(s), {result['repaired']} repaired")
        for d in result["differences"]:
            done = "repaired" if d["repaired"] else "left for a person"
            lines.append(f"  {d['listing_id']:<16} {d['kind']:<14} {done:<18} {d['detail']}")
    return "\n".join(lines)
