"""Jobs in flight beyond the thread count: the concurrent worker and its launcher.

:class:`ConcurrentWorker` runs ``async def`` actors' messages on one event loop per
process, up to ``SYNDICATION_CONCURRENCY`` at once; ``python -m syndication.concurrent
worker …`` is dramatiq's own command line (processes, signals, forks) running it.
"""

from syndication.concurrent.worker import (
    DEFAULT_CONCURRENCY,
    DEFAULT_STEP_THREADS,
    ConcurrentWorker,
    Steps,
    concurrent_function,
)

__all__ = [
    "DEFAULT_CONCURRENCY",
    "DEFAULT_STEP_THREADS",
    "ConcurrentWorker",
    "Steps",
    "concurrent_function",
]
