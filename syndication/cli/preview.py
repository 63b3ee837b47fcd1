"""``syndication preview OBJECT_ID MARKETPLACE``: the document the next transfer would send.

The document goes to standard output (or ``-o FILE``) and a one-line summary of
the decision to standard error. Exit status 3, with the reason on standard
error, when the next transfer would send nothing (not licensed, not selected,
withdrawn and never published, conditions unmet, unchanged since the last
delivery); 2 for an unknown listing or marketplace, or a store that is behind
(it is opened read-only and never migrated: ``syndication migrate`` first).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from syndication.errors import InputError
from syndication.preview import preview
from syndication.registry import names
from syndication.settings import Settings
from syndication.store.schema import open_read_only

NOTHING_TO_SEND = 3


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "preview",
        help="print the document the next transfer would send to a marketplace",
        description=(
            "Print the document the next transfer of OBJECT_ID would send to MARKETPLACE. "
            "Exit status 3 (with the reason) when nothing would be sent."
        ),
    )
    parser.add_argument("object_id", metavar="OBJECT_ID", help="the listing's id")
    parser.add_argument("marketplace", metavar="MARKETPLACE", help=", ".join(names()))
    parser.add_argument("-o", "--output", type=Path, help="write the document to this file")
    parser.set_defaults(func=handler)


def handler(args: argparse.Namespace, settings: Settings) -> int:
    engine = open_read_only(settings.database_url)
    try:
        result = preview(engine, args.object_id, args.marketplace)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        engine.dispose()
    if result.document is None:
        print(f"nothing would be sent to {result.marketplace}: {result.reason}", file=sys.stderr)
        return NOTHING_TO_SEND
    print(f"{result.action} on {result.marketplace}: {result.reason}", file=sys.stderr)
    if args.output is not None:
        args.output.write_bytes(result.document)
    else:
        sys.stdout.buffer.write(result.document)
        sys.stdout.flush()
    return 0
