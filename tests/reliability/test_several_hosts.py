"""Workers on two hosts, Redis and PostgreSQL on a third: kills, a Redis restart and a
20 s partition between one worker host and Redis, and nothing is lost or doubled.

The hosts are network namespaces of the test's own (``netns.py``)::

    host a (syn<id>a)                               host s (syn<id>s)
    syndication worker, `transfer --all` --r link-- Redis        127.0.0.1:6379
                                         --d link-- PostgreSQL   127.0.0.1:5432
    host b (syn<id>b)                               marketplaces 127.0.0.1:<free>
    syndication worker                   --r link-- (the delay relay listens on
                                         --d link--  each link's services end)

Every link is a veth pair with a /30 of ``10.231.<n>.0/24``; 2 ms are added to
each direction of every connection that crosses one (``delay_link.py``; the
test machine's kernel has no ``netem``), and the test measures the round
trip to Redis from host a before it starts. Each worker runs in a UTS
namespace of its own too (hostnames ``host-a``, ``host-b``), so a worker on
the other host is judged by its Redis heartbeat, as on real machines.

The run: one ``syndication worker`` per host; ``syndication transfer --all``
from host a; while the pairs are delivered, ``kill -9`` of a random host's
worker (restarted at once) at evenly spread points of progress, one Redis
restart (append-only file) at 65 %, and at 40 % host a's Redis link is taken
down for 20 s (host a still reaches the store and the marketplaces). Then
every pair must be ``published``, each listing created exactly once per
marketplace, every history without gaps, no middleware hook failed; the
output gives the slowest pair's settle time after the partition healed and
after the last fault.

Short form (CI): ``SYNDICATION_FAULT_LISTINGS`` listings (200) with 3 kills (one per 100
listings, at least 3).
Long form (one command; 10,000 listings on PostgreSQL, 100 kills, one Redis
restart, the 20 s partition)::

    SYNDICATION_FAULT_LISTINGS=10000 python -m pytest -s -m slow \\
        tests/reliability/test_several_hosts.py
"""

from __future__ import annotations

import random
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fault_cluster import FAULT_LISTINGS, LONG_RUN, MARKETPLACES, ROOT, Cluster, Policy
from netns import HOSTS, Topology
from own_postgres import OwnPostgres
from sqlalchemy import func, select

from adapters.sandbox import Sandbox
from syndication.store.db import session_scope
from syndication.store.models import TransferStatusRow, utcnow

HERE = Path(__file__).resolve().parent
DELAY = 0.002
PARTITION_SECONDS = 20.0
KILLS = max(3, FAULT_LISTINGS // 100)
"""kill -9s spread over the run: 3 in CI, 100 in the long form of 10,000 listings."""
REDIS_PORT, POSTGRES_PORT = 6379, 5432
POLICY = Policy(confirm_delay_ms=300, max_retries=10, min_backoff_ms=300, http_attempts=2,
                fan_out_lease_ms=30_000)
"""Ten tries from 0.3 s doubling outlast the partition and the Redis restart. The fan-out
lease is the production one (30 s): a batch of 200 listings, its queries each 4 ms slower,
outlasts the other fault tests' 5 s on a busy machine, and a lease that runs out under a
batch that is still being written has it taken over and rolled back, batch after batch."""

pytestmark = [pytest.mark.redis, pytest.mark.postgres,
              pytest.mark.timeout(int(600 + FAULT_LISTINGS * 0.6)),
              *([pytest.mark.slow] if LONG_RUN else [])]


class ServicesRedis:
    """redis-server inside the services namespace (append-only), restartable."""

    def __init__(self, topology: Topology, directory: Path) -> None:
        self.topology, self.directory = topology, directory
        self.socket = directory / "redis.sock"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            self.topology.argv("s", "redis-server", "--port", str(REDIS_PORT), "--bind",
                               "127.0.0.1", "--unixsocket", str(self.socket), "--dir",
                               str(self.directory), "--appendonly", "yes", "--save", ""),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 15
        while subprocess.run(["redis-cli", "-s", str(self.socket), "ping"], capture_output=True,
                             check=False).stdout.strip() != b"PONG":
            assert time.monotonic() < deadline, "redis-server did not start in the namespace"
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=15)
            self.process = None


