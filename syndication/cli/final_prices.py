"""``syndication final-prices [--dry-run] [--json]``: the nightly final-price sync, by hand.

It runs exactly as the schedule does — the same selection, the same batches through
the queue — and then waits for the batches and reports what was sent, what was
skipped (each with its reason) and what failed. ``--dry-run`` judges every candidate
and reports without queueing or recording anything. The command consumes its own
batches with in-process worker threads (and shares them with any running
``syndication worker``), so it needs no separate worker; as a process of its own it
tunes its garbage collector as a worker process does (``settle_heap``). A run
migrates the store first; ``--dry-run`` opens it read-only, never migrates it and
refuses one that is behind (exit status 2, ``syndication migrate`` first).

The report lists every sold listing with its outcome — ``sent`` (``would_send`` in a
dry run), ``failed``, or ``skipped`` with every rule that stopped it (the seller's and
buyer's consent, "sold before it was published on Hemnet", …) — and the retractions.
``--seed-hemnet FILE`` seeds the Hemnet publication history of listings migrated from
another system (:mod:`syndication.hemnet_history`) and runs nothing else.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select
from sqlmodel import col
from tqdm import tqdm

from syndication.errors import SyndicationError
from syndication.final_prices import BATCH_SIZE, IN_FLIGHT, RunPlan, dispatch, new_run_id
from syndication.hemnet_history import seed_hemnet_history
from syndication.runtime import Runtime
from syndication.settings import Settings
from syndication.store.models import FinalPriceRow

TEXT_LIMIT = 50
"""Listings shown per section of the text report (``--json`` has them all)."""


def run_progress(engine: Engine, run_id: str) -> dict[str, int]:
    """How many listings of a run are in each sync state (in flight ones included)."""
    query = (
        select(col(FinalPriceRow.state), func.count())
        .where(col(FinalPriceRow.run_id) == run_id)
        .group_by(col(FinalPriceRow.state))
    )
    with engine.connect() as conn:
        return {state: count for state, count in conn.execute(query)}


def run_failures(engine: Engine, run_id: str) -> list[tuple[str, str, str]]:
    """``(listing_id, state, error)`` of every delivery of a run that failed."""
    query = (
        select(col(FinalPriceRow.listing_id), col(FinalPriceRow.state), col(FinalPriceRow.error))
        .where(col(FinalPriceRow.run_id) == run_id)
        .where(col(FinalPriceRow.state).in_(("failed", "retraction_failed")))
        .order_by(col(FinalPriceRow.listing_id))
    )
    with engine.connect() as conn:
        return [(lid, state, error or "") for lid, state, error in conn.execute(query)]


class RunTimeout(SyndicationError):
    """The batches of a run did not finish in time (no worker consuming the queue?)."""


def wait_for_run(
    runtime: Runtime,
    run_id: str,
    expected: int,
    *,
    timeout: float,
    progress: Callable[[int], None] | None = None,
    poll: float = 0.5,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Block until every queued listing of ``run_id`` has a recorded outcome.

    It polls the store (so it works whichever process runs the batches), first
    often and then every ``poll`` seconds.
    """
    deadline = time.monotonic() + timeout
    done = 0
    wait = 0.02
    while True:
        states = run_progress(runtime.engine, run_id)
        now_done = sum(n for state, n in states.items() if state not in IN_FLIGHT)
        if progress is not None and now_done > done:
            progress(now_done - done)
        done = now_done
        if done >= expected:
            return
        if time.monotonic() > deadline:
            raise RunTimeout(
                f"final-price run {run_id}: {expected - done} of {expected} listings not "
                f"finished after {timeout:.0f} s; the next run picks them up"
            )
        sleep(wait)
        wait = min(poll, wait * 2)


def report(runtime: Runtime, plan: RunPlan, *, dry_run: bool) -> dict[str, Any]:
    """The outcome of a run: sent, skipped (with reasons) and failed listings."""
    skipped = [{"listing_id": p.listing_id, "office_id": p.office_id, "outcome": "skipped",
                "reason": p.reason} for p in plan.skipped]
    failures = {} if dry_run else {
        lid: (state, error) for lid, state, error in run_failures(runtime.engine, plan.run_id)
    }
    sent, failed = [], []
    for p in plan.queued:
        entry = {"listing_id": p.listing_id, "office_id": p.office_id, "action": p.action,
                 "final_price": p.price, "reason": p.reason}
        if p.listing_id in failures:
            failed.append({**entry, "outcome": "failed", "error": failures[p.listing_id][1]})
        else:
            sent.append({**entry, "outcome": "would_send" if dry_run else "sent"})
    return {
        "run_id": plan.run_id,
        "dry_run": dry_run,
        "counts": {"sent": len(sent), "skipped": len(skipped), "failed": len(failed)},
        "sent": sent,
        "skipped": skipped,
        "failed": failed,
    }


