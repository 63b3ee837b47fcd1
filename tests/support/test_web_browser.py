"""The support web view in a real headless Chromium (Debian's ``chromium`` package).

Chromium is driven over the DevTools protocol on ``--remote-debugging-pipe``
(JSON messages on file descriptors 3 and 4), so no extra Python package is
needed. The browser loads the login form, fills it in and submits it, follows
the redirect, opens a listing and takes a screenshot. Without chromium the test
skips, except under CI, where it fails.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from web_server import PASSWORD, Served, serve

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-extensions", "--remote-debugging-pipe",
]


def chromium_binary() -> str:
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed, and CI must run the browser test")
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    return binary


class Browser:
    """A headless Chromium and one page of it, spoken to over the DevTools pipe."""

    def __init__(self, binary: str, profile: Path) -> None:
        commands_read, self._commands = os.pipe()
        self._replies, replies_write = os.pipe()

        def wire_pipes() -> None:
            high_in = fcntl.fcntl(commands_read, fcntl.F_DUPFD, 100)
            high_out = fcntl.fcntl(replies_write, fcntl.F_DUPFD, 100)
            os.dup2(high_in, 3)
            os.dup2(high_out, 4)

        self.process = subprocess.Popen(
            [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            close_fds=False, preexec_fn=wire_pipes,  # noqa: PLW1509 - fds 3/4 are the protocol
        )
        os.close(commands_read)
        os.close(replies_write)
        self._next_id = 0
        self._buffer = b""
        self._events: list[dict[str, Any]] = []
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)[
            "sessionId"
        ]
        self.call("Page.enable", session=True)

    def _read_message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([self._replies], [], [], remaining)[0]:
                raise TimeoutError("chromium did not answer in time")
            chunk = os.read(self._replies, 65536)
            if not chunk:
                raise RuntimeError("chromium closed the DevTools pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return dict(json.loads(message))

    def call(self, method: str, session: bool = False, **params: Any) -> dict[str, Any]:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = self.session
        os.write(self._commands, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + 30
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return dict(reply.get("result", {}))
            self._events.append(reply)

    def wait_for(self, event: str) -> None:
        deadline = time.monotonic() + 30
        while True:
            for index, message in enumerate(self._events):
                if message.get("method") == event:
                    del self._events[: index + 1]
                    return
            self._events.append(self._read_message(deadline))

    def open(self, url: str) -> None:
        self._events.clear()
        self.call("Page.navigate", session=True, url=url)
        self.wait_for("Page.loadEventFired")

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", session=True, expression=expression,
                           returnByValue=True)
        return result["result"].get("value")

    def close(self) -> None:
        try:
            self.call("Browser.close")
        except (RuntimeError, TimeoutError, OSError):
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        os.close(self._commands)
        os.close(self._replies)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Browser]:
    running = Browser(chromium_binary(), tmp_path / "profile")
    try:
        yield running
    finally:
        running.close()


@pytest.fixture
def served(seeded: Engine) -> Iterator[Served]:
    with serve(seeded) as running:
        yield running


def test_log_in_through_the_form_and_read_a_listing(
    browser: Browser, served: Served, tmp_path: Path
) -> None:
    browser.open(served.url("/listings/FAIL"))
    assert browser.evaluate("location.pathname") == "/login"
    browser.evaluate(
        "document.getElementById('username').value = 'anna';"
        f"document.getElementById('password').value = {json.dumps(PASSWORD)};"
        "document.getElementById('submit').click(); true"
    )
    browser.wait_for("Page.loadEventFired")
    assert browser.evaluate("location.pathname") == "/listings/FAIL"
    assert browser.evaluate("document.getElementById('who').textContent") == "anna"
    assert browser.evaluate("document.cookie") == "", "the session cookie must be HttpOnly"
    failed = browser.evaluate(
        "[...document.querySelectorAll('tr.status-row')]"
        ".map(r => [r.dataset.marketplace, r.dataset.state, r.innerText])"
    )
    assert [(m, s) for m, s, _ in failed] == [("hemnet", "failed"), ("hittahem", "queued")]
    assert "422 missing price" in failed[0][2] and "Hemnet mäklarsupport" in failed[0][2]
    html = browser.evaluate("document.documentElement.outerHTML")
    assert "$argon2" not in html and served.password_hash not in html
    shot = browser.call("Page.captureScreenshot", session=True, format="png")
    png = base64.b64decode(shot["data"])
    assert png.startswith(b"\x89PNG")
    (tmp_path / "listing.png").write_bytes(png)

    served.clock.advance(minutes=31)
    browser.open(served.url("/offices/OFF1"))
    assert browser.evaluate("location.pathname") == "/login"
