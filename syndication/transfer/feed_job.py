"""A pull marketplace's transfer (R17): rebuild the office's whole feed, publish it, record.

A pull marketplace (Kyero) takes no per-listing call: it fetches an office's
full feed from an address the agency gave it. So a transfer request queues
one feed job per office and pull marketplace instead of one job per listing.
:func:`run_feed_job`:

1. streams the office's feed to a temporary file with the export
   (:func:`syndication.export.export_office`), which puts in exactly the
   listings a transfer would create or update there
   (:func:`~syndication.transfer.outgoing.outgoing`);
2. publishes it atomically through the marketplace's feed transport, which
   returns the feed's public address;
3. records, in one transaction after the publication: ``published`` with the
   feed's address for each listing in the feed that was not already; for a
   listing the marketplace held that the new feed leaves out, ``deleted`` (it
   is gone from the marketplace once the feed is read); for a queued listing
   that is not in the feed, the outcome the transfer decision gives
   (``failed`` with every unmet condition, ``not_selected``, ``not_licensed``).

An office with deletes held on the marketplace by the mass-deletion guard
(R15, :mod:`syndication.holds`) gets no new feed until a person decides: the
feed published last, which still holds those listings, stays in place, and
the request's queued pairs there go back to their settled state with the
hold's note (a pair never settled ends ``failed`` saying so; the next
transfer after the decision sends it).

A feed with no listing is not published (Kyero's format takes none): the
job fails, and the office's queued pairs end ``failed`` saying why, while the
feed published last stays in place.

Nothing is recorded before the feed is published, so a failed publication
leaves every pair ``queued`` and the message is retried: a retry rebuilds the
feed from the store as it is then. A feed job repeated after a crash rebuilds
and republishes the same feed, which changes nothing for the marketplace.
"""

from __future__ import annotations

import hashlib
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import dramatiq
from sqlmodel import col, select

from syndication import holds, registry
from syndication.errors import PermanentError
from syndication.export import ExportReport, export_office
from syndication.logs import get_logger
from syndication.records import FeedInput, TransferStatus
from syndication.rules.removal import marketplace_holds
from syndication.runtime import Runtime, current_runtime
from syndication.store.db import session_scope
from syndication.store.models import ListingRow, TransferStatusRow
from syndication.store.repository import load_feed_inputs, record_status, status_record
from syndication.transfer.common import settled_status
from syndication.transfer.outgoing import outgoing

PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,150}")


class FeedTarget(Protocol):
    """What a pull marketplace's transport offers the feed job."""

    def publish(self, file_name: str, feed: Path) -> str:
        """Publish the feed file as ``file_name``; return its public address."""


@dataclass
class FeedOutcome:
    """What one feed job did: the feed's address and each recorded state by listing;
    ``held_by`` the hold that kept it from publishing anything."""

    address: str
    written: int
    states: dict[str, str] = field(default_factory=dict)
    held_by: str | None = None


def feed_file_name(marketplace: str, office_id: str) -> str:
    """The feed's file name: ``<marketplace>-<office>.xml``, the office id kept when it is a
    plain file name, otherwise replaced by a hash of it (ids may hold ``:@+``)."""
    stem = office_id if PLAIN_NAME.fullmatch(office_id) else (
        "office-" + hashlib.sha256(office_id.encode()).hexdigest()[:16]
    )
    return f"{marketplace}-{stem}.xml"


def run_feed_job(
    runtime: Runtime, office_id: str, marketplace: str, request_id: str
) -> FeedOutcome:
    """Rebuild, publish and record the full feed of ``office_id`` on ``marketplace``."""
    entry = registry.get(marketplace)
    target: Any = runtime.transport(marketplace)
    log = get_logger(office_id=office_id, marketplace=marketplace, request_id=request_id)
    waiting = _held_back(runtime, office_id, marketplace, request_id)
    if waiting is not None:
        log.warning("feed.held", hold=waiting.held_by, pairs=len(waiting.states))
        return waiting
    with tempfile.TemporaryDirectory(prefix="syndication-feed-") as scratch:
        path = Path(scratch) / feed_file_name(marketplace, office_id)
        with path.open("wb") as out:
            report = export_office(runtime.engine, marketplace, office_id, out, progress=False)
        if report.written == 0:
            raise PermanentError(
                f"{entry.title}'s format takes no empty feed, and none of the office's listings "
                f"would be in it; the feed published last stays where {entry.title} reads it "
                f"until a listing qualifies (or the feed's address is removed at {entry.title})",
                marketplace=marketplace,
            )
        address = target.publish(path.name, path)
    log.info("feed.published", address=address, listings=report.written,
             left_out=len(report.skipped))
    outcome = FeedOutcome(address, report.written)
    _record(runtime, entry.name, office_id, request_id, report, outcome)
    return outcome


def _held_back(
    runtime: Runtime, office_id: str, marketplace: str, request_id: str
) -> FeedOutcome | None:
    """With deletes of the office held on ``marketplace``: publish nothing, and give the
    request's queued pairs there their settled state back with the hold's note (a pair
    never settled ends ``failed``). ``None`` when nothing is held there."""
    now = runtime.clock()
    with session_scope(runtime.engine) as session:
        held = {pair: hold_id for pair, hold_id in holds.held_pairs(session, [office_id]).items()
                if pair[1] == marketplace}
        if not held:
            return None
        hold_id = sorted(set(held.values()))[0]
        note = (f"{holds.HOLD_NOTE}: {registry.get(marketplace).title}'s feed of the office is "
                f"not published while hold {hold_id} waits; the feed published last stays")
        queued = session.exec(
            select(TransferStatusRow)
            .join(ListingRow, col(ListingRow.id) == col(TransferStatusRow.listing_id))
            .where(col(ListingRow.office_id) == office_id,
                   col(TransferStatusRow.marketplace) == marketplace,
                   col(TransferStatusRow.state) == "queued",
                   col(TransferStatusRow.request_id) == request_id)
        ).all()
        outcome = FeedOutcome("", 0, held_by=hold_id)
        for row in queued:
            settled = settled_status(session, row.listing_id, marketplace)
            state = settled.state if settled is not None else "failed"
            record_status(session, row.listing_id, marketplace, state, request_id=request_id,
                          error=note, at=settled.at if settled is not None else now)
            outcome.states[row.listing_id] = state
    return outcome


