"""The sandbox itself: concurrent retries with one key, the standalone runner,
and the marketplaces file it writes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
from transport_helpers import TOKEN, delivery, listing

from adapters.config import load_marketplaces
from adapters.http import HttpTransport
from syndication import registry
from syndication.settings import Settings

ROOT = Path(__file__).parents[2]


def test_parallel_calls_with_one_key_create_once(sandbox):
    """Ten workers delivering the same message at once: one creation, nine replays."""
    item = delivery("hemnet")
    transports = [HttpTransport("hemnet", sandbox.url("hemnet"), token=TOKEN) for _ in range(10)]
    with ThreadPoolExecutor(10) as pool:
        receipts = list(pool.map(lambda t: t.send(item), transports))
    assert len({r.marketplace_id for r in receipts}) == 1
    assert sandbox["hemnet"].creations["OBJ-1"] == 1 and sandbox["hemnet"].replays == 9
    for transport in transports:
        transport.close()


def test_the_marketplaces_file_points_at_the_sandbox(sandbox, tmp_path):
    path = sandbox.write_marketplaces_file(tmp_path / "mp.toml", token_env="SANDBOX_TOKEN")
    assert TOKEN not in path.read_text()
    settings = Settings(marketplaces_file=path, environ={"SANDBOX_TOKEN": TOKEN})
    configs = load_marketplaces(settings)
    for name in registry.push_names():
        config = configs[name]
        assert config.url == sandbox.url(name)
        receipt = config.transport.send(delivery(name, feed_input=listing(f"OBJ-{name}")))
        assert receipt.marketplace_id == sandbox[name].marketplace_id(f"OBJ-{name}")
        config.transport.close()


def test_unknown_routes_and_a_missing_key(sandbox):
    base = sandbox.url("blocket")
    auth = {"Authorization": f"Bearer {TOKEN}"}
    assert requests.get(base + "/nothing", headers=auth, timeout=5).status_code == 404
    answer = requests.post(base + "/listings/OBJ-1", data=b"<x/>", headers=auth, timeout=5)
    assert answer.status_code == 400 and b"Idempotency-Key" in answer.content
    assert requests.get(base + "/listings/OBJ-1", timeout=5).status_code == 401


def test_the_standalone_runner_serves_until_stopped(tmp_path):
    config = tmp_path / "mp.toml"
    env = {**os.environ, "SANDBOX_TOKEN": TOKEN, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-m", "adapters.sandbox", "--publish-delay", "0"]
        + ["--token-env", "SANDBOX_TOKEN", "--write-config", str(config)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        lines = [process.stdout.readline() for _ in range(4)]
        assert lines[0].startswith("hemnet") and "http://127.0.0.1:" in lines[0]
        assert "marketplaces file" in lines[3]
        settings = Settings(marketplaces_file=config, environ={"SANDBOX_TOKEN": TOKEN})
        transport = load_marketplaces(settings)["hemnet"].transport
        assert transport.send(delivery("hemnet")).marketplace_id.startswith("HN")
        assert transport.lookup("hemnet", "OBJ-1").published
        transport.close()
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)
        process.stdout.close()
    assert process.returncode == 0
