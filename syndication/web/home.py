"""The home page's answers to "what is wrong right now", for the offices a user may read.

Each answer is one query scoped by :func:`~syndication.scope.readable_offices`:
counts per marketplace × state, the failures of the last 24 hours (newest
first, a page at a time), the pairs waiting on a marketplace (``queued`` with
the circuit breaker's "väntar på …" note, :mod:`syndication.circuit`), and the
transfers and failures per hour of the last 7 days from the history, one
grouped query, drawn as a server-rendered SVG (no script, no chart library).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from markupsafe import Markup, escape
from sqlalchemy import case, func, literal_column, select
from sqlmodel import Session, col

from syndication import registry
from syndication.records import Contacts
from syndication.registry import title
from syndication.scope import readable_offices
from syndication.store.models import ListingRow, TransferEventRow, TransferStatusRow

PAGE_SIZE = 20
WAITING_PREFIX = "väntar på "
HOUR = timedelta(hours=1)
PLOT_DAYS = 7


def _scoped(principal: Any) -> Any:
    return col(ListingRow.office_id).in_(readable_offices(principal))


def state_counts(session: Session, principal: Any) -> list[dict[str, Any]]:
    """Pairs per marketplace and state, marketplaces in registry order."""
    query = (select(col(TransferStatusRow.marketplace), col(TransferStatusRow.state), func.count())
             .join(ListingRow, col(ListingRow.id) == col(TransferStatusRow.listing_id))
             .where(_scoped(principal))
             .group_by(TransferStatusRow.marketplace, TransferStatusRow.state))
    counts: dict[str, dict[str, int]] = {}
    for marketplace, state, number in session.execute(query):
        counts.setdefault(marketplace, {})[state] = int(number)
    order = {name: index for index, name in enumerate(registry.names())}
    return [{"marketplace": name, "title": title(name), "by_state": counts[name]}
            for name in sorted(counts, key=lambda name: order.get(name, len(order)))]


def _page(session: Session, query: Any, page: int) -> tuple[list[Any], bool]:
    rows = list(session.execute(query.offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE + 1)))
    return rows[:PAGE_SIZE], len(rows) > PAGE_SIZE


def recent_failures(session: Session, principal: Any, now: datetime,
                    contacts: Mapping[str, Contacts], page: int = 1
                    ) -> tuple[list[dict[str, Any]], bool]:
    """The pairs ``failed`` in the last 24 hours, newest first, with their reason and the
    marketplace's contacts; and whether there is a next page."""
    query = (select(col(TransferStatusRow.listing_id), col(ListingRow.office_id),
                    col(TransferStatusRow.marketplace), col(TransferStatusRow.at),
                    col(TransferStatusRow.error))
             .join(ListingRow, col(ListingRow.id) == col(TransferStatusRow.listing_id))
             .where(_scoped(principal), col(TransferStatusRow.state) == "failed",
                    col(TransferStatusRow.at) >= now - timedelta(hours=24))
             .order_by(col(TransferStatusRow.at).desc(), col(TransferStatusRow.listing_id)))
    rows, more = _page(session, query, page)
    found = []
    for listing_id, office_id, marketplace, at, error in rows:
        contact = contacts.get(marketplace)
        found.append({"listing_id": listing_id, "office_id": office_id,
                      "marketplace": marketplace, "title": title(marketplace), "at": at,
                      "error": error,
                      "contacts": contact.as_dict() if contact is not None else None})
    return found, more


