"""The sandbox marketplaces' callbacks (R16): a signed ``POST`` to the worker's
``/hooks/{marketplace}`` once an accepted listing is published.

A marketplace configured with a callback address and secret (:meth:`SandboxMarketplace.
configure_callbacks`) calls back after its publication delay, as a real one that
publishes with a delay would: ``published`` with its id and public address, or
``failed`` with its reason when a manual review refused the listing
(:meth:`CallbackSender.refuse_after_review`). :attr:`CallbackSender.lose` drops the next
callbacks on the floor (a lost message), so tests show polling settling them. The signing
is :func:`syndication.hooks.signed_headers`, the same code that verifies it.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import requests

from syndication.logs import get_logger


class CallbackSender:
    """Sends one marketplace's callbacks on timer threads; counts what it sent and lost."""

    def __init__(self, marketplace: str, url: str, secret: bytes) -> None:
        self.marketplace = marketplace
        self.url = url
        self._secret = secret
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._timers: list[threading.Timer] = []
        self._reviews: dict[str, str] = {}
        self.lose = 0
        """How many of the next callbacks are lost instead of sent."""
        self.sent: Counter[str] = Counter()
        self.lost = 0
        self.answers: list[int] = []
        self._log = get_logger(marketplace=marketplace, component="sandbox_callbacks")

    def refuse_after_review(self, listing_id: str, reason: str) -> None:
        """The listing's next publication ends in a manual review refusing it for ``reason``."""
        with self._lock:
            self._reviews[listing_id] = reason

    def review(self, listing_id: str) -> str | None:
        """The review's refusal for ``listing_id``, taken once (``None``: published)."""
        with self._lock:
            return self._reviews.pop(listing_id, None)

    def schedule(self, delay: float, payload: dict[str, Any]) -> None:
        """Send ``payload`` after ``delay`` seconds (on a daemon timer thread)."""
        timer = threading.Timer(max(delay, 0.0), self._send, args=(payload,))
        timer.daemon = True
        with self._lock:
            self._timers = [t for t in self._timers if t.is_alive()] + [timer]
        timer.start()

    def cancel(self) -> None:
        """Stop every callback not sent yet (the sandbox is stopping)."""
        with self._lock:
            timers, self._timers = self._timers, []
        for timer in timers:
            timer.cancel()

    def _send(self, payload: dict[str, Any]) -> None:
        from syndication.hooks import signed_headers

        with self._lock:
            if self.lose > 0:
                self.lose -= 1
                self.lost += 1
                return
            callback_id = f"{self.marketplace}-cb-{next(self._ids)}"
        body = json.dumps(payload).encode()
        headers = signed_headers(self._secret, body, callback_id, datetime.now(UTC))
        try:
            answer = requests.post(self.url, data=body, headers=headers, timeout=5,
                                   allow_redirects=False)
        except requests.RequestException as exc:
            self._log.warning("sandbox_callback_unsent", error=type(exc).__name__)
            return
        with self._lock:
            self.sent[payload["outcome"]] += 1
            self.answers.append(answer.status_code)