class ServicesPostgres(OwnPostgres):
    """:class:`OwnPostgres` run inside the services namespace; the test itself reaches it
    through its Unix socket (a file, outside any network namespace)."""

    def __init__(self, topology: Topology) -> None:
        self.topology = topology
        super().__init__(POSTGRES_PORT)

    def _run(self, tool: str, *args: str) -> None:
        assert self.bin is not None
        argv = [str(self.bin / tool), *args]
        if self.user is not None:
            argv = ["runuser", "-u", self.user, "--", *argv]
        subprocess.run(self.topology.argv("s", *argv), check=True, capture_output=True,
                       timeout=120)

    @property
    def socket_url(self) -> str:
        return f"postgresql://postgres@/postgres?host={self.root}&port={self.port}"


class HostsCluster(Cluster):
    """A :class:`Cluster` whose workers and transfers run on the worker hosts."""

    topology: Topology

    def host_env(self, host: str) -> dict[str, str]:
        """The deployment's environment as seen from ``host``: every service at the
        services end of that host's links."""
        redis_at = self.topology.link(host, "r").services_address
        data_at = self.topology.link(host, "d").services_address
        marketplaces = self.directory / f"marketplaces-{host}.toml"
        marketplaces.write_text(self.marketplaces_file.read_text().replace(
            "http://127.0.0.1:", f"http://{data_at}:"))
        return {**self.env,
                "SYNDICATION_BROKER_URL": f"redis://{redis_at}:{REDIS_PORT}/0",
                "SYNDICATION_DATABASE_URL": f"postgresql://postgres@{data_at}:{POSTGRES_PORT}/postgres",
                "SYNDICATION_MARKETPLACES": str(marketplaces)}

    def start_worker_on(self, host: str) -> subprocess.Popen[bytes]:
        """``syndication worker`` on ``host``, in a process group of its own."""
        self._logs += 1
        log = (self.directory / f"worker-{self._logs}.log").open("wb")
        process = subprocess.Popen(
            self.topology.argv(host, sys.executable, "-m", "syndication", "worker",
                               "--processes", "1", hostname=f"host-{host}"),
            cwd=ROOT, env=self.host_env(host), stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)
        log.close()
        self.workers.append(process)
        return process

    def start_transfer_on(self, host: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.topology.argv(host, sys.executable, "-m", "syndication", "transfer", "--all"),
            cwd=self.directory, env=self.host_env(host), stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True)

    def delivered(self) -> int:
        with session_scope(self.engine) as session:
            return int(session.execute(
                select(func.count()).select_from(TransferStatusRow)
                .where(TransferStatusRow.state.in_(("sent", "published")))).scalar_one())


@pytest.fixture
def hosts(tmp_path: Path) -> Iterator[tuple[HostsCluster, ServicesRedis, Topology]]:
    topology = Topology().build()
    relay: subprocess.Popen[bytes] | None = None
    sandbox: Sandbox | None = None
    postgres: ServicesPostgres | None = None
    redis = ServicesRedis(topology, tmp_path)
    cluster: HostsCluster | None = None
    try:
        postgres = ServicesPostgres(topology)
        postgres.start()
        redis.start()
        sandbox = topology.run_inside("s", lambda: Sandbox(publish_delay=0.5).start())
        ports = [REDIS_PORT, POSTGRES_PORT,
                 *(int(sandbox.url(name).rsplit(":", 1)[1]) for name in sandbox.marketplaces)]
        routes = [f"{link.services_address}:{port}=127.0.0.1:{port}"
                  for link in topology.links.values()
                  for port in (ports[:1] if link.kind == "r" else ports[1:])]
        relay = subprocess.Popen(topology.argv("s", sys.executable, str(HERE / "delay_link.py"),
                                               str(DELAY), *routes), stdout=subprocess.PIPE)
        assert relay.stdout is not None and relay.stdout.readline().strip() == b"ready"
        cluster = HostsCluster(tmp_path, "", sandbox, POLICY, database_url=postgres.socket_url)
        cluster.topology = topology
        yield cluster, redis, topology
    finally:
        if cluster is not None:
            cluster.close()
        for process in (relay,):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait(timeout=10)
        redis.stop()
        if postgres is not None:
            postgres.close()
        if sandbox is not None:
            sandbox.stop()
        topology.close()