def run_sync(
    runtime: Runtime,
    enqueue: Callable[[list[str], str], None] | None,
    *,
    timeout: float = 3600.0,
    batch_size: int = BATCH_SIZE,
    show_progress: bool | None = None,
) -> dict[str, Any]:
    """Plan and (unless ``enqueue`` is ``None``, a dry run) deliver one run; the report.

    ``show_progress`` ``None`` shows tqdm bars only on a terminal.
    """
    run_id = new_run_id(runtime.clock())
    disable = None if show_progress is None else not show_progress
    with tqdm(desc="selecting", unit=" listings", disable=disable, file=sys.stderr) as bar:
        plan = dispatch(runtime.engine, run_id, enqueue, batch_size=batch_size,
                        progress=bar.update)
    if enqueue is not None and plan.queued:
        with tqdm(total=len(plan.queued), desc="sending", unit=" listings", disable=disable,
                  file=sys.stderr) as bar:
            wait_for_run(runtime, run_id, len(plan.queued), timeout=timeout, progress=bar.update)
    return report(runtime, plan, dry_run=enqueue is None)


def print_text(result: dict[str, Any], out: Any = None) -> None:
    """The report for a terminal: counts, then up to :data:`TEXT_LIMIT` listings per section."""
    out = out or sys.stdout
    counts = result["counts"]
    verb = "would send" if result["dry_run"] else "sent"
    print(
        f"final prices ({result['run_id']}): {verb} {counts['sent']}, "
        f"skipped {counts['skipped']}, failed {counts['failed']}",
        file=out,
    )
    sections = (
        (verb, result["sent"], lambda e: f"{e['action']} {e['final_price']}: {e['reason']}"),
        ("skipped", result["skipped"], lambda e: e["reason"]),
        ("failed", result["failed"], lambda e: e["error"]),
    )
    for title, entries, describe in sections:
        if not entries:
            continue
        print(f"\n{title}:", file=out)
        for entry in entries[:TEXT_LIMIT]:
            print(f"  {entry['listing_id']}  {describe(entry)}", file=out)
        if len(entries) > TEXT_LIMIT:
            print(f"  … and {len(entries) - TEXT_LIMIT} more (--json lists all)", file=out)


def seed_handler(path: Path, settings: Settings) -> int:
    """``--seed-hemnet FILE``: seed the history, print what was taken and each refusal."""
    runtime = Runtime.from_settings(settings)
    try:
        result = seed_hemnet_history(runtime.engine, path)
    finally:
        runtime.close()
    print(f"seeded {result.seeded} Hemnet publication(s)")
    for refusal in result.refused:
        print(f"refused: {refusal}", file=sys.stderr)
    return 1 if result.refused else 0


def handler(args: argparse.Namespace, settings: Settings) -> int:
    if args.seed_hemnet is not None:
        return seed_handler(args.seed_hemnet, settings)
    runtime = Runtime.from_settings(settings, read_only=args.dry_run)
    worker = None
    try:
        if args.dry_run:
            result = run_sync(runtime, None, timeout=args.timeout)
        else:
            import dramatiq

            from syndication.broker import setup_broker
            from syndication.concurrent.worker import settle_heap

            broker = setup_broker(settings, runtime)
            from syndication.jobs.final_prices import QUEUE, enqueue_batch

            worker = dramatiq.Worker(
                broker, queues={QUEUE}, worker_threads=args.threads, worker_timeout=100
            )
            worker.start()
            if getattr(args, "own_process", False):
                settle_heap()
            result = run_sync(runtime, enqueue_batch, timeout=args.timeout,
                              batch_size=args.batch_size)
    finally:
        if worker is not None:
            worker.stop()
        runtime.close()
    if args.json:
        json.dump(result, sys.stdout, ensure_ascii=False, indent=2)
        print()
    else:
        print_text(result)
    return 1 if result["failed"] else 0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "final-prices",
        help="send sold listings' final prices to Hemnet (the nightly sync, R7)",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
    )
    parser.add_argument("--dry-run", action="store_true",
                        help="report what would be sent or skipped; send and record nothing")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--seed-hemnet", type=Path, metavar="FILE",
                        help="seed Hemnet publications of migrated listings from a CSV "
                             "(listing_id,hemnet_id,published_on[,public_url]) and exit")
    parser.add_argument("--timeout", type=float, default=3600.0,
                        help="seconds to wait for the batches (default 3600)")
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE,
                        help=f"listings per queue message (default {BATCH_SIZE})")
    parser.add_argument("--threads", type=int, default=4,
                        help="in-process worker threads consuming the batches (default 4)")
    parser.set_defaults(func=handler)