def _record(
    runtime: Runtime,
    marketplace: str,
    office_id: str,
    request_id: str,
    report: ExportReport,
    outcome: FeedOutcome,
) -> None:
    """Record every pair the new feed changed (see the module doc), in one transaction."""
    now = runtime.clock()
    in_feed = set(report.listing_ids)
    with session_scope(runtime.engine) as session:
        rows = {
            row.listing_id: row
            for row in session.exec(
                select(TransferStatusRow)
                .join(ListingRow, col(ListingRow.id) == col(TransferStatusRow.listing_id))
                .where(
                    col(ListingRow.office_id) == office_id,
                    col(TransferStatusRow.marketplace) == marketplace,
                )
            )
        }
        for listing_id in sorted(in_feed):
            row = rows.get(listing_id)
            if row is not None and row.state == "published":
                continue
            held = row is not None and marketplace_holds(status_record(row))
            record_status(
                session, listing_id, marketplace, "published", request_id=request_id,
                action="update" if held else "create", public_url=outcome.address,
                error=None, attempt=True, at=now,
            )
            outcome.states[listing_id] = "published"
        left_out = [lid for lid, row in rows.items()
                    if lid not in in_feed and row.state in ("queued", "published", "sent")]
        inputs = load_feed_inputs(session, left_out)
        for listing_id in sorted(left_out):
            current = settled_status(session, listing_id, marketplace)
            state, fields = _left_out(
                marketplace, inputs.get(listing_id), current, report.skipped.get(listing_id)
            )
            record_status(session, listing_id, marketplace, state, request_id=request_id,
                          at=now, **fields)
            outcome.states[listing_id] = state


def _left_out(
    marketplace: str, feed_input: FeedInput | None, current: TransferStatus | None,
    skipped: str | None,
) -> tuple[str, dict[str, Any]]:
    """The state of a listing the new feed leaves out, and the fields recorded with it.

    Removed or deselected where the marketplace held it: ``deleted``. Left out
    for a failure (conditions unmet, an entry that cannot be built): ``failed``
    with the reason, which also says that the marketplace no longer shows it
    when it did. Otherwise the decision's own state.
    """
    name = registry.title(marketplace)
    held = current is not None and marketplace_holds(current)
    gone = f" ({name} no longer shows it)" if held else ""
    if feed_input is None:
        return "failed", {"error": f"the listing is no longer in the store{gone}"}
    planned = outgoing(feed_input, marketplace, current, build=False)
    decision = planned.decision
    if decision.action == "delete" and held:
        return "deleted", {"action": "delete", "error": None}
    if planned.failure is not None:
        return "failed", {"error": f"{name}: {planned.failure}{gone}"}
    if decision.sends:
        return "failed", {"error": f"{name}: {skipped or 'left out of the feed'}{gone}"}
    if decision.state is not None:
        error = decision.reason if decision.state == "not_licensed" else None
        return decision.state, {"error": error}
    return "not_selected", {"error": None}


def fail_feed(runtime: Runtime, office_id: str, marketplace: str, request_id: str,
              error: str) -> int:
    """Record ``failed`` with ``error`` on every pair of the office still ``queued`` on the
    pull marketplace, so that a feed that could not be published strands nothing."""
    with session_scope(runtime.engine) as session:
        queued = list(session.exec(
            select(TransferStatusRow.listing_id)
            .join(ListingRow, col(ListingRow.id) == col(TransferStatusRow.listing_id))
            .where(
                col(ListingRow.office_id) == office_id,
                col(TransferStatusRow.marketplace) == marketplace,
                col(TransferStatusRow.state) == "queued",
            )
        ))
        for listing_id in queued:
            record_status(session, listing_id, marketplace, "failed", request_id=request_id,
                          error=error, at=runtime.clock())
    return len(queued)


class FeedLifecycle:
    """The ``lifecycle=`` hooks of the feed actor (see :mod:`syndication.middleware`)."""

    def started(self, broker: dramatiq.Broker, message: dramatiq.Message[Any]) -> None:
        """Nothing to count: a repeated feed job rebuilds the same feed."""

    def gave_up(
        self, broker: dramatiq.Broker, message: dramatiq.Message[Any], exception: BaseException
    ) -> None:
        """Once dramatiq stops retrying, the office's queued pairs end ``failed``."""
        kwargs = message.kwargs
        name = registry.title(kwargs["marketplace"])
        tries = int(message.options.get("retries", 0))
        error = f"{name}: the feed could not be published: {exception}"
        if tries > 1:
            error += f" (gave up after {tries} attempts)"
        failed = fail_feed(current_runtime(broker), kwargs["office_id"], kwargs["marketplace"],
                           kwargs["request_id"], error)
        get_logger(marketplace=kwargs["marketplace"]).warning(
            "feed.gave_up", office_id=kwargs["office_id"], error=error, pairs=failed
        )


FEED_LIFECYCLE = FeedLifecycle()
