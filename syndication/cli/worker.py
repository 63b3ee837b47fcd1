"""``syndication worker [--processes N] [--threads N]``: run the queue workers.

This is dramatiq's own worker on ``worker.py`` (``dramatiq worker`` does the
same), so dramatiq's process management, signal handling and graceful
shutdown apply. It needs a shared broker: without ``SYNDICATION_BROKER_URL``
the jobs run inside ``syndication transfer`` itself and there is nothing for a
separate worker to do.

The worker does not migrate the store unless given ``--migrate`` (or
``SYNDICATION_MIGRATE_ON_START=1``): it migrates once here, before dramatiq
starts its processes; without it a store that is behind is refused with exit
status 2 before any process starts.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from syndication.settings import Settings
from syndication.store.schema import open_for_writing


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "worker",
        help="run the queue workers (dramatiq) on the Redis broker",
        description=(
            "Run dramatiq's worker on worker.py. Needs SYNDICATION_BROKER_URL=redis://…; "
            "SYNDICATION_HEARTBEAT_MS, SYNDICATION_MAX_RETRIES and friends set the policy. "
            "A store that is behind is refused unless --migrate is given."
        ),
    )
    parser.add_argument(
        "--migrate",
        action="store_true",
        help="upgrade the store to the newest schema before the workers start (also "
        "SYNDICATION_MIGRATE_ON_START=1); without it a store that is behind is refused",
    )
    parser.add_argument("--processes", type=int, default=1, metavar="N", help="worker processes")
    parser.add_argument(
        "--threads", type=int, default=None, metavar="N",
        help="threads per process (default SYNDICATION_WORKER_THREADS, 8)",
    )
    parser.set_defaults(func=handler)


def dramatiq_command(processes: int, threads: int) -> list[str]:
    """The command line that runs dramatiq's worker on ``worker.py``."""
    return [
        sys.executable, "-m", "dramatiq", "worker",
        "--processes", str(processes), "--threads", str(threads),
    ]


def handler(args: argparse.Namespace, settings: Settings) -> int:
    if not settings.broker_url:
        print(
            "error: no SYNDICATION_BROKER_URL: with the in-process broker, "
            "`syndication transfer` runs the jobs itself; set redis://… to run workers",
            file=sys.stderr,
        )
        return 2
    if args.processes < 1 or (args.threads is not None and args.threads < 1):
        print("error: --processes and --threads must be at least 1", file=sys.stderr)
        return 2
    open_for_writing(
        settings.database_url, migrate_store=args.migrate or settings.migrate_on_start
    ).dispose()
    command = dramatiq_command(args.processes, args.threads or settings.worker_threads)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(command[0], command)
    return 0  # not reached
