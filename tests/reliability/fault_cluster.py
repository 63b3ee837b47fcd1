"""A whole deployment on one machine, for fault tests: store, Redis, workers, marketplaces.

:class:`Cluster` puts together what an operator runs — a SQLite store, a
Redis server with append-only persistence (the ``own_redis`` fixture, which
the test may restart), worker processes started exactly as in production
(``dramatiq worker`` or ``syndication worker``, each in its own process group
so ``kill -9`` takes the whole worker down), and the sandbox marketplaces on
loopback, which count every call and every creation. Listings are generated
(``bench/_common.py``) and ingested with :mod:`syndication.ingest`; transfers
are queued with the real ``syndication transfer`` command.

The queue policy is the production one with shorter clocks, so a test takes
seconds rather than minutes: the heartbeat after which a dead worker's
messages are given back, the backoff between retries, the publication delay,
the HTTP deadline and the circuit breaker's cool-down.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import bench_common as _common
from sqlalchemy import Engine, func, select

from adapters.sandbox import Sandbox
from syndication import registry
from syndication.ingest import ingest_document
from syndication.records import FINAL_STATES
from syndication.store.db import make_engine, migrate, session_scope
from syndication.store.models import TransferEventRow, TransferStatusRow
from syndication.transfer import RequestOutcome, request_outcome

ROOT = Path(__file__).resolve().parents[2]
FAULT_LISTINGS = int(os.environ.get("SYNDICATION_FAULT_LISTINGS") or 200)
"""Listings per fault test: a few hundred in CI, 2,000 for the long run."""
LONG_RUN = FAULT_LISTINGS > 500
MARKETPLACES = registry.names(transport="http")
DELIVERED = frozenset({"sent", "published"})


def budget(jobs: int) -> float:
    """Seconds a run of ``jobs`` may take before the test gives up waiting."""
    return 60.0 + jobs / 10.0


def marks() -> list[Any]:
    """The marks of every fault test: ``redis`` always, ``slow`` and a longer timeout for the
    long run, so ``SYNDICATION_FAULT_LISTINGS=2000 python -m pytest tests/reliability -m slow``
    selects exactly the long run."""
    import pytest

    chosen = [pytest.mark.redis, pytest.mark.timeout(int(300 + budget(3 * FAULT_LISTINGS) * 2))]
    return [*chosen, pytest.mark.slow] if LONG_RUN else chosen


@dataclass(frozen=True)
class Policy:
    """The queue and HTTP retry policy the workers run with."""

    threads: int = 8
    heartbeat_ms: int = 8_000
    max_retries: int = 5
    min_backoff_ms: int = 200
    max_worker_deaths: int = 3
    confirm_delay_ms: int = 300
    http_attempts: int = 4
    http_initial_wait: float = 0.05
    http_max_wait: float = 0.5
    read_timeout: float = 1.0
    connect_timeout: float = 0.5
    deadline: float = 10.0
    circuit_threshold: int = 5
    circuit_cooldown_ms: int = 500
    marketplace_concurrency: int = 0
    fan_out_lease_ms: int = 5_000

    @property
    def calls_per_job(self) -> int:
        """The most HTTP calls one job may make: every HTTP attempt of every dramatiq try."""
        return self.http_attempts * (self.max_retries + 1)


@dataclass
class Cluster:
    """The store, Redis, the sandbox and the worker processes of one test."""

    directory: Path
    redis_url: str
    sandbox: Sandbox
    policy: Policy = field(default_factory=Policy)
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    database_url: str = ""

    def __post_init__(self) -> None:
        self.database_url = self.database_url or f"sqlite:///{self.directory / 'store.db'}"
        self.engine: Engine = make_engine(self.database_url)
        migrate(self.engine)
        self.marketplaces_file = self.sandbox.write_marketplaces_file(
            self.directory / "marketplaces.toml",
            connect_timeout=self.policy.connect_timeout,
            read_timeout=self.policy.read_timeout,
            deadline=self.policy.deadline,
            max_attempts=self.policy.http_attempts,
            max_delay=30.0,
            initial_wait=self.policy.http_initial_wait,
            max_wait=self.policy.http_max_wait,
        )
        self._logs = 0

    @property
    def env(self) -> dict[str, str]:
        """The environment of every process of the deployment."""
        policy = self.policy
        return {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "SYNDICATION_DATABASE_URL": self.database_url,
            "SYNDICATION_BROKER_URL": self.redis_url,
            "SYNDICATION_MARKETPLACES": str(self.marketplaces_file),
            "SYNDICATION_OUTBOX": str(self.directory / "outbox"),
            "SYNDICATION_WORKER_THREADS": str(policy.threads),
            "SYNDICATION_HEARTBEAT_MS": str(policy.heartbeat_ms),
            "SYNDICATION_MAX_RETRIES": str(policy.max_retries),
            "SYNDICATION_MIN_BACKOFF_MS": str(policy.min_backoff_ms),
            "SYNDICATION_MAX_WORKER_DEATHS": str(policy.max_worker_deaths),
            "SYNDICATION_CONFIRM_DELAY_MS": str(policy.confirm_delay_ms),
            "SYNDICATION_CIRCUIT_THRESHOLD": str(policy.circuit_threshold),
            "SYNDICATION_CIRCUIT_COOLDOWN_MS": str(policy.circuit_cooldown_ms),
            "SYNDICATION_MARKETPLACE_CONCURRENCY": str(policy.marketplace_concurrency),
            "SYNDICATION_FAN_OUT_LEASE_MS": str(policy.fan_out_lease_ms),
            "SYNDICATION_LOG_FORMAT": "json",
            "SYNDICATION_LOG_LEVEL": "WARNING",
        }

    # --- input and requests -------------------------------------------------

    def ingest(
        self, count: int = FAULT_LISTINGS, office_id: str = "FAULT", prefix: str = "F"
    ) -> list[str]:
        """Generate and ingest ``count`` listings of one office (ids ``prefix`` + number)."""
        report = ingest_document(self.engine, _common.input_bytes(count, office_id, prefix=prefix))
        assert report.errors == [], [str(e) for e in report.errors[:5]]
        assert len(report.listings) == count
        return sorted(report.listings)

    def transfer(self, *args: str) -> str:
        """Queue a transfer with ``syndication transfer`` (default ``--all``); its request id."""
        done = subprocess.run(
            [sys.executable, "-m", "syndication", "transfer", *(args or ("--all",))],
            cwd=self.directory, env=self.env, capture_output=True, text=True, timeout=300,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        match = re.search(r"transfer request ([0-9a-f]{32})", done.stdout)
        assert match, done.stdout
        return match.group(1)

    def start_transfer(self, *args: str) -> subprocess.Popen[str]:
        """Start ``syndication transfer`` (default ``--all``) without waiting for it."""
        return subprocess.Popen(
            [sys.executable, "-m", "syndication", "transfer", *(args or ("--all",))],
            cwd=self.directory, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True,
        )

    def finish_transfer(self, process: subprocess.Popen[str]) -> str:
        """The request id of a started transfer, once it exited. Exit status 2 is accepted
        only when it says its messages wait in the outbox (the broker was down)."""
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0 or (
            process.returncode == 2 and "wait in the store's outbox" in err), out + err
        match = re.search(r"transfer request ([0-9a-f]{32})", out)
        assert match, out + err
        return match.group(1)

    # --- workers ------------------------------------------------------------

    def start_worker(
        self, command: str = "dramatiq", processes: int = 1
    ) -> subprocess.Popen[bytes]:
        """Start a worker as an operator would: ``dramatiq worker`` on ``worker.py``, or
        ``syndication worker``; in a process group of its own, output to a log file."""
        if command == "dramatiq":
            argv = [sys.executable, "-m", "dramatiq", "worker", "--processes", str(processes),
                    "--threads", str(self.policy.threads)]
        else:
            argv = [sys.executable, "-m", "syndication", "worker", "--processes", str(processes)]
        self._logs += 1
        log = (self.directory / f"worker-{self._logs}.log").open("wb")
        process = subprocess.Popen(argv, cwd=ROOT, env=self.env, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        self.workers.append(process)
        return process

    def kill_worker(self, process: subprocess.Popen[bytes]) -> None:
        """``kill -9`` the worker's whole process group (the parent and its worker processes)."""
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait(timeout=30)

    def stop_worker(self, process: subprocess.Popen[bytes]) -> None:
        """Stop a worker gracefully (SIGTERM, as ``systemctl stop`` would)."""
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill_worker(process)

    def worker_logs(self) -> str:
        return "\n".join(
            path.read_text(errors="replace") for path in sorted(self.directory.glob("worker-*.log"))
        )

    def close(self) -> None:
        for process in self.workers:
            if process.poll() is None:
                self.kill_worker(process)
        self.engine.dispose()

    # --- what happened ------------------------------------------------------

    def outcome(self, request_id: str) -> RequestOutcome:
        return request_outcome(self.engine, request_id)

    def wait_for(self, request_id: str, timeout: float, *, done_at_least: int | None = None
                 ) -> RequestOutcome:
        """Poll until the request is finished (or ``done_at_least`` pairs are), or time runs out."""
        deadline = time.monotonic() + timeout
        while True:
            outcome = self.outcome(request_id)
            target = outcome.total if done_at_least is None else done_at_least
            if (outcome.total and outcome.done >= target) or time.monotonic() >= deadline:
                return outcome
            self.check_workers_alive()
            time.sleep(0.25)

    def check_workers_alive(self) -> None:
        """Fail at once, with the worker's log, when a worker exited on its own."""
        for process in self.workers:
            code = process.poll()
            if code is not None and code not in (-signal.SIGKILL, -signal.SIGTERM, 0):
                raise AssertionError(f"a worker exited with {code}:\n{self.worker_logs()[-4000:]}")

    def wait_published(self, timeout: float) -> dict[tuple[str, str], str]:
        """Poll until no row is ``sent`` any more (the publication checks caught up) or time
        runs out; the rows still not ``published`` then, with their state."""
        deadline = time.monotonic() + timeout
        while True:
            waiting = {pair: row.state for pair, row in self.statuses().items()
                       if row.state != "published"}
            if not any(state == "sent" for state in waiting.values()):
                return waiting
            if time.monotonic() >= deadline:
                return waiting
            time.sleep(0.5)

    def statuses(self) -> dict[tuple[str, str], TransferStatusRow]:
        """Every stored status row, by (listing, marketplace)."""
        with session_scope(self.engine) as session:
            rows = session.scalars(select(TransferStatusRow)).all()
        return {(row.listing_id, row.marketplace): row for row in rows}

    def starts(self, request_id: str) -> dict[tuple[str, str], int]:
        """How many times each pair's job started in ``request_id``: the growth of its
        stored attempt count over the request's history."""
        attempts = func.coalesce(TransferEventRow.attempts, 0)
        with session_scope(self.engine) as session:
            rows = session.execute(
                select(TransferEventRow.listing_id, TransferEventRow.marketplace,
                       func.max(attempts) - func.min(attempts))
                .where(TransferEventRow.request_id == request_id)
                .group_by(TransferEventRow.listing_id, TransferEventRow.marketplace)
            ).all()
        return {(lid, mp): int(count) for lid, mp, count in rows}

    def creations(self) -> dict[str, dict[str, int]]:
        """Per marketplace, how many times the sandbox created each listing."""
        return {name: dict(mp.creations) for name, mp in self.sandbox.marketplaces.items()}

    def assert_every_pair_published_once(self, request_id: str, listing_ids: list[str],
                                         timeout: float, *, after: str) -> None:
        """After a fault (``after`` names it in messages): the request finished within
        ``timeout`` with nothing failed, every pair published, each listing created exactly
        once on every marketplace, the history without gaps, every worker alive, and no
        dramatiq middleware hook failed on the way."""
        outcome = self.wait_for(request_id, timeout)
        assert outcome.finished, (
            f"{outcome.done}/{outcome.total} done {timeout:.0f} s after {after}")
        assert outcome.failed == 0, outcome.failures[:5]
        waiting = self.wait_published(timeout)
        assert not waiting, (
            f"{len(waiting)} pairs never settled after {after}, e.g. {list(waiting.items())[:3]}")
        self.assert_every_pair_final(listing_ids, MARKETPLACES, frozenset({"published"}))
        self.assert_nothing_created_twice()
        for name, created in self.creations().items():
            assert sorted(created) == listing_ids, f"{name} is missing listings"
        self.assert_history_without_gaps(request_id)
        self.check_workers_alive()
        logs = self.worker_logs()
        assert "Unexpected failure in after_process_message" not in logs, (
            f"a hook failed after {after} (a retry or a check lost in the making): "
            + logs[logs.index("Unexpected failure"):][:1500])

    def assert_nothing_created_twice(self) -> None:
        twice = {name: {lid: n for lid, n in counts.items() if n > 1}
                 for name, counts in self.creations().items()}
        assert not any(twice.values()), f"listings created more than once: {twice}"

    def assert_every_pair_final(self, listing_ids: list[str], marketplaces: tuple[str, ...],
                                states: frozenset[str] = FINAL_STATES) -> dict[str, int]:
        """Every listing × marketplace has a row in one of ``states``; the count per state."""
        rows = self.statuses()
        missing = [(lid, mp) for lid in listing_ids for mp in marketplaces if (lid, mp) not in rows]
        assert not missing, f"{len(missing)} pairs have no status row, e.g. {missing[:5]}"
        wrong = {(lid, mp): (rows[(lid, mp)].state, rows[(lid, mp)].error)
                 for lid in listing_ids for mp in marketplaces
                 if rows[(lid, mp)].state not in states}
        assert not wrong, f"{len(wrong)} pairs not in {sorted(states)}: {list(wrong.items())[:5]}"
        counts: dict[str, int] = {}
        for lid in listing_ids:
            for mp in marketplaces:
                counts[rows[(lid, mp)].state] = counts.get(rows[(lid, mp)].state, 0) + 1
        return counts


    def assert_history_without_gaps(self, request_id: str) -> None:
        """Every pair of the request has a history that accounts for its row: it begins with
        the fan-out's ``queued``, every start in between left an event (the attempt counts
        of its events run without a hole from the first to the row's), and its newest event
        is the row's state (no change of the row went unrecorded).

        A duplicate of a job that runs alongside it may copy an attempt count read just
        before the other's start into its own event; that is a stale number, not a
        missing event, so the counts need not rise in order."""
        rows = self.statuses()
        with session_scope(self.engine) as session:
            events = session.scalars(
                select(TransferEventRow).where(TransferEventRow.request_id == request_id)
                .order_by(TransferEventRow.id)
            ).all()
        by_pair: dict[tuple[str, str], list[TransferEventRow]] = {}
        for event in events:
            by_pair.setdefault((event.listing_id, event.marketplace), []).append(event)
        problems = []
        for pair, history in by_pair.items():
            if history[0].state != "queued":
                problems.append((pair, "starts with " + history[0].state))
            counts = [e.attempts for e in history]
            missing = set(range(counts[0], max(counts) + 1)) - set(counts)
            if missing:
                problems.append((pair, f"no event for attempts {sorted(missing)}: {counts}"))
            row = rows.get(pair)
            if row is not None and row.request_id == request_id and (
                    row.state != history[-1].state or row.attempts != max(counts)):
                problems.append((pair, f"row {row.state}/{row.attempts} but history ends "
                                       f"{history[-1].state}, attempts {counts}"))
        assert not problems, f"{len(problems)} histories with gaps, e.g. {problems[:3]}"

    def settled_after(self, healed_at: datetime) -> float:
        """Seconds from ``healed_at`` to the newest status change of any pair: how long
        the slowest pair took to settle after the fault healed (0 when all were before)."""
        with session_scope(self.engine) as session:
            newest = session.execute(select(func.max(TransferEventRow.at))).scalar_one()
        if newest.tzinfo is None:
            newest = newest.replace(tzinfo=UTC)
        return max(0.0, (newest - healed_at).total_seconds())


def cluster_of(directory: Path, redis_url: str, policy: Policy | None = None,
               database_url: str = "", **sandbox_options: Any) -> Iterator[Cluster]:
    """A started :class:`Cluster` (generator for a fixture): sandbox up, no workers yet."""
    sandbox = Sandbox(**sandbox_options).start()
    cluster = Cluster(directory, redis_url, sandbox, policy or Policy(),
                      database_url=database_url)
    try:
        yield cluster
    finally:
        cluster.close()
        sandbox.stop()
