"""The ``syndication`` command line.

Each command group lives in its own module under ``syndication.cli`` with a
``register(subparsers)`` function that adds its sub-command and sets
``func(args, settings) -> int`` as the handler. :data:`COMMANDS` names each
command, its module and the one-line help ``syndication --help`` lists.

A command's module imports what the command runs (the store, FastAPI, the
actors), so importing all of them costs seconds. :func:`main` therefore imports
only the module of the command the arguments name; every other command is a
placeholder carrying its name and help, which is all the top-level help and
argparse's "invalid choice" need. ``tests/cli/test_lazy_parser.py`` pins the
help lines here to the ones the modules register.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Collection, Sequence
from importlib import import_module
from typing import NamedTuple

from syndication.errors import SyndicationError
from syndication.logs import configure
from syndication.settings import Settings


class Command(NamedTuple):
    """One top-level command: its module under ``syndication.cli`` and its help line."""

    module: str
    help: str


COMMANDS: dict[str, Command] = {
    "migrate": Command(
        "migrate",
        "upgrade the store to the newest schema (--check: only say whether it is behind)"),
    "ingest": Command("ingest", "upsert offices, users and listings from a JSON document"),
    "transfer": Command(
        "transfer", "queue a marketplace transfer of one listing, one office or everything"),
    "status": Command(
        "status", "show the transfer status of a listing or an office (needs a password)"),
    "user": Command("users", "set passwords, import legacy passwords, set roles"),
    "api-key": Command("api_keys", "create, list and revoke the API keys of offices"),
    "export": Command(
        "export",
        "write one document with every listing of an office a transfer would publish"),
    "preview": Command(
        "preview", "print the document the next transfer would send to a marketplace"),
    "final-prices": Command(
        "final_prices", "send sold listings' final prices to Hemnet (the nightly sync, R7)"),
    "photos": Command("photos", "pull finished photo assignments from the photographers' portal"),
    "worker": Command("worker", "run the queue workers (dramatiq) on the Redis broker"),
    "scheduler": Command(
        "scheduler",
        "run the schedule: nightly final prices to Hemnet and reconciliation, photo pulls"),
    "serve": Command(
        "serve", "run the HTTP service: the support web view and the JSON API /api/v1"),
    "reconcile": Command(
        "reconcile", "compare what the marketplaces hold for an office with the store; repair"),
    "holds": Command("holds", "held mass deletions (R15): list, confirm or cancel them"),
    "demo": Command(
        "demo",
        "the main job on a fresh machine: example records → sandbox marketplaces → status"),
}

COMMAND_MODULES: tuple[str, ...] = tuple(command.module for command in COMMANDS.values())


def build_parser(load: Collection[str] | None = None) -> argparse.ArgumentParser:
    """The parser of every command. ``load`` names the commands whose modules are imported
    and registered in full; the others are placeholders with their name and help only.
    ``None`` (the default) loads every command, for callers that inspect or parse any
    command line (the deploy units' check, the fresh-process tests, the benchmarks)."""
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
    for name, command in COMMANDS.items():
        if load is None or name in load:
            import_module(f"syndication.cli.{command.module}").register(sub)
        else:
            sub.add_parser(name, help=command.help, add_help=False)
    return parser


def named_command(argv: Sequence[str]) -> str | None:
    """The command ``argv`` names: its first word that is not an option. The top-level
    parser has no option taking a value (only ``-h``), so this is the word argparse takes
    as COMMAND; ``None`` when there is none (``syndication --help``)."""
    return next((word for word in argv if not word.startswith("-")), None)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``syndication`` console script; returns the exit status.

    Without ``argv`` (the console script) the command is its process's whole life, and
    ``args.own_process`` tells a command it may tune the process (the final-price
    sync's garbage collector); a caller that passes ``argv`` keeps its process as it is.
    """
    own_process = argv is None
    argv = sys.argv[1:] if argv is None else list(argv)
    command = named_command(argv)
    parser = build_parser(load=() if command is None else (command,))
    args = parser.parse_args(argv)
    args.own_process = own_process
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
