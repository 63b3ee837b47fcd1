"""``syndication transfer (--object ID | --office ID | --all) [--marketplace NAME] [--wait]``.

Queues a transfer request and prints its id and job count; ``--marketplace``
limits it to that marketplace's pairs (the others are left as they are). With Redis
configured it returns once its messages are in Redis (workers do the jobs);
with the in-process broker the jobs run here, on worker threads, before it
returns. The fan-out writes only to the store (its messages go through the
outbox), so a broker that is down does not interrupt it: the command tries
for :data:`DRAIN_SECONDS` to send them, then exits 2 saying that a worker's
relay sends them; no one has to run the transfer again. ``--wait``
shows progress (a tqdm bar on a terminal, a plain line every few seconds in
a log) until every job has a final state, then a summary: counts per state
and each failure with its listing, marketplace and error. Exit status 1 when
any job failed, 2 for a usage or configuration error.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

import dramatiq
import dramatiq.errors
import redis.exceptions

from syndication import registry
from syndication.broker import in_process_worker, is_in_process, setup_broker
from syndication.outbox import Relay
from syndication.runtime import Runtime
from syndication.settings import Settings
from syndication.transfer import (
    LEFT_AS_WAS_WORDS,
    RequestOutcome,
    RequestSummary,
    Scope,
    outcome_words,
    request_transfer,
    wait_for_request,
)

PLAIN_INTERVAL = 5.0
"""Seconds between two progress lines when the output is not a terminal."""
DRAIN_SECONDS = 5.0
"""How long the command keeps sending its outbox rows to a broker that refuses them."""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "transfer",
        help="queue a marketplace transfer of one listing, one office or everything",
        description=(
            "Queue one job per listing and marketplace. Without SYNDICATION_BROKER_URL the "
            "jobs run in this process. --wait shows progress until every job is done and "
            "exits 1 if any failed."
        ),
    )
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--object", metavar="ID", help="transfer this listing")
    which.add_argument("--office", metavar="ID", help="transfer every listing of this office")
    which.add_argument("--all", action="store_true", help="transfer every listing")
    parser.add_argument("--marketplace", metavar="NAME", choices=registry.names(),
                        help="transfer to this marketplace only "
                             f"({', '.join(registry.names())}); the others are left as they are")
    parser.add_argument("--wait", action="store_true", help="wait for the outcome and summarize it")
    parser.set_defaults(func=handler)


def scope_of(args: argparse.Namespace) -> Scope:
    marketplace = args.marketplace
    if args.object:
        return Scope("object", args.object, marketplace)
    if args.office:
        return Scope("office", args.office, marketplace)
    return Scope("all", None, marketplace)


def start_queue(settings: Settings, runtime: Runtime) -> dramatiq.Broker:
    """Set up the broker with ``runtime`` attached and the actors declared on it."""
    return setup_broker(settings, runtime)


def queue_request(runtime: Runtime, scope: Scope) -> RequestSummary:
    from syndication.jobs.transfer import SCHEDULER

    return request_transfer(runtime, scope, SCHEDULER)


def handler(args: argparse.Namespace, settings: Settings) -> int:
    runtime = Runtime.from_settings(settings)
    try:
        broker = start_queue(settings, runtime)
        if is_in_process(broker):
            with in_process_worker(broker, settings.worker_threads):
                return _run(runtime, broker, scope_of(args), args.wait, in_process=True)
        return _run(runtime, broker, scope_of(args), args.wait, in_process=False)
    except (redis.exceptions.ConnectionError, dramatiq.errors.BrokerConnectionError) as exc:
        print(
            f"error: cannot reach the broker ({exc}); what the store holds of this transfer "
            "is finished by a worker's relay once the broker answers",
            file=sys.stderr,
        )
        return 2
    finally:
        runtime.close()


def _run(
    runtime: Runtime, broker: dramatiq.Broker, scope: Scope, wait: bool, *, in_process: bool
) -> int:
    summary = queue_request(runtime, scope)
    print(describe(summary), flush=True)
    if not in_process:
        left = Relay(runtime.engine, broker, name="transfer-cli").drain(DRAIN_SECONDS)
        if left:
            print(
                f"error: cannot reach the broker; {left} message(s) wait in the store's outbox "
                "and a worker's relay sends them once the broker answers: nothing needs to be "
                "run again",
                file=sys.stderr,
            )
            return 2
    if not (wait or in_process):
        return 0
    outcome = wait_for_request(
        runtime.engine, summary.request_id, on_progress=progress_reporter() if wait else None
    )
    if not wait:
        print(f"done: {outcome.counts_text() or 'nothing to do'}")
        return 0
    print(format_summary(outcome))
    return 1 if outcome.failed else 0


def describe(summary: RequestSummary) -> str:
    text = (
        f"transfer request {summary.request_id}: {summary.listings} listing(s), "
        f"{summary.jobs} job(s) queued"
    )
    if summary.recorded:
        text += f", {summary.recorded} outcome(s) recorded without a job"
    return text


def format_summary(outcome: RequestOutcome) -> str:
    """Counts per state, each with what it means; the pairs left as they were, each kind
    in its own words (only a delivered pair is "unchanged since the last transfer"); then
    one line per failure with listing, marketplace and error."""
    lines = [f"request {outcome.request_id}: {outcome.done}/{outcome.total} done"]
    for state, count in sorted((s, n) for s, n in outcome.counts.items() if n):
        lines.append(f"  {state:<13} {count:<5} {outcome_words(state)}")
    if outcome.unchanged_deliveries:
        lines.append(f"  ({outcome.unchanged_deliveries} unchanged since the last transfer: "
                     "nothing sent)")
    for state, count in sorted((s, n) for s, n in outcome.left_as_was.items() if n):
        lines.append(f"  ({count} {LEFT_AS_WAS_WORDS.get(state, state + ', left as it was')})")
    if outcome.failures:
        lines.append("failures:")
        lines.extend(
            f"  {f.listing_id} on {f.marketplace}: {f.error}" for f in outcome.failures
        )
    return "\n".join(lines)


def progress_reporter(
    stream: TextIO | None = None, clock: Callable[[], float] = time.monotonic
) -> Callable[[RequestOutcome], None]:
    """A progress callback: a tqdm bar on a terminal, a plain line every few seconds otherwise."""
    out = stream or sys.stderr
    if out.isatty():
        from tqdm import tqdm

        bar: Any = None

        def on_bar(outcome: RequestOutcome) -> None:
            nonlocal bar
            if bar is None:
                bar = tqdm(total=outcome.total, unit="job", desc="transfer", file=out)
            bar.n = outcome.done
            bar.set_postfix_str(outcome.counts_text(), refresh=False)
            bar.refresh()
            if outcome.finished:
                bar.close()

        return on_bar

    last = [float("-inf")]

    def on_line(outcome: RequestOutcome) -> None:
        now = clock()
        if outcome.finished or now - last[0] >= PLAIN_INTERVAL:
            last[0] = now
            print(
                f"progress: {outcome.done}/{outcome.total} done ({outcome.counts_text()})",
                file=out,
                flush=True,
            )

    return on_line
