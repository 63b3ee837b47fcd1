"""``syndication ingest FILE``: upsert the desktop's input records.

Exit status: 0 when every record was taken, 1 when some were rejected (each
is printed with its field), 2 when the file itself is unusable (unreadable,
too large, not JSON, wrong shape).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from syndication.holds import Guard
from syndication.ingest import MAX_DOCUMENT_BYTES, RecordError, ingest_document
from syndication.settings import Settings
from syndication.store.schema import open_for_writing


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "ingest",
        help="upsert offices, users and listings from a JSON document",
        description=(
            "Validate the input document (schemas/records.schema.json) and upsert its valid "
            "records by id. Exit status 0: all taken; 1: some rejected; 2: file unusable."
        ),
    )
    parser.add_argument("file", metavar="FILE", help="the JSON document, or - for stdin")
    parser.set_defaults(func=handler)


def read_input(name: str, limit: int = MAX_DOCUMENT_BYTES) -> bytes:
    """The bytes of ``name`` (``-`` is stdin), at most ``limit`` + 1 of them."""
    if name == "-":
        return sys.stdin.buffer.read(limit + 1)
    with open(name, "rb") as handle:
        return handle.read(limit + 1)


def handler(args: argparse.Namespace, settings: Settings) -> int:
    try:
        raw = read_input(args.file)
    except OSError as exc:
        print(f"error: cannot read {args.file}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    engine = open_for_writing(settings.database_url, migrate_store=True)
    try:
        report = ingest_document(engine, raw, guard=Guard.from_settings(settings))
    except RecordError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        engine.dispose()
    for error in report.errors:
        print(f"rejected: {error}")
    print(report.summary())
    for hold_id in report.holds:
        print(f"held: a mass deletion is waiting for confirmation (hold {hold_id}); "
              "see syndication holds list")
    return 0 if report.ok else 1
