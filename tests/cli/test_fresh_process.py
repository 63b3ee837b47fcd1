"""Every command as a user runs it: a fresh ``syndication`` process.

In-process CLI tests share one interpreter, so a module one test imported
hides an import-order fault from the next (``reconcile --repair`` once failed
in every new process because the transfer actors were declared before the
broker had its middleware). Here each command runs as ``python -m
syndication …`` against a real SQLite store and the sandbox marketplaces on
loopback; the list of commands is read from the CLI's own parser, so a
command added without a case here fails :func:`test_every_command_runs_fresh`.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from PIL import Image
from sqlalchemy import Engine, select
from sqlmodel import Session

from adapters.portal_standin import PortalStandIn
from adapters.sandbox import Sandbox
from syndication.cli import build_parser
from syndication.ingest import ingest_document
from syndication.passwords import default_hasher, set_password
from syndication.store.db import make_engine, migrate, session_scope
from syndication.store.models import ListingImageRow
from syndication.store.repository import get_statuses, history, record_status

TOKEN = "sandbox-token-for-fresh-processes"
PASSWORD = "Fr3sh!Process"
PORTAL_TOKEN = "portal-token-for-fresh-processes"
ROOT = Path(__file__).resolve().parents[2]


def listing(lid: str, **extra: Any) -> dict[str, Any]:
    """A villa for sale that meets every marketplace's preconditions."""
    return {
        "id": lid, "office_id": "K1", "category": "villa", "state": "for_sale",
        "price": 3_950_000, "living_area": 142, "rooms": 5,
        "address": {"street": f"Storgatan {lid}", "postal_code": "123 45", "city": "Uppsala",
                    "municipality": "Uppsala"},
        "headline": "Villa vid ån", "description": "Ljus villa med trädgård.",
        "images": [{"url": f"https://img.example.se/{lid}/1.jpg", "order": 0}],
        "marketplaces": ["hemnet", "hittahem"], "system_id": f"SYS-{lid}", **extra,
    }


def records(*listings: dict[str, Any]) -> dict[str, Any]:
    user = {"id": "U1", "office_id": "K1", "name": "Ulla Mäklare", "companies": ["AB-K1"],
            "main_company": "AB-K1"}
    return {
        "offices": [{"id": "K1", "name": "Mäklarbyrån K1", "company_id": "AB-K1",
                     "licence": ["hemnet", "hittahem"]}],
        "users": [user, {**user, "id": "U2", "name": "Ny Användare"}],
        "listings": list(listings),
    }


