"""Keeping a fan-out's lease while its holder works on it.

A fan-out is held by one process for ``fan_out_lease_ms`` at a time; a
worker's relay takes over a fan-out whose lease ran out
(:func:`syndication.transfer.request.resume_stalled_fan_outs`). Renewing the
lease only when a batch commits would let a batch that takes longer than the
lease (a slow link to the store, a busy database) lose its fan-out every time,
so the fan-out would never move. :class:`LeaseKeeper` renews it from a thread
of its own, in short transactions of their own, every third of the lease, for
as long as the holder is alive; a holder that dies stops renewing, and its
fan-out is taken over one lease later, as before.
"""

from __future__ import annotations

import threading
from datetime import timedelta
from types import TracebackType

from sqlalchemy import Engine, update
from sqlmodel import col

from syndication.logs import get_logger
from syndication.store.db import session_scope
from syndication.store.models import TransferRequestRow, utcnow


class LeaseKeeper:
    """Renews ``owner``'s lease of ``request_id``'s fan-out while the block runs."""

    def __init__(self, engine: Engine, request_id: str, owner: str, lease_ms: int) -> None:
        self.engine = engine
        self.request_id = request_id
        self.owner = owner
        self.lease = timedelta(milliseconds=lease_ms)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"lease-{request_id[:8]}",
                                        daemon=True)

    def __enter__(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join()

    def renew(self) -> bool:
        """Push the lease's end one lease ahead if ``owner`` still holds an unfinished
        fan-out; ``False`` when it does not (taken over or finished)."""
        with session_scope(self.engine) as session:
            result = session.execute(
                update(TransferRequestRow)
                .where(
                    col(TransferRequestRow.id) == self.request_id,
                    col(TransferRequestRow.fan_out_owner) == self.owner,
                    col(TransferRequestRow.fanned_out_at).is_(None),
                )
                .values(fan_out_until=utcnow() + self.lease)
                .execution_options(synchronize_session=False)
            )
        return bool(getattr(result, "rowcount", 0))

    def _run(self) -> None:
        interval = self.lease.total_seconds() / 3
        while not self._stop.wait(interval):
            try:
                if not self.renew():
                    return
            except Exception as exc:  # noqa: BLE001 - a failed renewal only shortens the lease
                get_logger(request_id=self.request_id).warning(
                    "transfer.fan_out_lease_not_renewed", error=type(exc).__name__)
