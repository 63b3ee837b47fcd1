"""The ``syndication`` command line.

Each command group lives in its own module under ``syndication.cli`` with a
``register(subparsers)`` function that adds its sub-command and sets
``func(args, settings) -> int`` as the handler. :data:`COMMAND_MODULES` is the
list of those modules; ``syndication --help`` lists every command.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from importlib import import_module

from syndication.errors import SyndicationError
from syndication.logs import configure
from syndication.settings import Settings

COMMAND_MODULES: tuple[str, ...] = (
    "migrate",
    "ingest",
    "transfer",
    "status",
    "users",
    "api_keys",
    "export",
    "preview",
    "final_prices",
    "photos",
    "worker",
    "scheduler",
    "serve",
    "reconcile",
    "holds",
    "demo",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="syndication",
        description=(
            "Marketplace syndication worker: publishes listings to Hemnet, Blocket Bostad, "
            "HittaHem and Kyero and records what happened to each. Configured by environment: "
            "SYNDICATION_DATABASE_URL, SYNDICATION_BROKER_URL, SYNDICATION_MARKETPLACES, "
            "SYNDICATION_OUTBOX, SYNDICATION_MEDIA_DIR."
        ),
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        import_module(f"syndication.cli.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``syndication`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    configure(settings.log_level, settings.log_format)
    try:
        return int(args.func(args, settings) or 0)
    except SyndicationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
