"""``syndication demo``: the whole job on a fresh machine, in a few seconds.

1. a temporary folder with a SQLite store and an outbox (``--keep DIR`` keeps it);
2. the bundled ``examples/records.json`` ingested;
3. the sandbox marketplaces started on loopback, and a marketplaces file
   pointing every marketplace at them;
4. everything transferred through the in-process broker and its worker
   threads, the publication confirmations awaited (the sandbox publishes
   after a short delay);
5. the status of every listing per marketplace printed as a table — state,
   marketplace id and error, failures with their contacts — followed by the
   transfer summary and how the code-330 farms fared on Hemnet.

Nothing but loopback is touched; no Redis, no database server.
"""

from __future__ import annotations

import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TextIO

from sqlalchemy import func
from sqlmodel import col, select

from syndication import registry
from syndication.broker import in_process_worker
from syndication.ingest import ingest_document
from syndication.runtime import Runtime
from syndication.settings import Settings
from syndication.status_view import format_table, listing_status
from syndication.store.db import make_engine, migrate, session_scope
from syndication.store.models import ListingRow, TransferStatusRow
from syndication.transfer import RequestOutcome, Scope, wait_for_request

FARM_CODE = "330"
"""Hemnet's object type "Gård utan bruk" (R4)."""


@dataclass(frozen=True)
class DemoOptions:
    keep: Path | None = None
    publish_delay: float = 0.3
    threads: int = 8
    timeout: float = 45.0


def example_records() -> bytes:
    """The bundled example input document."""
    return (resources.files("examples") / "records.json").read_bytes()


def run_demo(options: DemoOptions, out: TextIO) -> RequestOutcome:
    """Run the demo, print its report on ``out`` and return the transfer's outcome."""
    from adapters.sandbox import Sandbox
    from syndication.cli.transfer import format_summary, queue_request, start_queue

    began = time.monotonic()
    with ExitStack() as stack:
        if options.keep is not None:
            folder = options.keep
            folder.mkdir(parents=True, exist_ok=True)
        else:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="syndication-")))
        sandbox = stack.enter_context(Sandbox(publish_delay=options.publish_delay))
        marketplaces_file = sandbox.write_marketplaces_file(folder / "marketplaces.toml")
        settings = Settings(
            database_url=f"sqlite:///{folder / 'demo.db'}",
            marketplaces_file=marketplaces_file,
            outbox=folder / "outbox",
            media_dir=folder / "media",
            worker_threads=options.threads,
            confirm_delay_ms=int(options.publish_delay * 1000) + 200,
            min_backoff_ms=200,
        )
        engine = make_engine(settings.database_url)
        migrate(engine)
        report = ingest_document(engine, example_records())
        print(f"store: {folder / 'demo.db'}", file=out)
        print(f"ingest: {report.summary()}", file=out)
        for name in sandbox.marketplaces:
            print(f"sandbox {name}: {sandbox.url(name)}", file=out)

        runtime = Runtime.from_settings(settings)
        stack.callback(runtime.close)
        broker = start_queue(settings, runtime)
        with in_process_worker(broker, options.threads):
            summary = queue_request(runtime, Scope("all"))
            print(
                f"transfer {summary.request_id}: {summary.listings} listings, "
                f"{summary.jobs} jobs queued",
                file=out,
            )
            outcome = wait_for_request(runtime.engine, summary.request_id, timeout=options.timeout)
            broker.join("confirmations", fail_fast=False, timeout=int(options.timeout * 1000))  # type: ignore[call-arg]
        outcome = wait_for_request(runtime.engine, summary.request_id, timeout=0)

        print("", file=out)
        print(_status_table(runtime), file=out)
        print("", file=out)
        print(format_summary(outcome), file=out)
        print("", file=out)
        for line in _farm_report(runtime, sandbox):
            print(line, file=out)
        for line in _feed_report(runtime):
            print(line, file=out)
        print(f"demo finished in {time.monotonic() - began:.1f} s", file=out)
        engine.dispose()
        return outcome


def _status_table(runtime: Runtime) -> str:
    with session_scope(runtime.engine) as session:
        ids = list(session.exec(select(ListingRow.id).order_by(col(ListingRow.id))))
        documents = [listing_status(session, listing_id, runtime.contacts) for listing_id in ids]
    return format_table(documents)


def _feed_report(runtime: Runtime) -> list[str]:
    """One line per published full feed of a pull marketplace (R17): where, how many."""
    pull = [entry.name for entry in registry.entries() if entry.pull]
    with session_scope(runtime.engine) as session:
        rows = session.exec(
            select(TransferStatusRow.marketplace, TransferStatusRow.public_url, func.count())
            .where(col(TransferStatusRow.marketplace).in_(pull),
                   col(TransferStatusRow.state) == "published")
            .group_by(col(TransferStatusRow.marketplace), col(TransferStatusRow.public_url))
            .order_by(col(TransferStatusRow.public_url))
        ).all()
    return [
        f"{registry.title(name)} feed: {count} listings at {address}"
        for name, address, count in rows
    ]


def _object_type_code(document: bytes) -> str | None:
    from feeds.validate import parse_untrusted

    codes = parse_untrusted(document, "Hemnet document").xpath("//objectType/@code")
    return str(codes[0]) if codes else None


def _farm_report(runtime: Runtime, sandbox: object) -> list[str]:
    """One line per farm whose Hemnet document carries code 330, with its Hemnet state."""
    hemnet = sandbox["hemnet"]  # type: ignore[index]
    lines: list[str] = []
    with session_scope(runtime.engine) as session:
        farms = session.exec(
            select(ListingRow.id)
            .where(col(ListingRow.category) == "lantbruk")
            .order_by(col(ListingRow.id))
        ).all()
        for listing_id in farms:
            documents = hemnet.documents(listing_id=listing_id)
            if not documents or _object_type_code(documents[-1].document) != FARM_CODE:
                continue
            row = session.get(TransferStatusRow, (listing_id, "hemnet"))
            state = row.state if row else "-"
            ident = row.marketplace_id if row and row.marketplace_id else "-"
            lines.append(
                f"code-{FARM_CODE} farm (Gård utan bruk) {listing_id} on Hemnet: "
                f"{state}, HemnetID {ident}"
            )
    return lines or [f"no code-{FARM_CODE} farm reached Hemnet"]
