"""``syndication export MARKETPLACE --office ID -o FILE``: the full feed of one office.

The store is opened read-only and never migrated; a store that is behind is
refused with exit status 2 (``syndication migrate`` first).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from syndication import registry
from syndication.settings import Settings


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "export",
        help="write one document with every listing of an office a transfer would publish",
        description=(
            "Write the full feed of an office for one marketplace: every listing the next "
            "transfer would publish there, in that marketplace's format, validated against "
            "its XSD. Streams, so memory stays flat for large offices."
        ),
    )
    parser.add_argument(
        "marketplace",
        choices=registry.names(),
        metavar="MARKETPLACE",
        help=f"one of: {', '.join(registry.names())}",
    )
    parser.add_argument("--office", required=True, metavar="ID", help="the office's id")
    parser.add_argument(
        "-o",
        "--output",
        required=True,
        type=Path,
        metavar="FILE",
        help="where to write the document (replaced only when complete)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    parser.set_defaults(func=handler)


def handler(args: argparse.Namespace, settings: Settings) -> int:
    """Export into a temporary file beside FILE and move it in place when complete."""
    from syndication.export import export_office
    from syndication.store.schema import open_read_only

    engine = open_read_only(settings.database_url)
    try:
        target: Path = args.output
        folder = target.parent if str(target.parent) else Path(".")
        if not folder.is_dir():
            print(f"error: no folder {folder} for the output file", file=sys.stderr)
            return 2
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", dir=folder)
        try:
            with os.fdopen(fd, "wb") as out:
                report = export_office(
                    engine, args.marketplace, args.office, out, progress=not args.quiet
                )
            os.replace(tmp_name, target)
        except BaseException:
            os.unlink(tmp_name)
            raise
    finally:
        engine.dispose()
    if not args.quiet:
        print(
            f"{report.written} listing(s) of office {args.office} written to {target}; "
            f"{len(report.skipped)} left out",
            file=sys.stderr,
        )
        for listing_id, reason in list(report.skipped.items())[:20]:
            print(f"  {listing_id}: {reason}", file=sys.stderr)
        if len(report.skipped) > 20:
            print(f"  … and {len(report.skipped) - 20} more", file=sys.stderr)
    return 0
