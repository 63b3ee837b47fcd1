"""``syndication reconcile --office ID [--marketplace M] [--repair]`` and
``syndication reconcile --last [--office ID] [--json]`` (R13).

``--last`` prints the newest recorded run (the nightly one the scheduler
starts, :mod:`syndication.reconcile_runs`), of one office with ``--office``;
read-only, exit 0 (2 when none is recorded yet).

Asks each marketplace of the office's licence (or only ``M``) for what it
holds for the office, prints every difference with the store and what a
repair does, and with ``--repair`` carries the repairs out through the
transfer queue, waiting for the transfers when the jobs run in this process
or ``--wait`` is given.

Without ``--repair`` it only reads: the store is opened read-only and never
migrated (a store that is behind is refused, exit status 2); ``--repair``
migrates it first, like every command that writes.

Exit status: 0 in step (or everything repaired); 1 differences left, or a
marketplace could not be asked; 2 usage or configuration error.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from syndication.errors import SyndicationError
from syndication.reconcile import Difference, compare, load_view, repair
from syndication.registry import names as marketplace_names
from syndication.registry import title
from syndication.rules.licence import licensed_marketplaces
from syndication.runtime import Runtime
from syndication.settings import Settings
from syndication.store.db import session_scope


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "reconcile",
        help="compare what the marketplaces hold for an office with the store; repair",
        description=(
            "Ask each marketplace for the office's listings and print every difference "
            "(missing there, unknown here, stale there) with the repair; --repair does it "
            "through the transfer queue. Exit 0 in step, 1 differences left, 2 usage."
        ),
    )
    parser.add_argument("--office", metavar="ID", help="the office (required unless --last)")
    parser.add_argument("--last", action="store_true",
                        help="show the newest recorded reconciliation (the nightly run)")
    parser.add_argument("--json", action="store_true", help="with --last: print JSON")
    parser.add_argument("--marketplace", choices=marketplace_names(), help="only this marketplace")
    parser.add_argument("--repair", action="store_true", help="send or delete to repair")
    parser.add_argument("--wait", action="store_true",
                        help="with --repair and Redis: wait for the repair transfers")
    parser.set_defaults(func=handler)


def _line(d: Difference, repaired: bool) -> str:
    verb = "repairing" if repaired and d.repair != "none" else "would"
    what = {"resend": "send", "delete": f"delete ({d.reason})",
            "record_deleted": "record deleted", "none": "nothing"}[d.repair]
    if verb == "would":
        what = f"would {what}" if d.repair != "none" else "no repair possible"
    else:
        what = f"{verb}: {what}"
    return f"{title(d.marketplace):<15} {d.listing_id:<16} {d.kind:<14} {what:<22} {d.detail}"


def handler(args: argparse.Namespace, settings: Settings) -> int:
    if args.last:
        return _last(args, settings)
    if not args.office:
        print("error: give --office ID (or --last)", file=sys.stderr)
        return 2
    runtime = Runtime.from_settings(settings, read_only=not args.repair)
    try:
        return _run(args, settings, runtime)
    finally:
        runtime.close()


def _last(args: argparse.Namespace, settings: Settings) -> int:
    from syndication.reconcile_runs import format_report, latest_report

    if args.repair:
        print("error: --last only shows; it repairs nothing", file=sys.stderr)
        return 2
    runtime = Runtime.from_settings(settings, read_only=True)
    try:
        report = latest_report(runtime.engine, args.office)
    finally:
        runtime.close()
    if args.json:
        print(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        print(format_report(report))
    return 0 if report is not None else 2


def _run(args: argparse.Namespace, settings: Settings, runtime: Runtime) -> int:
    with session_scope(runtime.engine) as session:
        view = load_view(session, args.office)
    if view is None:
        print(f"error: no office with id {args.office!r}", file=sys.stderr)
        return 2
    names = [args.marketplace] if args.marketplace else list(licensed_marketplaces(view.office))
    differences: list[Difference] = []
    unasked = 0
    for name in names:
        try:
            held = runtime.transport(name).inventory(name, view.office.id)
        except SyndicationError as exc:
            print(f"{title(name)}: could not ask for the inventory: {exc}", file=sys.stderr)
            unasked += 1
            continue
        if held is None:
            print(f"{title(name)}: its transport cannot list what it holds (file drop); skipped")
            unasked += 1
            continue
        found = compare(view, name, held)
        print(f"{title(name)}: {len(held)} listing(s) held there, {len(found)} difference(s)")
        differences.extend(found)
    for difference in differences:
        print(_line(difference, args.repair))
    if not args.repair:
        return 1 if differences or unasked else 0
    return _repair(args, settings, runtime, view.office, differences, unasked)


def _repair(args: argparse.Namespace, settings: Settings, runtime: Runtime, office: Any,
            differences: list[Difference], unasked: int) -> int:
    from syndication.broker import in_process_worker, is_in_process
    from syndication.cli.transfer import format_summary, start_queue
    from syndication.transfer import wait_for_request

    broker = start_queue(settings, runtime)
    from syndication.jobs.transfer import SCHEDULER

    in_process = is_in_process(broker)
    failed = 0
    if in_process:
        with in_process_worker(broker, settings.worker_threads):
            report = repair(runtime, office, differences, SCHEDULER)
            outcomes = [wait_for_request(runtime.engine, rid) for rid in report.request_ids]
    else:
        report = repair(runtime, office, differences, SCHEDULER)
        outcomes = (
            [wait_for_request(runtime.engine, rid) for rid in report.request_ids]
            if args.wait else []
        )
    for outcome in outcomes:
        print(format_summary(outcome))
        failed += outcome.failed
    for listing_id in report.resent:
        print(f"sent {listing_id} again")
    for listing_id in report.direct_deletes:
        print(f"deleted {listing_id} (not in the store) directly")
    for error in report.errors:
        print(f"repair failed: {error}", file=sys.stderr)
    left = sum(1 for d in differences if d.repair == "none")
    print(
        f"repair: {len(report.resent)} re-sent, {len(report.request_ids)} delete request(s) "
        f"queued, {len(report.direct_deletes)} direct delete(s), "
        f"{report.recorded} status row(s) recorded, "
        f"{len(report.errors) + failed} failure(s), {left} difference(s) left without repair"
    )
    return 1 if (report.errors or failed or left or unasked) else 0
