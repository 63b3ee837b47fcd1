"""Per-test PostgreSQL databases made ahead of the tests and dropped behind them.

A database copied from the migrated template takes a few tenths of a second to
create, and dropping one takes longer still: PostgreSQL runs a checkpoint for
every ``DROP DATABASE``. :class:`DatabasePool` does both on a thread of its own,
so a test waits for neither: :meth:`DatabasePool.take` hands out a database the
thread copied from the template beforehand, :meth:`DatabasePool.give_back`
queues a used one for the thread to drop. Every database is still the test's
own and still a fresh copy of the template, which nothing writes to after its
migration; :meth:`DatabasePool.close` drops every database the pool made.
"""

from __future__ import annotations

import threading
import uuid

from sqlalchemy import text

from syndication.store.db import make_engine


class DatabasePool:
    """Copies of ``template`` on the server at ``admin_url``, ``ahead`` of them ready."""

    def __init__(self, admin_url: str, template: str, ahead: int = 2) -> None:
        self.admin = make_engine(admin_url, isolation_level="AUTOCOMMIT")
        self.base = admin_url.rsplit("/", 1)[0]
        self.template = template
        self.ahead = ahead
        self._changed = threading.Condition()
        self.made: list[str] = []
        """Every database the pool created, in order."""
        self._ready: list[str] = []
        self._doomed: list[str] = []
        self._closing = False
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="postgres-pool", daemon=True)
        self._thread.start()

    def url(self, name: str) -> str:
        return f"{self.base}/{name}"

    def take(self) -> str:
        """The name of a fresh copy of the template, the caller's alone."""
        with self._changed:
            while not self._ready and self._error is None:
                self._changed.wait()
            if self._error is not None:
                raise RuntimeError(f"the database pool failed: {self._error!r}") from self._error
            name = self._ready.pop(0)
            self._changed.notify_all()
            return name

    def give_back(self, name: str) -> None:
        """Queue database ``name`` (any database the caller is done with) to be dropped."""
        with self._changed:
            self._doomed.append(name)
            self._changed.notify_all()

    def close(self) -> None:
        """Drop every queued and every unused database; raise what went wrong on the way."""
        with self._changed:
            self._closing = True
            self._changed.notify_all()
        self._thread.join()
        for name in self._ready + self._doomed:
            self._drop(name)
        self.admin.dispose()
        if self._error is not None:
            raise RuntimeError(f"the database pool failed: {self._error!r}") from self._error

    def _next(self) -> tuple[str, str] | None:
        """The thread's next task, waiting for one: a copy to make while fewer than
        ``ahead`` are ready (a test may be waiting), else a database to drop."""
        with self._changed:
            while True:
                if self._closing or self._error is not None:
                    return None
                if len(self._ready) < self.ahead:
                    return "create", f"t_{uuid.uuid4().hex[:12]}"
                if self._doomed:
                    return "drop", self._doomed.pop(0)
                self._changed.wait()

    def _run(self) -> None:
        while (task := self._next()) is not None:
            action, name = task
            try:
                if action == "create":
                    with self.admin.connect() as conn:
                        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"'))
                else:
                    self._drop(name)
            except BaseException as exc:  # noqa: BLE001 - handed to the waiting test
                with self._changed:
                    self._error = exc
                    self._changed.notify_all()
                return
            if action == "create":
                with self._changed:
                    self.made.append(name)
                    self._ready.append(name)
                    self._changed.notify_all()

    def _drop(self, name: str) -> None:
        with self.admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