@dataclass
class World:
    """A store, the sandbox marketplaces and the environment a fresh process gets."""

    folder: Path
    sandbox: Sandbox
    engine: Engine
    env: dict[str, str]
    processes: list[subprocess.Popen[str]] = field(default_factory=list)

    def run(self, *argv: str, timeout: float = 120, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "syndication", *argv], cwd=self.folder,
            env={**self.env, **env}, capture_output=True, text=True, timeout=timeout,
        )

    def start(self, *argv: str, **env: str) -> subprocess.Popen[str]:
        process = subprocess.Popen(
            [sys.executable, "-m", "syndication", *argv], cwd=self.folder,
            env={**self.env, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        self.processes.append(process)
        return process


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with Sandbox(token=TOKEN) as sandbox:
        url = f"sqlite:///{tmp_path / 'store.db'}"
        engine = make_engine(url)
        migrate(engine)
        report = ingest_document(engine, json.dumps(records(listing("O1"), listing("O2"))).encode())
        assert report.ok, report.errors
        with session_scope(engine) as session:
            set_password(session, "U1", PASSWORD, old_password=None, hasher=default_hasher())
        marketplaces = sandbox.write_marketplaces_file(
            tmp_path / "marketplaces.toml", token_env="SANDBOX_TOKEN", max_attempts=2
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("SYNDICATION_")}
        env.update({
            "SYNDICATION_DATABASE_URL": url, "SYNDICATION_MARKETPLACES": str(marketplaces),
            "SANDBOX_TOKEN": TOKEN, "SYNDICATION_OUTBOX": str(tmp_path / "outbox"),
            "SYNDICATION_MEDIA_DIR": str(tmp_path / "media"),
            "SYNDICATION_CONFIRM_DELAY_MS": "50", "PYTHONPATH": str(ROOT),
        })
        world = World(tmp_path, sandbox, engine, env)
        try:
            yield world
        finally:
            for process in world.processes:
                if process.poll() is None:
                    process.kill()
                    process.communicate()
            engine.dispose()


def assert_clean(result: subprocess.CompletedProcess[str], code: int) -> None:
    """The documented exit status, and no traceback on stderr."""
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == code, result.stdout + result.stderr


def test_reconcile_repair_in_a_fresh_process(world: World) -> None:
    hemnet = world.sandbox["hemnet"]
    assert_clean(world.run("transfer", "--office", "K1", "--wait"), 0)
    assert hemnet.holds("O1") and hemnet.holds("O2")

    hemnet.remove_by_hand("O1")
    report = ingest_document(
        world.engine, json.dumps(records(listing("O2", state="withdrawn"))).encode()
    )
    assert report.ok, report.errors
    with session_scope(world.engine) as session:
        record_status(session, "O2", "hemnet", "deleted", action="delete")

    before = world.run("reconcile", "--office", "K1")
    assert_clean(before, 1)
    assert "Hemnet: 1 listing(s) held there, 2 difference(s)" in before.stdout

    repaired = world.run("reconcile", "--office", "K1", "--repair")
    assert_clean(repaired, 0)
    assert "sent O1 again" in repaired.stdout
    assert hemnet.holds("O1") and hemnet.creations["O1"] == 2
    assert not hemnet.holds("O2") and hemnet.delete_reasons["O2"] == "withdrawn"
    with session_scope(world.engine) as session:
        assert get_statuses(session, "O1")["hemnet"].state in ("sent", "published")
        assert get_statuses(session, "O2")["hemnet"].state == "deleted"
        assert any((e.error or "").startswith("reconciliation: Hemnet still holds it")
                   for e in history(session, "O2", "hemnet"))

    after = world.run("reconcile", "--office", "K1")
    assert_clean(after, 0)
    assert "Hemnet: 1 listing(s) held there, 0 difference(s)" in after.stdout
    assert "HittaHem: 1 listing(s) held there, 0 difference(s)" in after.stdout


def command_names(parser: argparse.ArgumentParser | None = None, prefix: str = "") -> list[str]:
    """Every command of the parser, with the actions of a command that has them
    (``user set-password``), as a user types them."""
    parser = parser or build_parser()
    names: list[str] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                inner = command_names(sub, f"{prefix}{name} ")
                names.extend(inner or [f"{prefix}{name}"])
    return names


def wait_for_line(process: subprocess.Popen[str], stream: str, text: str) -> str:
    """Read ``stream`` of ``process`` until a line contains ``text``; return that line."""
    pipe = getattr(process, stream)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = pipe.readline()
        if text in line:
            return str(line)
        if not line and process.poll() is not None:
            break
    process.kill()
    out, err = process.communicate()
    pytest.fail(f"never printed {text!r}; exit {process.returncode}\n{out}\n{err}")


def stop(process: subprocess.Popen[str], sig: signal.Signals) -> subprocess.CompletedProcess[str]:
    process.send_signal(sig)
    out, err = process.communicate(timeout=60)
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def run_worker(world: World, request: pytest.FixtureRequest) -> subprocess.CompletedProcess[str]:
    """A Redis worker boots, does a transfer queued by another process, stops on SIGTERM."""
    redis_env = {"SYNDICATION_BROKER_URL": request.getfixturevalue("redis_url")}
    worker = world.start("worker", "--threads", "2", **redis_env)
    wait_for_line(worker, "stderr", "Worker process is ready")
    assert_clean(world.run("transfer", "--object", "O1", "--wait", **redis_env), 0)
    assert world.sandbox["hemnet"].holds("O1")
    return stop(worker, signal.SIGTERM)


def run_serve(world: World, _request: pytest.FixtureRequest) -> subprocess.CompletedProcess[str]:
    """The web view answers its login page, then stops on Ctrl-C."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = world.start("serve", "--port", str(port))
    line = wait_for_line(server, "stdout", "support web view on")
    address = line.split(" on ", 1)[1].split()[0]
    assert requests.get(f"{address}login", timeout=10).status_code == 200
    return stop(server, signal.SIGINT)


def run_scheduler(
    world: World, _request: pytest.FixtureRequest
) -> subprocess.CompletedProcess[str]:
    """``--once`` with the in-process broker runs what it enqueued before it exits:
    no other process could, and the slot is claimed."""
    with PortalStandIn(token=PORTAL_TOKEN) as portal:
        assignment = portal.create_assignment("SYS-O1")
        portal.upload_image(assignment, jpeg(), title="Fasad", tag="fasad")
        portal.set_status(assignment, 1)
        env = {"SYNDICATION_PHOTO_PORTAL_URL": portal.url,
               "SYNDICATION_PHOTO_PORTAL_TOKEN": PORTAL_TOKEN}
        photos = world.run("scheduler", "--once", "photos", **env)
        assert_clean(photos, 0)
        assert portal.assignment(assignment).status == 2, photos.stdout + photos.stderr
    with Session(world.engine) as session:
        assert session.scalars(select(ListingImageRow).where(
            ListingImageRow.listing_id == "O1", ListingImageRow.source == "portal")).all()
    return world.run("scheduler", "--once", "final_prices")


def jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (160, 120), "teal").save(buffer, format="JPEG")
    return buffer.getvalue()


def legacy_file(world: World) -> str:
    path = world.folder / "legacy.csv"
    path.write_text("user_id,password\nU2,gammalt\n", encoding="utf-8")
    return str(path)


Case = Callable[[World, pytest.FixtureRequest], subprocess.CompletedProcess[str]]


def run_key_revoke(
    world: World, _request: pytest.FixtureRequest
) -> subprocess.CompletedProcess[str]:
    """A key made by one process is revoked by the next, by the id the first printed."""
    created = world.run("api-key", "create", "--office", "K1")
    assert_clean(created, 0)
    key = next(line for line in created.stdout.splitlines() if line.startswith("sk_"))
    return world.run("api-key", "revoke", key.split("_")[1])


def argv_case(*argv: str | Callable[[World], str], **env: str) -> Case:
    def case(world: World, _request: pytest.FixtureRequest) -> subprocess.CompletedProcess[str]:
        resolved = [a(world) if callable(a) else a for a in argv]
        return world.run(*resolved, **env)

    return case


def records_file(world: World) -> str:
    path = world.folder / "records.json"
    path.write_text(json.dumps(records(listing("O3"))), encoding="utf-8")
    return str(path)


CASES: dict[str, tuple[Case, int]] = {
    "ingest": (argv_case("ingest", records_file), 0),
    "transfer": (argv_case("transfer", "--object", "O1", "--wait"), 0),
    "status": (argv_case("status", "O1", "--user", "U1", "--json",
                         SYNDICATION_PASSWORD=PASSWORD), 0),
    "user set-password": (argv_case("user", "set-password", "U2",
                                    SYNDICATION_NEW_PASSWORD="N3w!Password"), 0),
    "user import-legacy": (argv_case("user", "import-legacy", legacy_file), 0),
    "user role": (argv_case("user", "role", "U2", "support"), 0),
    "api-key create": (argv_case("api-key", "create", "--office", "K1"), 0),
    "api-key list": (argv_case("api-key", "list", "--office", "K1"), 0),
    "api-key revoke": (run_key_revoke, 0),
    "export": (argv_case("export", "hemnet", "--office", "K1", "-o",
                         lambda w: str(w.folder / "hemnet.xml"), "--quiet"), 0),
    "preview": (argv_case("preview", "O1", "hemnet"), 0),
    "final-prices": (argv_case("final-prices", "--dry-run"), 0),
    "photos": (argv_case("photos", "--problems"), 0),
    "worker": (run_worker, 0),
    "scheduler": (run_scheduler, 0),
    "serve": (run_serve, 0),
    "reconcile": (argv_case("reconcile", "--office", "K1", "--repair"), 0),
    "holds list": (argv_case("holds", "list", "--json"), 1),  # 1: none waiting
    "holds confirm": (argv_case("holds", "confirm", "no-such-hold"), 2),
    "holds cancel": (argv_case("holds", "cancel", "no-such-hold"), 2),
    "demo": (argv_case("demo", "--threads", "2"), 0),
    "migrate": (argv_case("migrate", "--check"), 0),
}
"""One minimal valid use of each command and its documented exit status."""


def test_every_case_is_a_command() -> None:
    assert set(CASES) <= set(command_names()), set(CASES) - set(command_names())


@pytest.mark.parametrize("command", command_names())
def test_every_command_runs_fresh(
    command: str, world: World, request: pytest.FixtureRequest
) -> None:
    assert command in CASES, f"`syndication {command}` has no fresh-process case in CASES"
    case, code = CASES[command]
    assert_clean(case(world, request), code)
