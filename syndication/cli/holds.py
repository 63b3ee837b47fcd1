"""``syndication holds list|confirm|cancel`` — the held mass deletions (R15).

* ``holds list [--office ID] [--all] [--json]`` — the holds waiting for a person
  (``--all``: the decided ones too), with the count and the cause; read-only.
* ``holds confirm HOLD_ID [--wait]`` — let the deletes go: one transfer per listing
  of the hold, which sends each delete with its reason; without Redis the
  transfers run here before the command returns.
* ``holds cancel HOLD_ID`` — put the listings' state and selection back as they
  were before the change and send nothing: the marketplaces keep their copies.

The command line acts as the operator (an admin); the actor recorded is
``cli:<login name>``. Exit status: 0 done; 1 nothing waiting (``list``) or a
transfer failed; 2 unknown or already decided hold, usage.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from typing import Any

from syndication import holds
from syndication.runtime import Runtime
from syndication.settings import Settings
from syndication.store.db import session_scope


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "holds", help="held mass deletions (R15): list, confirm or cancel them",
        description="Deletes held by the mass-deletion guard: list them, confirm them (send "
                    "the deletes) or cancel them (restore the listings, send nothing).")
    sub = parser.add_subparsers(dest="holds_command", metavar="ACTION", required=True)
    listing = sub.add_parser("list", help="the holds waiting for a person")
    listing.add_argument("--office", metavar="ID", help="only this office's holds")
    listing.add_argument("--all", action="store_true", help="also the confirmed and cancelled")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(func=list_handler)
    for name, helped in (("confirm", "send the held deletes"),
                         ("cancel", "restore the listings; send nothing")):
        action = sub.add_parser(name, help=helped)
        action.add_argument("hold_id", metavar="HOLD_ID")
        action.add_argument("--json", action="store_true", help="print JSON")
        if name == "confirm":
            action.add_argument("--wait", action="store_true",
                                help="with Redis: wait for the delete transfers")
        action.set_defaults(func=confirm_handler if name == "confirm" else cancel_handler)


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def format_hold(hold: dict[str, Any]) -> str:
    """One hold as lines for a terminal."""
    lines = [f"hold {hold['hold_id']} · office {hold['office_id']} · {hold['state']} · "
             f"{hold['deletes']} delete(s) · since {hold['created_at'][:19]}",
             f"  cause: {hold['cause']}"]
    if hold["decided_by"]:
        lines.append(f"  {hold['state']} by {hold['decided_by']} at {hold['decided_at'][:19]}")
    for pair in hold["pairs"][:20]:
        lines.append(f"  {pair['listing_id']:<16} {pair['marketplace']:<10} {pair['reason']}")
    if len(hold["pairs"]) > 20:
        lines.append(f"  … and {len(hold['pairs']) - 20} more (--json lists every one)")
    return "\n".join(lines)


def list_handler(args: argparse.Namespace, settings: Settings) -> int:
    runtime = Runtime.from_settings(settings, read_only=True)
    try:
        with session_scope(runtime.engine) as session:
            rows = holds.list_holds(session, every=args.all)
            found = [holds.describe(row) for row in rows
                     if args.office is None or row.office_id == args.office]
    finally:
        runtime.close()
    if args.json:
        print(json.dumps({"holds": found}, indent=2, ensure_ascii=False))
    elif not found:
        print("no mass deletion is waiting for confirmation")
    else:
        print("\n\n".join(format_hold(hold) for hold in found))
    return 0 if found else 1


def cancel_handler(args: argparse.Namespace, settings: Settings) -> int:
    runtime = Runtime.from_settings(settings)
    try:
        outcome = holds.cancel(runtime.engine, args.hold_id, _actor(), now=runtime.clock())
    except (holds.UnknownHold, holds.HoldDecided) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        runtime.close()
    if args.json:
        print(json.dumps({"hold_id": args.hold_id, "state": holds.CANCELLED,
                          "restored": outcome.restored, "left": outcome.left}))
    else:
        print(f"hold {args.hold_id} cancelled: {len(outcome.restored)} listing(s) restored, "
              "nothing sent; the marketplaces keep their copies")
        for listing_id in outcome.left:
            print(f"  {listing_id}: changed by the desktop since; left as it is now")
    return 0


def confirm_handler(args: argparse.Namespace, settings: Settings) -> int:
    from syndication.broker import in_process_worker, is_in_process
    from syndication.cli.transfer import queue_request, start_queue
    from syndication.transfer import Scope, wait_for_request

    runtime = Runtime.from_settings(settings)
    try:
        listing_ids = holds.confirm(runtime.engine, args.hold_id, _actor(), now=runtime.clock())
        broker = start_queue(settings, runtime)
        outcomes = []
        if is_in_process(broker):
            with in_process_worker(broker, settings.worker_threads):
                ids = [queue_request(runtime, Scope("object", lid)).request_id
                       for lid in listing_ids]
                outcomes = [wait_for_request(runtime.engine, rid) for rid in ids]
        else:
            ids = [queue_request(runtime, Scope("object", lid)).request_id
                   for lid in listing_ids]
            if args.wait:
                outcomes = [wait_for_request(runtime.engine, rid) for rid in ids]
    except (holds.UnknownHold, holds.HoldDecided) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        runtime.close()
    failed = sum(outcome.failed for outcome in outcomes)
    if args.json:
        print(json.dumps({"hold_id": args.hold_id, "state": holds.CONFIRMED,
                          "listings": listing_ids, "request_ids": ids, "failed": failed}))
    else:
        print(f"hold {args.hold_id} confirmed: {len(listing_ids)} listing(s) queued for their "
              f"deletes ({failed} failed)")
    return 1 if failed else 0
