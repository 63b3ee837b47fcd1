"""``python -m syndication.concurrent worker …``: dramatiq's command line on the concurrent worker.

dramatiq's CLI keeps everything an operator relies on (``--processes``,
``--threads``, the fork functions, SIGTERM's graceful stop, SIGHUP's reload); it
builds its worker from the name ``Worker`` in its own module, so that name is
pointed at :class:`~syndication.concurrent.ConcurrentWorker` when this module is
imported (also as the ``__mp_main__`` of a process dramatiq spawns with
``--use-spawn``). The arguments are dramatiq's, unchanged. Each worker process
freezes its booted heap (:attr:`~syndication.concurrent.ConcurrentWorker.freeze_heap`).
"""

from __future__ import annotations

import sys

import dramatiq.cli

from syndication.concurrent.worker import ConcurrentWorker


class ProcessWorker(ConcurrentWorker):
    """The concurrent worker as the whole of a worker process: its booted heap is frozen."""

    freeze_heap = True


dramatiq.cli.Worker = ProcessWorker  # type: ignore[misc]


def main() -> int:
    return int(dramatiq.cli.main() or 0)


if __name__ == "__main__":
    sys.exit(main())
