"""Shared fixtures: real databases (SQLite and PostgreSQL) and a real Redis server.

PostgreSQL is found through ``SYNDICATION_TEST_POSTGRES_URL`` (``.ci/run`` sets
it); Redis through ``SYNDICATION_TEST_REDIS_URL`` or, when that is unset, a
``redis-server`` the fixture starts on a free loopback port. Under CI a missing
server is an error, never a skip.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from availability import unavailable
from hypothesis import settings
from pg_pool import DatabasePool
from sqlalchemy import Engine, text

from syndication.store.db import make_engine, migrate

# No per-example time limit: a deadline is a timed assertion, and on a loaded
# machine an argon2 hash or an XSD validation can take longer than Hypothesis's
# default 200 ms without anything being wrong. Speed is measured in bench/.
settings.register_profile("syndication", deadline=None, print_blob=True)
settings.load_profile("syndication")


def _load_bench_module(name: str, filename: str) -> None:
    """Make ``bench/{filename}`` importable as ``name``; ``bench/`` itself stays off the
    path, so that nothing there can shadow a package of the project's."""
    if name in sys.modules:
        return
    path = Path(__file__).resolve().parents[1] / "bench" / filename
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)


# ``factories``: the one factory of valid records, shared by every test and the benchmarks.
# ``bench_common``: the benchmarks' generator over it, used by the hostile-input and fault tests.
_load_bench_module("factories", "factories.py")
_load_bench_module("bench_common", "_common.py")


RELIABILITY = Path(__file__).resolve().parent / "reliability"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under pytest-xdist (``.ci/run``: ``-n auto --dist loadgroup``) the fault tests of
    ``tests/reliability`` run one after another on one worker, as they always did: they
    build network namespaces on fixed subnets, kill and restart servers and judge
    recovery against deadlines. Every other test may run beside them; each worker has
    its own Redis server, PostgreSQL databases and temporary folders."""
    group = pytest.mark.xdist_group("reliability")
    for item in items:
        if RELIABILITY in item.path.parents:
            item.add_marker(group)


@pytest.fixture(autouse=True)
def default_logging() -> Iterator[None]:
    """Every test starts and ends with structlog's defaults, whatever a CLI test configured."""
    structlog.reset_defaults()
    yield
    structlog.reset_defaults()


def _unavailable(what: str) -> None:
    unavailable(f"{what} is not available here; .ci/run starts one")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite store migrated to the newest schema once per session; every test that
    wants a migrated store gets a copy of it (running the migrations per test costs far
    more than the copy)."""
    path = tmp_path_factory.mktemp("migrated") / "store.db"
    engine = make_engine(f"sqlite:///{path}")
    migrate(engine)
    with engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return path


@pytest.fixture
def sqlite_engine(tmp_path: Path, migrated_sqlite: Path) -> Iterator[Engine]:
    """A migrated SQLite store of the test's own (a copy of :func:`migrated_sqlite`)."""
    target = tmp_path / "store.db"
    shutil.copyfile(migrated_sqlite, target)
    engine = make_engine(f"sqlite:///{target}")
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def postgres_admin_url() -> str:
    url = os.environ.get("SYNDICATION_TEST_POSTGRES_URL")
    if not url:
        _unavailable("PostgreSQL (SYNDICATION_TEST_POSTGRES_URL)")
    assert url is not None
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            conn.execute(text("select 1"))
    except Exception as exc:  # noqa: BLE001 - any connection failure means "not available"
        _unavailable(f"PostgreSQL at the configured URL ({type(exc).__name__})")
    finally:
        engine.dispose()
    return url


@pytest.fixture
def postgres_url(postgres_admin_url: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = make_engine(postgres_admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    base = postgres_admin_url.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def postgres_template(postgres_admin_url: str) -> Iterator[str]:
    """A PostgreSQL database migrated to the newest schema once per session, the template
    every test's migrated database is created from; dropped at the end."""
    name = f"tpl_{uuid.uuid4().hex[:12]}"
    admin = make_engine(postgres_admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine = make_engine(f"{postgres_admin_url.rsplit('/', 1)[0]}/{name}")
    migrate(engine)
    engine.dispose()
    yield name
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def postgres_pool(postgres_admin_url: str, postgres_template: str) -> Iterator[DatabasePool]:
    """Copies of the template made ahead of the tests and dropped behind them on a thread
    (see :mod:`pg_pool`); at the end every one is dropped."""
    pool = DatabasePool(postgres_admin_url, postgres_template)
    yield pool
    pool.close()


@pytest.fixture
def postgres_engine(postgres_pool: DatabasePool) -> Iterator[Engine]:
    """A migrated PostgreSQL database of the test's own, copied from the template."""
    name = postgres_pool.take()
    engine = make_engine(postgres_pool.url(name))
    yield engine
    engine.dispose()
    postgres_pool.give_back(name)


@pytest.fixture(params=["sqlite", "postgres"])
def engine(request: pytest.FixtureRequest) -> Engine:
    """The store on SQLite and on PostgreSQL: tests using it run on both."""
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_engine")
    return request.getfixturevalue("postgres_engine")


class RedisServer:
    """A redis-server process on loopback, for tests that restart or kill it."""

    def __init__(self, directory: Path, port: int | None = None, db: int = 0) -> None:
        self.directory = directory
        self.port = port or free_port()
        self.db = db
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/{self.db}"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            _unavailable("redis-server")
        assert binary is not None
        self.process = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.directory),
                "--appendonly",
                "yes",
                "--save",
                "",
                "--daemonize",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One Redis server for the session (``SYNDICATION_TEST_REDIS_URL`` if set). On that
    shared server each pytest-xdist worker takes the database of its number (``gw1``: 1),
    since :func:`redis_url` empties the database before every test."""
    url = os.environ.get("SYNDICATION_TEST_REDIS_URL")
    if url:
        worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
        server = RedisServer(
            tmp_path_factory.mktemp("redis"), port=int(url.rsplit(":", 1)[1].split("/")[0]),
            db=int(worker.removeprefix("gw") or 0),
        )
        yield server
        return
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> Iterator[str]:
    """A Redis database emptied before the test."""
    import redis

    client = redis.Redis.from_url(redis_server.url)
    client.flushdb()
    client.close()
    yield redis_server.url


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis server of the test's own, which the test may restart or kill."""
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()
