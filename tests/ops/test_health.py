"""``/healthz`` and ``/readyz`` of the HTTP service and the scheduler, over real HTTP,
and readiness going false when the store or Redis goes away; who may read ``/metrics``."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests
from http_service import serve_app
from ops_helpers import eventually, status_of
from sqlalchemy import text
from starlette.requests import Request

from syndication.app import create_app
from syndication.health import notify
from syndication.operator_routes import may_read_metrics
from syndication.service import ServiceContext
from syndication.settings import Settings
from syndication.store.db import make_engine, migrate

ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def service(url: str, broker_url: str | None = None, **environ: str) -> Iterator[str]:
    engine = make_engine(url, pool_pre_ping=True)
    settings = Settings(database_url=url, broker_url=broker_url, environ=environ)
    context = ServiceContext(settings=settings, engine=engine, contacts={},
                             secret_key="k" * 64)
    try:
        with serve_app(create_app(context)) as served:
            yield served.base
    finally:
        engine.dispose()


def migrated_sqlite(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    engine = make_engine(url)
    migrate(engine)
    engine.dispose()
    return url


@pytest.mark.redis
def test_service_ready_until_redis_goes_away(tmp_path: Path, own_redis: object) -> None:
    with service(migrated_sqlite(tmp_path), own_redis.url) as base:  # type: ignore[attr-defined]
        assert status_of(base + "/healthz") == (200, "ok\n")
        assert status_of(base + "/readyz") == (200, "ready\n")
        own_redis.stop()  # type: ignore[attr-defined]
        code, body = status_of(base + "/readyz")
        assert code == 503 and body.startswith("redis: does not answer")
        assert status_of(base + "/healthz")[0] == 200
        own_redis.start()  # type: ignore[attr-defined]
        assert status_of(base + "/readyz")[0] == 200


def test_service_not_ready_on_a_store_behind(tmp_path: Path) -> None:
    with service(f"sqlite:///{tmp_path / 'empty.db'}") as base:
        code, body = status_of(base + "/readyz")
        assert code == 503
        assert "store: at migration none (no schema yet)" in body and "syndication migrate" in body
        assert status_of(base + "/healthz")[0] == 200


@pytest.mark.postgres
def test_service_not_ready_when_the_store_goes_away(postgres_url: str,
                                                    postgres_admin_url: str) -> None:
    engine = make_engine(postgres_url)
    migrate(engine)
    engine.dispose()
    with service(postgres_url) as base:
        assert status_of(base + "/readyz") == (200, "ready\n")
        admin = make_engine(postgres_admin_url, isolation_level="AUTOCOMMIT")
        name = postgres_url.rsplit("/", 1)[1]
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()
        code, body = status_of(base + "/readyz")
        assert code == 503 and body.startswith("store: does not answer")
        assert "postgres" not in body.lower()  # no URL, no credential


def test_health_routes_are_not_in_the_openapi_document(tmp_path: Path) -> None:
    with service(migrated_sqlite(tmp_path)) as base:
        paths = requests.get(base + "/api/v1/openapi.json", timeout=10).json()["paths"]
    assert not {"/healthz", "/readyz", "/metrics"} & set(paths)


def test_metrics_need_the_token_when_one_is_set(tmp_path: Path) -> None:
    token = "m" * 40
    with service(migrated_sqlite(tmp_path), SYNDICATION_METRICS_TOKEN=token) as base:
        assert requests.get(base + "/metrics", timeout=10).status_code == 403
        wrong = {"Authorization": "Bearer " + "x" * 40}
        assert requests.get(base + "/metrics", headers=wrong, timeout=10).status_code == 403
        right = requests.get(base + "/metrics", headers={"Authorization": f"Bearer {token}"},
                             timeout=10)
        assert right.status_code == 200 and "syndication_store_up 1.0" in right.text
    with service(migrated_sqlite(tmp_path)) as base:  # no token: loopback may read
        assert requests.get(base + "/metrics", timeout=10).status_code == 200


@pytest.mark.parametrize(("client", "token", "header", "allowed"), [
    ("127.0.0.1", "", None, True),
    ("::1", "", None, True),
    ("10.0.0.5", "", None, False),
    ("10.0.0.5", "t0ken", "Bearer t0ken", True),
    ("127.0.0.1", "t0ken", None, False),
    ("10.0.0.5", "t0ken", "Basic t0ken", False),
])
def test_who_may_read_metrics(client: str, token: str, header: str | None,
                              allowed: bool) -> None:
    headers = [(b"authorization", header.encode())] if header else []
    request = Request({"type": "http", "client": (client, 1234), "headers": headers,
                       "method": "GET", "path": "/metrics"})
    assert may_read_metrics(request, token) is allowed


def test_sd_notify_over_the_plain_socket(tmp_path: Path) -> None:
    path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        assert notify("READY=1", {"NOTIFY_SOCKET": str(path)})
        assert sock.recv(64) == b"READY=1"
    assert not notify("READY=1", {})


@pytest.mark.redis
def test_scheduler_reports_readiness_on_its_port(tmp_path: Path, own_redis: object) -> None:
    url = migrated_sqlite(tmp_path)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    notify_path = tmp_path / "notify.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(notify_path))
    listener.settimeout(60)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SYNDICATION_DATABASE_URL": url,
           "SYNDICATION_BROKER_URL": own_redis.url,  # type: ignore[attr-defined]
           "SYNDICATION_LOG_LEVEL": "WARNING", "NOTIFY_SOCKET": str(notify_path)}
    process = subprocess.Popen(
        [sys.executable, "-m", "syndication", "scheduler", "--health-port", str(port)],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        assert listener.recv(64) == b"READY=1"
        eventually(lambda: status_of(base + "/readyz") == (200, "ready\n"), what="ready")
        assert status_of(base + "/healthz") == (200, "ok\n")
        assert "syndication_messages" in requests.get(base + "/metrics", timeout=10).text
        own_redis.stop()  # type: ignore[attr-defined]
        code, body = status_of(base + "/readyz")
        assert code == 503 and "redis: does not answer" in body
        assert status_of(base + "/healthz")[0] == 200
    finally:
        listener.close()
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGINT)
        process.wait(timeout=30)


def test_metrics_queues_are_the_actors_queues(tmp_path: Path) -> None:
    from syndication.broker import setup_broker
    from syndication.metrics import QUEUES
    from syndication.runtime import Runtime

    settings = Settings(database_url=f"sqlite:///{tmp_path / 'store.db'}")
    runtime = Runtime.from_settings(settings)
    try:
        broker = setup_broker(settings, runtime)
        assert set(QUEUES) == {actor.queue_name for actor in broker.actors.values()}
    finally:
        runtime.close()
