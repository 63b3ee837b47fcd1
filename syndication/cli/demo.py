"""``syndication demo [--keep DIR]``: ingest the example, transfer it to the
sandbox marketplaces on loopback and print the status of every listing.

Needs nothing but this package: a temporary SQLite store, the in-process
broker and loopback HTTP. See :mod:`syndication.demo`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from syndication.demo import DemoOptions, run_demo
from syndication.logs import configure
from syndication.settings import Settings


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="the main job on a fresh machine: example records → sandbox marketplaces → status",
        description=(
            "Ingest examples/records.json into a temporary store, start the sandbox "
            "marketplaces on loopback, transfer everything and print the status table."
        ),
    )
    parser.add_argument("--keep", type=Path, metavar="DIR",
                        help="keep the store, outbox and marketplaces file in DIR")
    parser.add_argument("--publish-delay", type=float, default=0.3, metavar="SECONDS",
                        help="how long the sandbox waits before publishing (default 0.3)")
    parser.add_argument("--threads", type=int, default=8, metavar="N",
                        help="worker threads (default 8)")
    parser.add_argument("--verbose", action="store_true", help="show the jobs' log lines")
    parser.set_defaults(func=handler)


def handler(args: argparse.Namespace, settings: Settings) -> int:
    if args.threads < 1 or args.publish_delay < 0:
        print("error: --threads must be at least 1 and --publish-delay not negative",
              file=sys.stderr)
        return 2
    if not args.verbose:
        configure("ERROR", settings.log_format)
    options = DemoOptions(keep=args.keep, publish_delay=args.publish_delay, threads=args.threads)
    outcome = run_demo(options, sys.stdout)
    return 0 if outcome.finished else 1