def waiting_pairs(session: Session, principal: Any, page: int = 1
                  ) -> tuple[list[dict[str, Any]], bool]:
    """The pairs ``queued`` with the circuit's waiting note, oldest first."""
    query = (select(col(TransferStatusRow.listing_id), col(TransferStatusRow.marketplace),
                    col(TransferStatusRow.updated_at), col(TransferStatusRow.error))
             .join(ListingRow, col(ListingRow.id) == col(TransferStatusRow.listing_id))
             .where(_scoped(principal), col(TransferStatusRow.state) == "queued",
                    col(TransferStatusRow.error).startswith(WAITING_PREFIX))
             .order_by(col(TransferStatusRow.updated_at), col(TransferStatusRow.listing_id)))
    rows, more = _page(session, query, page)
    return [{"listing_id": listing_id, "marketplace": marketplace, "title": title(marketplace),
             "at": at, "note": note} for listing_id, marketplace, at, note in rows], more


def _hour_bucket(session: Session) -> Any:
    """The SQL expression of an event's hour, as text ``YYYY-MM-DD HH`` in UTC."""
    at = col(TransferEventRow.at)
    if session.get_bind().dialect.name == "postgresql":
        return func.to_char(at, literal_column("'YYYY-MM-DD HH24'"))
    return func.strftime("%Y-%m-%d %H", at)


def hourly_activity(session: Session, principal: Any, now: datetime
                    ) -> list[tuple[datetime, int, int]]:
    """Per hour of the last 7 days (oldest first, every hour present): the transfers
    that ended (every event but ``queued``) and the failures among them, from the
    history in one grouped query."""
    start = (now - timedelta(days=PLOT_DAYS)).replace(minute=0, second=0, microsecond=0)
    bucket = _hour_bucket(session).label("hour")
    failed = func.sum(case((col(TransferEventRow.state) == "failed", 1), else_=0))
    query = (select(bucket, func.count(), failed)
             .join(ListingRow, col(ListingRow.id) == col(TransferEventRow.listing_id))
             .where(_scoped(principal), col(TransferEventRow.at) >= start,
                    col(TransferEventRow.state) != "queued")
             .group_by(bucket))
    found = {hour: (int(total), int(failures or 0))
             for hour, total, failures in session.execute(query)}
    hours = []
    moment = start
    while moment <= now:
        total, failures = found.get(moment.astimezone(UTC).strftime("%Y-%m-%d %H"), (0, 0))
        hours.append((moment, total, failures))
        moment += HOUR
    return hours


def activity_svg(hours: list[tuple[datetime, int, int]], labels: Mapping[str, str]) -> Markup:
    """The hours as an SVG bar plot: transfers in blue, failures in red over them, a day
    mark every 24 hours; ``labels`` give its accessible name and legend words."""
    width, height, left, bottom = 1000, 200, 40, 20
    peak = max([total for _, total, _ in hours] + [1])
    step = (width - left) / max(len(hours), 1)
    bars = []
    for index, (moment, total, failures) in enumerate(hours):
        x = left + index * step
        for number, css in ((total, "#2b6cb0"), (failures, "#c53030")):
            if number:
                bar = (height - bottom) * number / peak
                bars.append(f'<rect x="{x:.1f}" y="{height - bottom - bar:.1f}" '
                            f'width="{max(step - 0.5, 0.5):.1f}" height="{bar:.1f}" '
                            f'fill="{css}"><title>{moment:%Y-%m-%d %H}:00 UTC: {number}'
                            f'</title></rect>')
        if moment.hour == 0:
            bars.append(f'<text x="{x:.1f}" y="{height - 4}" font-size="11">'
                        f'{moment:%d/%m}</text>')
    name = escape(labels["name"])
    legend = (f'<text x="{left}" y="12" font-size="12" fill="#2b6cb0">'
              f'{escape(labels["transfers"])}</text>'
              f'<text x="{left + 160}" y="12" font-size="12" fill="#c53030">'
              f'{escape(labels["failures"])}</text>'
              f'<text x="0" y="{height - bottom}" font-size="11">0</text>'
              f'<text x="0" y="24" font-size="11">{peak}</text>')
    return Markup(f'<svg id="activity" role="img" aria-label="{name}" viewBox="0 0 {width} '
                  f'{height}" width="100%" style="max-width:{width}px">{legend}'
                  f'{"".join(bars)}</svg>')
