"""Which worker process runs a job, and whether that process is still there.

A worker death is a start of a job whose process is gone without ending it.
Counting every start beyond the first as a death, as one might, counts too
much: a message redelivered while its worker was only paused (``kill
-STOP``, a long garbage collection, a laptop lid), or run again by the same
live worker after its Redis connection came back, is no death. So each start
records :func:`this_worker` — host, process id and the process's start time —
and :class:`Liveness` decides later whether that process is gone:

============================== ============================================
the start's worker             gone when
============================== ============================================
this very process              never
a process on this host         no process has that id with that start time
                               (a paused one still has; a reused id has not)
a process on another host      its broker's Redis heartbeat is older than the
                               heartbeat timeout (or maintenance removed it)
============================== ============================================

A paused worker on another host looks dead by the last row until it wakes:
its start then ends, and from then on it no longer counts.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis


@dataclass(frozen=True, slots=True)
class WorkerIdentity:
    """A worker process: its host, process id and start time (from ``/proc``, or a
    random token where there is none)."""

    host: str
    pid: int
    started: str

    @property
    def key(self) -> str:
        return f"{self.host}:{self.pid}:{self.started}"

    @classmethod
    def parse(cls, key: str) -> WorkerIdentity | None:
        host, _, rest = key.rpartition(":")
        host, _, pid = host.rpartition(":")
        if not host or not pid.isdigit():
            return None
        return cls(host, int(pid), rest)

    def describe(self) -> str:
        return f"{self.host} pid {self.pid}"


def process_start(pid: int) -> str | None:
    """The start time of process ``pid`` in clock ticks since boot (Linux), or ``None``
    when there is no such process or no ``/proc`` to ask."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2:].split()
    return fields[19] if len(fields) > 19 else None


_identity: tuple[int, WorkerIdentity] | None = None


def this_worker() -> WorkerIdentity:
    """This process's identity (computed again after a fork)."""
    global _identity
    pid = os.getpid()
    if _identity is None or _identity[0] != pid:
        started = process_start(pid) or f"t{uuid.uuid4().hex[:12]}"
        _identity = (pid, WorkerIdentity(socket.gethostname(), pid, started))
    return _identity[1]


class Liveness:
    """Decides whether a start's worker is still there (the table of the module doc)."""

    def __init__(self, broker: Any = None, *, heartbeat_ms: int | None = None) -> None:
        self.client: redis.Redis | None = getattr(broker, "client", None)
        self.namespace: str = getattr(broker, "namespace", "dramatiq")
        timeout: Any = heartbeat_ms or getattr(broker, "heartbeat_timeout", None) or 60_000
        self.heartbeat_ms = int(timeout)
        self.broker_id: str | None = getattr(broker, "broker_id", None)

    def alive(self, worker: str, broker_id: str | None) -> bool:
        me = this_worker()
        if worker == me.key or (broker_id is not None and broker_id == self.broker_id):
            return True
        identity = WorkerIdentity.parse(worker)
        if identity is not None and identity.host == me.host:
            if identity.started.startswith("t"):
                return _pid_exists(identity.pid)
            return process_start(identity.pid) == identity.started
        return self._heartbeat_fresh(broker_id)

    def _heartbeat_fresh(self, broker_id: str | None) -> bool:
        if self.client is None or broker_id is None:
            return False
        try:
            score = self.client.zscore(f"{self.namespace}:__heartbeats__", broker_id)
        except redis.RedisError:
            return True  # cannot tell: not counted as a death now, asked again at the next start
        return score is not None and time.time() * 1000 - float(score) < self.heartbeat_ms


def _pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
