"""A PostgreSQL cluster of the test's own, which the test may stop and start.

Built with the Debian binaries (``/usr/lib/postgresql/<version>/bin``):
``initdb`` into a fresh folder, ``pg_ctl`` to start, stop and restart it on a
free loopback port. ``initdb`` refuses to run as root, so as root the cluster
runs as the ``postgres`` system user (``runuser``); without that user, or
without the binaries, the test is skipped saying which.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from availability import unavailable


def _binaries() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(found[-1]).parent if found else None


class OwnPostgres:
    """One PostgreSQL server on ``127.0.0.1:port``, trust authentication, user ``postgres``."""

    def __init__(self, port: int) -> None:
        self.bin = _binaries()
        if self.bin is None:
            unavailable("no PostgreSQL server binaries under /usr/lib/postgresql/*/bin")
        self.user: str | None = None
        if os.geteuid() == 0:
            try:
                pwd.getpwnam("postgres")
            except KeyError:
                unavailable("running as root without a 'postgres' user: initdb refuses root")
            self.user = "postgres"
        self.port = port
        self.root = Path(tempfile.mkdtemp(prefix="syndication-pg-"))
        self.data = self.root / "data"
        if self.user is not None:
            shutil.chown(self.root, self.user)
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres",
                  "--no-sync", "-E", "UTF8")

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, tool: str, *args: str) -> None:
        assert self.bin is not None
        argv = [str(self.bin / tool), *args]
        if self.user is not None:
            argv = ["runuser", "-u", self.user, "--", *argv]
        subprocess.run(argv, check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        options = (f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
                   "-c fsync=off -c max_connections=200")
        self._run("pg_ctl", "-D", str(self.data), "-o", options,
                  "-l", str(self.root / "server.log"), "-w", "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def close(self) -> None:
        try:
            self.stop()
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.root, ignore_errors=True)
