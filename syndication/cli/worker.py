"""``syndication worker [--processes N] [--threads N]``: run the queue workers.

This is dramatiq's own command line on ``worker.py`` with dramatiq's worker
replaced by :class:`~syndication.concurrent.ConcurrentWorker` (``python -m
syndication.concurrent worker``), so dramatiq's process management, signal
handling and graceful shutdown apply, and each process keeps up to
``SYNDICATION_CONCURRENCY`` transfers in flight whatever its thread count. It
needs a shared broker: without ``SYNDICATION_BROKER_URL`` the jobs run inside
``syndication transfer`` itself and there is nothing for a separate worker to do.

The worker does not migrate the store unless given ``--migrate`` (or
``SYNDICATION_MIGRATE_ON_START=1``): it migrates once here, before dramatiq
starts its processes; without it a store that is behind is refused with exit
status 2 before any process starts.

``--metrics-port`` turns on dramatiq's own Prometheus middleware: dramatiq's CLI
(which this command becomes) forks its exposition server next to the worker
processes, and every process writes its counts to a fresh folder of
prometheus-client's multiprocess mode, so one scrape shows the sum over all
processes: dramatiq's ``dramatiq_*`` metrics and the project's ``syndication_*``
(:mod:`syndication.metrics`). ``--health-port`` forks
:func:`syndication.health.worker_health_fork` the same way: ``/healthz`` and
``/readyz``, and ``READY=1`` to systemd once ready. Both listen on
``--listen-host`` (loopback unless told otherwise).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import MutableMapping
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
    parser.add_argument("--metrics-port", type=int, default=None, metavar="PORT",
                        help="serve the Prometheus metrics of all worker processes on PORT "
                        "(dramatiq's exposition server)")
    parser.add_argument("--health-port", type=int, default=None, metavar="PORT",
                        help="serve /healthz and /readyz on PORT")
    parser.add_argument("--listen-host", default="127.0.0.1", metavar="HOST",
                        help="address of the metrics and health ports (127.0.0.1)")
    parser.set_defaults(func=handler)


HEALTH_FORK = "syndication.health:worker_health_fork"


def dramatiq_command(processes: int, threads: int, *, health: bool = False) -> list[str]:
    """The command line that runs dramatiq's CLI, on the concurrent worker, on ``worker.py``."""
    command = [
        sys.executable, "-m", "syndication.concurrent", "worker",
        "--processes", str(processes), "--threads", str(threads),
    ]
    return [*command, "--fork-function", HEALTH_FORK] if health else command


def expose(environ: MutableMapping[str, str], args: argparse.Namespace) -> None:
    """Set the variables dramatiq's Prometheus middleware and the health fork read.

    The multiprocess folder is made fresh for each start, so no count of an earlier
    run is summed in; prometheus-client must see it before its first import in any
    worker process, hence in the environment, before dramatiq starts.
    """
    from syndication.health import HEALTH_HOST_ENV, HEALTH_PORT_ENV

    if args.metrics_port is not None:
        folder = tempfile.mkdtemp(prefix="syndication-worker-metrics-")
        environ.update({
            "PROMETHEUS_MULTIPROC_DIR": folder, "dramatiq_prom_db": folder,
            "dramatiq_prom_host": args.listen_host, "dramatiq_prom_port": str(args.metrics_port),
        })
    if args.health_port is not None:
        environ.update({HEALTH_HOST_ENV: args.listen_host,
                        HEALTH_PORT_ENV: str(args.health_port)})


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
    for name in ("metrics_port", "health_port"):
        port = getattr(args, name)
        if port is not None and not 0 < port < 65536:
            flag = "--" + name.replace("_", "-")
            print(f"error: {flag} must be between 1 and 65535, not {port}", file=sys.stderr)
            return 2
    open_for_writing(
        settings.database_url, migrate_store=args.migrate or settings.migrate_on_start
    ).dispose()
    command = dramatiq_command(args.processes, args.threads or settings.worker_threads,
                               health=args.health_port is not None)
    expose(os.environ, args)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(command[0], command)
    return 0  # not reached