def redis_round_trip(topology: Topology, host: str) -> float:
    """The median seconds of a Redis PING from ``host`` across its link."""
    import redis as redis_client

    def measure() -> float:
        client = redis_client.Redis(host=topology.link(host, "r").services_address,
                                    port=REDIS_PORT, socket_timeout=2)
        client.ping()
        times = []
        for _ in range(20):
            start = time.perf_counter()
            client.ping()
            times.append(time.perf_counter() - start)
        client.close()
        return statistics.median(times)

    return topology.run_inside(host, measure)


def redis_reachable(topology: Topology, host: str) -> bool:
    import socket

    def attempt() -> bool:
        try:
            with socket.create_connection(
                    (topology.link(host, "r").services_address, REDIS_PORT), timeout=1):
                return True
        except OSError:
            return False

    return topology.run_inside(host, attempt)


def test_workers_on_two_hosts_survive_kills_a_redis_restart_and_a_partition(
    hosts: tuple[HostsCluster, ServicesRedis, Topology],
) -> None:
    cluster, redis, topology = hosts
    seed = int(topology.run_id, 16)
    chance = random.Random(seed)
    round_trip = redis_round_trip(topology, "a")
    assert round_trip >= 2 * DELAY, f"no latency on the link: {round_trip * 1000:.2f} ms"

    ids = cluster.ingest(FAULT_LISTINGS)
    pairs = len(ids) * len(MARKETPLACES)
    workers = {host: cluster.start_worker_on(host) for host in HOSTS}
    transfer = cluster.start_transfer_on("a")

    kill_points = sorted(int(pairs * (0.05 + 0.85 * (k + 0.5) / KILLS)) for k in range(KILLS))
    partition_at, restart_at = int(pairs * 0.40), int(pairs * 0.65)
    partition_healed = last_fault = None
    kills = 0
    deadline = time.monotonic() + 300 + pairs * 0.5
    while kill_points or partition_healed is None or restart_at:
        assert time.monotonic() < deadline, (
            f"stalled at {cluster.delivered()}/{pairs} with {len(kill_points)} kills to go")
        cluster.check_workers_alive()
        done = cluster.delivered()
        if partition_healed is None and done >= partition_at:
            assert done < pairs, "every pair was delivered before the partition"
            topology.set_link("a", "r", up=False)
            assert not redis_reachable(topology, "a"), "the partition let host a reach Redis"
            time.sleep(PARTITION_SECONDS)
            topology.set_link("a", "r", up=True)
            partition_healed = last_fault = utcnow()
            partition_done = cluster.delivered()
        elif restart_at and done >= restart_at:
            redis.stop()
            redis.start()
            restart_at, last_fault = 0, utcnow()
        elif kill_points and done >= kill_points[0]:
            kill_points.pop(0)
            host = chance.choice(HOSTS)
            cluster.kill_worker(workers[host])
            workers[host] = cluster.start_worker_on(host)
            kills, last_fault = kills + 1, utcnow()
        else:
            time.sleep(0.2)
    request = cluster.finish_transfer(transfer)

    cluster.assert_every_pair_published_once(request, ids, 180.0 + pairs / 5,
                                             after="the faults")
    assert partition_healed is not None and last_fault is not None
    starts = cluster.starts(request)
    print(f"\nseveral hosts (run {topology.run_id}, Redis round trip "
          f"{round_trip * 1000:.1f} ms): {pairs} pairs published, each created once; "
          f"{kills} kills, 1 Redis restart, host a cut from Redis for "
          f"{PARTITION_SECONDS:.0f} s at {partition_at}/{pairs} "
          f"({partition_done} delivered when it healed); jobs started more than once: "
          f"{sum(1 for n in starts.values() if n > 1)}; the slowest pair settled "
          f"{cluster.settled_after(partition_healed):.1f} s after the partition healed, "
          f"{cluster.settled_after(last_fault):.1f} s after the last fault")

