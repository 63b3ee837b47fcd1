"""A process of its own that holds a SQLite store's writer lock for a moment
(:func:`syndication.store.db.writer_lock`), for the tests of who waits for it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

_HOLDER = """
import sys, time
from pathlib import Path
from syndication.store.db import make_engine, writer_lock
engine = make_engine(sys.argv[1])
with writer_lock(engine):
    print("held", flush=True)
    time.sleep(0.3)
    Path(sys.argv[2]).write_text("released")
"""


def held_elsewhere(url: str, marker: Path) -> subprocess.Popen[str]:
    """Start a process that takes the writer lock of the store at ``url``, says so (this
    returns once it has), and writes ``marker`` just before it lets go."""
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, url, str(marker)],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    return holder
